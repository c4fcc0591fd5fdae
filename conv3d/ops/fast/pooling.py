"""Max and average pooling for the fast provider: compiled loops over the output voxels.

The reference (``cpu_reference``) visits the kD*kH*kW taps one by one as whole-array NumPy
passes (and, for max pooling's indices, several passes per tap). Here each output voxel reads
its window once, clipped to the input, so padding costs nothing and needs no padded copy::

    max:  y[n, c, o] = max over the window's voxels inside x, and its flat index (ties: the
          first in (kd, kh, kw) order wins, since a later one must be strictly larger; a NaN
          always wins, so NaN propagates; PyTorch's rule)
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


def _geometry(x_shape, kernel_size, stride, padding, dilation=(1, 1, 1), ceil_mode=False):
    geo = PoolGeometry(*x_shape, tuple(kernel_size), tuple(stride), tuple(padding),
                       tuple(dilation), bool(ceil_mode))
    return geo, geo.y_shape


def _settings(geo):
    return geo.kernel + geo.stride + geo.padding


def max_pool3d_forward(x, kernel_size, stride, padding, dilation, ceil_mode,
                       return_indices=True):
    """``(y, indices or None)``: indices are int64 flat indices into each (n, c) volume.
    Without indices (inference) the reference's one ``np.maximum`` per tap is faster: it
    runs on whole strided rows, where the loop's per-voxel comparisons cannot."""
    if not return_indices:
        return cpu_reference.max_pool3d_forward(x, kernel_size, stride, padding, dilation,
                                                ceil_mode, return_indices=False)
    geo, y_shape = _geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    y, idx = np.empty(y_shape, x.dtype), np.empty(y_shape, np.int64)
    units = geo.N * geo.C
    run_units(_kernels()[0], units, y.size * math.prod(geo.kernel), x, y, idx,
              *_settings(geo), *geo.dilation)
    return y, idx


def max_pool3d_backward(gy, indices, x_shape):
    """gx: each output gradient added to the input voxel its maximum came from."""
    gx = np.empty(x_shape, gy.dtype)
    run_units(_kernels()[1], x_shape[0] * x_shape[1], gy.size, np.ascontiguousarray(gy),
              np.ascontiguousarray(indices), gx)
    return gx


def avg_pool3d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad):
    geo, y_shape = _geometry(x.shape, kernel_size, stride, padding, ceil_mode=ceil_mode)
    y = np.empty(y_shape, x.dtype)
    run_units(_kernels()[2], geo.N * geo.C, y.size * math.prod(geo.kernel), x, y,
              *_settings(geo), bool(count_include_pad))
    return y


def avg_pool3d_backward(gy, x_shape, kernel_size, stride, padding, ceil_mode, count_include_pad):
    geo, _ = _geometry(x_shape, kernel_size, stride, padding, ceil_mode=ceil_mode)
    gx = np.empty(x_shape, gy.dtype)
    run_units(_kernels()[3], geo.N * geo.C, gy.size * math.prod(geo.kernel), gy, gx,
              *_settings(geo), bool(count_include_pad))
    return gx


_compiled = None


