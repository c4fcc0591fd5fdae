"""The weight gradient as a two-pass reduction, and deterministic backward kernels (issue 18).

kernels/conv3d_backward_weight.cu cuts the N x OD x OH x OW products of every weight into
slices (pass 1, one partial sum per slice and weight) and adds the slices in order (pass 2).
References: tests/reference.py's float64 loops for the values, and an ordered NumPy sum in the
kernel's dtype for the bits: the kernel must add the products of a slice in product order and
the slices in slice order, so its float32 result equals that ordered sum exactly (the emulator
compiles without fused multiply-add; a GPU contracts ``sum += a*b`` into an FMA, so there only
the float64 comparison and the two-run test apply). Every backward kernel is run twice and must
give the same bits, with more than 8 input channels per group, which makes the tiled forward
take several stages of its channel loop.
"""
from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

import conv3d  # noqa: F401  (registers the providers)
from conv3d.core.backend import kernels_for
from conv3d.core.geometry import ConvGeometry
from conv3d.cuda import conv_algorithm, launch
from reference import (naive_avg_pool3d_backward, naive_conv3d, naive_conv3d_backward_input,
                       naive_conv3d_backward_weight, naive_max_pool3d, naive_max_pool3d_backward)

pytestmark = pytest.mark.skipif(shutil.which("g++") is None,
                                reason="the CUDA emulator needs g++ to compile the kernels")

