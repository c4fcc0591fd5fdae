"""Launch configurations for the kernels in ``kernels/*.cu``, computed in Python and inspectable.

A CUDA launch needs a grid (how many blocks), a block (how many threads each) and the bytes of
dynamic shared memory. Each ``*_config`` function below returns them as a ``LaunchConfig``
together with a sentence saying which element each thread computes, so that
``conv3d kernels launch NAME --shape ...`` can print exactly what the provider will launch.

The sizes come from ``conv3d.core.geometry`` (``ConvGeometry`` / ``PoolGeometry``, the one
description every layer uses); ``conv_args`` and its siblings give the C ``int`` arguments as
``np.int32`` values, because CuPy passes scalars as raw bytes: a Python int where the kernel
takes a C ``int`` would be a real GPU bug (the emulator checks this too).
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field

import numpy as np

from ..core.geometry import ConvGeometry, PoolGeometry
from ..ops.fast.workspace import WorkspaceLimitError

THREADS_PER_BLOCK = 256      # 1-D kernels (one thread per element): 8 warps per block
WEIGHT_GRAD_THREADS = 128    # threads per block of the weight-gradient pass 1 = weights per tile
WEIGHT_GRAD_MAX_STAGE = 64   # most products one weight-gradient block stages at a time
# Pass 1 of the weight gradient cuts the products into slices until the grid has about this many
# blocks (enough to fill every SM of a large GPU several times over); more slices only make the
# partial-sum buffer and pass 2 longer.
WEIGHT_GRAD_TARGET_BLOCKS = 2048
TILED_MAX_BLOCK = (8, 8, 4)  # largest (TW, TH, TD) output tile of conv3d_tiled: 256 threads
TILED_MAX_C_TILE = 8         # most input channels one conv3d_tiled stage loads into shared memory
SHARED_MEM_LIMIT = 48 * 1024  # bytes of shared memory a block gets without an opt-in, on every GPU
MAX_GRID_YZ = 65535          # CUDA's limit on gridDim.y and gridDim.z
INT32_MAX = 2**31 - 1        # the kernels index with 32-bit ints


@dataclass(frozen=True)
class LaunchConfig:
    """What one kernel launch needs: ``kernel(grid, block, args, shared_mem=shared_mem)``."""

    kernel: str                       # kernel family, e.g. "conv3d_direct" (file kernels/<kernel>.cu)
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    shared_mem: int                   # bytes of dynamic shared memory
    mapping: str                      # which element each thread computes
    extra: dict = field(default_factory=dict)  # kernel-specific settings (e.g. c_tile)
    entry: str = ""                   # entry point prefix when not ``kernel`` (a second pass)

    @property
    def function(self) -> str:
        """The entry point's name without its dtype suffix, e.g. ``conv3d_backward_weight``."""
        return self.entry or self.kernel

    @property
    def threads(self) -> int:
        return math.prod(self.grid) * math.prod(self.block)

    def describe(self) -> str:
        lines = [f"kernel      {self.kernel}" + (f" (entry {self.entry})" if self.entry else ""),
                 f"grid        {self.grid}  ({math.prod(self.grid)} blocks)",
                 f"block       {self.block}  ({math.prod(self.block)} threads)",
                 f"shared mem  {self.shared_mem} bytes (dynamic)",
                 f"threads     {self.threads} in total"]
        lines += [f"{k:<11} {v}" for k, v in self.extra.items()]
        lines.append(f"mapping     {self.mapping}")
        return "\n".join(lines)


def int32_args(*values) -> tuple:
    """``values`` as ``np.int32``: what a kernel's C ``int`` parameters need."""
    return tuple(np.int32(v) for v in values)


def _check_int32(what: str, count: int) -> None:
    if count > INT32_MAX:
        raise ValueError(f"{what} has {count} elements, more than the 2**31 - 1 the CUDA kernels "
                         f"index with 32-bit ints; split the batch into smaller pieces")


def check_int32(geo) -> None:
    """Raise ValueError when the input or the output of ``geo`` (a ``ConvGeometry`` or a
    ``PoolGeometry``) has more elements than a 32-bit index reaches."""
    _check_int32("the input", math.prod(geo.x_shape))
    _check_int32("the output", math.prod(geo.y_shape))


