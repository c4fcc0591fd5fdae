"""One training step of the article's model on 'cuda-emu' vs the same step on 'cpu'.

"The article's model" is ``conv3d.train.recipes.keras_3d_mnist_model`` (the Keras 3D-MNIST
article's net that ``conv3d train`` and docs/tutorials/voxel-digits.md train): conv, ReLU, max
pool, batch norm, dropout, flatten, linear and cross-entropy, so one step touches every op of the
training stack. On 'cuda-emu' the convolutions and pools run the CUDA kernels of kernels/*.cu
(emulated), the rest the same xp code a CuPy run uses; on 'cpu' everything is NumPy im2col +
BLAS, which shares no code with the kernels.

Tolerance: both sides compute in float32 but sum in different orders (a kernel's loop vs a BLAS
GEMM), so they agree to float32 rounding of sums of a few thousand products, not bit for bit:
``rtol=2e-4, atol=2e-5`` (float32 eps is 1.2e-7; a sum of n terms drifts by about sqrt(n) eps
relative to its largest term, and n here is up to 64 * 2^3 * 32 * 27 ~ 4e5 multiply-adds along
the backward chain); the same tolerance holds for the SGD step, whose update is lr * grad.
Adam's first step is lr * g / (|g| + eps): about lr * sign(g). Where a gradient is zero up to
rounding (the first conv's biases: a per-channel shift that the batch norm after the pool takes
out again) its sign is rounding noise and the two devices may step +-lr apart, on any pair of
correct implementations. So the Adam test compares the gradients themselves (to float32 rounding
relative to each tensor's largest entry), the step where |g| is above that noise floor, and
elsewhere only that the step is at most lr.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from conv3d import Tensor, nn
from conv3d.cuda import conv_algorithm
from conv3d.ops.dropout import manual_seed as dropout_seed
from conv3d.optim import SGD, Adam
from conv3d.ops.loss import cross_entropy
from conv3d.train.recipes import keras_3d_mnist_model

pytestmark = pytest.mark.skipif(shutil.which("g++") is None,
                                reason="the CUDA emulator needs g++ to compile the kernels")

RTOL, ATOL = 2e-4, 2e-5


def _step(device, optimizer_cls, lr, algorithm="tiled"):
    """Build the model from fixed weights, run one step on one fixed batch; return loss, params."""
    nn.init.manual_seed(0)
    model = keras_3d_mnist_model(in_channels=1)
    rng = np.random.default_rng(1)
    x = rng.random((4, 1, 16, 16, 16)).astype(np.float32)
    labels = np.array([3, 1, 4, 1])
    model.to(device)
    model.train()
    optimizer = optimizer_cls(model.parameters(), lr=lr)
    dropout_seed(2)  # the same dropout masks on both devices (drawn on the host)
    with conv_algorithm(algorithm):
        loss = cross_entropy(model(Tensor(x).to(device)), labels)
        optimizer.zero_grad()
        loss.backward()
        grads = {name: np.asarray(_host(p.grad)) for name, p in model.named_parameters()}
        optimizer.step()
    state = {k: _host(v) for k, v in model.state_dict().items()}
    return loss.item(), grads, state


def _host(value):
    """A NumPy copy of a Tensor's data or of an array on any device."""
    value = value.data if isinstance(value, Tensor) else value
    return value.get() if hasattr(value, "get") else np.array(value)


def _initial_state():
    nn.init.manual_seed(0)
    return {k: _host(v) for k, v in keras_3d_mnist_model(in_channels=1).state_dict().items()}


def _assert_moved(state, before):
    moved = sum(not np.array_equal(state[k], before[k]) for k in before)
    assert moved >= 8  # the step changed the weights and BN running stats: the test can fail


def test_one_sgd_step_on_cuda_emu_matches_cpu():
    loss_cpu, grads_cpu, state_cpu = _step("cpu", SGD, 0.1)
    loss_emu, grads_emu, state_emu = _step("cuda-emu", SGD, 0.1)
    np.testing.assert_allclose(loss_emu, loss_cpu, rtol=RTOL)
    assert sorted(state_emu) == sorted(state_cpu)
    for name, cpu in state_cpu.items():
        assert state_emu[name].dtype == cpu.dtype, name
        np.testing.assert_allclose(state_emu[name], cpu, rtol=RTOL, atol=ATOL, err_msg=name)
    _assert_moved(state_cpu, _initial_state())


def test_one_adam_step_on_cuda_emu_matches_cpu():
    lr = 1e-3
    loss_cpu, grads_cpu, state_cpu = _step("cpu", Adam, lr)
    loss_emu, grads_emu, state_emu = _step("cuda-emu", Adam, lr)
    np.testing.assert_allclose(loss_emu, loss_cpu, rtol=RTOL)
    before = _initial_state()
    for name, g_cpu in grads_cpu.items():
        scale = float(np.abs(g_cpu).max())
        noise = 1e-4 * scale  # float32 rounding of sums of ~1e5 terms, relative to the largest
        np.testing.assert_allclose(grads_emu[name], g_cpu, rtol=RTOL, atol=noise, err_msg=name)
        clear = np.abs(g_cpu) > 10 * noise
        np.testing.assert_allclose(state_emu[name][clear], state_cpu[name][clear],
                                   rtol=RTOL, atol=ATOL * lr, err_msg=name)
        step = np.abs(state_emu[name] - before[name])
        assert step.max() <= lr * (1 + 1e-3), name
    for name in set(state_cpu) - set(grads_cpu):  # buffers: BN running mean, var, count
        np.testing.assert_allclose(state_emu[name], state_cpu[name], rtol=RTOL, atol=ATOL,
                                   err_msg=name)
    _assert_moved(state_cpu, before)


def test_conv3d_train_runs_the_article_model_on_cuda_emu(capsys):
    from conv3d.cli import main  # noqa: PLC0415
    assert main(["train", "keras-3d-mnist", "--device", "cuda-emu", "--n-train", "8",
                 "--n-test", "4", "--epochs", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "epoch 1/1" in out and "test accuracy" in out


def test_conv3d_train_device_is_refused_where_the_experiment_does_not_take_it(capsys):
    from conv3d.cli import main  # noqa: PLC0415
    assert main(["train", "motion", "--device", "cuda-emu"]) == 2
    assert "--device: only keras-3d-mnist" in capsys.readouterr().err
