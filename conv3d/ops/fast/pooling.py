"""Max and average pooling for the fast provider: compiled loops (max pooling one axis at a time).

The reference (``cpu_reference``) visits the kD*kH*kW taps one by one as whole-array NumPy
passes (and, for max pooling's indices, several passes per tap). Here each output voxel reads
its window once, clipped to the input, so padding costs nothing and needs no padded copy::

    max:  y[n, c, o] = max over the window's voxels inside x, and its flat index (ties: the
          first in (kd, kh, kw) order wins, since a later one must be strictly larger; a NaN
          always wins, so NaN propagates; PyTorch's rule), as three one-axis maxima
    avg:  y[n, c, o] = sum over the window's voxels inside x / divisor (PyTorch's divisor:
          the window clipped to the padded input, or with ``count_include_pad=False`` to x)

The backward passes are the adjoints: max pooling adds each gradient to the voxel its maximum
came from, average pooling adds gradient / divisor to every voxel of the window. Every loop
runs over (sample, channel) units, each writing only its own volume, so the units are shared
among threads (``sample_threads.run_units``) and the sums are deterministic.
"""
from __future__ import annotations

import math

import numpy as np

from ...core.geometry import PoolGeometry
from .. import cpu_reference
from .sample_threads import run_units

FEW_TAPS = 9  # window voxels up to which inference takes one NumPy pass per tap


def _geometry(x_shape, kernel_size, stride, padding, dilation=(1, 1, 1), ceil_mode=False):
    geo = PoolGeometry(*x_shape, tuple(kernel_size), tuple(stride), tuple(padding),
                       tuple(dilation), bool(ceil_mode))
    return geo, geo.y_shape


def _settings(geo):
    return geo.kernel + geo.stride + geo.padding


def max_pool3d_forward(x, kernel_size, stride, padding, dilation, ceil_mode,
                       return_indices=True):
    """``(y, indices or None)``: indices are int64 flat indices into each (n, c) volume.

    Windows of at most ``FEW_TAPS`` voxels without indices (inference) take the reference's
    one ``np.maximum`` per tap, over whole strided rows. The rest take a compiled loop that
    also records the indices: where windows overlap along some axis, the separable one
    (``_pool_loops.max_forward``: 3 + 3 + 3 comparisons for a 3x3x3 window instead of 27,
    since neighbouring windows share their one-axis maxima); where they do not (a 2x2x2 window
    with stride 2), nothing is shared, and the loop over each window's taps
    (``max_forward_taps``) saves the separable passes' intermediates."""
    if not return_indices and math.prod(kernel_size) <= FEW_TAPS:
        return cpu_reference.max_pool3d_forward(x, kernel_size, stride, padding, dilation,
                                                ceil_mode, return_indices=False)
    geo, y_shape = _geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    y, idx = np.empty(y_shape, x.dtype), np.empty(y_shape, np.int64)
    overlap = any(s < (k - 1) * d + 1 for k, s, d in zip(geo.kernel, geo.stride, geo.dilation))
    loop = _kernels()[0] if overlap else _kernels()[4]
    run_units(loop, geo.N * geo.C, x.size * sum(geo.kernel), x, y, idx, *_settings(geo),
              *geo.dilation)
    return y, (idx if return_indices else None)


def max_pool3d_backward(gy, indices, x_shape):
    """gx: each output gradient added to the input voxel its maximum came from."""
    gx = np.empty(x_shape, gy.dtype)
    run_units(_kernels()[1], x_shape[0] * x_shape[1], gy.size, np.ascontiguousarray(gy),
              np.ascontiguousarray(indices), gx)
    return gx


def _global(geo) -> bool:
    """One window covering the whole volume, no padding (a network's head, e.g. S3D's
    AvgPool3d((2, 7, 7)) on 2x7x7): its mean is one matrix-vector product, which BLAS runs
    faster than the loop's sums (a voxel per step)."""
    return geo.kernel == geo.in_size and not any(geo.padding)


def avg_pool3d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad):
    geo, y_shape = _geometry(x.shape, kernel_size, stride, padding, ceil_mode=ceil_mode)
    if _global(geo):
        V = math.prod(geo.kernel)
        sums = np.ascontiguousarray(x).reshape(-1, V) @ np.ones(V, dtype=x.dtype)
        return (sums / x.dtype.type(V)).reshape(y_shape)
    y = np.empty(y_shape, x.dtype)
    run_units(_kernels()[2], geo.N * geo.C, y.size * math.prod(geo.kernel), x, y,
              *_settings(geo), bool(count_include_pad))
    return y


def avg_pool3d_backward(gy, x_shape, kernel_size, stride, padding, ceil_mode, count_include_pad):
    geo, _ = _geometry(x_shape, kernel_size, stride, padding, ceil_mode=ceil_mode)
    if _global(geo):
        share = gy.reshape(gy.shape[:2] + (1, 1, 1)) / gy.dtype.type(math.prod(geo.kernel))
        return np.broadcast_to(share, x_shape).copy()
    gx = np.empty(x_shape, gy.dtype)
    run_units(_kernels()[3], geo.N * geo.C, gy.size * math.prod(geo.kernel), gy, gx,
              *_settings(geo), bool(count_include_pad))
    return gx


_compiled = None


def _kernels():
    """``(max forward, max backward, avg forward, avg backward, max forward by taps)``,
    compiled on first use."""
    global _compiled
    if _compiled is not None:
        return _compiled
    from . import _pool_loops as loops  # noqa: PLC0415 - numba loads only when a loop runs

    _compiled = (loops.max_forward, loops.max_backward, loops.avg_forward, loops.avg_backward,
                 loops.max_forward_taps)
    return _compiled
