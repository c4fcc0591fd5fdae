"""Adaptive pooling: the bins against PyTorch's rule written out by hand, gradients against
finite differences, and values and gradients against torch (float32 and float64, ties and NaN
included). Torch tests are skipped when torch is not installed."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import conv3d
import conv3d.functional as F
from conv3d import nn
from conv3d.core.gradcheck import gradcheck
from conv3d.ops.adaptive_pool import adaptive_bins


def naive_adaptive(x, out, reduce):
    """float64 loops over every output with the bins start=floor(i*I/O), end=ceil((i+1)*I/O)."""
    N, C = x.shape[:2]
    y = np.zeros((N, C) + out)
    for o in np.ndindex(*out):
        sl = tuple(slice(math.floor(i * I / O), math.ceil((i + 1) * I / O))
                   for i, I, O in zip(o, x.shape[2:], out))
        y[(slice(None), slice(None)) + o] = reduce(x[(slice(None), slice(None)) + sl],
                                                   axis=(2, 3, 4))
    return y


def test_bins_by_hand():
    assert adaptive_bins(5, 3) == [(0, 2), (1, 4), (3, 5)]
    assert adaptive_bins(4, 2) == [(0, 2), (2, 4)]
    assert adaptive_bins(2, 5) == [(0, 1), (0, 1), (0, 2), (1, 2), (1, 2)]  # O > I repeats
    assert adaptive_bins(7, 1) == [(0, 7)]


@pytest.mark.parametrize("out", [1, (2, 3, 1), (None, 2, 4), (4, 5, 6)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_match_naive_loops(out, dtype):
    x = np.random.default_rng(0).standard_normal((2, 3, 3, 5, 4)).astype(dtype)
    size = tuple(s if o is None else o
                 for s, o in zip(x.shape[2:], (out,) * 3 if isinstance(out, int) else out))
    y = F.adaptive_avg_pool3d(conv3d.Tensor(x), out)
    assert y.dtype == dtype and y.shape == (2, 3) + size
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(y.numpy(), naive_adaptive(x.astype(np.float64), size, np.mean),
                               rtol=tol, atol=tol)
    y = F.adaptive_max_pool3d(conv3d.Tensor(x), out)
    np.testing.assert_array_equal(y.numpy(), naive_adaptive(x, size, np.max).astype(dtype))


@pytest.mark.parametrize("out", [(2, 2, 3), (1, 3, 2), (3, 1, 4), (1, 1, 1)])  # 1: one mean
def test_gradcheck(out):
    rng = np.random.default_rng(1)
    x = conv3d.Tensor(rng.standard_normal((1, 2, 3, 4, 3)), requires_grad=True)
    gradcheck(lambda t: F.adaptive_avg_pool3d(t, out), [x])
    gradcheck(lambda t: F.adaptive_max_pool3d(t, out), [x])  # distinct values: max is smooth


def test_max_gradient_goes_to_the_first_maximum_and_accumulates_over_overlapping_bins():
    x = conv3d.Tensor(np.array([3.0, 1, 3, 2, 0]).reshape(1, 1, 1, 1, 5), requires_grad=True)
    y, where = F.adaptive_max_pool3d(x, (1, 1, 3), return_indices=True)  # [0,2) [1,4) [3,5)
    np.testing.assert_array_equal(y.numpy().ravel(), [3, 3, 2])
    np.testing.assert_array_equal(where.ravel(), [0, 2, 3])
    y.backward(np.array([1.0, 10.0, 100.0]).reshape(y.shape))
    np.testing.assert_array_equal(x.grad.ravel(), [1, 0, 10, 100, 0])


def test_nn_layers_and_errors():
    x = conv3d.Tensor(np.ones((1, 2, 4, 4, 4), np.float32))
    assert nn.AdaptiveAvgPool3d((None, 1, 1))(x).shape == (1, 2, 4, 1, 1)
    assert nn.AdaptiveMaxPool3d(2)(x).shape == (1, 2, 2, 2, 2)
    assert "output_size=(None, 1, 1)" in repr(nn.AdaptiveAvgPool3d((None, 1, 1)))
    for bad in (0, (1, 2), (1, 0, 1), (1, 1.5, 1), "1", True):
        with pytest.raises(ValueError, match="output_size"):
            F.adaptive_avg_pool3d(x, bad)
    with pytest.raises(ValueError, match="output_size"):
        nn.AdaptiveMaxPool3d((2, -1, 2))
    with pytest.raises(ValueError, match=r"5-D \(N, C, D, H, W\)"):
        F.adaptive_max_pool3d(conv3d.Tensor(np.ones((2, 4, 4, 4))), 1)


# ---- torch as a peer ---------------------------------------------------------------------------
@st.composite
def adaptive_cases(draw):
    size = tuple(draw(st.integers(1, 7)) for _ in range(3))
    out = tuple(draw(st.one_of(st.none(), st.integers(1, 8))) for _ in range(3))
    ties = draw(st.booleans())  # small integers: many ties inside every bin
    return ((draw(st.integers(1, 2)), draw(st.integers(1, 3))) + size, out, ties,
            draw(st.integers(0, 2**31 - 1)))


@settings(max_examples=30)
@given(adaptive_cases(), st.sampled_from([np.float32, np.float64]))
def test_matches_torch(case, dtype):
    torch = pytest.importorskip("torch")
    shape, out, ties, seed = case
    rng = np.random.default_rng(seed)
    x = (rng.integers(0, 3, shape) if ties else rng.standard_normal(shape)).astype(dtype)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for ours, theirs in ((F.adaptive_avg_pool3d, torch.nn.functional.adaptive_avg_pool3d),
                         (F.adaptive_max_pool3d, torch.nn.functional.adaptive_max_pool3d)):
        a = conv3d.Tensor(x.copy(), requires_grad=True)
        t = torch.tensor(x, requires_grad=True)
        y, ty = ours(a, out), theirs(t, out)
        assert y.shape == tuple(ty.shape) and y.dtype == dtype
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), **tol)
        gy = rng.standard_normal(y.shape).astype(dtype)
        y.backward(gy)
        ty.backward(torch.from_numpy(gy))
        np.testing.assert_allclose(a.grad, t.grad.numpy(), **tol)


def test_max_nan_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.array([np.nan, 1.0, np.nan, 2.0, 7.0, 3.0]).reshape(1, 1, 1, 1, 6)  # 2 NaNs in bin 0
    a, t = conv3d.Tensor(x.copy(), requires_grad=True), torch.tensor(x, requires_grad=True)
    y = F.adaptive_max_pool3d(a, (1, 1, 2))
    ty = torch.nn.functional.adaptive_max_pool3d(t, (1, 1, 2))
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_array_equal(a.grad, t.grad.numpy())
    assert a.grad.ravel().tolist() == [0, 0, 1, 0, 1, 0]  # the last NaN, as torch