def conv_args(geo: ConvGeometry) -> tuple:
    """The ints after the array pointers, in the conv kernels' order."""
    return int32_args(geo.N, geo.C, geo.D, geo.H, geo.W, geo.K, *geo.out_size, *geo.kernel,
                      *geo.stride, *(lo for lo, _ in geo.padding), *geo.dilation, geo.groups)


def im2col_args(geo: ConvGeometry) -> tuple:
    """im2col3d/col2im3d take no K and no groups (the columns hold every channel)."""
    return int32_args(geo.N, geo.C, geo.D, geo.H, geo.W, *geo.out_size, *geo.kernel,
                      *geo.stride, *(lo for lo, _ in geo.padding), *geo.dilation)


def max_pool_args(geo: PoolGeometry) -> tuple:
    return int32_args(geo.N * geo.C, geo.D, geo.H, geo.W, *geo.out_size, *geo.kernel,
                      *geo.stride, *geo.padding, *geo.dilation)


def avg_pool_args(geo: PoolGeometry, count_include_pad: bool) -> tuple:
    return int32_args(geo.N * geo.C, geo.D, geo.H, geo.W, *geo.out_size, *geo.kernel,
                      *geo.stride, *geo.padding, int(bool(count_include_pad)))


# ---- one thread per element ----------------------------------------------------------------

