"""The resize kernels (kernels/upsample_trilinear_*.cu) and the transposed convolution on the
CUDA provider, run in the CPU emulator ('cuda-emu') against torch as a peer.

A transposed convolution has no kernel of its own: the tests check which kernels it launches
(conv3d's input gradient for its forward, conv3d's forward for its input gradient) as well as
its numbers.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import conv3d.functional as F
from _torch_peer import assert_close
from conv3d import Tensor
from conv3d.cuda import conv_algorithm, launch
from conv3d.cuda.provider import CudaKernels
from conv3d.ops.resample import resize_matrix
from test_resample import resize_cases, torch_nearest_backward_differs

pytestmark = pytest.mark.skipif(shutil.which("g++") is None,
                                reason="the CUDA emulator needs g++ to compile the kernels")


def _on_emu(torch, fn, torch_fn, x, gy_seed=0):
    """(ours, torch's) outputs and input gradients, ours on 'cuda-emu'."""
    t = Tensor(x.copy(), requires_grad=True, device="cuda-emu")
    tt = torch.tensor(x, requires_grad=True)
    y, ty = fn(t), torch_fn(tt)
    gy = np.random.default_rng(gy_seed).standard_normal(y.shape).astype(x.dtype)
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    return (y.numpy(), t.grad), (ty, tt.grad)


@settings(max_examples=15, deadline=None)
@given(resize_cases(), st.sampled_from([np.float64, np.float32]))
def test_interpolate_on_the_emulated_kernels_matches_torch(case, dtype):
    torch = pytest.importorskip("torch")
    shape, mode, kwargs, seed = case
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    (y, gx), (ty, tgx) = _on_emu(torch, lambda t: F.interpolate(t, mode=mode, **kwargs),
                                 lambda t: torch.nn.functional.interpolate(t, mode=mode, **kwargs),
                                 x, seed)
    assert_close(y, ty, dtype, "forward")
    if not (mode == "nearest" and torch_nearest_backward_differs(shape[2:], kwargs)):
        assert_close(gx, tgx, dtype, "input gradient")


def test_resize_launches_the_two_kernels_and_copies_exactly(monkeypatch):
    launched = []
    original = CudaKernels.launch
    monkeypatch.setattr(CudaKernels, "launch", lambda self, config, dtype, args: (
        launched.append(config.kernel), original(self, config, dtype, args))[1])
    x = np.array([1.0, np.inf, -2.0], dtype=np.float32).reshape(1, 1, 1, 1, 3)
    t = Tensor(x, requires_grad=True, device="cuda-emu")
    y = F.interpolate(t, size=(1, 2, 7))  # nearest: floor(o * 3/7) = 0 0 0 1 1 2 2
    np.testing.assert_array_equal(y.numpy()[0, 0, 0, 0], [1, 1, 1, np.inf, np.inf, -2, -2])
    y.backward(np.ones(y.shape, np.float32))
    np.testing.assert_array_equal(t.grad.ravel(), [6, 4, 4])  # 3, 2, 2 copies on 2 rows
    assert launched == ["upsample_trilinear_forward", "upsample_trilinear_backward"]


def test_resize_tables_hold_the_resize_matrices():
    """Rebuilt from the tables, each axis's (O, I) matrix is the one of conv3d.ops.resample, and
    each input's span is exactly the outputs that read it."""
    cases = [(3, 7, "trilinear", False), (5, 3, "trilinear", True), (4, 9, "nearest", False),
             (6, 6, "trilinear", False), (1, 4, "trilinear", False)]
    matrices = [resize_matrix(i, o, mode, None, align, np.float64) for i, o, mode, align in cases]
    for axis_cases in (matrices[:3], matrices[2:5]):
        tap_index, tap_weight, out_span = launch.resize_tables(axis_cases, np.float64)
        row, col = 0, 0
        for M in axis_cases:
            O, I = M.shape
            rebuilt = np.zeros((O, I))
            for o in range(O):
                for a in range(tap_index.shape[1]):
                    rebuilt[o, tap_index[row + o, a]] += tap_weight[row + o, a]
            np.testing.assert_array_equal(rebuilt, M)
            for i in range(I):
                readers = np.flatnonzero(M[:, i])
                start, end = out_span[col + i]
                assert (start, end) == ((readers[0], readers[-1] + 1) if readers.size else (0, 0))
            row, col = row + O, col + I
        assert row == tap_index.shape[0] and col == out_span.shape[0]


@pytest.mark.parametrize("algorithm", ["direct", "tiled", "im2col"])
def test_conv_transpose3d_on_the_emulated_kernels_matches_torch(algorithm):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 4, 2, 3, 2))
    w = rng.standard_normal((4, 3, 3, 2, 3))  # (C_in, C_out/groups, kD, kH, kW), groups 2
    b = rng.standard_normal(6)
    settings_ = dict(stride=(2, 1, 2), padding=(1, 0, 1), output_padding=(1, 0, 0), groups=2,
                     dilation=(1, 2, 1))
    ts = [Tensor(a.copy(), requires_grad=True, device="cuda-emu") for a in (x, w, b)]
    tts = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    with conv_algorithm(algorithm):
        y = F.conv_transpose3d(*ts, **settings_)
        ty = torch.nn.functional.conv_transpose3d(*tts, **settings_)
        gy = rng.standard_normal(y.shape)
        y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    assert_close(y.numpy(), ty, np.float64, "forward")
    for ours, theirs, name in zip(ts, tts, ("input", "weight", "bias")):
        assert_close(ours.grad, theirs.grad, np.float64, f"gradient of the {name}")


def test_conv_transpose3d_shares_conv3d_kernels(monkeypatch):
    """Its forward is conv3d's input-gradient kernel, its input gradient conv3d's forward kernel
    and its weight gradient conv3d's weight-gradient kernel: no kernel of its own."""
    launched = []
    original = CudaKernels.launch
    monkeypatch.setattr(CudaKernels, "launch", lambda self, config, dtype, args: (
        launched.append(config.kernel), original(self, config, dtype, args))[1])
    rng = np.random.default_rng(3)
    x = Tensor(rng.standard_normal((1, 2, 2, 2, 2)).astype(np.float32), requires_grad=True,
               device="cuda-emu")
    w = Tensor(rng.standard_normal((2, 1, 3, 3, 3)).astype(np.float32), requires_grad=True,
               device="cuda-emu")
    with conv_algorithm("direct"):
        y = F.conv_transpose3d(x, w, stride=2)
        assert launched == ["conv3d_backward_input"]
        y.backward(np.ones(y.shape, np.float32))
    assert sorted(launched[1:]) == ["conv3d_backward_weight", "conv3d_direct"]
    # and the numbers: all-ones upstream gradient, so gx[c, voxel] = sum of w[c] (every tap of
    # every input voxel lands inside the 5x5x5 output at stride 2)
    np.testing.assert_allclose(x.grad, np.broadcast_to(
        w.numpy().reshape(2, -1).sum(axis=1).reshape(1, 2, 1, 1, 1), x.shape), rtol=1e-5)

