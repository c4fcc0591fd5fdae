"""Every CUDA kernel in kernels/*.cu, run in the CPU emulator, against float64 naive loops.

The kernels are reached through the 'cuda-emu' kernel provider (the exact code path a GPU uses,
with NumPy arrays instead of CuPy ones) or launched one by one with the provider's launch
configurations. References: tests/reference.py (loops written from the definitions) and the
naive im2col loops below. Shapes are drawn by hypothesis and include partial edge tiles (sizes
that are not multiples of the tile), stride, asymmetric padding, dilation, groups, and channel
counts that are not multiples of the tiled kernel's 8 output channels.
"""
from __future__ import annotations

import itertools
import math
import shutil

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import conv3d  # noqa: F401  (registers the providers)
from conv3d.core.backend import kernels_for
from conv3d.core.geometry import ConvGeometry, PoolGeometry
from conv3d.cuda import conv_algorithm, launch, set_conv_algorithm
from conv3d.cuda.sources import get_function
from reference import (naive_avg_pool3d, naive_avg_pool3d_backward, naive_conv3d,
                       naive_conv3d_backward_input, naive_conv3d_backward_weight,
                       naive_max_pool3d, naive_max_pool3d_backward, ref_conv_out, ref_pool_out)

pytestmark = pytest.mark.skipif(shutil.which("g++") is None,
                                reason="the CUDA emulator needs g++ to compile the kernels")

EMU = kernels_for("cuda-emu")
DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-4, atol=1e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}
FEW = settings(max_examples=15, deadline=None)


# ---- drawn geometries -------------------------------------------------------------------------

@st.composite
def conv_cases(draw):
    """(x_shape, w_shape, stride, padding pairs, dilation, groups), small enough to emulate."""
    groups = draw(st.integers(1, 2))
    Cg, Kg = draw(st.integers(1, 3)), draw(st.integers(1, 10))
    N = draw(st.integers(1, 2))
    kernel, stride, dilation, padding, size = [], [], [], [], []
    for _ in range(3):
        k, s, d = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
        lo, hi = draw(st.integers(0, 2)), draw(st.integers(0, 2))
        smallest = max(1, d * (k - 1) + 1 - lo - hi)  # the output must not be empty
        size.append(draw(st.integers(smallest, smallest + 5)))
        kernel.append(k), stride.append(s), dilation.append(d), padding.append((lo, hi))
    return ((N, groups * Cg, *size), (groups * Kg, Cg, *kernel), tuple(stride), tuple(padding),
            tuple(dilation), groups)