def elementwise_config(kernel: str, count: int, mapping: str) -> LaunchConfig:
    """A 1-D grid of 1-D blocks of THREADS_PER_BLOCK threads with at least ``count`` threads."""
    _check_int32(kernel, count)
    blocks = max(1, -(-count // THREADS_PER_BLOCK))
    return LaunchConfig(kernel, (blocks, 1, 1), (THREADS_PER_BLOCK, 1, 1), 0, mapping)


def per_element_config(kernel: str, shape, element: str, how: str) -> LaunchConfig:
    """``elementwise_config`` for a kernel whose thread t computes the element of ``shape`` with
    row-major flat index t (``element`` names it, ``how`` says how it is computed)."""
    shape = tuple(shape)
    return elementwise_config(kernel, math.prod(shape),
                              f"thread t computes {element} (row-major over {shape}): {how}")


def conv3d_direct_config(geo: ConvGeometry) -> LaunchConfig:
    OD, OH, OW = geo.out_size
    return elementwise_config(
        "conv3d_direct", math.prod(geo.y_shape),
        f"thread t = blockIdx.x*{THREADS_PER_BLOCK} + threadIdx.x computes y[n, k, od, oh, ow] "
        f"with t = (((n*{geo.K} + k)*{OD} + od)*{OH} + oh)*{OW} + ow: a sum over "
        f"{geo.C // geo.groups} channels x {geo.taps} taps")


def im2col3d_config(geo: ConvGeometry) -> LaunchConfig:
    L = math.prod(geo.out_size)
    rows = geo.C * geo.taps
    return elementwise_config(
        "im2col3d", geo.N * rows * L,
        f"thread t computes col[n, r, l] of col ({geo.N}, {rows}, {L}), t = (n*{rows} + r)*{L} + l, "
        f"r = channel*{geo.taps} + tap, l = output position: one input value (0 on padding)")


def im2col_chunks(geo: ConvGeometry, itemsize: int, limit: int) -> tuple[int, int]:
    """``(samples, output planes)`` per chunk of the im2col path, so that one chunk's column
    matrix (samples x C*kD*kH*kW x planes*OH*OW values) fits in ``limit`` bytes: as many whole
    samples as fit, else one sample and as many output depth planes as fit (the CPU path's rule).
    Raises WorkspaceLimitError when even one output plane of one sample does not fit."""
    OD, OH, OW = geo.out_size
    plane_bytes = geo.C * geo.taps * OH * OW * itemsize
    if plane_bytes * OD <= limit:
        return max(1, min(geo.N, limit // (plane_bytes * OD))), OD
    if plane_bytes <= limit:
        return 1, limit // plane_bytes
    raise WorkspaceLimitError(
        f"the im2col path needs {plane_bytes} bytes for the columns of one output plane of one "
        f"sample (C*kD*kH*kW = {geo.C * geo.taps} rows x OH*OW = {OH * OW} columns), more than "
        f"the workspace limit of {limit} bytes; raise it with conv3d.set_workspace_limit(...) "
        f"or use conv3d.cuda.set_conv_algorithm('tiled')")


def col2im3d_config(geo: ConvGeometry) -> LaunchConfig:
    return per_element_config("col2im3d", geo.x_shape, "gx[n, c, d, h, w]",
                              "gathers the column entries of the taps that land on (d, h, w), "
                              "no atomics")


def conv3d_backward_input_config(geo: ConvGeometry) -> LaunchConfig:
    return per_element_config("conv3d_backward_input", geo.x_shape, "gx[n, c, d, h, w]",
                              f"gathers gy*w over the {geo.K // geo.groups} output channels of "
                              f"c's group and the taps that land on (d, h, w)")


def _weight_grad_shared_bytes(stage: int, k_span: int, itemsize: int) -> int:
    return stage * (k_span * itemsize + 4 * 4)  # gy[k_span][stage], then 4 int corners each


def conv3d_backward_weight_config(geo: ConvGeometry, itemsize: int = 4,
                                  target_blocks: int = WEIGHT_GRAD_TARGET_BLOCKS) -> LaunchConfig:
    """Pass 1 of the weight gradient: grid (weight tiles, slices). ``extra`` holds the ints the
    kernel takes after ``conv_args`` (per_slice, stage, k_span) and the number of slices, the
    leading axis of the partial-sum buffer (one slice: pass 1 writes gw and pass 2 is skipped)."""
    weights = math.prod(geo.w_shape)
    per_k = weights // geo.K                    # weights per output channel: Cg * taps
    products = geo.N * math.prod(geo.out_size)
    B = WEIGHT_GRAD_THREADS
    tiles = -(-weights // B)
    # The output channels a tile of B consecutive weights touches: tiles start at multiples of
    # B, so a tile starts at most per_k - gcd(B, per_k) weights into its first channel.
    k_span = min(geo.K, (per_k - math.gcd(B, per_k) + B - 1) // per_k + 1)
    stage = WEIGHT_GRAD_MAX_STAGE
    while stage > 1 and _weight_grad_shared_bytes(stage, k_span, itemsize) > SHARED_MEM_LIMIT:
        stage //= 2
    slices = max(1, min(-(-target_blocks // tiles), -(-products // stage), MAX_GRID_YZ))
    per_slice = -(-(-(-products // slices)) // stage) * stage  # a whole number of stages
    slices = -(-products // per_slice)
    _check_int32("the weight-gradient partial sums", slices * weights)
    return LaunchConfig(
        "conv3d_backward_weight", (tiles, slices, 1), (B, 1, 1),
        _weight_grad_shared_bytes(stage, k_span, itemsize),
        f"thread t of block (bx, s) computes the partial sum of gw[bx*{B} + t] (row-major over "
        f"{geo.w_shape}) over products s*{per_slice} .. of the {products} (n, od, oh, ow), "
        f"staged {stage} at a time in shared memory (window corners + gy of {k_span} output "
        f"channels); " + ("it writes gw directly (one slice)" if slices == 1 else
                          f"pass 2 adds the {slices} partial sums of each weight in slice order"),
        {"slices": slices, "per_slice": per_slice, "stage": stage, "k_span": k_span})


def conv3d_backward_weight_reduce_config(w_shape, slices: int) -> LaunchConfig:
    """Pass 2 of the weight gradient: one thread per weight adds its ``slices`` partial sums."""
    config = per_element_config("conv3d_backward_weight", w_shape, "gw[k, c, kd, kh, kw]",
                                f"adds partial[0..{slices - 1}] of that weight in slice order")
    return LaunchConfig(config.kernel, config.grid, config.block, 0, config.mapping,
                        entry="conv3d_backward_weight_reduce")


def weight_grad_args(config: LaunchConfig) -> tuple:
    """The ints pass 1 takes after ``conv_args``."""
    return int32_args(config.extra["per_slice"], config.extra["stage"], config.extra["k_span"])


@functools.cache
def kernel_define(kernel: str, name: str) -> int:
    """The integer of ``#define NAME <n>`` in kernels/<kernel>.cu: the .cu file is the one source
    of the constants its code is compiled with (tile sizes, ``__launch_bounds__``)."""
    from .sources import kernel_source  # noqa: PLC0415 - avoid a cycle at import time
    match = re.search(rf"^#define\s+{name}\s+(\d+)", kernel_source(kernel), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"kernels/{kernel}.cu lost its '#define {name} <n>'")
    return int(match.group(1))


def tiled_out_channels() -> int:
    """TILED_OUT_CHANNELS of kernels/conv3d_tiled.cu: output channels per block."""
    return kernel_define("conv3d_tiled", "TILED_OUT_CHANNELS")


def _tiled_shared_bytes(geo: ConvGeometry, block, c_tile: int, itemsize: int) -> int:
    TW, TH, TD = block
    box = math.prod(((t - 1) * s + (k - 1) * d + 1) for t, s, k, d in zip(
        (TD, TH, TW), geo.stride, geo.kernel, geo.dilation))
    return (c_tile * box + tiled_out_channels() * c_tile * geo.taps) * itemsize


def conv3d_tiled_config(geo: ConvGeometry, itemsize: int = 4,
                        max_grid_yz: int = MAX_GRID_YZ) -> LaunchConfig | None:
    """Block = an output tile, as large as TILED_MAX_BLOCK but no larger than the output; c_tile
    and then the tile shrink until the shared memory fits SHARED_MEM_LIMIT. ``None`` when even a
    1x1x1 tile with one channel does not fit (huge dilated kernels): use conv3d_direct then.

    gridDim.y (groups x output-channel chunks) and gridDim.z (samples) are capped at
    ``max_grid_yz`` (CUDA's 65,535); the kernel loops over the rest (grid-stride), so any batch
    size and channel count runs."""
    OD, OH, OW = geo.out_size
    Cg, Kg = geo.C // geo.groups, geo.K // geo.groups
    out_channels = tiled_out_channels()
    block = [min(TILED_MAX_BLOCK[0], OW), min(TILED_MAX_BLOCK[1], OH),
             min(TILED_MAX_BLOCK[2], OD)]
    c_tile = min(TILED_MAX_C_TILE, Cg)
    while _tiled_shared_bytes(geo, block, c_tile, itemsize) > SHARED_MEM_LIMIT:
        if c_tile > 1:
            c_tile = (c_tile + 1) // 2
        elif max(block) > 1:
            axis = block.index(max(block))
            block[axis] = (block[axis] + 1) // 2
        else:
            return None
    TW, TH, TD = block
    tiles = -(-OW // TW) * -(-OH // TH) * -(-OD // TD)
    k_chunks = -(-Kg // out_channels)
    if not 1 <= max_grid_yz <= MAX_GRID_YZ:
        raise ValueError(f"max_grid_yz must be in 1..{MAX_GRID_YZ} (CUDA's limit on gridDim.y/z), "
                         f"got {max_grid_yz}")
    chunks = geo.groups * k_chunks
    grid = (tiles, min(chunks, max_grid_yz), min(geo.N, max_grid_yz))
    check_int32(geo)
    return LaunchConfig(
        "conv3d_tiled", grid, (TW, TH, TD),
        _tiled_shared_bytes(geo, block, c_tile, itemsize),
        f"thread (tx, ty, tz) of block (bx, by, bz) computes y[n, g*{Kg} + k0 + j, td0 + tz, "
        f"th0 + ty, tw0 + tx] for j < {out_channels} ({out_channels} accumulators in registers): "
        f"bx picks the {TD}x{TH}x{TW} output tile (corner td0, th0, tw0), by = g*{k_chunks} + "
        f"k0/{out_channels} the group and output-channel chunk (then by + {grid[1]}, ... up to "
        f"{chunks}), n = bz (then bz + {grid[2]}, ... up to {geo.N}); the input channels are "
        f"staged {c_tile} at a time through shared memory (weights [c][tap][j] + input box)",
        {"c_tile": c_tile, "out_ch/blk": out_channels})


TC_PRECISIONS = ("tf32", "bf16", "fp16")  # the input roundings of conv3d_implicit_gemm_tc


def conv3d_implicit_gemm_tc_config(geo: ConvGeometry, precision: str = "tf32",
                                   max_grid_y: int = MAX_GRID_YZ) -> LaunchConfig:
    """The tensor-core implicit GEMM: one block of TC_THREADS threads (4 warps) per
    TC_TILE_M x TC_TILE_N tile of (output channels of a group) x (output positions of the whole
    batch). gridDim.x counts the position tiles, gridDim.y the groups x channel tiles, capped at
    ``max_grid_y`` (CUDA's 65,535; the kernel loops over the rest). No dynamic shared memory:
    the tiles are static arrays of the kernel. ``precision`` picks the entry point
    ``conv3d_implicit_gemm_tc_<precision>_f32`` (float32 in and out)."""
    if precision not in TC_PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(TC_PRECISIONS)}, got {precision!r}")
    if not 1 <= max_grid_y <= MAX_GRID_YZ:
        raise ValueError(f"max_grid_y must be in 1..{MAX_GRID_YZ} (CUDA's limit on gridDim.y), "
                         f"got {max_grid_y}")
    kernel = "conv3d_implicit_gemm_tc"
    tile_m, tile_n, tile_k, threads, warps_n = (kernel_define(kernel, name) for name in (
        "TC_TILE_M", "TC_TILE_N", "TC_TILE_K", "TC_THREADS", "TC_WARPS_N"))
    check_int32(geo)
    Cg, Kg = geo.C // geo.groups, geo.K // geo.groups
    positions = geo.N * math.prod(geo.out_size)
    m_tiles = -(-Kg // tile_m)
    chunks = geo.groups * m_tiles
    grid = (max(1, -(-positions // tile_n)), min(chunks, max_grid_y), 1)
    return LaunchConfig(
        kernel, grid, (threads, 1, 1), 0,
        f"block (bx, by) computes the {tile_m} x {tile_n} tile of Y_g = W_g ({Kg} x "
        f"{Cg * geo.taps}) @ X_col ({Cg * geo.taps} x {positions}, gathered {tile_k} rows at a "
        f"time into shared memory, never stored): output channels k0 = (by % {m_tiles})*{tile_m} "
        f".. of group g = by / {m_tiles} (then by + {grid[1]}, ... up to {chunks}), positions "
        f"p = bx*{tile_n} .. (p = ((n*OD + od)*OH + oh)*OW + ow); warp w of the block owns the "
        f"16 x 16 quadrant (w / {warps_n}, w % {warps_n}) as one {precision} WMMA accumulator, "
        f"and thread t stores column t % {tile_n} of the tile, rows t / {tile_n} + "
        f"{threads // tile_n}j",
        {"precision": precision, "tile": f"{tile_m}x{tile_n}x{tile_k}"},
        entry=f"{kernel}_{precision}")


def max_pool3d_forward_config(geo: PoolGeometry) -> LaunchConfig:
    return per_element_config("max_pool3d_forward", geo.y_shape,
                              "y[n, c, od, oh, ow] and its argmax",
                              f"scans the {math.prod(geo.kernel)}-element window, first maximum "
                              f"wins, NaN propagates")


def max_pool3d_backward_config(y_shape, itemsize: int = 8) -> LaunchConfig:
    """One block per channel plane; the shared memory stages THREADS_PER_BLOCK (target, gradient)
    pairs (``itemsize`` bytes per gradient; the default 8 fits float32 and float64 alike)."""
    y_shape = tuple(y_shape)
    planes = math.prod(y_shape[:2])
    _check_int32("max_pool3d_backward", math.prod(y_shape))
    return LaunchConfig(
        "max_pool3d_backward", (max(1, planes), 1, 1), (THREADS_PER_BLOCK, 1, 1),
        THREADS_PER_BLOCK * (8 + itemsize),
        f"block nc handles plane nc of gy {y_shape}; its thread j owns the input positions "
        f"p % {THREADS_PER_BLOCK} == j and adds, in output order, the gradients of the outputs "
        f"whose argmax is p (staged {THREADS_PER_BLOCK} at a time in shared memory): "
        f"no atomics, the same bits every run")


def avg_pool3d_forward_config(geo: PoolGeometry) -> LaunchConfig:
    return per_element_config("avg_pool3d_forward", geo.y_shape, "y[n, c, od, oh, ow]",
                              "the window's sum divided by PyTorch's divisor")


def avg_pool3d_backward_config(geo: PoolGeometry) -> LaunchConfig:
    return per_element_config("avg_pool3d_backward", geo.x_shape, "gx[n, c, d, h, w]",
                              "gathers gy/divisor from every window that contains it, no atomics")


def bias_add_config(y_shape) -> LaunchConfig:
    return elementwise_config(
        "bias_add", math.prod(y_shape),
        f"thread t adds b[k] to y[t] (row-major over {tuple(y_shape)}), k = (t / spatial) % K")


# ---- resizing (upsample_trilinear_forward / _backward) --------------------------------------

@functools.cache
def _header_define(name: str) -> int:
    """An integer ``#define`` of kernels/indexing.cuh: the header is the one source."""
    from .sources import header_source  # noqa: PLC0415 - avoid a cycle at import time
    match = re.search(rf"^#define\s+{name}\s+(\d+)", header_source("indexing.cuh"), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"kernels/indexing.cuh lost its '#define {name} <n>'")
    return int(match.group(1))


def resize_args(x_shape, out_size) -> tuple:
    """The ints after the array pointers of the resize kernels: NC, D, H, W, OD, OH, OW."""
    N, C, D, H, W = x_shape
    return int32_args(N * C, D, H, W, *out_size)


def _axis_tables(M: np.ndarray, taps: int):
    """One axis's rows: tap indices and weights (O, taps), output spans (I, 2), from the (O, I)
    resize matrix (row o: the weights output o gives each input), whose rows hold at most
    ``taps`` nonzeros in one run of neighbours (linear interpolation: i0 and i0 + 1)."""
    O, I = M.shape
    nonzero = M != 0
    if np.any(nonzero.sum(axis=1) > taps):
        raise ValueError(f"a resize row mixes more than {taps} inputs; the resize kernels take "
                         f"nearest and linear interpolation only")
    rows = np.arange(O)
    first = np.argmax(nonzero, axis=1)
    last = I - 1 - np.argmax(nonzero[:, ::-1], axis=1)
    index = np.stack([first, last], axis=1).astype(np.int32)
    weight = np.stack([M[rows, first], np.where(last != first, M[rows, last], 0)], axis=1)
    touched = nonzero.any(axis=0)
    start = np.where(touched, np.argmax(nonzero, axis=0), 0)
    end = np.where(touched, O - np.argmax(nonzero[::-1], axis=0), 0)
    span = np.stack([start, end], axis=1).astype(np.int32)
    return index, weight.astype(M.dtype), span


def resize_tables(matrices, dtype):
    """``(tap_index, tap_weight, out_span)`` for the resize kernels, from the three (O, I)
    matrices of ``conv3d.ops.resample`` (depth, height, width), each axis's rows stacked in that
    order as ``resize_row`` in kernels/indexing.cuh reads them:

    * ``tap_index`` int32 (OD + OH + OW, RESIZE_TAPS) and ``tap_weight`` ``dtype``, same shape:
      output o of an axis reads input ``tap_index[row, a]`` with weight ``tap_weight[row, a]``;
    * ``out_span`` int32 (D + H + W, RESIZE_SPAN_FIELDS): the outputs [start, end) that read
      each input (empty, 0 to 0, when none does).
    """
    taps, fields = _header_define("RESIZE_TAPS"), _header_define("RESIZE_SPAN_FIELDS")
    if taps != 2 or fields != 2:
        raise RuntimeError(f"resize_tables builds (i0, i0 + 1) taps and (start, end) spans, but "
                           f"kernels/indexing.cuh says RESIZE_TAPS={taps}, "
                           f"RESIZE_SPAN_FIELDS={fields}")
    parts = [_axis_tables(np.asarray(M, dtype=dtype), taps) for M in matrices]
    return tuple(np.ascontiguousarray(np.concatenate([p[i] for p in parts])) for i in range(3))


def upsample_trilinear_forward_config(x_shape, out_size) -> LaunchConfig:
    N, C = x_shape[:2]
    return per_element_config("upsample_trilinear_forward", (N * C, *out_size),
                              "y[nc, od, oh, ow]",
                              "the weighted sum of (at most) 2 x 2 x 2 input voxels, weights and "
                              "indices from one table row per axis")


def upsample_trilinear_backward_config(x_shape, out_size) -> LaunchConfig:
    N, C, D, H, W = x_shape
    return per_element_config("upsample_trilinear_backward", (N * C, D, H, W),
                              "gx[nc, d, h, w]",
                              "gathers weight * gy over the outputs whose taps read (d, h, w), "
                              "no atomics")
