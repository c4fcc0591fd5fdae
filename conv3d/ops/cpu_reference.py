"""The CPU kernel provider: convolution as im2col + one GEMM, pooling over strided slices.

This module implements the kernel-provider contract of ``conv3d.core.backend`` (arrays in,
arrays out, no autograd). Arguments are validated by the ops layer before these functions run.
Notation: x (N, C, D, H, W), weight (K, C/G, kD, kH, kW) with G = groups, output
(N, K, OD, OH, OW), L = OD*OH*OW output voxels per sample, and per axis

    o = floor((i + p_lo + p_hi - d*(k - 1) - 1) / s) + 1.

Groups: the C input channels split into G groups of C/G and the K filters into G groups of K/G;
filter group g sees only channel group g. Because the channel axis is the outermost axis of a
column, reshaping the columns to (N, G, C/G*kD*kH*kW, L) and the weight to (G, K/G, C/G*kD*kH*kW)
turns the convolution into a *batched* matmul over (N, G). With G = 1 it is a plain GEMM per sample.
Dilation only changes which input voxels ``vol2col`` gathers, so it needs nothing here.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..core.backend import get_array_module
from ..core.geometry import PoolGeometry
from .im2col import col2vol, pad_volume, vol2col, window_slices


# ---- convolution ----------------------------------------------------------------------------

def conv3d_forward(x, w, b, stride, padding, dilation, groups):
    """y (N, K, OD, OH, OW) = weight @ vol2col(x) (+ bias), cross-correlation, no kernel flip."""
    xp = get_array_module(x)
    N, C = x.shape[:2]
    K = w.shape[0]
    G = groups
    col = vol2col(x, w.shape[2:], stride, padding, dilation)   # (N, C, kD, kH, kW, OD, OH, OW)
    OD, OH, OW = col.shape[5:]
    col = col.reshape(N, G, -1, OD * OH * OW)                  # (N, G, C/G*kD*kH*kW, L)
    w_mat = w.reshape(G, K // G, -1)                           # (G, K/G, C/G*kD*kH*kW)
    y = xp.matmul(w_mat, col)                                  # (N, G, K/G, L)
    y = y.reshape(N, K, OD, OH, OW)
    if b is not None:
        y += b.reshape(1, K, 1, 1, 1)
    return y


def conv3d_backward(gy, x, w, stride, padding, dilation, groups, output_mask=(True, True)):
    """``(gx, gw)``, ``None`` where ``output_mask`` is False: the two gradients below."""
    gx = conv3d_backward_input(gy, w, x.shape, stride, padding, dilation, groups) \
        if output_mask[0] else None
    gw = conv3d_backward_weight(gy, x, w.shape, stride, padding, dilation, groups) \
        if output_mask[1] else None
    return gx, gw


def conv3d_backward_input(gy, w, x_shape, stride, padding, dilation, groups):
    """gx = col2vol(weight^T @ gy): each output gradient flows back along the weights that
    produced it, onto the input voxels they multiplied."""
    xp = get_array_module(gy)
    N, K, OD, OH, OW = gy.shape
    C = x_shape[1]
    G = groups
    kD, kH, kW = w.shape[2:]
    gy_mat = gy.reshape(N, G, K // G, OD * OH * OW)            # (N, G, K/G, L)
    w_mat = w.reshape(G, K // G, -1)                           # (G, K/G, C/G*kD*kH*kW)
    gcol = xp.matmul(w_mat.transpose(0, 2, 1), gy_mat)         # (N, G, C/G*kD*kH*kW, L)
    gcol = gcol.reshape(N, C, kD, kH, kW, OD, OH, OW)
    return col2vol(gcol, x_shape, stride, padding, dilation)


def conv3d_backward_weight(gy, x, w_shape, stride, padding, dilation, groups):
    """gw = gy @ vol2col(x)^T, summed over the batch: how much each tap saw of what it changed."""
    xp = get_array_module(gy)
    N, K, OD, OH, OW = gy.shape
    G = groups
    col = vol2col(x, w_shape[2:], stride, padding, dilation)
    col = col.reshape(N, G, -1, OD * OH * OW)                  # (N, G, C/G*kD*kH*kW, L)
    gy_mat = gy.reshape(N, G, K // G, OD * OH * OW)            # (N, G, K/G, L)
    gw = xp.matmul(gy_mat, col.transpose(0, 1, 3, 2))          # (N, G, K/G, C/G*kD*kH*kW)
    return gw.sum(axis=0).reshape(w_shape)


# ---- pooling --------------------------------------------------------------------------------

def _pool_geometry(in_size, kernel_size, stride, padding, dilation, ceil_mode):
    """Output size, and padding (before, after) that makes every window fit in the padded array
    (``PoolGeometry.padding_pairs``). Max pooling ignores the extra positions under ceil_mode
    (they are -inf); average pooling adds zeros there and its divisor rule decides."""
    geo = PoolGeometry(1, 1, *in_size, tuple(kernel_size), tuple(stride), tuple(padding),
                       tuple(dilation), ceil_mode)
    return geo.out_size, geo.padding_pairs


def max_pool3d_forward(x, kernel_size, stride, padding, dilation, ceil_mode,
                       return_indices=True):
    """The maximum of every window, and where it came from (PyTorch's ``return_indices``).

    Returns ``(y, indices)``, both (N, C, OD, OH, OW); ``indices`` are int64 flat indices into the
    D*H*W voxels of the unpadded (n, c) volume, ``None`` unless ``return_indices`` (inference:
    only the maximum, one ``xp.maximum`` per tap, which propagates NaN too). Padding counts as
    -inf and is never chosen. On ties the first maximum in (kd, kh, kw) scan order wins, because
    a later tap must be *strictly* larger to take over; a NaN always takes over, so NaN
    propagates (as in PyTorch).
    """
    xp = get_array_module(x)
    N, C, D, H, W = x.shape
    (OD, OH, OW), padding6 = _pool_geometry((D, H, W), kernel_size, stride, padding, dilation,
                                            ceil_mode)
    xpad = pad_volume(x, padding6, value=-np.inf)
    taps = itertools.product(*(range(k) for k in kernel_size))
    if not return_indices:
        best = None
        for tap in taps:
            window = xpad[(slice(None), slice(None))
                          + window_slices(tap, stride, dilation, (OD, OH, OW))]
            best = window.copy() if best is None else xp.maximum(best, window, out=best)
        return best, None
    best = xp.full((N, C, OD, OH, OW), -np.inf, dtype=x.dtype)
    index = xp.full((N, C, OD, OH, OW), -1, dtype=np.int64)
    for tap in taps:
        window = xpad[(slice(None), slice(None))
                      + window_slices(tap, stride, dilation, (OD, OH, OW))]
        # the unpadded coordinates this tap reads, per axis, for every output position
        zd, zh, zw = (xp.arange(o) * s + k * d - p for o, s, k, d, p
                      in zip((OD, OH, OW), stride, tap, dilation, padding))
        inside = (((zd >= 0) & (zd < D))[:, None, None] & ((zh >= 0) & (zh < H))[None, :, None]
                  & ((zw >= 0) & (zw < W))[None, None, :])
        flat = (zd[:, None, None] * H + zh[None, :, None]) * W + zw[None, None, :]
        # strictly larger wins (first max on ties); NaN wins; the first real voxel starts it off
        take = (window > best) | xp.isnan(window) | ((index < 0) & inside)
        best = xp.where(take, window, best)
        index = xp.where(take, flat, index)
    return best, index


def max_pool3d_backward(gy, indices, x_shape):
    """Route each output gradient to the one input voxel its maximum came from (adding up)."""
    xp = get_array_module(gy)
    N, C = x_shape[:2]
    gx = xp.zeros((N * C, int(np.prod(x_shape[2:]))), dtype=gy.dtype)
    rows = xp.arange(N * C)[:, None]
    xp.add.at(gx, (rows, indices.reshape(N * C, -1)), gy.reshape(N * C, -1))
    return gx.reshape(x_shape)


def _avg_divisor(xp, in_size, kernel_size, stride, padding, out, count_include_pad, dtype):
    """PyTorch's divisor for every window, (OD, OH, OW).

    Per axis a window starts at ``start = o*s - p`` and is first clipped to the *padded* input:
    ``end = min(start + k, i + p)``; with ``count_include_pad`` the divisor is that clipped size
    (so under ceil_mode a window running past the padded edge does not count the overhang).
    Without it, the window is clipped further to the real input ``[0, i)``. The divisor of a 3D
    window is the product of the three axes' sizes.
    """
    sizes = []
    for i, k, s, p, o in zip(in_size, kernel_size, stride, padding, out):
        start = xp.arange(o) * s - p
        end = xp.minimum(start + k, i + p)
        if count_include_pad:
            sizes.append(end - start)
        else:
            sizes.append(xp.minimum(end, i) - xp.maximum(start, 0))
    sd, sh, sw = sizes
    return (sd[:, None, None] * sh[None, :, None] * sw[None, None, :]).astype(dtype)


def avg_pool3d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad):
    """The mean of every window: the sum of the kernel taps' strided slices over the divisor."""
    xp = get_array_module(x)
    N, C, D, H, W = x.shape
    dilation = (1, 1, 1)
    out, padding6 = _pool_geometry((D, H, W), kernel_size, stride, padding, dilation, ceil_mode)
    xpad = pad_volume(x, padding6, value=0.0)
    total = xp.zeros((N, C) + out, dtype=x.dtype)
    for tap in itertools.product(*(range(k) for k in kernel_size)):
        total += xpad[(slice(None), slice(None)) + window_slices(tap, stride, dilation, out)]
    return total / _avg_divisor(xp, (D, H, W), kernel_size, stride, padding, out,
                                count_include_pad, x.dtype)


def avg_pool3d_backward(gy, x_shape, kernel_size, stride, padding, ceil_mode, count_include_pad):
    """Each window's gradient gy/divisor goes to every voxel of the window: col2vol of a
    column tensor that repeats gy/divisor over the taps (a broadcast view, no copy)."""
    xp = get_array_module(gy)
    N, C = x_shape[:2]
    dilation = (1, 1, 1)
    out, padding6 = _pool_geometry(x_shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    g = gy / _avg_divisor(xp, x_shape[2:], kernel_size, stride, padding, out,
                          count_include_pad, gy.dtype)
    gcol = xp.broadcast_to(g[:, :, None, None, None], (N, C) + tuple(kernel_size) + out)
    return col2vol(gcol, x_shape, stride, padding6, dilation)