@st.composite
def pool_cases(draw, with_dilation=True):
    """(x_shape, kernel, stride, padding, dilation, ceil_mode) within PyTorch's rules."""
    kernel, stride, padding, dilation, size = [], [], [], [], []
    ceil_mode = draw(st.booleans())
    for _ in range(3):
        k, s = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        d = draw(st.integers(1, 2)) if with_dilation else 1
        p = draw(st.integers(0, k // 2))
        smallest = max(1, d * (k - 1) + 1 - 2 * p)
        i = draw(st.integers(smallest, smallest + 5))
        # conv3d.ops rejects (as PyTorch should) dilated windows that see only padding
        out = ref_pool_out(i, k, s, p, d, ceil_mode)
        assume(all(any(0 <= o * s - p + j * d < i for j in range(k)) for o in range(out)))
        size.append(i)
        kernel.append(k), stride.append(s), padding.append(p), dilation.append(d)
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *size)
    return shape, tuple(kernel), tuple(stride), tuple(padding), tuple(dilation), ceil_mode


def _random(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _check(got, expected, dtype):
    assert got.dtype == dtype, f"dtype {got.dtype}, expected {np.dtype(dtype)} (no silent casts)"
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, **TOL[dtype])


# ---- convolution forward: direct, tiled, im2col + GEMM (each also runs bias_add) ---------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ["direct", "tiled", "im2col"])
@FEW
@given(case=conv_cases(), seed=st.integers(0, 2**16))
def test_conv3d_forward_matches_naive_loops(algorithm, dtype, case, seed):
    x_shape, w_shape, stride, padding, dilation, groups = case
    x, w, b = (_random(s, dtype, seed + i) for i, s in enumerate((x_shape, w_shape, w_shape[:1])))
    with conv_algorithm(algorithm):
        y = EMU.conv3d_forward(x, w, b, stride, padding, dilation, groups)
    _check(y, naive_conv3d(x, w, b, stride, padding, dilation, groups), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ["direct", "im2col"])  # backward kernels / col2im + GEMM
@FEW
@given(case=conv_cases(), seed=st.integers(0, 2**16))
def test_conv3d_backward_matches_naive_loops(algorithm, dtype, case, seed):
    x_shape, w_shape, stride, padding, dilation, groups = case
    y_shape = (x_shape[0], w_shape[0]) + tuple(
        ref_conv_out(i, k, s, lo, hi, d)
        for i, k, s, (lo, hi), d in zip(x_shape[2:], w_shape[2:], stride, padding, dilation))
    x, w, gy = (_random(s, dtype, seed + i) for i, s in enumerate((x_shape, w_shape, y_shape)))
    settings_ = (stride, padding, dilation, groups)
    with conv_algorithm(algorithm):
        gx, gw = EMU.conv3d_backward(gy, x, w, *settings_)
    _check(gx, naive_conv3d_backward_input(gy, w, x_shape, *settings_), dtype)
    _check(gw, naive_conv3d_backward_weight(gy, x, w_shape, *settings_), dtype)


def test_tiled_partial_edge_tiles_on_every_axis_and_partial_channel_chunk():
    # output 9x10x11 with 8x8x4 tiles: the last tile along D, H and W is partial; K/groups = 10
    # is one full chunk of 8 output channels and a partial one of 2 (groups = 3, Cg = 1).
    x_shape, w_shape = (1, 3, 9, 10, 11), (30, 1, 3, 3, 3)
    args = ((1, 1, 1), ((1, 1),) * 3, (1, 1, 1), 3)
    geo = ConvGeometry.from_shapes(x_shape, w_shape, *args)
    config = launch.conv3d_tiled_config(geo, 4)
    assert config.block == (8, 8, 4) and geo.out_size == (9, 10, 11)
    x, w = _random(x_shape, np.float32, 7), _random(w_shape, np.float32, 8)
    with conv_algorithm("tiled"):
        y = EMU.conv3d_forward(x, w, None, *args)
    _check(y, naive_conv3d(x, w, None, *args).astype(np.float32), np.float32)


def test_tiled_shrinks_its_tile_to_fit_shared_memory_and_stays_correct():
    # 3x3x3 kernel with dilation 5, float64: staging all 5 channels at once would need > 48 KiB,
    # so it stages 3 at a time (5 is then not a multiple of the stage: a partial last stage).
    x_shape, w_shape = (1, 5, 12, 13, 14), (2, 5, 3, 3, 3)
    stride, padding, dilation = (1, 1, 1), ((0, 0),) * 3, (5, 5, 5)
    geo = ConvGeometry.from_shapes(x_shape, w_shape, stride, padding, dilation, 1)
    config = launch.conv3d_tiled_config(geo, 8)
    assert config is not None and config.shared_mem <= launch.SHARED_MEM_LIMIT
    assert config.extra["c_tile"] < 5  # it did shrink
    x, w = _random(x_shape, np.float64, 1), _random(w_shape, np.float64, 2)
    with conv_algorithm("tiled"):
        y = EMU.conv3d_forward(x, w, None, stride, padding, dilation, 1)
    _check(y, naive_conv3d(x, w, None, stride, padding, dilation, 1), np.float64)


def test_tiled_falls_back_to_direct_when_no_tile_fits():
    # A 5x5x5 kernel with dilation 6 spans 25^3 inputs: more than 48 KiB even for one output.
    x_shape, w_shape = (1, 1, 25, 25, 25), (1, 1, 5, 5, 5)
    args = ((1, 1, 1), ((0, 0),) * 3, (6, 6, 6), 1)
    geo = ConvGeometry.from_shapes(x_shape, w_shape, *args)
    assert launch.conv3d_tiled_config(geo, 4) is None
    x, w = _random(x_shape, np.float32, 3), _random(w_shape, np.float32, 4)
    with conv_algorithm("tiled"):
        y = EMU.conv3d_forward(x, w, None, *args)
    _check(y, naive_conv3d(x, w, None, *args).astype(np.float32), np.float32)


@pytest.mark.parametrize("mutation", [
    ("__syncthreads();  // 2.", ";  // 2."),  # read the tiles before every load has landed
    ("__syncthreads();  // 4.", ";  // 4."),  # overwrite the tiles while others still read
])
def test_tiled_kernel_without_a_barrier_gives_wrong_results(monkeypatch, mutation):
    """The tests bite: remove one __syncthreads() from the real tiled kernel and the emulator
    (which alternates the thread order between barriers) produces a wrong result."""
    from conv3d.cuda import sources

    original = sources.kernel_source("conv3d_tiled")
    assert mutation[0] in original
    monkeypatch.setattr(sources, "kernel_source",
                        lambda name: original.replace(*mutation) if name == "conv3d_tiled"
                        else sources.files("conv3d.kernels").joinpath(f"{name}.cu").read_text())
    sources.get_module.cache_clear()
    try:
        x, w = _random((1, 10, 5, 6, 9), np.float32, 5), _random((9, 10, 3, 3, 3), np.float32, 6)
        args = ((1, 1, 1), ((1, 1),) * 3, (1, 1, 1), 1)
        with conv_algorithm("tiled"):
            y = EMU.conv3d_forward(x, w, None, *args)
        assert not np.allclose(y, naive_conv3d(x, w, None, *args), rtol=1e-4, atol=1e-4)
    finally:
        monkeypatch.undo()
        sources.get_module.cache_clear()  # later tests compile the real kernel again


# ---- im2col3d / col2im3d, launched directly ----------------------------------------------------

def _naive_taps(x_shape, kernel, stride, padding, dilation):
    out = tuple(ref_conv_out(i, k, s, lo, hi, d)
                for i, k, s, (lo, hi), d in zip(x_shape[2:], kernel, stride, padding, dilation))
    for o in itertools.product(*map(range, out)):
        for t in itertools.product(*map(range, kernel)):
            z = tuple(oo * s - lo + tt * d
                      for oo, s, (lo, _), tt, d in zip(o, stride, padding, t, dilation))
            if all(0 <= zz < n for zz, n in zip(z, x_shape[2:])):
                yield out, o, t, z


@pytest.mark.parametrize("dtype", DTYPES)
@FEW
@given(case=conv_cases(), seed=st.integers(0, 2**16))
def test_im2col3d_and_col2im3d_match_naive_loops(dtype, case, seed):
    x_shape, w_shape, stride, padding, dilation, groups = case
    geo = ConvGeometry.from_shapes(x_shape, w_shape, stride, padding, dilation, groups)
    N, C, kernel, L = geo.N, geo.C, geo.kernel, math.prod(geo.out_size)
    x = _random(x_shape, dtype, seed)
    gcol = _random((N, C * geo.taps, L), dtype, seed + 1)
    col_ref = np.zeros((N, C) + kernel + geo.out_size)
    gx_ref = np.zeros(x_shape)
    gcol6 = gcol.reshape((N, C) + kernel + geo.out_size).astype(np.float64)
    for _, o, t, z in _naive_taps(x_shape, kernel, stride, padding, dilation):
        col_ref[(slice(None), slice(None)) + t + o] = x[(slice(None), slice(None)) + z]
        gx_ref[(slice(None), slice(None)) + z] += gcol6[(slice(None), slice(None)) + t + o]

    col = np.full((N, C * geo.taps, L), np.nan, dtype)  # NaN: an element left unwritten shows
    config = launch.im2col3d_config(geo)
    get_function("im2col3d", dtype, "cuda-emu")(config.grid, config.block,
                                                  (x, col) + launch.im2col_args(geo))
    _check(col, col_ref.reshape(col.shape), dtype)

    gx = np.full(x_shape, np.nan, dtype)
    config = launch.col2im3d_config(geo)
    get_function("col2im3d", dtype, "cuda-emu")(config.grid, config.block,
                                                  (gcol, gx) + launch.im2col_args(geo))
    _check(gx, gx_ref, dtype)


# ---- pooling ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@FEW
@given(case=pool_cases(), seed=st.integers(0, 2**16))
def test_max_pool3d_forward_and_backward_match_naive_loops(dtype, case, seed):
    x_shape, kernel, stride, padding, dilation, ceil_mode = case
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=x_shape).astype(dtype)  # few distinct values: many ties
    settings_ = (kernel, stride, padding, dilation, ceil_mode)
    y, indices = EMU.max_pool3d_forward(x, *settings_)
    y_ref, indices_ref = naive_max_pool3d(x, *settings_)
    _check(y, y_ref, dtype)
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(indices, indices_ref)  # first maximum wins on ties

    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = EMU.max_pool3d_backward(gy, indices_ref, x_shape)
    _check(gx, naive_max_pool3d_backward(gy, x, *settings_), dtype)


