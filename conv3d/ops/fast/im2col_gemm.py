"""Strategy ``'im2col'``: chunked im2col into one reused buffer, then one GEMM per chunk.

The readable version (``conv3d/ops/im2col.py``) builds the whole column matrix at once. Here the
buffer is sized by the workspace planner and refilled for each chunk of samples and output
planes (``workspace.py``). The column buffer is (C*taps, n*od*OH*OW), so one GEMM
``W (K, C*taps) @ col`` covers every sample of the chunk; with several samples the product
(K, n, ...) is then copied into y's (n, K, ...) layout, with one it is written straight into y.
Groups run one after another on channel slices (views, no copies)::

    forward:      y  (K, voxels)      = W (K, C*taps)  @ col (C*taps, voxels)
    weight grad:  gW (K, C*taps)     += gy (K, voxels) @ col^T
    input grad:   dcol (C*taps, voxels) = W^T @ gy, then col2im adds dcol back onto gx

Output ``o`` along an axis reads input ``i = o*s + k*d - p_lo`` for kernel tap ``k``. Instead of
copying the input into a zero-padded buffer, each tap asks which outputs land inside the data
(``ConvGeometry.tap_ranges``) and copies only those: one strided copy per tap, as in Chainer's
N-d im2col; the rest of the column matrix is written as zeros. A 1x1x1 kernel without padding
needs no columns at all: its GEMM operand is x read with the stride (``_pointwise_forward``).
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from ...core.geometry import ConvGeometry
from .workspace import Workspace, chunks, output, plan_chunks


def span(lo: int, hi: int, i_lo: int, s: int) -> slice:
    """The input positions read by outputs ``lo .. hi-1`` (the first reads ``i_lo``)."""
    return slice(i_lo, i_lo + (hi - lo - 1) * s + 1, s)


def zero_outside(dst, ranges) -> None:
    """Zero ``dst[..., od, oh, ow]`` outside the box ``ranges`` (per axis ``(lo, hi, _)``).
    Empty slabs are skipped: a slice assignment costs microseconds even when it writes nothing,
    and a small layer's im2col would make six per tap."""
    (d0, d1, _), (h0, h1, _), (w0, w1, _) = ranges
    OD, OH, OW = dst.shape[-3:]
    if d0:
        dst[..., :d0, :, :] = 0
    if d1 < OD:
        dst[..., d1:, :, :] = 0
    inner = dst[..., d0:d1, :, :]
    if h0:
        inner[..., :h0, :] = 0
    if h1 < OH:
        inner[..., h1:, :] = 0
    if w0:
        inner[..., h0:h1, :w0] = 0
    if w1 < OW:
        inner[..., h0:h1, w1:] = 0


def _taps(geo: ConvGeometry):
    return itertools.product(*(range(k) for k in geo.kernel))


def im2col_into(col, x, geo: ConvGeometry, n0, n1, od0, od1) -> None:
    """Fill ``col`` (C, kD, kH, kW, n, od, OH, OW) with the patches of ``x[n0:n1]`` that output
    planes ``od0:od1`` read, zeros where they read padding."""
    xs = x[n0:n1].transpose(1, 0, 2, 3, 4)  # (C, n, D, H, W): a view, no copy
    s = geo.stride
    for tap in _taps(geo):
        dst = col[:, tap[0], tap[1], tap[2]]   # (C, n, od, OH, OW)
        ranges = geo.tap_ranges(tap, od0, od1)
        (d0, d1, i_d), (h0, h1, i_h), (w0, w1, i_w) = ranges
        if d0 == d1 or h0 == h1 or w0 == w1:
            dst.fill(0)
            continue
        zero_outside(dst, ranges)
        dst[:, :, d0:d1, h0:h1, w0:w1] = xs[:, :, span(d0, d1, i_d, s[0]),
                                            span(h0, h1, i_h, s[1]), span(w0, w1, i_w, s[2])]


def col2im_add(gx, col, geo: ConvGeometry, n0, n1, od0, od1) -> None:
    """The adjoint of ``im2col_into``: add every column entry back onto the input position it
    was copied from (``gx`` starts at zero; overlapping patches add up)."""
    gxs = gx[n0:n1].transpose(1, 0, 2, 3, 4)
    s = geo.stride
    for tap in _taps(geo):
        (d0, d1, i_d), (h0, h1, i_h), (w0, w1, i_w) = geo.tap_ranges(tap, od0, od1)
        if d0 == d1 or h0 == h1 or w0 == w1:
            continue
        gxs[:, :, span(d0, d1, i_d, s[0]), span(h0, h1, i_h, s[1]), span(w0, w1, i_w, s[2])] += \
            col[:, tap[0], tap[1], tap[2], :, d0:d1, h0:h1, w0:w1]


