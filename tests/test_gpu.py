"""The kernels on a real NVIDIA GPU through CuPy, compared with the emulator and the references.

Run with ``pytest -m gpu``. Without CuPy or a GPU every test here is SKIPPED with the reason
(never counted as passed).
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import conv3d
import conv3d.functional as F
from conv3d import Tensor
from conv3d.core.backend import kernels_for
from conv3d.cuda import (CONV_ALGORITHMS, TENSOR_CORE_PRECISIONS, conv_algorithm,
                         tensor_core_precision)
from reference import (ROUND, naive_avg_pool3d, naive_avg_pool3d_backward, naive_conv3d,
                       naive_conv3d_backward_input, naive_conv3d_backward_weight,
                       naive_max_pool3d)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not conv3d.cuda.is_available(),
                       reason="needs CuPy and an NVIDIA GPU (pip install conv3d[gpu]); "
                              "the emulator tests cover the kernels without one"),
    pytest.mark.skipif(shutil.which("g++") is None,
                       reason="comparing with the emulator needs g++"),
]

CONV_CASES = [  # x_shape, w_shape, stride, padding pairs, dilation, groups
    ((2, 6, 9, 10, 11), (10, 3, 3, 3, 3), (1, 2, 1), ((1, 1), (0, 2), (1, 0)), (1, 1, 2), 2),
    ((1, 3, 17, 9, 20), (9, 3, 1, 3, 2), (2, 1, 3), ((0, 0), (1, 1), (2, 2)), (2, 1, 1), 1),
]
POOL_CASES = [  # x_shape, kernel, stride, padding, dilation, ceil_mode
    ((2, 3, 9, 10, 11), (3, 2, 3), (2, 1, 2), (1, 1, 1), (1, 2, 1), True),
    ((1, 2, 8, 8, 8), (2, 2, 2), (2, 2, 2), (0, 0, 0), (1, 1, 1), False),
]
TOL = {np.float32: dict(rtol=1e-4, atol=1e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}


@pytest.fixture(scope="module")
def cp():
    return conv3d.core.backend.require_cupy()


def _three_ways(cp, name, *arrays_and_settings, n_arrays):
    """Run provider function ``name`` on the GPU and in the emulator; return both as NumPy."""
    arrays, settings = arrays_and_settings[:n_arrays], arrays_and_settings[n_arrays:]
    gpu = getattr(kernels_for("cuda"), name)(*(cp.asarray(a) for a in arrays), *settings)
    emu = getattr(kernels_for("cuda-emu"), name)(*arrays, *settings)
    as_np = (lambda r: tuple(cp.asnumpy(v) for v in r)) if isinstance(gpu, tuple) else cp.asnumpy
    return as_np(gpu), emu


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("algorithm", CONV_ALGORITHMS)
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_kernels_on_gpu_match_emulation_and_reference(cp, case, algorithm, dtype):
    x_shape, w_shape, stride, padding, dilation, groups = case
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (x_shape, w_shape, w_shape[:1]))
    settings = (stride, padding, dilation, groups)
    with conv_algorithm(algorithm):
        y_gpu, y_emu = _three_ways(cp, "conv3d_forward", x, w, b, *settings, n_arrays=3)
        gy = rng.standard_normal(y_gpu.shape).astype(dtype)
        (gx_gpu, gw_gpu), (gx_emu, gw_emu) = _three_ways(cp, "conv3d_backward", gy, x, w,
                                                         *settings, n_arrays=3)
    for gpu, emu, ref in ((y_gpu, y_emu, naive_conv3d(x, w, b, *settings)),
                          (gx_gpu, gx_emu, naive_conv3d_backward_input(gy, w, x_shape, *settings)),
                          (gw_gpu, gw_emu, naive_conv3d_backward_weight(gy, x, w_shape, *settings))):
        tol = TOL[dtype]
        if algorithm == "tensor-core" and dtype == np.float32 and gpu is y_gpu:
            # tf32 inputs (the default); test_tensor_core_kernel_on_gpu checks the exact bound
            tol = dict(rtol=0, atol=2.0 ** -9 * np.abs(ref).max())
        np.testing.assert_allclose(gpu, ref, **tol)
        np.testing.assert_allclose(gpu, emu, **tol)


@pytest.mark.parametrize("precision", TENSOR_CORE_PRECISIONS)
@pytest.mark.parametrize("case", CONV_CASES)
def test_tensor_core_kernel_on_gpu(cp, case, precision):
    """Against the float64 product of identically rounded inputs: only the tensor core's own
    accumulation may differ, by a few float32 roundings per mma step (the emulator assumes one;
    the hardware's order and truncation are its own, so allow four)."""
    x_shape, w_shape, stride, padding, dilation, groups = case
    rng = np.random.default_rng(2)
    x, w = (rng.standard_normal(s).astype(np.float32) for s in (x_shape, w_shape))
    settings = (stride, padding, dilation, groups)
    with conv_algorithm("tensor-core"), tensor_core_precision(precision):
        y_gpu, y_emu = _three_ways(cp, "conv3d_forward", x, w, None, *settings, n_arrays=2)
    r = ROUND[precision]
    exact = naive_conv3d(r(x), r(w), None, *settings)
    bound = naive_conv3d(np.abs(r(x)), np.abs(r(w)), None, *settings)
    steps = -(-w_shape[1] * int(np.prod(w_shape[2:])) // 16) * 2
    assert np.all(np.abs(y_gpu - exact) <= 4 * (steps + 1) * 2.0 ** -24 * bound + 1e-30)
    assert np.all(np.abs(y_gpu - y_emu) <= 5 * (steps + 1) * 2.0 ** -24 * bound + 1e-30)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", POOL_CASES)
def test_pool_kernels_on_gpu_match_emulation_and_reference(cp, case, dtype):
    x_shape, kernel, stride, padding, dilation, ceil_mode = case
    rng = np.random.default_rng(1)
    x = rng.integers(-2, 3, size=x_shape).astype(dtype)  # ties
    (y_gpu, i_gpu), (y_emu, i_emu) = _three_ways(cp, "max_pool3d_forward", x, kernel, stride,
                                                 padding, dilation, ceil_mode, n_arrays=1)
    y_ref, i_ref = naive_max_pool3d(x, kernel, stride, padding, dilation, ceil_mode)
    np.testing.assert_array_equal(i_gpu, i_ref)
    np.testing.assert_array_equal(i_gpu, i_emu)
    np.testing.assert_allclose(y_gpu, y_ref, **TOL[dtype])
    gy = rng.standard_normal(y_gpu.shape).astype(dtype)
    gx_gpu, gx_emu = _three_ways(cp, "max_pool3d_backward", gy, i_ref, x_shape, n_arrays=2)
    np.testing.assert_allclose(gx_gpu, gx_emu, **TOL[dtype])  # atomics: order may differ

    for include_pad in (True, False):
        settings = (kernel, stride, padding, ceil_mode, include_pad)
        y_gpu, y_emu = _three_ways(cp, "avg_pool3d_forward", x, *settings, n_arrays=1)
        np.testing.assert_allclose(y_gpu, naive_avg_pool3d(x, *settings), **TOL[dtype])
        np.testing.assert_allclose(y_gpu, y_emu, **TOL[dtype])
        gy = rng.standard_normal(y_gpu.shape).astype(dtype)
        gx_gpu, gx_emu = _three_ways(cp, "avg_pool3d_backward", gy, x_shape, *settings,
                                     n_arrays=1)
        np.testing.assert_allclose(gx_gpu, naive_avg_pool3d_backward(gy, x_shape, *settings),
                                   **TOL[dtype])
        np.testing.assert_allclose(gx_gpu, gx_emu, **TOL[dtype])


def test_training_step_on_gpu_matches_cpu(cp):
    rng = np.random.default_rng(2)
    w0 = rng.standard_normal((4, 2, 3, 3, 3)).astype(np.float32) * 0.3
    x0 = rng.standard_normal((2, 2, 4, 4, 4)).astype(np.float32)
    results = {}
    for device in ("cpu", "cuda"):
        w = Tensor(w0, requires_grad=True).to(device)
        y = F.max_pool3d(F.relu(F.conv3d(Tensor(x0).to(device), w, padding=1)), 2)
        loss = (y * y).sum()
        loss.backward()
        results[device] = (loss.item(), cp.asnumpy(w.grad) if device == "cuda" else w.grad)
    assert results["cuda"][0] == pytest.approx(results["cpu"][0], rel=1e-4)
    np.testing.assert_allclose(results["cuda"][1], results["cpu"][1], rtol=1e-4, atol=1e-5)
