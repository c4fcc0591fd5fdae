"""What ``conv3d kernels check`` runs: every kernel once in emulation, against NumPy.

Each case launches ONE kernel on the 'cuda-emu' device with the launch configuration the
provider would use, and compares its result with the NumPy CPU path (``conv3d.ops``: im2col +
BLAS, strided-slice pooling), which shares no code with the kernels. The geometry is chosen to
exercise what usually breaks: partial edge tiles, stride, asymmetric padding, dilation, groups and
channel counts that are not multiples of the tile sizes.
"""
from __future__ import annotations

import numpy as np

from ..core.geometry import ConvGeometry, PoolGeometry
from ..cuda import launch
from ..cuda.sources import get_function
from ..ops import cpu_reference
from ..ops.im2col import col2vol, vol2col
from ..ops.resample import resize_backward, resize_forward, resize_matrix

DEVICE = "cuda-emu"

# A convolution with 2 groups of 3 input channels and 2 groups of 5 output channels (neither a
# multiple of the tiled kernel's 8 output channels), stride 2 on H, asymmetric padding, dilation 2.
CONV = dict(x_shape=(2, 6, 5, 6, 7), w_shape=(10, 3, 3, 2, 3), stride=(1, 2, 1),
            padding=((1, 0), (1, 1), (0, 2)), dilation=(2, 1, 1), groups=2)
# Overlapping pooling windows (stride < kernel), padding, dilation, ceil_mode.
POOL = dict(x_shape=(2, 3, 5, 6, 7), kernel=(3, 2, 3), stride=(2, 1, 2), padding=(1, 1, 1),
            dilation=(1, 2, 1), ceil_mode=True)
# Resizing: up on depth and width, down on height; each mode and corner rule in turn.
RESIZE = dict(x_shape=(2, 3, 3, 5, 4), out_size=(7, 3, 9),
              modes=(("trilinear", False), ("trilinear", True), ("nearest", False)))


def _rng_arrays(dtype, *shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def _conv_geometry():
    return ConvGeometry.from_shapes(CONV["x_shape"], CONV["w_shape"], CONV["stride"],
                                    CONV["padding"], CONV["dilation"], CONV["groups"])


def _conv_settings():
    return CONV["stride"], CONV["padding"], CONV["dilation"], CONV["groups"]


def _launch(config, dtype, args):
    get_function(config.kernel, dtype, DEVICE, entry=config.function)(
        config.grid, config.block, args, shared_mem=config.shared_mem)


def case_conv3d_direct(dtype):
    geo = _conv_geometry()
    x, w = _rng_arrays(dtype, geo.x_shape, geo.w_shape)
    y = np.empty(geo.y_shape, dtype)
    _launch(launch.conv3d_direct_config(geo), dtype, (x, w, y) + launch.conv_args(geo))
    return y, cpu_reference.conv3d_forward(x, w, None, *_conv_settings())


def case_conv3d_tiled(dtype):
    geo = _conv_geometry()
    x, w = _rng_arrays(dtype, geo.x_shape, geo.w_shape)
    y = np.empty(geo.y_shape, dtype)
    config = launch.conv3d_tiled_config(geo, np.dtype(dtype).itemsize)
    _launch(config, dtype, (x, w, y) + launch.conv_args(geo)
            + launch.int32_args(config.extra["c_tile"]))
    return y, cpu_reference.conv3d_forward(x, w, None, *_conv_settings())


def case_im2col3d(dtype):
    geo = _conv_geometry()
    (x,) = _rng_arrays(dtype, geo.x_shape)
    L = int(np.prod(geo.out_size))
    col = np.empty((geo.N, geo.C * geo.taps, L), dtype)
    _launch(launch.im2col3d_config(geo), dtype, (x, col) + launch.im2col_args(geo))
    expected = vol2col(x, geo.kernel, geo.stride, geo.padding, geo.dilation)
    return col, expected.reshape(col.shape)


def case_col2im3d(dtype):
    geo = _conv_geometry()
    L = int(np.prod(geo.out_size))
    (col,) = _rng_arrays(dtype, (geo.N, geo.C * geo.taps, L))
    gx = np.empty(geo.x_shape, dtype)
    _launch(launch.col2im3d_config(geo), dtype, (col, gx) + launch.im2col_args(geo))
    expected = col2vol(col.reshape((geo.N, geo.C) + geo.kernel + geo.out_size), geo.x_shape,
                       geo.stride, geo.padding, geo.dilation)
    return gx, expected


def case_conv3d_backward_input(dtype):
    geo = _conv_geometry()
    gy, w = _rng_arrays(dtype, geo.y_shape, geo.w_shape)
    gx = np.empty(geo.x_shape, dtype)
    _launch(launch.conv3d_backward_input_config(geo), dtype,
            (gy, w, gx) + launch.conv_args(geo))
    return gx, cpu_reference.conv3d_backward_input(gy, w, geo.x_shape, *_conv_settings())


def case_conv3d_backward_weight(dtype):
    geo = _conv_geometry()
    gy, x = _rng_arrays(dtype, geo.y_shape, geo.x_shape)
    gw = np.empty(geo.w_shape, dtype)
    # both passes: with this geometry pass 1 cuts the products into several slices
    config = launch.conv3d_backward_weight_config(geo, np.dtype(dtype).itemsize)
    slices = config.extra["slices"]
    partial = np.empty((slices, *geo.w_shape), dtype)
    _launch(config, dtype, (gy, x, partial) + launch.conv_args(geo) + launch.weight_grad_args(config))
    _launch(launch.conv3d_backward_weight_reduce_config(geo.w_shape, slices), dtype,
            (partial, gw) + launch.int32_args(gw.size, slices))
    return gw, cpu_reference.conv3d_backward_weight(gy, x, geo.w_shape, *_conv_settings())


# NumPy roundings of float32 to the tensor-core input formats (as float32 values): tf32 as
# cvt.rna.tf32.f32 (10 mantissa bits, ties away from zero), bf16 (7 bits, ties to even), fp16.
def _round_tf32(v):
    u = v.view(np.uint32).astype(np.uint64)
    return ((u + 0x1000) & ~np.uint64(0x1FFF)).astype(np.uint32).view(np.float32)


def _round_bf16(v):
    u = v.view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16 << 16).astype(np.uint32).view(np.float32)