def _plan(geo, itemsize, workspace_limit, what):
    """Chunk (n, od): the column buffer, plus, with several samples, the (K, n*od*OH*OW)
    product that reorders y or gy between the GEMM's layout and NCDHW."""
    def bytes_for(n, od):
        voxels = n * od * geo.plane
        return (geo.Cg * geo.taps + (geo.Kg if n > 1 else 0)) * voxels * itemsize
    n, od = plan_chunks(geo.N, geo.OD, bytes_for, workspace_limit, what)
    return n, od, Workspace(workspace_limit)


def _col(ws, g1, nc, odc, dtype):
    return ws.take("col", (g1.C,) + g1.kernel + (nc, odc, g1.OH, g1.OW), dtype)


def _gy_rows(ws, gyg, n0, n1, od0, od1):
    """``gy`` of the chunk as (K, n*od*OH*OW), the column order of ``col``."""
    if n1 - n0 == 1:
        return gyg[n0, :, od0:od1].reshape(gyg.shape[1], -1)
    g2 = ws.take("prod", (gyg.shape[1], n1 - n0, (od1 - od0) * math.prod(gyg.shape[3:])),
                 gyg.dtype)
    g2[...] = gyg[n0:n1, :, od0:od1].reshape(n1 - n0, gyg.shape[1], -1).transpose(1, 0, 2)
    return g2.reshape(g2.shape[0], -1)


# Output voxels per sample below which a 1x1x1 kernel's weight gradient is one GEMM over the
# samples' voxels (gy and x copied to (K, N*V) and (C, N*V)), not one per sample: the
# per-sample GEMMs' inner dimension is V, too short for BLAS, and their N (K, C) products
# outweigh the copies (a classifier's 1x1x1 volume, S3D's 2x3x3 and 4x7x7 heads).
SHORT_VOLUME = 96


def pointwise(geo) -> bool:
    """A 1x1x1 kernel without padding: its im2col matrix is x itself, strided (no columns)."""
    return geo.taps == 1 and not any(lo or hi for lo, hi in geo.padding)


def _strided(a, geo):
    """The voxels of ``a`` (N, C, D, H, W) that a 1x1x1 kernel reads: (N, C, OD*OH*OW), a view
    for stride 1, else one copy."""
    (sd, sh, sw), (OD, OH, OW) = geo.stride, geo.out_size
    return a[:, :, :OD * sd:sd, :OH * sh:sh, :OW * sw:sw].reshape(a.shape[0], a.shape[1], -1)


def _pointwise_forward(x, w, b, geo, out):
    """y[n] (K, voxels) = W (K, C) @ x[n, :, ::s, ::s, ::s] (C, voxels), per group."""
    y = output(geo.y_shape, x.dtype, out)
    xs, Cg, Kg = _strided(x, geo), geo.Cg, geo.Kg
    ys = y.reshape(geo.N, geo.K, -1)
    for g in range(geo.groups):
        np.matmul(w[g * Kg:(g + 1) * Kg].reshape(Kg, Cg), xs[:, g * Cg:(g + 1) * Cg],
                  out=ys[:, g * Kg:(g + 1) * Kg])
    if b is not None:
        ys += b[:, None]
    return y


def _pointwise_backward(gy, x, w, geo, output_mask, out):
    """gx[n, :, ::s, ::s, ::s] = W^T @ gy[n] (zero elsewhere); gW = sum over n of gy[n] @ x[n]^T."""
    Cg, Kg = geo.Cg, geo.Kg
    gys = gy.reshape(geo.N, geo.K, -1)
    gx = gw = None
    if output_mask[0]:
        gx = output(geo.x_shape, gy.dtype, out, zero=geo.stride != (1, 1, 1))
        (sd, sh, sw), (OD, OH, OW) = geo.stride, geo.out_size
        dst = gx[:, :, :OD * sd:sd, :OH * sh:sh, :OW * sw:sw]
        for g in range(geo.groups):
            wt = w[g * Kg:(g + 1) * Kg].reshape(Kg, Cg).T
            dst[:, g * Cg:(g + 1) * Cg] = (wt @ gys[:, g * Kg:(g + 1) * Kg]).reshape(
                (geo.N, Cg) + geo.out_size)
    if output_mask[1]:
        xs = _strided(x, geo)
        gw = np.empty(geo.w_shape, gy.dtype)
        for g in range(geo.groups):
            gyg, xg = gys[:, g * Kg:(g + 1) * Kg], xs[:, g * Cg:(g + 1) * Cg]
            if xs.shape[2] < SHORT_VOLUME:  # one GEMM over all samples' voxels
                prod = np.tensordot(gyg, xg, axes=([0, 2], [0, 2]))
            else:
                prod = (gyg @ xg.transpose(0, 2, 1)).sum(axis=0)
            gw[g * Kg:(g + 1) * Kg] = prod.reshape(Kg, Cg, 1, 1, 1)
    return gx, gw


