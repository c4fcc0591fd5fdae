"""An empty batch (N = 0) on device 'cuda-emu', forward and backward, against PyTorch.

PyTorch accepts N = 0 and returns empty outputs, a zero weight gradient and a zero bias
gradient. On a GPU a launch with a zero grid dimension is an invalid configuration (the
emulator raises "grid must be positive"), so the provider must return these results without
launching; torch (CPU) is the independent peer for the shapes and the values.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import conv3d.functional as F
from conv3d import Tensor
from conv3d.cuda import CONV_ALGORITHMS, conv_algorithm

torch = pytest.importorskip("torch", reason="torch is the peer that defines N = 0 results")
pytestmark = pytest.mark.skipif(shutil.which("g++") is None,
                                reason="the CUDA emulator needs g++ to compile the kernels")


def _emu(array):
    return Tensor(array, requires_grad=True).to("cuda-emu")


def _torch(array):
    return torch.tensor(array, requires_grad=True)


def _assert_same(ours, theirs):
    ours, theirs = np.asarray(ours), theirs.detach().numpy()
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("algorithm", CONV_ALGORITHMS)
def test_conv3d_empty_batch_matches_torch(algorithm, dtype):
    rng = np.random.default_rng(0)
    x = np.zeros((0, 4, 5, 4, 3), dtype=dtype)
    w = rng.standard_normal((6, 2, 3, 2, 2)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    kwargs = dict(stride=(1, 2, 1), padding=1, dilation=(1, 1, 2), groups=2)
    xe, we, be = _emu(x), _emu(w), _emu(b)
    with conv_algorithm(algorithm):
        y = F.conv3d(xe, we, be, **kwargs)
        y.sum().backward()
    xt, wt, bt = _torch(x), _torch(w), _torch(b)
    yt = torch.nn.functional.conv3d(xt, wt, bt, **kwargs)
    yt.sum().backward()
    assert y.device == "cuda-emu"
    _assert_same(y.data, yt)
    _assert_same(xe.grad, xt.grad)
    _assert_same(we.grad, wt.grad)  # all zeros: a sum over no samples
    _assert_same(be.grad, bt.grad)


@pytest.mark.parametrize("algorithm", CONV_ALGORITHMS)
def test_conv3d_empty_batch_weight_gradient_is_zero_not_stale(algorithm):
    """The weight gradient must be written as zeros, not left as uninitialised memory."""
    w = np.full((3, 1, 2, 2, 2), 7.0, dtype=np.float32)
    xe, we = _emu(np.zeros((0, 1, 3, 3, 3), dtype=np.float32)), _emu(w)
    with conv_algorithm(algorithm):
        (F.conv3d(xe, we) * 2.0).sum().backward()
    assert we.grad.shape == w.shape and not np.asarray(we.grad).any()


@pytest.mark.parametrize("pool, kwargs", [
    ("max_pool3d", dict(kernel_size=(3, 2, 3), stride=(2, 1, 2), padding=1,
                        dilation=(1, 2, 1), ceil_mode=True)),
    ("avg_pool3d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                        count_include_pad=False)),
])
def test_pooling_empty_batch_matches_torch(pool, kwargs):
    x = np.zeros((0, 3, 5, 6, 7), dtype=np.float32)
    xe, xt = _emu(x), _torch(x)
    y = getattr(F, pool)(xe, **kwargs)
    y.sum().backward()
    yt = getattr(torch.nn.functional, pool)(xt, **kwargs)
    yt.sum().backward()
    assert y.device == "cuda-emu"
    _assert_same(y.data, yt)
    _assert_same(xe.grad, xt.grad)


@pytest.mark.parametrize("algorithm", CONV_ALGORITHMS)
def test_empty_batch_launches_no_kernel(algorithm, monkeypatch):
    """No launch at all for N = 0: a GPU rejects a zero grid dimension, and a one-block launch
    for zero elements is wasted work."""
    from conv3d.core.backend import kernels_for  # noqa: PLC0415

    provider = kernels_for("cuda-emu")
    launched = []
    # patch the class: an instance attribute would outlive the test (monkeypatch restores it
    # as an attribute of the instance, shadowing later patches of the class)
    monkeypatch.setattr(type(provider), "launch",
                        lambda self, config, *_: launched.append(config.kernel))
    xe = _emu(np.zeros((0, 2, 4, 4, 4), dtype=np.float32))
    we, be = _emu(np.ones((2, 2, 3, 3, 3), dtype=np.float32)), _emu(np.ones(2, np.float32))
    with conv_algorithm(algorithm):
        y = F.conv3d(xe, we, be, padding=1)
        y = F.avg_pool3d(F.max_pool3d(y, kernel_size=2), kernel_size=2)
        y.sum().backward()
    assert y.shape == (0, 2, 1, 1, 1)
    assert launched == []
