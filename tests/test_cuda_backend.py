"""Whole ops and a training step on device 'cuda-emu' (the CUDA kernels, emulated) vs the CPU.

The CPU path (NumPy im2col + BLAS, strided-slice pooling) shares no code with the kernels in
kernels/*.cu, so agreement here means the emulated kernels compute the same forward AND backward
through the autograd Functions a GPU run uses.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import conv3d
import conv3d.functional as F
from conv3d import Tensor
from conv3d.cuda import CONV_ALGORITHMS, conv_algorithm

pytestmark = pytest.mark.skipif(shutil.which("g++") is None,
                                reason="the CUDA emulator needs g++ to compile the kernels")


def _pair(array, requires_grad=True):
    """The same data as a CPU tensor and a 'cuda-emu' tensor."""
    cpu = Tensor(array, requires_grad=requires_grad)
    return cpu, Tensor(array, requires_grad=requires_grad).to("cuda-emu")


def _assert_close(emu, cpu, rtol=1e-4, atol=1e-5):
    emu, cpu = np.asarray(emu), np.asarray(cpu)
    assert emu.dtype == cpu.dtype and emu.shape == cpu.shape
    np.testing.assert_allclose(emu, cpu, rtol=rtol, atol=atol)


@pytest.mark.parametrize("algorithm", CONV_ALGORITHMS)
def test_conv3d_forward_and_backward_on_cuda_emu_match_cpu(algorithm):
    rng = np.random.default_rng(0)
    x_cpu, x_emu = _pair(rng.standard_normal((2, 4, 5, 6, 7)).astype(np.float32))
    w_cpu, w_emu = _pair(rng.standard_normal((6, 2, 3, 3, 2)).astype(np.float32))
    b_cpu, b_emu = _pair(rng.standard_normal(6).astype(np.float32))
    kwargs = dict(stride=(1, 2, 1), padding="same", dilation=(1, 1, 2), groups=2)
    y_cpu = F.conv3d(x_cpu, w_cpu, b_cpu, **kwargs)
    with conv_algorithm(algorithm):
        y_emu = F.conv3d(x_emu, w_emu, b_emu, **kwargs)
        assert y_emu.device == "cuda-emu" and type(y_emu.data) is np.ndarray
        gy = rng.standard_normal(y_cpu.shape).astype(np.float32)
        (y_emu * Tensor(gy).to("cuda-emu")).sum().backward()
    (y_cpu * Tensor(gy)).sum().backward()
    if algorithm == "tensor-core":  # tf32 inputs (the default): 10-bit mantissas, about 2**-10
        # of each product off (test_cuda_tensor_core.py checks the exact bound); gradients exact
        _assert_close(y_emu.data, y_cpu.data, rtol=0, atol=2.0**-9 * np.abs(y_cpu.data).max())
    else:
        _assert_close(y_emu.data, y_cpu.data)
    for emu, cpu in ((x_emu, x_cpu), (w_emu, w_cpu), (b_emu, b_cpu)):
        _assert_close(emu.grad, cpu.grad)


def test_conv3d_gradcheck_through_emulated_kernels():
    rng = np.random.default_rng(1)
    x = Tensor(rng.standard_normal((1, 2, 3, 4, 3)), requires_grad=True).to("cuda-emu")
    w = Tensor(rng.standard_normal((2, 1, 2, 2, 2)), requires_grad=True).to("cuda-emu")
    with conv_algorithm("tiled"):
        assert conv3d.gradcheck(lambda x, w: F.conv3d(x, w, stride=(1, 2, 1), padding=1,
                                                      groups=2), [x, w])


def test_pooling_forward_and_backward_on_cuda_emu_match_cpu():
    rng = np.random.default_rng(2)
    data = rng.standard_normal((2, 3, 5, 6, 7)).astype(np.float32)
    for pool, kwargs in ((F.max_pool3d, dict(kernel_size=(3, 2, 3), stride=(2, 1, 2), padding=1,
                                              dilation=(1, 2, 1), ceil_mode=True)),
                         (F.avg_pool3d, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                                             count_include_pad=False)),
                         (F.avg_pool3d, dict(kernel_size=(2, 3, 2), stride=1, padding=(1, 1, 0)))):
        x_cpu, x_emu = _pair(data)
        y_cpu, y_emu = pool(x_cpu, **kwargs), pool(x_emu, **kwargs)
        _assert_close(y_emu.data, y_cpu.data)
        gy = rng.standard_normal(y_cpu.shape).astype(np.float32)
        (y_cpu * Tensor(gy)).sum().backward()
        (y_emu * Tensor(gy).to("cuda-emu")).sum().backward()
        _assert_close(x_emu.grad, x_cpu.grad)


def _train(device, steps=2, lr=0.1):
    """conv -> relu -> max pool -> linear -> cross-entropy, plain SGD; returns losses and weights."""
    rng = np.random.default_rng(3)
    params = {"w1": rng.standard_normal((4, 2, 3, 3, 3)) * 0.3,
              "b1": rng.standard_normal(4) * 0.1,
              "w2": rng.standard_normal((3, 4 * 2 * 2 * 2)) * 0.3,
              "b2": rng.standard_normal(3) * 0.1}
    params = {k: Tensor(v.astype(np.float32), requires_grad=True).to(device)
              for k, v in params.items()}
    x = Tensor(rng.standard_normal((4, 2, 5, 5, 5)).astype(np.float32)).to(device)
    labels = np.array([0, 2, 1, 2])
    losses = []
    for _ in range(steps):
        h = F.relu(F.conv3d(x, params["w1"], params["b1"], padding=1))
        h = F.max_pool3d(h, kernel_size=2, stride=2, ceil_mode=True)     # (4, 4, 3, 3, 3)
        h = F.avg_pool3d(h, kernel_size=2, stride=1)                      # (4, 4, 2, 2, 2)
        logits = F.linear(F.flatten(h), params["w2"], params["b2"])
        loss = F.cross_entropy(logits, labels)
        for p in params.values():
            p.grad = None
        loss.backward()
        with conv3d.no_grad():
            for p in params.values():
                p.data -= lr * p.grad
        losses.append(loss.item())
    return losses, {k: np.asarray(v.numpy()) for k, v in params.items()}


@pytest.mark.parametrize("algorithm", ["tiled", "im2col"])
def test_training_step_through_emulated_kernels_matches_cpu(algorithm):
    losses_cpu, params_cpu = _train("cpu")
    with conv_algorithm(algorithm):
        losses_emu, params_emu = _train("cuda-emu")
    np.testing.assert_allclose(losses_emu, losses_cpu, rtol=1e-4)
    assert losses_cpu[1] != losses_cpu[0]  # the step changed something
    for name in params_cpu:
        np.testing.assert_allclose(params_emu[name], params_cpu[name], rtol=1e-4, atol=1e-6)


def test_module_to_cuda_emu_runs_through_the_kernels():
    nn = pytest.importorskip("conv3d.nn")
    model = nn.Sequential(nn.Conv3d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool3d(2))
    x = Tensor(np.random.default_rng(4).standard_normal((1, 1, 4, 4, 4)).astype(np.float32))
    y_cpu = model(x)
    model.to("cuda-emu")
    y_emu = model(x.to("cuda-emu"))
    assert y_emu.device == "cuda-emu"
    _assert_close(y_emu.data, y_cpu.data)


def test_asking_for_cuda_without_a_gpu_says_what_is_missing():
    if conv3d.cuda.is_available():
        pytest.skip("a GPU is available here: tests/test_gpu.py covers device 'cuda'")
    assert conv3d.cuda.is_available() is False  # answers without raising
    x = Tensor(np.ones((1, 1, 2, 2, 2), np.float32))
    with pytest.raises(RuntimeError, match="cuda-emu") as info:
        x.to("cuda")
    assert "CuPy" in str(info.value) or "GPU" in str(info.value)