def forward(x, w, b, stride, padding, dilation, groups, workspace_limit=None, out=None):
    geo = ConvGeometry.from_shapes(x.shape, w.shape, stride, padding, dilation, groups)
    if pointwise(geo):
        return _pointwise_forward(x, w, b, geo, out)
    n, od, ws = _plan(geo, x.itemsize, workspace_limit, "conv3d forward")
    y = output(geo.y_shape, x.dtype, out)
    g1, Cg, Kg = geo.one_group(), geo.Cg, geo.Kg
    for g in range(groups):
        xg, yg = x[:, g * Cg:(g + 1) * Cg], y[:, g * Kg:(g + 1) * Kg]
        wg = w[g * Kg:(g + 1) * Kg].reshape(Kg, -1)
        for n0, n1, od0, od1 in chunks(geo.N, geo.OD, n, od):
            nc, odc = n1 - n0, od1 - od0
            col = _col(ws, g1, nc, odc, x.dtype)
            im2col_into(col, xg, g1, n0, n1, od0, od1)
            if nc == 1:
                np.matmul(wg, col.reshape(-1, odc * geo.plane),
                          out=yg[n0, :, od0:od1].reshape(Kg, -1))
            else:
                prod = ws.take("prod", (Kg, nc, odc) + geo.out_size[1:], x.dtype)
                np.matmul(wg, col.reshape(-1, nc * odc * geo.plane), out=prod.reshape(Kg, -1))
                yg[n0:n1, :, od0:od1] = prod.transpose(1, 0, 2, 3, 4)
    if b is not None:
        y += b.reshape(1, geo.K, 1, 1, 1)
    return y


def backward(gy, x, w, stride, padding, dilation, groups, output_mask=(True, True),
             workspace_limit=None, out=None):
    """``(gx, gw)``, ``None`` where ``output_mask`` is False; ``out``: the array for ``gx``."""
    geo = ConvGeometry.from_shapes(x.shape, w.shape, stride, padding, dilation, groups)
    if pointwise(geo):
        return _pointwise_backward(gy, x, w, geo, output_mask, out)
    n, od, ws = _plan(geo, gy.itemsize, workspace_limit, "conv3d backward")
    gx = output(geo.x_shape, gy.dtype, out, zero=True) if output_mask[0] else None
    gw = np.zeros(geo.w_shape, dtype=gy.dtype) if output_mask[1] else None
    g1, Cg, Kg = geo.one_group(), geo.Cg, geo.Kg
    for g in range(groups):
        xg, gyg = x[:, g * Cg:(g + 1) * Cg], gy[:, g * Kg:(g + 1) * Kg]
        wg = w[g * Kg:(g + 1) * Kg].reshape(Kg, -1)
        for n0, n1, od0, od1 in chunks(geo.N, geo.OD, n, od):
            nc, odc = n1 - n0, od1 - od0
            if gx is not None:
                col = _col(ws, g1, nc, odc, gy.dtype)
                np.matmul(wg.T, _gy_rows(ws, gyg, n0, n1, od0, od1),
                          out=col.reshape(-1, nc * odc * geo.plane))
                col2im_add(gx[:, g * Cg:(g + 1) * Cg], col, g1, n0, n1, od0, od1)
        if gw is None:
            continue
        gwg = gw[g * Kg:(g + 1) * Kg].reshape(Kg, -1)
        for n0, n1, od0, od1 in chunks(geo.N, geo.OD, n, od):
            col = _col(ws, g1, n1 - n0, od1 - od0, gy.dtype)
            im2col_into(col, xg, g1, n0, n1, od0, od1)
            gwg += _gy_rows(ws, gyg, n0, n1, od0, od1) @ col.reshape(gwg.shape[1], -1).T
    return gx, gw
