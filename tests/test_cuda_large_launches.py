"""Launches a GPU limits: more than 65,535 samples or channel chunks, and im2col under the
workspace limit (issue 18). References: tests/reference.py's float64 loops.

CUDA caps gridDim.y and gridDim.z at 65,535. conv3d_tiled puts the groups x output-channel
chunks on y and the samples on z; its configuration caps both and the kernel loops over the
rest (grid-stride). The cap is a parameter of ``conv3d_tiled_config``, so a small emulated run
can take the loop path with a cap of 2; the real cap is exercised by emulated runs of 70,000
one-voxel samples and of 70,000 groups (65,535 blocks of one thread: cheap to emulate).

The im2col path splits its column matrix into chunks under ``conv3d.workspace_limit``: whole
samples first, then output depth planes of one sample, each chunk reading only the input planes
its windows cover.
"""
from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

import conv3d
from conv3d.core.backend import kernels_for
from conv3d.core.geometry import ConvGeometry
from conv3d.cuda import CONV_ALGORITHMS, conv_algorithm, launch
from conv3d.ops.fast.workspace import WorkspaceLimitError
from reference import naive_conv3d, naive_conv3d_backward_input, naive_conv3d_backward_weight

pytestmark = pytest.mark.skipif(shutil.which("g++") is None,
                                reason="the CUDA emulator needs g++ to compile the kernels")

EMU = kernels_for("cuda-emu")
TOL = dict(rtol=1e-10, atol=1e-10)  # float64 throughout


def _random(shape, seed, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ---- grid-stride over gridDim.y / gridDim.z ------------------------------------------------------

def test_tiled_config_caps_grid_y_and_z_at_cudas_limit():
    many_samples = ConvGeometry.from_shapes((70_000, 1, 1, 1, 2), (1, 1, 1, 1, 1), 1,
                                            ((0, 0),) * 3, 1, 1)
    config = launch.conv3d_tiled_config(many_samples, 4)
    assert config.grid == (1, 1, launch.MAX_GRID_YZ)
    many_groups = ConvGeometry.from_shapes((1, 70_000, 1, 1, 1), (70_000, 1, 1, 1, 1), 1,
                                           ((0, 0),) * 3, 1, 70_000)
    assert launch.conv3d_tiled_config(many_groups, 4).grid == (1, launch.MAX_GRID_YZ, 1)
    with pytest.raises(ValueError, match="max_grid_yz"):
        launch.conv3d_tiled_config(many_groups, 4, max_grid_yz=70_000)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiled_kernel_loops_over_samples_and_channel_chunks_beyond_the_grid(dtype):
    # 5 samples and 2 groups x 2 chunks of output channels (Kg = 9), on a grid capped at 2 x 2:
    # each block computes samples bz, bz + 2, ... and chunks by, by + 2.
    x_shape, w_shape = (5, 4, 3, 4, 5), (18, 2, 2, 3, 2)
    settings = ((1, 2, 1), ((1, 0), (1, 1), (0, 1)), (1, 1, 2), 2)
    geo = ConvGeometry.from_shapes(x_shape, w_shape, *settings)
    config = launch.conv3d_tiled_config(geo, np.dtype(dtype).itemsize, max_grid_yz=2)
    assert config.grid[1:] == (2, 2)
    x, w = _random(x_shape, 1, dtype), _random(w_shape, 2, dtype)
    y = np.full(geo.y_shape, np.nan, dtype)  # an output left unwritten shows
    EMU.launch(config, dtype, (x, w, y) + launch.conv_args(geo)
               + launch.int32_args(config.extra["c_tile"]))
    tol = TOL if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y, naive_conv3d(x, w, None, *settings), **tol)


@pytest.mark.parametrize("algorithm", CONV_ALGORITHMS)
def test_more_than_65535_samples_on_every_algorithm(algorithm):
    x = _random((70_000, 1, 1, 1, 2), 3)
    w = _random((2, 1, 1, 1, 2), 4)
    gy = _random((70_000, 2, 1, 1, 1), 5)
    settings = ((1, 1, 1), ((0, 0),) * 3, (1, 1, 1), 1)
    with conv_algorithm(algorithm):
        y = EMU.conv3d_forward(x, w, None, *settings)
        gx, gw = EMU.conv3d_backward(gy, x, w, *settings)
    np.testing.assert_allclose(y, naive_conv3d(x, w, None, *settings), **TOL)
    np.testing.assert_allclose(gx, naive_conv3d_backward_input(gy, w, x.shape, *settings), **TOL)
    np.testing.assert_allclose(gw, naive_conv3d_backward_weight(gy, x, w.shape, *settings),
                               **TOL)


