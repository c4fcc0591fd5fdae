"""The compiled pooling loops (conv3d/ops/fast/pooling.py) against PyTorch as a peer.

Random shapes, kernels, strides, paddings, dilations and ceil_mode; max pooling on small
integers (many ties: the first maximum in scan order must win, as in PyTorch) with some NaNs,
average pooling with and without count_include_pad. Forward values, max pooling's indices and
the input gradients of both must match torch's, and float32 must stay float32.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import conv3d
import conv3d.functional as F
from conv3d.ops import fast

torch = pytest.importorskip("torch", reason="PyTorch is the peer these tests compare with")


@st.composite
def pool_cases(draw, dilated):
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(3))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(3))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(3)) if dilated else (1, 1, 1)
    size = tuple(draw(st.integers(d * (k - 1) + 1, 7)) for k, d in zip(kernel, dilation))
    return dict(shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3))) + size, kernel=kernel,
                stride=stride, padding=padding, dilation=dilation,
                ceil_mode=draw(st.booleans()), seed=draw(st.integers(0, 2**16)),
                dtype=draw(st.sampled_from([np.float32, np.float64])))


@settings(max_examples=40, deadline=None)
@given(case=pool_cases(dilated=True), nans=st.sampled_from([0.03, 0.3]))
def test_max_pool_matches_torch_with_ties_and_nans(case, nans):
    """With 30% NaNs most windows hold several, in different planes and rows: the separable
    loop must still pick the one torch's loop over all taps picks (the last)."""
    rng = np.random.default_rng(case["seed"])
    x = rng.integers(-2, 3, case["shape"]).astype(case["dtype"])
    x[rng.random(x.shape) < nans] = np.nan
    args = (case["kernel"], case["stride"], case["padding"], case["dilation"], case["ceil_mode"])
    tx = torch.tensor(x, requires_grad=True)
    ty, tidx = torch.nn.functional.max_pool3d(tx, *args, return_indices=True)
    y, idx = fast.provider.max_pool3d_forward(x, *args)
    assert y.dtype == case["dtype"] and idx.dtype == np.int64
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())
    gy = rng.standard_normal(y.shape).astype(case["dtype"])
    ty.backward(torch.tensor(gy))
    gx = fast.provider.max_pool3d_backward(gy, idx, x.shape)
    assert gx.dtype == case["dtype"]
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil_mode", [
    ((2, 2, 2), (2, 2, 2), (0, 0, 0), (1, 1, 1), False),  # the U-Net's pools
    ((2, 2, 2), (2, 2, 2), (1, 0, 1), (1, 1, 1), True),
    ((2, 1, 2), (3, 1, 2), (0, 0, 1), (2, 1, 1), False),  # dilated, still no overlap
])
@pytest.mark.parametrize("nans", [0.0, 0.3])
def test_max_pool_without_overlap_matches_torch(kernel, stride, padding, dilation, ceil_mode,
                                                nans):
    """Windows that share no voxel take the loop over each window's taps, not the separable
    one: the same ties (first tap) and NaNs (last NaN) as torch."""
    rng = np.random.default_rng(7)
    x = rng.integers(-2, 3, (2, 3, 9, 8, 7)).astype(np.float32)
    x[rng.random(x.shape) < nans] = np.nan
    args = (kernel, stride, padding, dilation, ceil_mode)
    ty, tidx = torch.nn.functional.max_pool3d(torch.tensor(x), *args, return_indices=True)
    y, idx = fast.provider.max_pool3d_forward(x, *args)
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,stride", [((2, 5, 2, 7, 7), (2, 7, 7)), ((1, 3, 4, 3, 5), (1, 1, 1))])
def test_avg_pool_over_the_whole_volume_matches_torch(shape, stride, dtype):
    """A window as large as the input (S3D's head) takes one matrix-vector product."""
    x = np.random.default_rng(3).standard_normal(shape).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.avg_pool3d(tx, shape[2:], stride)
    y = fast.provider.avg_pool3d_forward(x, shape[2:], stride, (0, 0, 0), False, True)
    assert y.dtype == dtype and y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    gy = np.random.default_rng(4).standard_normal(y.shape).astype(dtype)
    ty.backward(torch.tensor(gy))
    gx = fast.provider.avg_pool3d_backward(gy, x.shape, shape[2:], stride, (0, 0, 0), False,
                                            True)
    assert gx.dtype == dtype
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-5, atol=1e-7)


@settings(max_examples=40, deadline=None)
@given(case=pool_cases(dilated=False), include_pad=st.booleans())
def test_avg_pool_matches_torch(case, include_pad):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["shape"]).astype(case["dtype"])
    k, s, p, ceil = case["kernel"], case["stride"], case["padding"], case["ceil_mode"]
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.avg_pool3d(tx, k, s, p, ceil, include_pad)
    cx = conv3d.Tensor(x, requires_grad=True)
    y = F.avg_pool3d(cx, k, s, p, ceil, include_pad)
    gy = rng.standard_normal(y.shape).astype(case["dtype"])
    y.backward(gy)
    ty.backward(torch.tensor(gy))
    tol = dict(rtol=1e-5, atol=1e-6) if case["dtype"] == np.float32 else dict(rtol=1e-12)
    assert y.dtype == cx.grad.dtype == case["dtype"]
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), **tol)
    np.testing.assert_allclose(cx.grad, tx.grad.numpy(), **tol)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_shares_channels_among_threads(kind):
    """Large enough to be split among threads: the same as one thread, and as the reference."""
    x = np.random.default_rng(1).standard_normal((2, 16, 8, 56, 56)).astype(np.float32)
    pool = getattr(F, f"{kind}_pool3d")
    results = []
    for n in (1, 2):
        with fast.num_threads(n):
            t = conv3d.Tensor(x, requires_grad=True)
            y = pool(t, 3, 2, 1)
            y.backward(np.ones(y.shape, np.float32))
            results.append((y.numpy(), t.grad))
    with fast.use_strategy("reference"):
        t = conv3d.Tensor(x, requires_grad=True)
        y = pool(t, 3, 2, 1)
        y.backward(np.ones(y.shape, np.float32))
    for got in results:
        np.testing.assert_allclose(got[0], y.numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(got[1], t.grad, rtol=1e-6, atol=1e-6)
