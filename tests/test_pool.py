"""max_pool3d and avg_pool3d against naive float64 loops, hand-worked cases and gradcheck."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import conv3d
import conv3d.functional as F
from conv3d.ops import cpu_reference, fast
from conv3d.ops.pool import MaxPool3dFunction
from reference import (naive_avg_pool3d, naive_avg_pool3d_backward, naive_max_pool3d,
                       naive_max_pool3d_backward, pool_windows_see_data, ref_pool_out)

TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}


@st.composite
def pool_cases(draw, with_dilation):
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(3))
    stride = draw(st.one_of(st.none(), st.tuples(*(st.integers(1, 3),) * 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(3)) if with_dilation else (1, 1, 1)
    ceil_mode = draw(st.booleans())
    size = tuple(max(1, d * (k - 1) + 1 - 2 * p) + draw(st.integers(0, 4))
                 for k, p, d in zip(kernel, padding, dilation))
    assume(pool_windows_see_data(size, kernel, stride or kernel, padding, dilation, ceil_mode))
    return dict(N=draw(st.integers(1, 2)), C=draw(st.integers(1, 3)), size=size, kernel=kernel,
                stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode,
                count_include_pad=draw(st.booleans()), ties=draw(st.booleans()),
                seed=draw(st.integers(0, 2**31 - 1)))


def make_input(case, dtype):
    rng = np.random.default_rng(case["seed"])
    shape = (case["N"], case["C"]) + case["size"]
    if case["ties"]:  # few distinct values: many ties inside the windows
        return rng.integers(-2, 2, size=shape).astype(dtype), rng
    return rng.standard_normal(shape).astype(dtype), rng


@settings(max_examples=60)
@given(pool_cases(with_dilation=True), st.sampled_from([np.float32, np.float64]))
def test_max_pool3d_matches_naive(case, dtype):
    x, rng = make_input(case, dtype)
    stride = case["stride"] or case["kernel"]
    args = (case["kernel"], stride, case["padding"], case["dilation"], case["ceil_mode"])
    X = conv3d.Tensor(x, requires_grad=True)
    y = F.max_pool3d(X, case["kernel"], case["stride"], case["padding"], case["dilation"],
                     case["ceil_mode"])
    expected, expected_idx = naive_max_pool3d(x, *args)
    assert y.dtype == dtype and y.shape == expected.shape
    np.testing.assert_array_equal(y.data, expected.astype(dtype))  # max is exact
    _, idx = cpu_reference.max_pool3d_forward(x, *args)
    np.testing.assert_array_equal(idx, expected_idx)
    gy = rng.standard_normal(y.shape).astype(dtype)
    y.backward(gy)
    np.testing.assert_allclose(X.grad, naive_max_pool3d_backward(gy, x, *args), **TOL[dtype])


@settings(max_examples=60)
@given(pool_cases(with_dilation=False), st.sampled_from([np.float32, np.float64]))
def test_avg_pool3d_matches_naive(case, dtype):
    x, rng = make_input(case, dtype)
    stride = case["stride"] or case["kernel"]
    args = (case["kernel"], stride, case["padding"], case["ceil_mode"], case["count_include_pad"])
    X = conv3d.Tensor(x, requires_grad=True)
    y = F.avg_pool3d(X, case["kernel"], case["stride"], case["padding"], case["ceil_mode"],
                     case["count_include_pad"])
    expected = naive_avg_pool3d(x, *args)
    assert y.dtype == dtype and y.shape == expected.shape
    np.testing.assert_allclose(y.data, expected, **TOL[dtype])
    gy = rng.standard_normal(y.shape).astype(dtype)
    y.backward(gy)
    np.testing.assert_allclose(X.grad, naive_avg_pool3d_backward(gy, x.shape, *args),
                               **TOL[dtype])


# ---- hand-worked cases ---------------------------------------------------------------------

def test_max_pool_ties_send_the_gradient_to_the_first_maximum_only():
    # all-equal input, 2x2x2 windows with stride 1: window o starts at voxel o, and its first
    # voxel in scan order is o itself; so voxels 0..2 on every axis get 1, the rest 0.
    x = conv3d.Tensor(np.zeros((1, 1, 4, 4, 4)), requires_grad=True)
    F.max_pool3d(x, 2, stride=1).sum().backward()
    expected = np.zeros((4, 4, 4))
    expected[:3, :3, :3] = 1
    np.testing.assert_array_equal(x.grad[0, 0], expected)


def test_max_pool_ties_non_overlapping():
    # stride defaults to the kernel size: one window per 2x2x2 block, its corner gets the gradient
    x = conv3d.Tensor(np.full((2, 3, 4, 6, 2), 5.0), requires_grad=True)
    y = F.max_pool3d(x, 2)
    assert y.shape == (2, 3, 2, 3, 1)
    y.sum().backward()
    expected = np.zeros((4, 6, 2))
    expected[::2, ::2, ::2] = 1
    np.testing.assert_array_equal(x.grad, np.broadcast_to(expected, x.shape))


def test_max_pool_padding_counts_as_minus_infinity():
    # all values negative: zero padding would win every border window, -inf padding never does
    x = -1 - np.arange(27, dtype=np.float64).reshape(1, 1, 3, 3, 3)
    y = F.max_pool3d(x, 3, stride=1, padding=1).data[0, 0]
    # the max of a window is its smallest-index real voxel: -1 - (min d*9 + h*3 + w in window)
    lo = lambda i: max(i - 1, 0)  # noqa: E731
    expected = np.array([[[-1.0 - (lo(d) * 9 + lo(h) * 3 + lo(w)) for w in range(3)]
                          for h in range(3)] for d in range(3)])
    np.testing.assert_array_equal(y, expected)


def test_max_pool_propagates_nan():
    x = np.arange(64, dtype=np.float64).reshape(1, 1, 4, 4, 4)
    x[0, 0, 1, 1, 1] = np.nan
    y = F.max_pool3d(x, 2).data[0, 0]
    assert np.isnan(y[0, 0, 0])
    assert np.isfinite(y.ravel()[1:]).all()


def test_avg_pool_ceil_mode_divisor_by_hand():
    # D=H=W=4, kernel 3, stride 2, padding 1, ceil_mode: o = ceil((4 + 2 - 2 - 1)/2) + 1 = 3.
    # Along one axis windows start at -1, 1, 3; clipped to the padded input [-1, 5) they cover
    # 3, 3 and 2 positions (the last runs past the padded edge), holding 2, 3 and 1 real voxels.
    x = conv3d.Tensor(np.ones((1, 1, 4, 4, 4)))
    padded = np.array([3, 3, 2])
    real = np.array([2, 3, 1])
    outer = lambda v: v[:, None, None] * v[None, :, None] * v[None, None, :]  # noqa: E731
    y = F.avg_pool3d(x, 3, 2, 1, ceil_mode=True, count_include_pad=True).data[0, 0]
    np.testing.assert_allclose(y, outer(real) / outer(padded), rtol=1e-15)
    y = F.avg_pool3d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False).data[0, 0]
    np.testing.assert_allclose(y, np.ones((3, 3, 3)), rtol=1e-15)
    assert ref_pool_out(4, 3, 2, 1, 1, True) == 3


def test_avg_pool_simple_mean():
    x = np.arange(8, dtype=np.float32).reshape(1, 1, 2, 2, 2)
    y = F.avg_pool3d(x, 2)
    assert y.dtype == np.float32 and y.shape == (1, 1, 1, 1, 1)
    assert y.item() == pytest.approx(3.5)


def test_ceil_mode_drops_a_window_starting_in_the_right_padding():
    # i=5, k=2, s=2, p=1: ceil((5+2-1-1)/2)+1 = 4, but the 4th window would start at 6-1 = 5,
    # past the input, so PyTorch keeps 3
    x = np.zeros((1, 1, 5, 5, 5), np.float32)
    assert F.max_pool3d(x, 2, 2, 1, ceil_mode=True).shape == (1, 1, 3, 3, 3)
    assert F.avg_pool3d(x, 2, 2, 1, ceil_mode=True).shape == (1, 1, 3, 3, 3)


# ---- finite differences ----------------------------------------------------------------------

@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil_mode", [
    (2, None, 0, 1, False), (3, 2, 1, 1, True), ((2, 3, 2), (1, 2, 2), (1, 1, 0), (2, 1, 1), True),
])
def test_gradcheck_max_pool(kernel, stride, padding, dilation, ceil_mode):
    # distinct values at least 0.01 apart: a 1e-6 perturbation never changes which is the max
    rng = np.random.default_rng(2)
    x = conv3d.Tensor(rng.permutation(2 * 5 * 5 * 5).reshape(2, 1, 5, 5, 5) * 0.01,
                      requires_grad=True)
    assert conv3d.gradcheck(
        lambda t: F.max_pool3d(t, kernel, stride, padding, dilation, ceil_mode), (x,))


@pytest.mark.parametrize("kernel,stride,padding,ceil_mode,count_include_pad", [
    (2, None, 0, False, True), (3, 2, 1, True, True), (3, 2, 1, True, False),
    ((2, 3, 3), (1, 2, 2), (1, 1, 0), False, False),
])
def test_gradcheck_avg_pool(kernel, stride, padding, ceil_mode, count_include_pad):
    rng = np.random.default_rng(4)
    x = conv3d.Tensor(rng.standard_normal((1, 2, 5, 4, 5)), requires_grad=True)
    assert conv3d.gradcheck(
        lambda t: F.avg_pool3d(t, kernel, stride, padding, ceil_mode, count_include_pad), (x,))


@settings(max_examples=30)
@given(pool_cases(with_dilation=True), st.sampled_from([np.float32, np.float64]))
def test_max_pool3d_in_inference_matches_naive_and_keeps_no_argmax(case, dtype):
    """Without a graph (no_grad, or an input that needs no gradient) the forward computes only
    the maximum: the provider is asked for no indices, and none is kept."""
    x, _ = make_input(case, dtype)
    x[np.random.default_rng(case["seed"]).random(x.shape) < 0.05] = np.nan  # NaN wins
    stride = case["stride"] or case["kernel"]
    args = (case["kernel"], stride, case["padding"], case["dilation"], case["ceil_mode"])
    expected, _ = naive_max_pool3d(x, *args)
    fn = MaxPool3dFunction(*args)
    with conv3d.no_grad():
        y = fn(conv3d.Tensor(x, requires_grad=True))
    assert fn.indices is None and not y.requires_grad
    np.testing.assert_array_equal(y.data, expected.astype(dtype))
    for strategy in ("reference", "auto"):  # the readable path and the fast tiling pass
        with fast.use_strategy(strategy):
            y2, idx = fast.provider.max_pool3d_forward(x, *args, return_indices=False)
        assert idx is None and y2.dtype == dtype
        np.testing.assert_array_equal(y2, expected.astype(dtype))


def test_tiling_max_pool_in_inference_keeps_no_argmax():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 6, 4)).astype(np.float32)
    fn = MaxPool3dFunction((2, 2, 2), (2, 2, 2), (0, 0, 0), (1, 1, 1), False)
    y = fn(conv3d.Tensor(x))  # no input requires a gradient: no graph either
    assert fn.indices is None
    np.testing.assert_array_equal(y.data, naive_max_pool3d(x, *fn.settings)[0].astype(np.float32))