def test_more_than_65535_groups_on_the_tiled_kernel():
    C = 70_000
    x, w = _random((1, C, 1, 1, 2), 6), _random((C, 1, 1, 1, 2), 7)
    with conv_algorithm("tiled"):
        y = EMU.conv3d_forward(x, w, None, 1, ((0, 0),) * 3, 1, C)
    np.testing.assert_allclose(y[0, :, 0, 0, 0], (x[0, :, 0, 0] * w[:, 0, 0, 0]).sum(-1), **TOL)


# ---- im2col in chunks under the workspace limit --------------------------------------------------

def test_im2col_chunks_whole_samples_first_then_output_planes():
    geo = ConvGeometry.from_shapes((4, 3, 6, 5, 4), (2, 3, 3, 3, 3), 1, ((1, 1),) * 3, 1, 1)
    plane = 3 * 27 * 5 * 4 * 8  # bytes of one output plane's columns, float64
    sample = plane * 6
    assert launch.im2col_chunks(geo, 8, 10 * sample) == (4, 6)   # everything fits
    assert launch.im2col_chunks(geo, 8, 2 * sample + 1) == (2, 6)  # two samples a chunk
    assert launch.im2col_chunks(geo, 8, sample - 1) == (1, 5)      # one sample, 5 planes
    assert launch.im2col_chunks(geo, 8, plane) == (1, 1)
    with pytest.raises(WorkspaceLimitError, match="set_workspace_limit"):
        launch.im2col_chunks(geo, 8, plane - 1)


@pytest.mark.parametrize("planes_per_chunk", [None, 2, 1])  # None: chunks of whole samples
def test_im2col_path_in_chunks_matches_naive_loops(planes_per_chunk):
    # stride 2, dilation 2 and asymmetric padding along D: a chunk of output planes reads
    # input planes that overlap its neighbour's and may start or end in the padding.
    x_shape, w_shape = (3, 4, 9, 4, 3), (6, 2, 3, 2, 2)
    settings = ((2, 1, 1), ((3, 1), (1, 0), (0, 1)), (2, 1, 1), 2)
    geo = ConvGeometry.from_shapes(x_shape, w_shape, *settings)
    plane = geo.C * geo.taps * math.prod(geo.out_size[1:]) * 8
    limit = plane * geo.out_size[0] if planes_per_chunk is None else plane * planes_per_chunk
    expected_chunks = (1, geo.out_size[0]) if planes_per_chunk is None else (1, planes_per_chunk)
    assert launch.im2col_chunks(geo, 8, limit) == expected_chunks
    x, w, gy = _random(x_shape, 8), _random(w_shape, 9), _random(geo.y_shape, 10)
    with conv_algorithm("im2col"), conv3d.workspace_limit(limit):
        y = EMU.conv3d_forward(x, w, None, *settings)
        gx, gw = EMU.conv3d_backward(gy, x, w, *settings)
    np.testing.assert_allclose(y, naive_conv3d(x, w, None, *settings), **TOL)
    np.testing.assert_allclose(gx, naive_conv3d_backward_input(gy, w, x_shape, *settings), **TOL)
    np.testing.assert_allclose(gw, naive_conv3d_backward_weight(gy, x, w_shape, *settings),
                               **TOL)


def test_im2col_chunk_whose_windows_see_only_padding_gives_zeros():
    # padding 4 in front of a 2-plane input, kernel 1: the first 4 output planes read padding only
    x_shape, w_shape = (1, 1, 2, 2, 2), (1, 1, 1, 1, 1)
    settings = ((1, 1, 1), ((4, 0), (0, 0), (0, 0)), (1, 1, 1), 1)
    geo = ConvGeometry.from_shapes(x_shape, w_shape, *settings)
    limit = geo.taps * 4 * 8  # one output plane per chunk
    x, w, gy = _random(x_shape, 11), _random(w_shape, 12), _random(geo.y_shape, 13)
    with conv_algorithm("im2col"), conv3d.workspace_limit(limit):
        y = EMU.conv3d_forward(x, w, None, *settings)
        gx, gw = EMU.conv3d_backward(gy, x, w, *settings)
    np.testing.assert_allclose(y, naive_conv3d(x, w, None, *settings), **TOL)
    assert not y[:, :, :4].any()
    np.testing.assert_allclose(gx, naive_conv3d_backward_input(gy, w, x_shape, *settings), **TOL)
    np.testing.assert_allclose(gw, naive_conv3d_backward_weight(gy, x, w_shape, *settings),
                               **TOL)