EMU = kernels_for("cuda-emu")
TOL = {np.float32: dict(rtol=1e-4, atol=1e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}

# 10 input channels per group (more than the tiled kernel's 8-channel stage), 9 output channels
# per group (a full chunk of 8 and a partial one), stride, asymmetric padding, dilation.
CASE = dict(x_shape=(2, 20, 6, 5, 6), w_shape=(18, 10, 3, 2, 3), stride=(1, 2, 1),
            padding=((1, 0), (1, 1), (0, 2)), dilation=(2, 1, 1), groups=2)


def _random(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _settings(case):
    return case["stride"], case["padding"], case["dilation"], case["groups"]


def _geometry(case):
    return ConvGeometry.from_shapes(case["x_shape"], case["w_shape"], *_settings(case))


def _ordered_weight_gradient(gy, x, geo, per_slice):
    """gw summed as the kernel documents it, in gy's dtype: products in (n, od, oh, ow) order
    inside each slice of ``per_slice`` products (np.cumsum adds strictly left to right), then
    the slices in order. Padding contributes an exact 0."""
    Kg, Cg = geo.K // geo.groups, geo.C // geo.groups
    (pd, _), (ph, _), (pw, _) = geo.padding
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(geo.padding))
    OD, OH, OW = geo.out_size
    sD, sH, sW = geo.stride
    dD, dH, dW = geo.dilation
    gw = np.zeros(geo.w_shape, gy.dtype)
    for k in range(geo.K):
        g = k // Kg
        for c in range(Cg):
            for kd, kh, kw in np.ndindex(*geo.kernel):
                patch = xp[:, g * Cg + c,
                           kd * dD: kd * dD + (OD - 1) * sD + 1: sD,
                           kh * dH: kh * dH + (OH - 1) * sH + 1: sH,
                           kw * dW: kw * dW + (OW - 1) * sW + 1: sW]
                products = (gy[:, k] * patch).ravel()  # in the dtype, one rounding each
                total = gy.dtype.type(0)
                for s in range(0, products.size, per_slice):
                    total += np.cumsum(products[s: s + per_slice])[-1]
                gw[k, c, kd, kh, kw] = total
    return gw


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weight_gradient_reduction_matches_float64_and_its_documented_order(dtype):
    geo = _geometry(CASE)
    config = launch.conv3d_backward_weight_config(geo, np.dtype(dtype).itemsize)
    assert config.grid[0] > 1 and config.extra["slices"] > 1  # several tiles and a pass 2
    assert config.extra["k_span"] >= 2  # a tile of 128 weights spans output channels
    x, gy = _random(geo.x_shape, dtype, 1), _random(geo.y_shape, dtype, 2)
    gw = EMU.conv3d_backward(gy, x, np.empty(geo.w_shape, dtype), *_settings(CASE),
                             output_mask=(False, True))[1]
    assert gw.dtype == dtype
    np.testing.assert_allclose(gw, naive_conv3d_backward_weight(gy, x, geo.w_shape,
                                                                *_settings(CASE)), **TOL[dtype])
    ordered = _ordered_weight_gradient(gy, x, geo, config.extra["per_slice"])
    np.testing.assert_array_equal(gw, ordered)


def test_weight_gradient_with_fewer_blocks_than_slices_and_many_channels_per_tile():
    # 1x1x1 kernel: a tile of 128 weights covers 64 output channels (k_span = 64); a low block
    # target leaves one slice, so pass 1 writes gw itself and pass 2 is skipped.
    case = dict(x_shape=(3, 4, 3, 4, 5), w_shape=(128, 2, 1, 1, 1), stride=(1, 1, 1),
                padding=((0, 0),) * 3, dilation=(1, 1, 1), groups=2)
    geo = _geometry(case)
    one = launch.conv3d_backward_weight_config(geo, 4, target_blocks=1)
    assert one.extra["slices"] == 1 and one.extra["k_span"] == 64
    x, gy = _random(geo.x_shape, np.float32, 3), _random(geo.y_shape, np.float32, 4)
    gw = np.empty(geo.w_shape, np.float32)
    args = (gy, x, gw) + launch.conv_args(geo) + launch.weight_grad_args(one)
    EMU.launch(one, np.float32, args)
    expected = naive_conv3d_backward_weight(gy, x, geo.w_shape, *_settings(case))
    np.testing.assert_allclose(gw, expected, **TOL[np.float32])
    np.testing.assert_array_equal(gw, _ordered_weight_gradient(gy, x, geo, one.extra["per_slice"]))


def test_weight_gradient_launch_configuration_respects_the_limits():
    # the example: N2 C32 K32 64^3, 3x3x3 -- configuration only, nothing is launched
    geo = ConvGeometry.from_shapes((2, 32, 64, 64, 64), (32, 32, 3, 3, 3), 1, ((1, 1),) * 3, 1, 1)
    for itemsize in (4, 8):
        config = launch.conv3d_backward_weight_config(geo, itemsize)
        tiles, slices, _ = config.grid
        assert tiles == math.ceil(32 * 32 * 27 / launch.WEIGHT_GRAD_THREADS)
        assert slices <= launch.MAX_GRID_YZ and config.shared_mem <= launch.SHARED_MEM_LIMIT
        assert slices * config.extra["per_slice"] >= 2 * 64 ** 3 > \
            (slices - 1) * config.extra["per_slice"]  # the slices cover every product once
        assert config.extra["per_slice"] % config.extra["stage"] == 0
        # enough blocks to fill a GPU, and a partial-sum buffer far below the column matrix
        assert tiles * slices >= launch.WEIGHT_GRAD_TARGET_BLOCKS
        assert slices * 32 * 32 * 27 * itemsize < 64 * 2**20


def test_the_kernels_and_launch_py_agree_on_their_block_sizes():
    assert launch.kernel_define("conv3d_backward_weight", "WEIGHT_GRAD_THREADS") == \
        launch.WEIGHT_GRAD_THREADS
    assert launch.kernel_define("conv3d_backward_weight", "REDUCE_THREADS") == \
        launch.THREADS_PER_BLOCK
    assert launch.kernel_define("conv3d_tiled", "TILED_MAX_THREADS") == \
        math.prod(launch.TILED_MAX_BLOCK)


# ---- every backward kernel: correct, and the same bits twice -----------------------------------

def _bits(a):
    return np.ascontiguousarray(a).view(np.uint8)


@pytest.mark.parametrize("algorithm", ["direct", "tiled", "im2col"])
def test_conv3d_forward_and_backward_with_many_channels_per_group_are_deterministic(algorithm):
    geo = _geometry(CASE)
    x, w = _random(geo.x_shape, np.float32, 5), _random(geo.w_shape, np.float32, 6)
    gy = _random(geo.y_shape, np.float32, 7)
    if algorithm == "tiled":
        config = launch.conv3d_tiled_config(geo, 4)
        assert config.extra["c_tile"] < geo.C // geo.groups  # several channel stages
    runs = []
    with conv_algorithm(algorithm):
        for _ in range(2):
            y = EMU.conv3d_forward(x, w, None, *_settings(CASE))
            runs.append((y, *EMU.conv3d_backward(gy, x, w, *_settings(CASE))))
    references = (naive_conv3d(x, w, None, *_settings(CASE)),
                  naive_conv3d_backward_input(gy, w, geo.x_shape, *_settings(CASE)),
                  naive_conv3d_backward_weight(gy, x, geo.w_shape, *_settings(CASE)))
    for first, second, expected in zip(*runs, references):
        np.testing.assert_allclose(first, expected, **TOL[np.float32])
        np.testing.assert_array_equal(_bits(first), _bits(second))


def test_pooling_backward_kernels_are_deterministic():
    x_shape, kernel, stride, padding = (2, 10, 5, 6, 7), (3, 3, 3), (1, 2, 1), (1, 1, 1)
    rng = np.random.default_rng(8)
    x = rng.integers(-2, 3, size=x_shape).astype(np.float32)  # ties: shared argmax targets
    _, indices = naive_max_pool3d(x, kernel, stride, padding, (1, 1, 1), False)
    gy = _random(indices.shape, np.float32, 9)
    max_runs = [EMU.max_pool3d_backward(gy, indices, x_shape) for _ in range(2)]
    avg_runs = [EMU.avg_pool3d_backward(gy, x_shape, kernel, stride, padding, False, True)
                for _ in range(2)]
    np.testing.assert_allclose(max_runs[0], naive_max_pool3d_backward(
        gy, x, kernel, stride, padding, (1, 1, 1), False), **TOL[np.float32])
    np.testing.assert_allclose(avg_runs[0], naive_avg_pool3d_backward(
        gy, x_shape, kernel, stride, padding, False, True), **TOL[np.float32])
    for first, second in (max_runs, avg_runs):
        np.testing.assert_array_equal(_bits(first), _bits(second))
