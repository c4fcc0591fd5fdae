"""The tensor-core algorithm (kernels/conv3d_implicit_gemm_tc.cu) in emulation, against float64.

Two references, both float64 loops of tests/reference.py on inputs rounded HERE (reference.ROUND:
tf32 ties away from zero, bf16 and fp16 ties to even), never by the code under test:

* the EXACT product of the rounded inputs: the kernel may differ only by float32 rounding of its
  accumulator, at most once per mma step (ceil(R / 16) stages x 16 / WMMA_K steps), each by at
  most 2**-24 of sum |x| |w| over the window (``bound``);
* the float64 convolution of the UNROUNDED inputs, within the documented tolerance of each
  precision: every product of two rounded inputs is off by at most (2u + u**2) of |x| |w|
  (u: the format's unit roundoff), plus the accumulation above.
"""
from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conv3d.core.backend import kernels_for
from conv3d.core.geometry import ConvGeometry
from conv3d.cuda import (CONV_ALGORITHMS, TENSOR_CORE_PRECISIONS, conv_algorithm,
                         get_tensor_core_precision, launch, set_tensor_core_precision,
                         tensor_core_precision)
from conv3d.cuda.sources import get_function
from reference import ROUND, UNIT_ROUNDOFF, naive_conv3d, naive_conv3d_backward_input, \
    naive_conv3d_backward_weight

pytestmark = pytest.mark.skipif(shutil.which("g++") is None,
                                reason="the CUDA emulator needs g++ to compile the kernels")

EMU = kernels_for("cuda-emu")
EPS32 = 2.0 ** -24
WMMA_K = {"tf32": 8, "bf16": 16, "fp16": 16}
TILE_K = 16


