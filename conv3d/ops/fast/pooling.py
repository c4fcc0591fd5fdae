"""Max pooling for the fast provider: one pass for the common non-overlapping windows.

The reference (``cpu_reference.max_pool3d_forward``) visits the kD*kH*kW taps one by one and
updates the running maximum and its index with ``where``: eight full passes for a 2x2x2 window.
When the windows tile the volume (stride == kernel, no padding, no dilation: ``MaxPool3d(2)``),
a compiled loop visits every voxel once and keeps the maximum and its index in registers (the
same rule: strictly larger wins, a NaN always wins). Every other setting goes to the
reference. The backward pass adds each gradient to its input voxel with one ``bincount``
(which also handles overlapping windows, where one voxel can win several times).
"""
from __future__ import annotations

import numpy as np

from .. import cpu_reference


def _tiles(x, kernel_size, stride, padding, dilation, ceil_mode):
    """True when the windows tile the volume exactly (the fast case)."""
    if not isinstance(x, np.ndarray) or tuple(stride) != tuple(kernel_size):
        return False
    if any(padding) or any(d != 1 for d in dilation):
        return False
    return not ceil_mode or all(i % k == 0 for i, k in zip(x.shape[2:], kernel_size))


_kernel = None


def _pool_kernel():
    """A compiled single pass over the tiling windows (serial, as those of channels_last.py)."""
    global _kernel
    if _kernel is None:
        from numba import njit  # noqa: PLC0415

        @njit(cache=True)
        def kernel(x, y, idx):
            N, C, D, H, W = x.shape
            OD, OH, OW = y.shape[2], y.shape[3], y.shape[4]
            kd, kh, kw = D // OD, H // OH, W // OW
            for n in range(N):
                for c in range(C):
                    for od in range(OD):
                        for oh in range(OH):
                            for ow in range(OW):
                                d0, h0, w0 = od * kd, oh * kh, ow * kw
                                best, at = x[n, c, d0, h0, w0], (d0 * H + h0) * W + w0
                                for a in range(kd):
                                    for b in range(kh):
                                        row = x[n, c, d0 + a, h0 + b]
                                        for e in range(kw):
                                            v = row[w0 + e]
                                            # strictly larger (first max wins ties) or NaN
                                            if v > best or v != v:
                                                best, at = v, ((d0 + a) * H + h0 + b) * W + w0 + e
                                y[n, c, od, oh, ow] = best
                                idx[n, c, od, oh, ow] = at
        _kernel = kernel
    return _kernel


def max_pool3d_forward(x, kernel_size, stride, padding, dilation, ceil_mode,
                       return_indices=True):
    """(y, indices or None) as the contract says; the reference handles the general case."""
    if not _tiles(x, kernel_size, stride, padding, dilation, ceil_mode):
        return cpu_reference.max_pool3d_forward(x, kernel_size, stride, padding, dilation,
                                                ceil_mode, return_indices)
    N, C, D, H, W = x.shape
    out = (N, C) + tuple(i // k for i, k in zip((D, H, W), kernel_size))
    crop = x[:, :, :out[2] * kernel_size[0], :out[3] * kernel_size[1], :out[4] * kernel_size[2]]
    y, idx = np.empty(out, dtype=x.dtype), np.empty(out, dtype=np.int64)
    _pool_kernel()(np.ascontiguousarray(crop) if x.dtype.kind == "f" else crop, y, idx)
    if not return_indices:
        return y, None
    if crop.shape != x.shape:  # indices count voxels of the uncropped volume
        d, rem = np.divmod(idx, crop.shape[3] * crop.shape[4])
        h, w = np.divmod(rem, crop.shape[4])
        idx = (d * H + h) * W + w
    return y, idx


def max_pool3d_backward(gy, indices, x_shape):
    """gx: each output gradient added to the input voxel its maximum came from."""
    N, C = x_shape[:2]
    volume = int(np.prod(x_shape[2:]))
    flat = (indices.reshape(N * C, -1) + (np.arange(N * C) * volume)[:, None]).ravel()
    gx = np.bincount(flat, weights=gy.ravel(), minlength=N * C * volume)  # float64 sums
    return gx.astype(gy.dtype, copy=False).reshape(x_shape)
