"""The kernel provider for devices 'cuda' (CuPy on a GPU) and 'cuda-emu' (the CPU emulator).

One code path serves both: ``xp`` is ``cupy`` or ``numpy``, and ``get_function`` returns a CuPy
``RawKernel`` or an emulated one with the same call, ``fn(grid, block, args, shared_mem=...)``.
The provider implements the array-level contract of ``conv3d.core.backend`` (arrays in, arrays
out, no autograd; arguments already validated by ``conv3d.ops``).

Convolution has four algorithms (``set_conv_algorithm``):

* ``'direct'``: kernels/conv3d_direct.cu, one thread per output;
* ``'tiled'`` (default): kernels/conv3d_tiled.cu, shared-memory tiles; falls back to 'direct'
  for the rare geometry whose smallest tile does not fit in shared memory;
* ``'im2col'``: kernels/im2col3d.cu + a GEMM through ``xp.matmul`` (cuBLAS on a GPU, NumPy in
  emulation), in chunks under the workspace limit (``conv3d.cuda.gemm``); its input gradient
  folds the GEMM's columns back with kernels/col2im3d.cu;
* ``'tensor-core'``: kernels/conv3d_implicit_gemm_tc.cu, an implicit GEMM on tensor cores (WMMA)
  for float32: the inputs are rounded to the precision ``set_tensor_core_precision`` chooses
  ('tf32', the default, 'bf16' or 'fp16'), products accumulate in float32. float64 runs the exact
  'tiled' kernel instead (tensor cores have no reduced-precision mode for double), as PyTorch's
  TF32 switch only ever affects float32. On a GPU it needs compute capability 8.0 (Ampere) for
  tf32 and bf16, 7.0 for fp16.

'direct', 'tiled' and 'tensor-core' share the backward kernels conv3d_backward_input.cu (gather) and
conv3d_backward_weight.cu (a two-pass reduction). Each gradient is its own kernel, so
``conv3d_backward`` launches the ones its ``output_mask`` asks for, one after the other.

A transposed convolution has no kernel of its own: it is conv3d's adjoint, so
``conv3d.ops.conv_transpose`` computes its forward with ``conv3d_backward`` (input gradient,
conv3d_backward_input.cu or col2im3d.cu) and its input gradient with ``conv3d_forward``.
Resizing (``interpolate``, nearest and trilinear) runs kernels/upsample_trilinear_forward.cu and
its gather backward upsample_trilinear_backward.cu on per-axis tables (``launch.resize_tables``).
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

from ..core.backend import cupy_module, require_cupy
from ..core.geometry import ConvGeometry, PoolGeometry
from . import gemm, launch
from .sources import get_function

CONV_ALGORITHMS = ("direct", "tiled", "im2col", "tensor-core")
_conv_algorithm = "tiled"
TENSOR_CORE_PRECISIONS = launch.TC_PRECISIONS
# 'tf32' by default, as PyTorch allows TF32 for cuDNN convolutions by default
# (torch.backends.cudnn.allow_tf32 = True): of the three it keeps float32's exponent range (no
# overflow) and the most mantissa bits (10, like fp16; bf16 has 7).
_tensor_core_precision = "tf32"
# The compute capability (major * 10 + minor) each precision's WMMA needs.
_TENSOR_CORE_MIN_CC = {"tf32": 80, "bf16": 80, "fp16": 70}


def set_conv_algorithm(name: str) -> None:
    """Choose the convolution kernels used on 'cuda' and 'cuda-emu': 'direct', 'tiled',
    'im2col' or 'tensor-core' (float32 only; see ``set_tensor_core_precision``)."""
    global _conv_algorithm
    if name not in CONV_ALGORITHMS:
        raise ValueError(f"conv algorithm must be one of {', '.join(CONV_ALGORITHMS)}, got {name!r}")
    _conv_algorithm = name


def get_conv_algorithm() -> str:
    return _conv_algorithm


def set_tensor_core_precision(name: str) -> None:
    """The rounding of float32 inputs in the 'tensor-core' algorithm, like PyTorch's
    ``torch.backends.cudnn.allow_tf32``: 'tf32' (default; 10-bit mantissa, float32's range),
    'bf16' (7-bit mantissa, float32's range) or 'fp16' (10-bit mantissa, |x| <= 65504).
    Accumulation is float32 in all three; the other algorithms are exact float32 always."""
    global _tensor_core_precision
    if name not in TENSOR_CORE_PRECISIONS:
        raise ValueError(f"tensor-core precision must be one of "
                         f"{', '.join(TENSOR_CORE_PRECISIONS)}, got {name!r}")
    _tensor_core_precision = name


def get_tensor_core_precision() -> str:
    return _tensor_core_precision


@contextlib.contextmanager
def tensor_core_precision(name: str):
    """``with tensor_core_precision('bf16'): ...`` uses ``name`` inside the block only."""
    previous = get_tensor_core_precision()
    set_tensor_core_precision(name)
    try:
        yield
    finally:
        set_tensor_core_precision(previous)


@contextlib.contextmanager
def conv_algorithm(name: str):
    """``with conv_algorithm('im2col'): ...`` uses ``name`` inside the block only."""
    previous = get_conv_algorithm()
    set_conv_algorithm(name)
    try:
        yield
    finally:
        set_conv_algorithm(previous)


class CudaKernels:
    """The provider for one device, ``'cuda'`` or ``'cuda-emu'``."""

    def __init__(self, device: str):
        self.device = device

    def __repr__(self):
        return f"CudaKernels({self.device!r}, conv algorithm {get_conv_algorithm()!r})"

    @property
    def xp(self):
        if self.device == "cuda":
            return cupy_module() or require_cupy()
        import numpy  # noqa: PLC0415
        return numpy

    def launch(self, config: launch.LaunchConfig, dtype, args) -> None:
        """Launch ``<config.kernel>_<f32|f64>`` with ``config``'s grid, block and shared memory."""
        fn = get_function(config.kernel, dtype, self.device, entry=config.function)
        fn(config.grid, config.block, args, shared_mem=config.shared_mem)

    def _check_tensor_cores(self, precision: str) -> None:
        """On a GPU: raise RuntimeError when it has no tensor cores for ``precision``."""
        if self.device != "cuda":
            return  # the emulator runs every precision
        cc = int(self.xp.cuda.Device().compute_capability)
        need = _TENSOR_CORE_MIN_CC[precision]
        if cc < need:
            raise RuntimeError(
                f"the 'tensor-core' conv algorithm with precision {precision!r} needs a GPU of "
                f"compute capability {need // 10}.{need % 10} or newer, this one has "
                f"{cc // 10}.{cc % 10}; use conv3d.cuda.set_tensor_core_precision('fp16') (7.0+) "
                f"or conv3d.cuda.set_conv_algorithm('tiled')")

    def _contiguous(self, *arrays):
        return tuple(None if a is None else self.xp.ascontiguousarray(a) for a in arrays)

    def _zeros_if_empty(self, shape, dtype, *shapes):
        """``xp.zeros(shape)`` when any of ``shapes`` has no elements, else ``None``.

        An empty batch (N = 0, which PyTorch accepts) must not reach a launch: CUDA rejects a
        grid with a zero dimension as an invalid configuration, and the im2col reshapes cannot
        infer a size from zero elements. With nothing to read the results are known without a
        kernel: empty outputs, and zero for a gradient that sums over the (empty) batch."""
        if any(math.prod(s) == 0 for s in shapes):
            return self.xp.zeros(tuple(shape), dtype=dtype)
        return None

    # ---- convolution ---------------------------------------------------------------------------
    def conv3d_forward(self, x, w, b, stride, padding, dilation, groups):
        x, w, b = self._contiguous(x, w, b)
        geo = ConvGeometry.from_shapes(x.shape, w.shape, stride, padding, dilation, groups)
        launch.check_int32(geo)
        empty = self._zeros_if_empty(geo.y_shape, x.dtype, geo.x_shape, geo.y_shape)
        if empty is not None:
            return empty
        algorithm = _conv_algorithm
        if algorithm == "tensor-core" and x.dtype != np.float32:
            algorithm = "tiled"  # float64: exact, no tensor cores (see the module docstring)
        if algorithm == "im2col":
            y = gemm.conv_forward(self, x, w, geo)
        elif algorithm == "tensor-core":
            precision = _tensor_core_precision
            self._check_tensor_cores(precision)
            y = self.xp.empty(geo.y_shape, dtype=x.dtype)
            self.launch(launch.conv3d_implicit_gemm_tc_config(geo, precision), x.dtype,
                        (x, w, y) + launch.conv_args(geo))
        else:
            y = self.xp.empty(geo.y_shape, dtype=x.dtype)
            config = None
            if algorithm == "tiled":
                config = launch.conv3d_tiled_config(geo, x.dtype.itemsize)
            if config is None:  # 'direct', or a tile too large for shared memory
                config = launch.conv3d_direct_config(geo)
                self.launch(config, x.dtype, (x, w, y) + launch.conv_args(geo))
            else:
                self.launch(config, x.dtype, (x, w, y) + launch.conv_args(geo)
                            + launch.int32_args(config.extra["c_tile"]))
        if b is not None:
            spatial = math.prod(geo.out_size)
            self.launch(launch.bias_add_config(y.shape), y.dtype,
                        (y, b) + launch.int32_args(geo.N, geo.K, spatial))
        return y

    def conv3d_backward(self, gy, x, w, stride, padding, dilation, groups,
                        output_mask=(True, True)):
        """``(gx, gw)``, ``None`` where ``output_mask`` is False."""
        settings = (stride, padding, dilation, groups)
        gx = self._backward_input(gy, w, x.shape, *settings) if output_mask[0] else None
        gw = self._backward_weight(gy, x, w.shape, *settings) if output_mask[1] else None
        return gx, gw

    def _backward_input(self, gy, w, x_shape, stride, padding, dilation, groups):
        gy, w = self._contiguous(gy, w)
        geo = ConvGeometry.from_shapes(x_shape, w.shape, stride, padding, dilation, groups)
        launch.check_int32(geo)
        empty = self._zeros_if_empty(geo.x_shape, gy.dtype, geo.x_shape, gy.shape)
        if empty is not None:
            return empty
        if _conv_algorithm == "im2col":
            return gemm.backward_input(self, gy, w, geo)
        gx = self.xp.empty(geo.x_shape, dtype=gy.dtype)
        self.launch(launch.conv3d_backward_input_config(geo), gy.dtype,
                    (gy, w, gx) + launch.conv_args(geo))
        return gx

    def _backward_weight(self, gy, x, w_shape, stride, padding, dilation, groups):
        gy, x = self._contiguous(gy, x)
        geo = ConvGeometry.from_shapes(x.shape, w_shape, stride, padding, dilation, groups)
        launch.check_int32(geo)
        empty = self._zeros_if_empty(w_shape, gy.dtype, x.shape, gy.shape)
        if empty is not None:  # a sum over no samples: a zero gradient, as torch gives
            return empty
        if _conv_algorithm == "im2col":
            return gemm.backward_weight(self, gy, x, geo)
        gw = self.xp.empty(tuple(w_shape), dtype=gy.dtype)
        config = launch.conv3d_backward_weight_config(geo, gy.dtype.itemsize)
        slices = config.extra["slices"]
        # pass 1 writes one partial sum per (slice, weight); with one slice that is gw itself
        partial = gw if slices == 1 else self.xp.empty((slices, *w_shape), dtype=gy.dtype)
        self.launch(config, gy.dtype,
                    (gy, x, partial) + launch.conv_args(geo) + launch.weight_grad_args(config))
        if slices > 1:  # pass 2: add the slices' partial sums in slice order
            self.launch(launch.conv3d_backward_weight_reduce_config(w_shape, slices), gy.dtype,
                        (partial, gw) + launch.int32_args(math.prod(w_shape), slices))
        return gw

    # ---- pooling -------------------------------------------------------------------------------
    def max_pool3d_forward(self, x, kernel_size, stride, padding, dilation, ceil_mode,
                           return_indices=True):
        """The kernel writes the argmax whatever ``return_indices`` says; without it the
        indices are dropped at once."""
        (x,) = self._contiguous(x)
        geo = PoolGeometry.from_shape(x.shape, kernel_size, stride, padding, dilation,
                                      ceil_mode)
        launch.check_int32(geo)
        if math.prod(geo.y_shape) == 0:
            y = self.xp.zeros(geo.y_shape, dtype=x.dtype)
            indices = self.xp.zeros(geo.y_shape, dtype=self.xp.int64)
            return y, (indices if return_indices else None)
        y = self.xp.empty(geo.y_shape, dtype=x.dtype)
        indices = self.xp.empty(geo.y_shape, dtype=self.xp.int64)
        self.launch(launch.max_pool3d_forward_config(geo), x.dtype,
                    (x, y, indices) + launch.max_pool_args(geo))
        return y, (indices if return_indices else None)

    def max_pool3d_backward(self, gy, indices, x_shape):
        gy, indices = self._contiguous(gy, indices)
        N, C, D, H, W = x_shape
        plane, outputs = D * H * W, math.prod(gy.shape[2:])
        gx = self.xp.zeros(tuple(x_shape), dtype=gy.dtype)  # the kernel adds into zeros
        launch._check_int32("the input", math.prod(x_shape))
        if math.prod(gy.shape) == 0:  # nothing to scatter back (an empty batch)
            return gx
        self.launch(launch.max_pool3d_backward_config(gy.shape, gy.dtype.itemsize), gy.dtype,
                    (gy, indices, gx) + launch.int32_args(N * C, plane, outputs))
        return gx

    def avg_pool3d_forward(self, x, kernel_size, stride, padding, ceil_mode, count_include_pad):
        (x,) = self._contiguous(x)
        geo = PoolGeometry.from_shape(x.shape, kernel_size, stride, padding,
                                      ceil_mode=ceil_mode)
        launch.check_int32(geo)
        empty = self._zeros_if_empty(geo.y_shape, x.dtype, geo.y_shape)
        if empty is not None:
            return empty
        y = self.xp.empty(geo.y_shape, dtype=x.dtype)
        self.launch(launch.avg_pool3d_forward_config(geo), x.dtype,
                    (x, y) + launch.avg_pool_args(geo, count_include_pad))
        return y

    def avg_pool3d_backward(self, gy, x_shape, kernel_size, stride, padding, ceil_mode,
                            count_include_pad):
        (gy,) = self._contiguous(gy)
        geo = PoolGeometry.from_shape(x_shape, kernel_size, stride, padding,
                                      ceil_mode=ceil_mode)
        launch.check_int32(geo)
        empty = self._zeros_if_empty(geo.x_shape, gy.dtype, geo.x_shape, gy.shape)
        if empty is not None:
            return empty
        gx = self.xp.empty(geo.x_shape, dtype=gy.dtype)
        self.launch(launch.avg_pool3d_backward_config(geo), gy.dtype,
                    (gy, gx) + launch.avg_pool_args(geo, count_include_pad))
        return gx

    # ---- resizing ------------------------------------------------------------------------------
    def interpolate_forward(self, x, matrices):
        """``x`` resized by the three (O, I) matrices of ``conv3d.ops.resample`` (nearest or
        trilinear, PyTorch's index rules), with kernels/upsample_trilinear_forward.cu."""
        (x,) = self._contiguous(x)
        out_size = tuple(M.shape[0] for M in matrices)
        y_shape = tuple(x.shape[:2]) + out_size
        empty = self._zeros_if_empty(y_shape, x.dtype, x.shape)
        if empty is not None:
            return empty
        launch._check_int32("the output", math.prod(y_shape))
        tap_index, tap_weight, _ = launch.resize_tables(matrices, x.dtype)
        y = self.xp.empty(y_shape, dtype=x.dtype)
        self.launch(launch.upsample_trilinear_forward_config(x.shape, out_size), x.dtype,
                    (x, y, self.xp.asarray(tap_index), self.xp.asarray(tap_weight))
                    + launch.resize_args(x.shape, out_size))
        return y

    def interpolate_backward(self, gy, matrices):
        """The input gradient of ``interpolate_forward`` (the matrices' transposes), with
        kernels/upsample_trilinear_backward.cu: a gather, so every run gives the same bits."""
        (gy,) = self._contiguous(gy)
        x_shape = tuple(gy.shape[:2]) + tuple(M.shape[1] for M in matrices)
        empty = self._zeros_if_empty(x_shape, gy.dtype, gy.shape)
        if empty is not None:
            return empty
        launch._check_int32("the input", math.prod(x_shape))
        tap_index, tap_weight, out_span = (self.xp.asarray(t) for t in
                                           launch.resize_tables(matrices, gy.dtype))
        gx = self.xp.empty(x_shape, dtype=gy.dtype)
        out_size = tuple(gy.shape[2:])
        self.launch(launch.upsample_trilinear_backward_config(x_shape, out_size), gy.dtype,
                    (gy, gx, tap_index, tap_weight, out_span)
                    + launch.resize_args(x_shape, out_size))
        return gx