def _kernels():
    """``(max forward, max backward, avg forward, avg backward)``, compiled on first use."""
    global _compiled
    if _compiled is not None:
        return _compiled
    from numba import njit  # noqa: PLC0415

    @njit(cache=True, nogil=True, inline="always")
    def _taps(o, k, s, p, d, size):
        # the window of output o starts at o*s - p; taps t in [lo, hi) read inside [0, size)
        start = o * s - p
        lo = 0 if start >= 0 else (-start + d - 1) // d
        hi = min(k, (size - 1 - start) // d + 1)
        return start, lo, max(lo, hi)

    @njit(cache=True, nogil=True, inline="always")
    def _divisor(o, k, s, p, size, include_pad):
        start = o * s - p
        end = min(start + k, size + p)
        if include_pad:
            return end - start
        return min(end, size) - max(start, 0)

    @njit(cache=True, nogil=True)
    def max_forward(x, y, idx, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw, u0, u1):
        C, D, H, W = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
        OD, OH, OW = y.shape[2], y.shape[3], y.shape[4]
        for u in range(u0, u1):
            n, c = u // C, u % C
            xc, yc, ic = x[n, c], y[n, c], idx[n, c]
            for od in range(OD):
                zd, ad, bd = _taps(od, kd, sd, pd, dd, D)
                for oh in range(OH):
                    zh, ah, bh = _taps(oh, kh, sh, ph, dh, H)
                    for ow in range(OW):
                        zw, aw, bw = _taps(ow, kw, sw, pw, dw, W)
                        i0, j0, w0 = zd + ad * dd, zh + ah * dh, zw + aw * dw
                        best, at = xc[i0, j0, w0], (i0 * H + j0) * W + w0  # the first tap
                        for a in range(ad, bd):
                            i = zd + a * dd
                            for b in range(ah, bh):
                                j = zh + b * dh
                                for e in range(aw, bw):
                                    v = xc[i, j, zw + e * dw]
                                    if v > best or v != v:
                                        best, at = v, (i * H + j) * W + zw + e * dw
                        yc[od, oh, ow] = best
                        ic[od, oh, ow] = at

    @njit(cache=True, nogil=True)
    def max_backward(gy, idx, gx, u0, u1):
        C = gx.shape[1]
        for u in range(u0, u1):
            n, c = u // C, u % C
            dst, src, at = gx[n, c].reshape(-1), gy[n, c].reshape(-1), idx[n, c].reshape(-1)
            dst[:] = 0
            for q in range(src.size):
                dst[at[q]] += src[q]

    @njit(cache=True, nogil=True)
    def avg_forward(x, y, kd, kh, kw, sd, sh, sw, pd, ph, pw, include_pad, u0, u1):
        C, D, H, W = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
        OD, OH, OW = y.shape[2], y.shape[3], y.shape[4]
        for u in range(u0, u1):
            n, c = u // C, u % C
            xc, yc = x[n, c], y[n, c]
            for od in range(OD):
                zd, ad, bd = _taps(od, kd, sd, pd, 1, D)
                qd = _divisor(od, kd, sd, pd, D, include_pad)
                for oh in range(OH):
                    zh, ah, bh = _taps(oh, kh, sh, ph, 1, H)
                    qh = _divisor(oh, kh, sh, ph, H, include_pad)
                    for ow in range(OW):
                        zw, aw, bw = _taps(ow, kw, sw, pw, 1, W)
                        total = xc[0, 0, 0] * 0
                        for i in range(zd + ad, zd + bd):
                            for j in range(zh + ah, zh + bh):
                                row = xc[i, j]
                                for e in range(zw + aw, zw + bw):
                                    total += row[e]
                        q = qd * qh * _divisor(ow, kw, sw, pw, W, include_pad)
                        yc[od, oh, ow] = total / q

    @njit(cache=True, nogil=True)
    def avg_backward(gy, gx, kd, kh, kw, sd, sh, sw, pd, ph, pw, include_pad, u0, u1):
        C, D, H, W = gx.shape[1], gx.shape[2], gx.shape[3], gx.shape[4]
        OD, OH, OW = gy.shape[2], gy.shape[3], gy.shape[4]
        for u in range(u0, u1):
            n, c = u // C, u % C
            gc, gyc = gx[n, c], gy[n, c]
            gc[...] = 0
            for od in range(OD):
                zd, ad, bd = _taps(od, kd, sd, pd, 1, D)
                qd = _divisor(od, kd, sd, pd, D, include_pad)
                for oh in range(OH):
                    zh, ah, bh = _taps(oh, kh, sh, ph, 1, H)
                    qh = _divisor(oh, kh, sh, ph, H, include_pad)
                    for ow in range(OW):
                        zw, aw, bw = _taps(ow, kw, sw, pw, 1, W)
                        g = gyc[od, oh, ow] / (qd * qh * _divisor(ow, kw, sw, pw, W, include_pad))
                        for i in range(zd + ad, zd + bd):
                            for j in range(zh + ah, zh + bh):
                                row = gc[i, j]
                                for e in range(zw + aw, zw + bw):
                                    row[e] += g

    _compiled = max_forward, max_backward, avg_forward, avg_backward
    return _compiled