_TC_ROUND = {"tf32": _round_tf32, "bf16": _round_bf16,
             "fp16": lambda v: v.astype(np.float16).astype(np.float32)}


def case_conv3d_implicit_gemm_tc(dtype):
    """Every precision, each against NumPy's float64 convolution of the inputs rounded the same
    way, so only the kernel's float32 accumulation differs. float32 only (see DTYPES)."""
    geo = _conv_geometry()
    x, w = _rng_arrays(np.float32, geo.x_shape, geo.w_shape)
    got, expected = [], []
    for precision in launch.TC_PRECISIONS:
        y = np.empty(geo.y_shape, np.float32)
        _launch(launch.conv3d_implicit_gemm_tc_config(geo, precision), np.float32,
                (x, w, y) + launch.conv_args(geo))
        r = _TC_ROUND[precision]
        got.append(y.ravel())
        expected.append(cpu_reference.conv3d_forward(r(x).astype(np.float64),
                                                     r(w).astype(np.float64), None,
                                                     *_conv_settings()).ravel())
    return np.concatenate(got), np.concatenate(expected)


def _pool_geometry():
    return PoolGeometry.from_shape(POOL["x_shape"], POOL["kernel"], POOL["stride"],
                                   POOL["padding"], POOL["dilation"], POOL["ceil_mode"])


def _pool_args():
    return POOL["kernel"], POOL["stride"], POOL["padding"], POOL["dilation"], POOL["ceil_mode"]


def case_max_pool3d_forward(dtype):
    geo = _pool_geometry()
    (x,) = _rng_arrays(dtype, geo.x_shape)
    x = np.round(x, 1)  # ties, so "first maximum wins" is exercised
    y = np.empty(geo.y_shape, dtype)
    indices = np.empty(geo.y_shape, np.int64)
    _launch(launch.max_pool3d_forward_config(geo), dtype,
            (x, y, indices) + launch.max_pool_args(geo))
    y_ref, indices_ref = cpu_reference.max_pool3d_forward(x, *_pool_args())
    if not np.array_equal(indices, indices_ref):
        bad = int(np.count_nonzero(indices != indices_ref))
        raise AssertionError(f"{bad} argmax indices differ from NumPy's")
    return y, y_ref


def case_max_pool3d_backward(dtype):
    geo = _pool_geometry()
    x, gy = _rng_arrays(dtype, geo.x_shape, geo.y_shape)
    _, indices = cpu_reference.max_pool3d_forward(x, *_pool_args())
    gx = np.zeros(geo.x_shape, dtype)
    plane, outputs = int(np.prod(geo.x_shape[2:])), int(np.prod(geo.out_size))
    _launch(launch.max_pool3d_backward_config(geo.y_shape), dtype,
            (gy, indices, gx) + launch.int32_args(geo.N * geo.C, plane, outputs))
    return gx, cpu_reference.max_pool3d_backward(gy, indices, geo.x_shape)


def _avg_geometry():
    return PoolGeometry.from_shape(POOL["x_shape"], POOL["kernel"], POOL["stride"],
                                   POOL["padding"], ceil_mode=POOL["ceil_mode"])


def _avg_args(count_include_pad):
    return POOL["kernel"], POOL["stride"], POOL["padding"], POOL["ceil_mode"], count_include_pad


