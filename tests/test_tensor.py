"""The autograd core: graph, accumulation, broadcasting, reductions, devices and dtype rules."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import conv3d
from conv3d import Tensor, gradcheck, no_grad
from conv3d.core.gradcheck import GradcheckError
from conv3d.core.tensor import Function


def t64(*shape, seed=0, positive=False):
    a = np.random.default_rng(seed).standard_normal(shape)
    return Tensor(np.abs(a) + 0.5 if positive else a, requires_grad=True)


def test_lists_default_to_float32_and_arrays_keep_dtype():
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor(np.zeros(3)).dtype == np.float64
    assert Tensor(np.zeros(3, np.float32)).dtype == np.float32


def test_gradient_of_a_polynomial_matches_hand_derivative():
    x = Tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = (x * x * x - 2.0 * x).sum()  # dy/dx = 3x^2 - 2
    y.backward()
    np.testing.assert_allclose(x.grad, 3 * np.array([1.0, 4.0, 9.0]) - 2)


def test_gradients_accumulate_when_a_tensor_feeds_several_ops():
    # y = a*b + a + a*a: a feeds three ops; dy/da = b + 1 + 2a, dy/db = a
    a = Tensor([2.0], requires_grad=True)
    b = Tensor([5.0], requires_grad=True)
    y = a * b + a + a * a
    y.backward()
    assert a.grad[0] == pytest.approx(5 + 1 + 4)
    assert b.grad[0] == pytest.approx(2)


def test_diamond_graph_is_visited_in_topological_order():
    # x -> u, v -> w: w's creator must run backward only after both paths reached it.
    x = Tensor([3.0], requires_grad=True)
    u = x * 2.0
    v = x * 3.0
    w = u * v  # 6 x^2 -> dw/dx = 12 x
    z = w + u  # + 2x -> dz/dx = 12x + 2
    z.backward()
    assert x.grad[0] == pytest.approx(12 * 3 + 2)


def test_leaf_grads_accumulate_across_backward_calls_like_torch():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * 3.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, [6.0, 6.0])


def test_deep_chain_does_not_hit_the_recursion_limit():
    x = Tensor([1.0], requires_grad=True)
    y = x
    for _ in range(3000):
        y = y + 1.0
    y.backward()
    assert x.grad[0] == 1.0


def test_no_grad_records_nothing():
    x = Tensor([1.0], requires_grad=True)
    with no_grad():
        y = x * 2.0
    assert not y.requires_grad and y.creator is None
    assert conv3d.is_grad_enabled()


@settings(max_examples=15, deadline=None)
@given(st.sampled_from([((3, 4), (4,)), ((2, 3, 4), (3, 1)), ((2, 1, 4), (1, 3, 1)), ((4,), (2, 1, 4)),
                        ((2, 3), (2, 3)), ((5,), ())]))
def test_broadcasting_arithmetic_gradcheck(shapes):
    sa, sb = shapes
    a, b = t64(*sa, seed=1), t64(*sb, seed=2, positive=True)
    for f in (lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / b,
              lambda a, b: b ** a, lambda a, b: a ** 2.0 + 1.0 / b - (-a) * 3.0):
        assert gradcheck(f, [a, b])


def test_broadcast_gradient_has_the_input_shape():
    a = Tensor(np.ones((2, 3, 4)), requires_grad=True)
    b = Tensor(np.ones((3, 1)), requires_grad=True)
    (a * b).sum().backward()
    assert b.grad.shape == (3, 1)
    np.testing.assert_allclose(b.grad, np.full((3, 1), 8.0))  # each b entry touches 2*4 elements


def test_matmul_reductions_and_reshapes_gradcheck():
    a, b = t64(2, 3, 4, seed=3), t64(4, 5, seed=4)
    assert gradcheck(lambda a, b: a @ b, [a, b])
    assert gradcheck(lambda a: a.sum(axis=1), [a])
    assert gradcheck(lambda a: a.sum(axis=(0, 2), keepdims=True), [a])
    assert gradcheck(lambda a: a.mean(axis=-1), [a])
    assert gradcheck(lambda a: a.mean(), [a])
    assert gradcheck(lambda a: a.reshape(6, 4).transpose() * 1.0, [a])
    assert gradcheck(lambda a: a.transpose(2, 0, 1).flatten(1), [a])
    assert gradcheck(lambda a: a[:, 1:, ::2] * a[0, 1:, ::2], [a])
    assert gradcheck(lambda a: (a * 0.1).exp().log(), [a])


def test_mean_equals_sum_over_count():
    a = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_allclose(Tensor(a).mean(axis=(0, 2)).numpy(), a.mean(axis=(0, 2)))


def test_mixed_float_dtypes_raise_instead_of_upcasting():
    a = Tensor(np.ones(3, np.float32))
    b = Tensor(np.ones(3, np.float64))
    with pytest.raises(TypeError, match="mixed dtypes"):
        a + b
    assert (a * 2.5).dtype == np.float32  # Python scalars take the tensor's dtype


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        Tensor(np.arange(3), requires_grad=True)


def test_backward_on_non_scalar_needs_grad_argument():
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(ValueError, match="one-element"):
        (x * 2.0).backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).backward()


def test_matmul_shape_error_is_clear():
    with pytest.raises(ValueError, match="inner dimensions"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((2, 3)))


def test_unknown_device_and_missing_gpu_errors():
    with pytest.raises(ValueError, match="unknown device"):
        Tensor([1.0]).to("tpu")
    try:
        import cupy  # noqa: F401
        has_gpu = cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        has_gpu = False
    if not has_gpu:
        with pytest.raises(RuntimeError, match="cuda-emu"):
            Tensor([1.0]).to("cuda")


def test_to_cuda_emu_copies_and_keeps_values():
    x = Tensor(np.arange(4.0), requires_grad=True)
    y = x.to("cuda-emu")
    assert y.device == "cuda-emu" and y.requires_grad and y.data is not x.data
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    assert y.cpu().device == "cpu"


def test_gradcheck_catches_a_wrong_backward():
    class WrongSquare(Function):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, gy):
            return gy * self.x  # should be 2 * x

    with pytest.raises(GradcheckError, match="finite differences"):
        gradcheck(lambda x: WrongSquare()(x), [t64(3)])


def test_gradcheck_requires_float64():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda x: x * 2.0, [Tensor(np.ones(2, np.float32), requires_grad=True)])


def test_array_protocol():
    x = Tensor(np.arange(3.0))
    np.testing.assert_array_equal(np.asarray(x), [0.0, 1.0, 2.0])


class _Twice(Function):
    """y = 2x whose backward hands out one array, remembered in ``handed_out`` when ``keep``."""

    def __init__(self, keep=False):
        self.keep, self.handed_out = keep, None

    def forward(self, x):
        return 2 * x

    def backward(self, gy):
        gx = 2 * gy
        if self.keep:
            self.handed_out = gx
        return gx


def test_a_fresh_gradient_becomes_the_leafs_grad_without_a_copy():
    # PyTorch's AccumulateGrad rule: an array nothing else refers to is adopted as it is
    fn, x = _Twice(), Tensor(np.arange(3.0), requires_grad=True)
    addresses = []  # where the returned array's memory lies (the array itself is not kept)
    original = fn.backward
    fn.backward = lambda gy: (lambda gx: addresses.append(gx.ctypes.data) or gx)(original(gy))
    fn(x).backward(np.ones(3))
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])
    assert addresses == [x.grad.ctypes.data]  # the very memory the Function returned


def test_gradients_someone_else_can_see_are_copied_into_grad():
    # one array handed to two leaves (add's backward returns gy twice): each gets its own copy
    x, w = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(3), requires_grad=True)
    ((x + w) * 3.0).backward(np.ones(3))
    assert not np.shares_memory(x.grad, w.grad)
    x.grad += 1.0
    np.testing.assert_array_equal(w.grad, [3.0, 3.0, 3.0])
    # the caller's grad= array on a leaf, and an array the Function keeps, are not adopted
    g = np.ones(3)
    x.grad = None
    x.backward(g)
    assert not np.shares_memory(x.grad, g)
    fn, v = _Twice(keep=True), Tensor(np.ones(3), requires_grad=True)
    fn(v).backward(np.ones(3))
    assert not np.shares_memory(v.grad, fn.handed_out)
    # a view of another array (here of the caller's gy) is copied too
    u = Tensor(np.ones((2, 3)), requires_grad=True)
    gy = np.arange(6.0).reshape(2, 3)
    u.reshape(6).backward(gy.reshape(6))
    assert not np.shares_memory(u.grad, gy)
    # a non-leaf that retains its gradient gets a copy: the same array flows on to its inputs
    a = Tensor(np.ones(3), requires_grad=True)
    h = a * 1.0
    h.retains_grad = True
    (h * 2.0).backward(np.ones(3))
    assert not np.shares_memory(h.grad, a.grad)


def test_indexing_gradient_adds_up_repeated_indices_and_copies_slices():
    """The gradient of x[index] counts how often each element was picked: a fancy index may pick
    one twice (add.at), a basic one (slices, ints) at most once (a plain copy)."""
    import numpy as np

    from conv3d import Tensor

    x = Tensor(np.zeros((4, 3)), requires_grad=True)
    x[np.array([0, 0, 2])].sum().backward()
    np.testing.assert_array_equal(x.grad, [[2] * 3, [0] * 3, [1] * 3, [0] * 3])
    x = Tensor(np.zeros((4, 3)), requires_grad=True)
    (x[1:3, ::2] * Tensor(np.array([5.0, 7.0]))).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 0, 0], [5, 0, 7], [5, 0, 7], [0, 0, 0]])
