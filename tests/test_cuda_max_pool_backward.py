"""kernels/max_pool3d_backward.cu is deterministic: no atomics, a fixed order of additions.

Overlapping windows (stride < kernel) make one input the argmax of several outputs. The kernel
sums those gradients in increasing output order, so its result must equal, bit for bit, a plain
Python loop that adds them in that order in the same dtype, and NumPy's ``add.at`` CPU path.
Two runs must agree bit for bit. (The emulator runs threads in a fixed order, so the two-run test
alone could not catch an atomicAdd; the bit-exact comparison with the ordered loop can catch a
kernel that adds in any other order whenever float rounding tells the orders apart.)
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import conv3d  # noqa: F401  (registers the providers)
from conv3d.core.backend import kernels_for
from conv3d.cuda import launch
from conv3d.ops import cpu_reference

pytestmark = pytest.mark.skipif(shutil.which("g++") is None,
                                reason="the CUDA emulator needs g++ to compile the kernels")

EMU = kernels_for("cuda-emu")


def _ordered_loop(gy, indices, x_shape):
    """gx[nc, indices[nc, o]] += gy[nc, o], o increasing, in gy's dtype: the reference order."""
    N, C = x_shape[:2]
    gx = np.zeros((N * C, int(np.prod(x_shape[2:]))), dtype=gy.dtype)
    flat_gy, flat_idx = gy.reshape(N * C, -1), indices.reshape(N * C, -1)
    for nc in range(N * C):
        for o in range(flat_gy.shape[1]):
            if flat_idx[nc, o] >= 0:
                gx[nc, flat_idx[nc, o]] += flat_gy[nc, o]
    return gx.reshape(x_shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool3d_backward_is_bitwise_deterministic_and_ordered(dtype):
    rng = np.random.default_rng(0)
    # a constant input: every window's argmax is its first in-range element, so a large window
    # with stride 1 piles many gradients of very different magnitudes onto the same inputs,
    # where the order of float additions shows in the last bits. More than 256 outputs per
    # plane exercise several staged chunks.
    x_shape = (2, 2, 4, 9, 10)
    x = np.zeros(x_shape, dtype=dtype)
    settings_ = ((3, 3, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1), False)
    _, indices = EMU.max_pool3d_forward(x, *settings_)
    assert indices.shape[2:] == (4, 9, 10) and np.prod(indices.shape[2:]) > 256
    gy = (rng.standard_normal(indices.shape) * 10.0 ** rng.integers(-6, 6, indices.shape))
    gy = gy.astype(dtype)

    first = EMU.max_pool3d_backward(gy, indices, x_shape)
    second = EMU.max_pool3d_backward(gy, indices, x_shape)
    assert first.dtype == dtype and first.shape == x_shape
    np.testing.assert_array_equal(first.view(np.uint8), second.view(np.uint8))

    ordered = _ordered_loop(gy, indices, x_shape)
    np.testing.assert_array_equal(first, ordered)
    np.testing.assert_array_equal(first, cpu_reference.max_pool3d_backward(gy, indices, x_shape))
    # the test has teeth: summing the same terms in reverse order gives other bits somewhere
    reverse = _ordered_loop(gy[..., ::-1, ::-1, ::-1].copy(),
                            indices[..., ::-1, ::-1, ::-1].copy(), x_shape)
    assert not np.array_equal(reverse, ordered)


def test_max_pool3d_backward_launches_one_block_per_plane_without_atomics():
    config = launch.max_pool3d_backward_config((2, 3, 4, 5, 6), itemsize=4)
    assert config.grid == (6, 1, 1) and config.block == (launch.THREADS_PER_BLOCK, 1, 1)
    assert config.shared_mem == launch.THREADS_PER_BLOCK * (8 + 4)
    from conv3d.cuda.sources import kernel_source  # noqa: PLC0415
    code = [line.split("//")[0] for line in kernel_source("max_pool3d_backward").splitlines()]
    assert not any("atomic" in line for line in code)


def test_max_pool3d_backward_ignores_padding_only_windows():
    """A target of -1 (a window holding only padding) credits nothing."""
    gy = np.array([1.5, 2.0, 4.0], dtype=np.float32).reshape(1, 1, 1, 1, 3)
    indices = np.array([0, -1, 0], dtype=np.int64).reshape(1, 1, 1, 1, 3)
    gx = EMU.max_pool3d_backward(gy, indices, (1, 1, 1, 1, 2))
    np.testing.assert_array_equal(gx.ravel(), np.array([5.5, 0.0], dtype=np.float32))
