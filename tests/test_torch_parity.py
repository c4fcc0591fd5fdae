"""Forward outputs and every gradient of conv3d, max_pool3d and avg_pool3d match PyTorch's
to 1e-6 relative in float64, over random inputs with stride, padding, dilation and groups varied.
Skipped (with the reason) when torch is not installed."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import conv3d
import conv3d.functional as F
from reference import pool_windows_see_data

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def assert_close(ours, theirs):
    theirs = theirs.detach().numpy()
    scale = max(1.0, float(np.abs(theirs).max()))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6 * scale * 1e-3)


def run_both(ours_fn, torch_fn, arrays, rng):
    """Forward both with float64 copies of ``arrays``, backward the same random gradient,
    and compare the outputs and the gradients of every array."""
    ours_in = [conv3d.Tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = ours_fn(*ours_in), torch_fn(*theirs_in)
    assert y.shape == tuple(ty.shape)
    assert_close(y.data, ty)
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    ty.backward(torch.tensor(gy))
    for a, ta in zip(ours_in, theirs_in):
        assert_close(a.grad, ta.grad)


@st.composite
def conv_settings(draw):
    G = draw(st.sampled_from([1, 2, 3]))
    C, K = G * draw(st.integers(1, 2)), G * draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(3))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(3))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(3))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(3))
    size = tuple(max(1, d * (k - 1) + 1 - 2 * p) + draw(st.integers(0, 4))
                 for k, d, p in zip(kernel, dilation, padding))
    return ((draw(st.integers(1, 2)), C) + size, (K, C // G) + kernel, stride, padding,
            dilation, G, draw(st.booleans()), draw(st.integers(0, 2**31 - 1)))


@settings(max_examples=40)
@given(conv_settings())
def test_conv3d_matches_torch(case):
    x_shape, w_shape, stride, padding, dilation, groups, with_bias, seed = case
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape)]
    if with_bias:
        arrays.append(rng.standard_normal(w_shape[0]))
    run_both(lambda x, w, b=None: F.conv3d(x, w, b, stride, padding, dilation, groups),
             lambda x, w, b=None: TF.conv3d(x, w, b, stride, padding, dilation, groups),
             arrays, rng)


@pytest.mark.parametrize("size,kernel,dilation", [
    ((5, 6, 7), (3, 3, 3), (1, 1, 1)), ((6, 5, 4), (2, 4, 3), (1, 1, 2)),
    ((4, 7, 5), (3, 2, 2), (2, 1, 1)),
])
def test_same_padding_stride_1_matches_torch_same(size, kernel, dilation):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((2, 2) + size), rng.standard_normal((3, 2) + kernel),
              rng.standard_normal(3)]
    run_both(lambda x, w, b: F.conv3d(x, w, b, padding="same", dilation=dilation),
             lambda x, w, b: TF.conv3d(x, w, b, padding="same", dilation=dilation), arrays, rng)


@pytest.mark.parametrize("size,kernel,stride,dilation,pads", [
    # pads: torch's F.pad order, last axis first: (w_lo, w_hi, h_lo, h_hi, d_lo, d_hi), from
    # TensorFlow's rule worked out by hand: out = ceil(i/s), total = (out-1)*s + d(k-1) + 1 - i
    # D: i=6,k=3,s=2 -> out 3, total 1 -> (0, 1); H: i=7,k=3,s=2 -> out 4, total 2 -> (1, 1);
    # W: i=5,k=3,s=2 -> out 3, total 2 -> (1, 1)
    ((6, 7, 5), (3, 3, 3), (2, 2, 2), (1, 1, 1), (1, 1, 1, 1, 0, 1)),
    # D: i=5,k=2,s=3 -> out 2, total 0 -> (0, 0); H: i=6,k=4,s=2 -> out 3, total 2 -> (1, 1);
    # W: i=7,k=3,s=2,d=2 -> out 4, total 6+5-7 = 4 -> (2, 2)
    ((5, 6, 7), (2, 4, 3), (3, 2, 2), (1, 1, 2), (2, 2, 1, 1, 0, 0)),
    # D: i=4,k=4,s=3 -> out 2, total 3+4-4 = 3 -> (1, 2); H: i=4,k=1,s=2 -> out 2, total 0;
    # W: i=5,k=2,s=2 -> out 3, total 4+2-5 = 1 -> (0, 1)
    ((4, 4, 5), (4, 1, 2), (3, 2, 2), (1, 1, 1), (0, 1, 0, 0, 1, 2)),
])
def test_same_padding_with_stride_matches_torch_pad_then_conv(size, kernel, stride, dilation,
                                                              pads):
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((2, 2) + size), rng.standard_normal((2, 1) + kernel),
              rng.standard_normal(2)]
    run_both(lambda x, w, b: F.conv3d(x, w, b, stride, "same", dilation, groups=2),
             lambda x, w, b: TF.conv3d(TF.pad(x, pads), w, b, stride, 0, dilation, groups=2),
             arrays, rng)


@st.composite
def pool_settings(draw, with_dilation):
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(3))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(3))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(3)) if with_dilation else (1, 1, 1)
    size = tuple(max(1, d * (k - 1) + 1 - 2 * p) + draw(st.integers(0, 4))
                 for k, p, d in zip(kernel, padding, dilation))
    ceil_mode = draw(st.booleans())
    # torch does not check for windows that read only padding (it corrupts memory); we reject them
    assume(pool_windows_see_data(size, kernel, stride, padding, dilation, ceil_mode))
    return ((draw(st.integers(1, 2)), draw(st.integers(1, 3))) + size, kernel, stride, padding,
            dilation, ceil_mode, draw(st.booleans()), draw(st.integers(0, 2**31 - 1)))


@settings(max_examples=40)
@given(pool_settings(with_dilation=True))
def test_max_pool3d_matches_torch(case):
    shape, kernel, stride, padding, dilation, ceil_mode, _, seed = case
    rng = np.random.default_rng(seed)
    run_both(lambda x: F.max_pool3d(x, kernel, stride, padding, dilation, ceil_mode),
             lambda x: TF.max_pool3d(x, kernel, stride, padding, dilation, ceil_mode),
             [rng.standard_normal(shape)], rng)


def test_max_pool3d_ties_match_torch():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2, size=(2, 2, 6, 5, 7)).astype(np.float64)  # many equal maxima
    run_both(lambda t: F.max_pool3d(t, 3, 1, 1), lambda t: TF.max_pool3d(t, 3, 1, 1), [x], rng)


@settings(max_examples=40)
@given(pool_settings(with_dilation=False))
def test_avg_pool3d_matches_torch(case):
    shape, kernel, stride, padding, _, ceil_mode, count_include_pad, seed = case
    # torch's avg_pool3d refuses inputs smaller than the kernel even when padding makes the
    # window fit (its 2-D version does not); conv3d allows them, tested in test_pool.py
    assume(all(i >= k for i, k in zip(shape[2:], kernel)))
    rng = np.random.default_rng(seed)
    run_both(lambda x: F.avg_pool3d(x, kernel, stride, padding, ceil_mode, count_include_pad),
             lambda x: TF.avg_pool3d(x, kernel, stride, padding, ceil_mode, count_include_pad),
             [rng.standard_normal(shape)], rng)