def _random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _bounds(precision, x, w, settings_):
    """(exact product of the rounded inputs, its accumulation tolerance, the tolerance against
    the unrounded float64 convolution)."""
    r = ROUND[precision]
    xr, wr = r(x), r(w)
    exact = naive_conv3d(xr, wr, None, *settings_)
    bound = naive_conv3d(np.abs(xr), np.abs(wr), None, *settings_)
    R = w.shape[1] * math.prod(w.shape[2:])
    steps = -(-R // TILE_K) * (TILE_K // WMMA_K[precision])
    accumulation = (steps + 1) * EPS32 * bound + 1e-30
    u = UNIT_ROUNDOFF[precision]
    return exact, accumulation, (2 * u + u * u) * bound + accumulation


def _forward(x, w, settings_, precision):
    with conv_algorithm("tensor-core"), tensor_core_precision(precision):
        return EMU.conv3d_forward(x, w, None, *settings_)


def _check(precision, x, w, settings_):
    y = _forward(x, w, settings_, precision)
    assert y.dtype == np.float32
    exact, accumulation, documented = _bounds(precision, x, w, settings_)
    assert y.shape == exact.shape
    assert np.all(np.abs(y - exact) <= accumulation), "not the product of the rounded inputs"
    full = naive_conv3d(x, w, None, *settings_)
    assert np.all(np.abs(y - full) <= documented), "outside the documented tolerance"
    return y, full


# 2 groups of 12 input channels (> 8, so the reduction over R = 12*18 = 216 takes 14 stages and
# one partial stage), 2 x 5 output channels (a partial 32-channel tile), stride, asymmetric
# padding, dilation, odd sizes (not multiples of the 32-position tile).
GEOMETRY = dict(x=(2, 24, 5, 6, 7), w=(10, 12, 3, 2, 3),
                settings=((1, 2, 1), ((1, 0), (1, 1), (0, 2)), (2, 1, 1), 2))


@pytest.mark.parametrize("precision", TENSOR_CORE_PRECISIONS)
def test_forward_matches_float64_within_each_precisions_tolerance(precision):
    x, w = _random(GEOMETRY["x"], 1), _random(GEOMETRY["w"], 2)
    y, full = _check(precision, x, w, GEOMETRY["settings"])
    # and the inputs were really rounded: float32 inputs would stay within the accumulation
    # bound of the unrounded product, these do not
    bound = naive_conv3d(np.abs(x), np.abs(w), None, *GEOMETRY["settings"])
    assert np.any(np.abs(y - full) > 15 * TILE_K // WMMA_K[precision] * EPS32 * bound)


@settings(max_examples=8, deadline=None)
@given(precision=st.sampled_from(TENSOR_CORE_PRECISIONS), n=st.integers(1, 2),
       groups=st.integers(1, 3), cg=st.integers(1, 11), kg=st.integers(1, 35),
       size=st.tuples(*[st.integers(1, 6)] * 3), kernel=st.tuples(*[st.integers(1, 3)] * 3),
       stride=st.tuples(*[st.integers(1, 2)] * 3), dilation=st.tuples(*[st.integers(1, 2)] * 3),
       pad=st.tuples(*[st.integers(0, 2)] * 6), seed=st.integers(0, 2**16))
def test_forward_over_random_geometries(precision, n, groups, cg, kg, size, kernel, stride,
                                        dilation, pad, seed):
    padding = tuple(zip(pad[0::2], pad[1::2]))
    out = [(s + lo + hi - d * (k - 1) - 1) // st_ + 1 for s, (lo, hi), k, st_, d in
           zip(size, padding, kernel, stride, dilation)]
    if min(out) < 1:
        return  # an empty output: not a valid convolution
    x = _random((n, cg * groups, *size), seed)
    w = _random((kg * groups, cg, *kernel), seed + 1)
    _check(precision, x, w, (stride, padding, dilation, groups))


def test_exact_inputs_give_exact_outputs():
    # small integers are exact in every format and their sums in float32: any indexing error
    # (a wrong tap, channel, group or padding) shows as a difference
    rng = np.random.default_rng(5)
    x = rng.integers(-3, 4, (1, 18, 4, 5, 3)).astype(np.float32)
    w = rng.integers(-3, 4, (6, 9, 3, 3, 2)).astype(np.float32)
    settings_ = ((1, 1, 2), ((2, 1), (0, 1), (1, 1)), (1, 2, 1), 2)
    for precision in TENSOR_CORE_PRECISIONS:
        y = _forward(x, w, settings_, precision)
        np.testing.assert_array_equal(y, naive_conv3d(x, w, None, *settings_))


def test_float64_runs_the_exact_tiled_kernel():
    x, w = _random((1, 9, 4, 4, 4), 3).astype(np.float64), _random((4, 9, 3, 3, 3), 4).astype(
        np.float64)
    settings_ = ((1, 1, 1), ((1, 1),) * 3, (1, 1, 1), 1)
    y = _forward(x, w, settings_, "bf16")
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, naive_conv3d(x, w, None, *settings_), rtol=1e-12, atol=1e-12)


def test_backward_reuses_the_exact_backward_kernels():
    x, w = _random((2, 10, 3, 4, 5), 6), _random((4, 10, 2, 2, 2), 7)
    settings_ = ((1, 1, 1), ((1, 0),) * 3, (1, 1, 1), 1)
    gy = _random((2, 4, 3, 4, 5), 8)
    with conv_algorithm("tensor-core"):
        gx, gw = EMU.conv3d_backward(gy, x, w, *settings_)
    np.testing.assert_allclose(gx, naive_conv3d_backward_input(gy, w, x.shape, *settings_),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gw, naive_conv3d_backward_weight(gy, x, w.shape, *settings_),
                               rtol=1e-5, atol=1e-5)


def test_empty_batch_gives_an_empty_output():
    assert "tensor-core" in CONV_ALGORITHMS
    y = _forward(np.zeros((0, 3, 4, 4, 4), np.float32), _random((5, 3, 3, 3, 3), 1),
                 ((1, 1, 1), ((1, 1),) * 3, (1, 1, 1), 1), "tf32")
    assert y.shape == (0, 5, 4, 4, 4) and y.dtype == np.float32


def test_kernel_loops_over_channel_tiles_beyond_the_grid():
    # 3 groups x 2 channel tiles (Kg = 40 > 32) on a grid capped at gridDim.y = 2: each block
    # takes channel tiles by, by + 2, by + 4 (the loop CUDA's 65,535 limit needs)
    x, w = _random((1, 6, 3, 3, 4), 9), _random((120, 2, 1, 2, 3), 10)
    settings_ = ((1, 1, 1), ((0, 0), (1, 0), (1, 1)), (1, 1, 1), 3)
    geo = ConvGeometry.from_shapes(x.shape, w.shape, *settings_)
    config = launch.conv3d_implicit_gemm_tc_config(geo, "tf32", max_grid_y=2)
    assert config.grid[1] == 2 and config.block == (128, 1, 1)
    y = np.full(geo.y_shape, np.nan, np.float32)
    get_function(config.kernel, np.float32, "cuda-emu", entry=config.function)(
        config.grid, config.block, (x, w, y) + launch.conv_args(geo))
    exact, accumulation, _ = _bounds("tf32", x, w, settings_)
    assert np.all(np.abs(y - exact) <= accumulation)


def test_config_caps_grid_y_and_puts_the_whole_batch_on_grid_x():
    many_groups = ConvGeometry.from_shapes((1, 70_000, 1, 1, 1), (70_000, 1, 1, 1, 1), 1,
                                           ((0, 0),) * 3, 1, 70_000)
    assert launch.conv3d_implicit_gemm_tc_config(many_groups).grid == (1, launch.MAX_GRID_YZ, 1)
    # 70,000 samples of 2 positions: 140,000 positions in tiles of 32 on x (limit 2**31 - 1)
    many_samples = ConvGeometry.from_shapes((70_000, 1, 1, 1, 2), (1, 1, 1, 1, 1), 1,
                                            ((0, 0),) * 3, 1, 1)
    assert launch.conv3d_implicit_gemm_tc_config(many_samples).grid == (4375, 1, 1)


def test_config_and_precision_switch_reject_bad_values():
    geo = ConvGeometry.from_shapes((1, 1, 2, 2, 2), (1, 1, 1, 1, 1), 1, ((0, 0),) * 3, 1, 1)
    with pytest.raises(ValueError, match="precision must be one of tf32, bf16, fp16"):
        launch.conv3d_implicit_gemm_tc_config(geo, "fp8")
    with pytest.raises(ValueError, match="max_grid_y"):
        launch.conv3d_implicit_gemm_tc_config(geo, "tf32", max_grid_y=70_000)
    assert get_tensor_core_precision() == "tf32"  # the default, as PyTorch's allow_tf32
    with pytest.raises(ValueError, match="tensor-core precision must be one of"):
        set_tensor_core_precision("float16")
    assert get_tensor_core_precision() == "tf32"


class _FakeDevice:
    def __init__(self, cc):
        self.compute_capability = cc


def test_gpu_without_tensor_cores_for_the_precision_is_refused(monkeypatch):
    from types import SimpleNamespace

    from conv3d.cuda.provider import CudaKernels

    provider = CudaKernels("cuda")
    for cc, ok in (("75", {"fp16"}), ("80", set(TENSOR_CORE_PRECISIONS))):
        fake = SimpleNamespace(cuda=SimpleNamespace(Device=lambda cc=cc: _FakeDevice(cc)))
        monkeypatch.setattr(CudaKernels, "xp", property(lambda self, fake=fake: fake))
        for precision in TENSOR_CORE_PRECISIONS:
            if precision in ok:
                provider._check_tensor_cores(precision)
            else:
                with pytest.raises(RuntimeError, match=rf"precision '{precision}' needs a GPU of "
                                                       r"compute capability 8\.0 .* has 7\.5"):
                    provider._check_tensor_cores(precision)