def test_max_pool3d_propagates_nan_and_ignores_padding():
    x = -np.arange(1, 28, dtype=np.float32).reshape(1, 1, 3, 3, 3)  # all negative: padding = -inf
    x[0, 0, 1, 1, 1] = np.nan
    args = ((2, 2, 2), (1, 1, 1), (1, 1, 1), (1, 1, 1), False)
    y, indices = EMU.max_pool3d_forward(x, *args)
    y_ref, indices_ref = naive_max_pool3d(x, *args)
    np.testing.assert_array_equal(indices, indices_ref)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(y_ref))
    assert np.isnan(y).any() and not np.isnan(y).all()
    np.testing.assert_allclose(y[~np.isnan(y)], y_ref[~np.isnan(y_ref)])
    assert np.all(y[~np.isnan(y)] < 0)  # a negative max: the zero padding never won


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("count_include_pad", [True, False])
@FEW
@given(case=pool_cases(with_dilation=False), seed=st.integers(0, 2**16))
def test_avg_pool3d_forward_and_backward_match_naive_loops(dtype, count_include_pad, case, seed):
    x_shape, kernel, stride, padding, _, ceil_mode = case
    settings_ = (kernel, stride, padding, ceil_mode, count_include_pad)
    x = _random(x_shape, dtype, seed)
    y = EMU.avg_pool3d_forward(x, *settings_)
    _check(y, naive_avg_pool3d(x, *settings_), dtype)
    gy = _random(y.shape, dtype, seed + 1)
    gx = EMU.avg_pool3d_backward(gy, x_shape, *settings_)
    _check(gx, naive_avg_pool3d_backward(gy, x_shape, *settings_), dtype)