def case_avg_pool3d_forward(dtype):
    geo = _avg_geometry()
    (x,) = _rng_arrays(dtype, geo.x_shape)
    results = []
    for include_pad in (True, False):
        y = np.empty(geo.y_shape, dtype)
        _launch(launch.avg_pool3d_forward_config(geo), dtype,
                (x, y) + launch.avg_pool_args(geo, include_pad))
        results.append((y, cpu_reference.avg_pool3d_forward(x, *_avg_args(include_pad))))
    return tuple(np.concatenate([r[i].ravel() for r in results]) for i in (0, 1))


def case_avg_pool3d_backward(dtype):
    geo = _avg_geometry()
    (gy,) = _rng_arrays(dtype, geo.y_shape)
    results = []
    for include_pad in (True, False):
        gx = np.empty(geo.x_shape, dtype)
        _launch(launch.avg_pool3d_backward_config(geo), dtype,
                (gy, gx) + launch.avg_pool_args(geo, include_pad))
        expected = cpu_reference.avg_pool3d_backward(gy, geo.x_shape, *_avg_args(include_pad))
        results.append((gx, expected))
    return tuple(np.concatenate([r[i].ravel() for r in results]) for i in (0, 1))


def case_bias_add(dtype):
    y, b = _rng_arrays(dtype, (2, 5, 3, 4, 3), (5,))
    expected = y + b.reshape(1, 5, 1, 1, 1)
    _launch(launch.bias_add_config(y.shape), dtype, (y, b) + launch.int32_args(2, 5, 36))
    return y, expected


def _resize_matrices(mode, align_corners, dtype):
    return tuple(resize_matrix(i, o, mode, None, align_corners, dtype)
                 for i, o in zip(RESIZE["x_shape"][2:], RESIZE["out_size"]))


def case_upsample_trilinear_forward(dtype):
    (x,) = _rng_arrays(dtype, RESIZE["x_shape"])
    shape, out = RESIZE["x_shape"], RESIZE["out_size"]
    results = []
    for mode, align in RESIZE["modes"]:
        matrices = _resize_matrices(mode, align, dtype)
        tap_index, tap_weight, _ = launch.resize_tables(matrices, dtype)
        y = np.empty(shape[:2] + out, dtype)
        _launch(launch.upsample_trilinear_forward_config(shape, out), dtype,
                (x, y, tap_index, tap_weight) + launch.resize_args(shape, out))
        results.append((y, resize_forward(x, matrices)))
    return tuple(np.concatenate([r[i].ravel() for r in results]) for i in (0, 1))


def case_upsample_trilinear_backward(dtype):
    shape, out = RESIZE["x_shape"], RESIZE["out_size"]
    (gy,) = _rng_arrays(dtype, shape[:2] + out)
    results = []
    for mode, align in RESIZE["modes"]:
        matrices = _resize_matrices(mode, align, dtype)
        tap_index, tap_weight, out_span = launch.resize_tables(matrices, dtype)
        gx = np.empty(shape, dtype)
        _launch(launch.upsample_trilinear_backward_config(shape, out), dtype,
                (gy, gx, tap_index, tap_weight, out_span) + launch.resize_args(shape, out))
        results.append((gx, resize_backward(gy, matrices)))
    return tuple(np.concatenate([r[i].ravel() for r in results]) for i in (0, 1))


CASES = {name[len("case_"):]: fn for name, fn in globals().items() if name.startswith("case_")}
# Kernels with entry points for some dtypes only, and why (the others have f32 and f64).
DTYPES = {"conv3d_implicit_gemm_tc": ((np.dtype(np.float32),),
                                      "no float64 entry: tensor cores take float32 here; the "
                                      "provider runs float64 on conv3d_tiled")}


def skip_reason(kernel: str, dtype) -> str | None:
    """Why ``kernel`` has no ``dtype`` entry point to check, or None when it has one."""
    dtypes, reason = DTYPES.get(kernel, ((np.dtype(np.float32), np.dtype(np.float64)), ""))
    return None if np.dtype(dtype) in dtypes else reason
TOLERANCE = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}


def run_case(kernel: str, dtype=np.float32) -> float:
    """Run one kernel in emulation; return its max relative error vs NumPy, raise if too large."""
    got, expected = CASES[kernel](np.dtype(dtype).type)
    if got.shape != expected.shape:
        raise AssertionError(f"shape {got.shape}, NumPy gives {expected.shape}")
    scale = max(1.0, float(np.max(np.abs(expected))))
    error = float(np.max(np.abs(got.astype(np.float64) - expected))) / scale
    if not error <= TOLERANCE[np.dtype(dtype)]:  # also catches NaN
        raise AssertionError(f"max relative error {error:.3g} vs NumPy exceeds "
                             f"{TOLERANCE[np.dtype(dtype)]:g}")
    return error

