"""The layer settings torchvision's S3D uses, against torch.nn in float32 and float64: its four
MaxPool3d configurations, the AvgPool3d((2, 7, 7), stride=1) head, Conv3dNormActivation
(conv without bias + BatchNorm3d(eps=1e-3, momentum=1e-3) + ReLU), Dropout in eval and the 1x1x1
classifier conv with bias; plus pooling with padding and ceil_mode over hypothesis-drawn settings
in float32 (float64 is in test_torch_parity.py). Skipped without torch."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import conv3d
from conv3d import nn
from conv3d.interop.torch_layout import load_torch_state_dict
from reference import pool_windows_see_data

torch = pytest.importorskip("torch")
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-11, atol=1e-12)}
TDTYPE = {np.float32: torch.float32, np.float64: torch.float64}


def compare(ours, theirs, x, dtype, rng):
    """Forward and backward the same input and upstream gradient; compare output, input
    gradient and every parameter gradient."""
    a, t = conv3d.Tensor(x.copy(), requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = ours(a), theirs(t)
    assert y.shape == tuple(ty.shape) and y.dtype == dtype
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), **TOL[dtype])
    gy = rng.standard_normal(y.shape).astype(dtype)
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    np.testing.assert_allclose(a.grad, t.grad.numpy(), **TOL[dtype])
    tp = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        # a weight gradient is a sum over N*OD*OH*OW products: an entry that nearly cancels
        # keeps only the rounding of the large terms, so the absolute tolerance scales with the
        # gradient's largest entry
        want = tp[name].grad.numpy()
        np.testing.assert_allclose(p.grad, want, err_msg=name, rtol=TOL[dtype]["rtol"],
                                   atol=TOL[dtype]["atol"] * max(1.0, float(np.abs(want).max())))


S3D_POOLS = [dict(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
             dict(kernel_size=3, stride=2, padding=1),
             dict(kernel_size=2, stride=2),
             dict(kernel_size=3, stride=1, padding=1)]


@pytest.mark.parametrize("kw", S3D_POOLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_s3d_max_pools(kw, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 9, 8)).astype(dtype)
    compare(nn.MaxPool3d(**kw), torch.nn.MaxPool3d(**kw), x, dtype, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_s3d_head(dtype):
    """AvgPool3d((2, 7, 7), stride=1) -> Dropout (eval) -> Conv3d 1x1x1 with bias -> mean."""
    rng = np.random.default_rng(1)
    ours = nn.Sequential(nn.AvgPool3d((2, 7, 7), stride=1), nn.Dropout(0.2),
                         nn.Conv3d(6, 5, 1, bias=True, dtype=dtype))
    theirs = torch.nn.Sequential(torch.nn.AvgPool3d((2, 7, 7), stride=1), torch.nn.Dropout(0.2),
                                 torch.nn.Conv3d(6, 5, 1, bias=True)).to(TDTYPE[dtype])
    load_torch_state_dict(ours, theirs.state_dict())
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((2, 6, 3, 7, 8)).astype(dtype)
    compare(ours, theirs, x, dtype, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv3d_norm_activation(dtype):
    """torchvision's Conv3dNormActivation as S3D builds it, over three training steps (the
    running statistics move by momentum 0.001), then in eval mode."""
    rng = np.random.default_rng(2)
    ours = nn.Sequential(nn.Conv3d(3, 4, (1, 3, 3), padding=(0, 1, 1), bias=False, dtype=dtype),
                         nn.BatchNorm3d(4, eps=0.001, momentum=0.001, dtype=dtype), nn.ReLU())
    theirs = torch.nn.Sequential(
        torch.nn.Conv3d(3, 4, (1, 3, 3), padding=(0, 1, 1), bias=False),
        torch.nn.BatchNorm3d(4, eps=0.001, momentum=0.001), torch.nn.ReLU()).to(TDTYPE[dtype])
    load_torch_state_dict(ours, theirs.state_dict())
    for _ in range(3):
        ours.zero_grad()
        theirs.zero_grad()
        compare(ours, theirs, rng.standard_normal((2, 3, 3, 5, 5)).astype(dtype), dtype, rng)
    tstate = theirs.state_dict()
    for name, value in ours.state_dict().items():
        np.testing.assert_allclose(value, tstate[name].numpy(), err_msg=name, **TOL[dtype])
    ours.eval()
    theirs.eval()
    ours.zero_grad()
    theirs.zero_grad()
    compare(ours, theirs, rng.standard_normal((2, 3, 3, 5, 5)).astype(dtype), dtype, rng)


@st.composite
def pool_cases(draw):
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(3))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(3))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    size = tuple(k + draw(st.integers(0, 4)) for k in kernel)  # torch's avg needs i >= k
    ceil_mode = draw(st.booleans())
    assume(pool_windows_see_data(size, kernel, stride, padding, (1, 1, 1), ceil_mode))
    return ((draw(st.integers(1, 2)), 2) + size, kernel, stride, padding, ceil_mode,
            draw(st.booleans()), draw(st.integers(0, 2**31 - 1)))


@settings(max_examples=30)
@given(pool_cases())
def test_pool_layers_match_torch_in_float32(case):
    shape, kernel, stride, padding, ceil_mode, count_include_pad, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    compare(nn.MaxPool3d(kernel, stride, padding, ceil_mode=ceil_mode),
            torch.nn.MaxPool3d(kernel, stride, padding, ceil_mode=ceil_mode), x, np.float32, rng)
    compare(nn.AvgPool3d(kernel, stride, padding, ceil_mode, count_include_pad),
            torch.nn.AvgPool3d(kernel, stride, padding, ceil_mode, count_include_pad), x,
            np.float32, rng)