# ---- launch configurations and arguments --------------------------------------------------------

def test_kernel_scalar_arguments_are_int32():
    geo = ConvGeometry.from_shapes((1, 2, 3, 4, 5), (2, 2, 1, 1, 1), (1, 1, 1),
                                   ((0, 0),) * 3, (1, 1, 1), 1)
    pool = PoolGeometry.from_shape((1, 2, 3, 4, 5), (2, 2, 2), (2, 2, 2), (0, 0, 0))
    for args in (launch.conv_args(geo), launch.im2col_args(geo), launch.max_pool_args(pool),
                 launch.avg_pool_args(pool, True)):
        assert all(type(a) is np.int32 for a in args)  # CuPy passes raw bytes: C int = int32


def test_python_int_argument_is_refused_by_the_emulator():
    y, b = np.zeros((1, 2, 1, 1, 1), np.float32), np.ones(2, np.float32)
    config = launch.bias_add_config(y.shape)
    with pytest.raises(TypeError):
        get_function("bias_add", np.float32, "cuda-emu")(config.grid, config.block,
                                                          (y, b, 1, 2, 1))


def test_launch_configs_cover_every_element_and_respect_cuda_limits():
    geo = ConvGeometry.from_shapes((3, 6, 9, 10, 11), (20, 3, 3, 3, 3), (2, 1, 1),
                                   ((1, 1), (1, 0), (0, 2)), (1, 2, 1), 2)
    direct = launch.conv3d_direct_config(geo)
    assert direct.threads >= math.prod(geo.y_shape) > direct.threads - direct.block[0]
    tiled = launch.conv3d_tiled_config(geo, 4)
    TW, TH, TD = tiled.block
    OD, OH, OW = geo.out_size
    assert tiled.grid[0] == math.ceil(OW / TW) * math.ceil(OH / TH) * math.ceil(OD / TD)
    assert tiled.grid[1] == 2 * math.ceil(10 / launch.tiled_out_channels())  # groups * K chunks
    assert tiled.grid[2] == 3 and math.prod(tiled.block) <= 1024
    assert tiled.shared_mem <= launch.SHARED_MEM_LIMIT
    weight = launch.conv3d_backward_weight_config(geo, 8)
    # one thread per weight of a tile; the slices cover the N*OD*OH*OW products exactly
    assert weight.grid[0] * weight.block[0] >= math.prod(geo.w_shape) > \
        (weight.grid[0] - 1) * weight.block[0]
    products = geo.N * math.prod(geo.out_size)
    per_slice = weight.extra["per_slice"]
    assert weight.grid[1] == weight.extra["slices"] == -(-products // per_slice)
    assert weight.grid[1] <= launch.MAX_GRID_YZ and weight.shared_mem <= launch.SHARED_MEM_LIMIT


def test_too_large_for_int32_indexing_is_a_clear_error():
    geo = ConvGeometry.from_shapes((4096, 64, 32, 64, 64), (64, 64, 1, 1, 1), (1, 1, 1),
                                   ((0, 0),) * 3, (1, 1, 1), 1)
    with pytest.raises(ValueError, match="32-bit"):
        launch.conv3d_direct_config(geo)
    with pytest.raises(ValueError, match="split the batch"):
        launch.check_int32(geo)


def test_unsupported_dtype_and_algorithm_are_clear_errors():
    x = np.zeros((1, 1, 2, 2, 2), np.float16)
    with pytest.raises(TypeError, match="float32 or float64"):
        EMU.avg_pool3d_forward(x, (1, 1, 1), (1, 1, 1), (0, 0, 0), False, True)
    with pytest.raises(ValueError, match="direct"):
        set_conv_algorithm("winograd")


def test_conv_output_and_pool_output_sizes_agree_with_references():
    geo = ConvGeometry.from_shapes((1, 1, 7, 8, 9), (1, 1, 3, 2, 3), (2, 3, 1),
                                   ((1, 2), (0, 1), (2, 0)), (1, 2, 3), 1)
    assert geo.out_size == tuple(ref_conv_out(i, k, s, lo, hi, d) for i, k, s, (lo, hi), d in zip(
        (7, 8, 9), (3, 2, 3), (2, 3, 1), ((1, 2), (0, 1), (2, 0)), (1, 2, 3)))
    pool = PoolGeometry.from_shape((1, 1, 7, 8, 9), (3, 2, 3), (2, 2, 2), (1, 1, 1),
                                   (1, 2, 1), True)
    assert pool.out_size == tuple(ref_pool_out(i, k, s, p, d, True) for i, k, s, p, d in zip(
        (7, 8, 9), (3, 2, 3), (2, 2, 2), (1, 1, 1), (1, 2, 1)))
