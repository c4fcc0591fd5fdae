"""Strategy ``'channels-last'``: 2D im2col of each input plane in NDHWC layout, summed over kd.

In NCDHW, one im2col copy per tap moves rows of OW floats: 5 floats per row for a 5x5x5
output (a2), so NumPy spends its time on per-row overhead, not on bytes. In channels-last
layout the innermost run is the C channels of one voxel, and with stride 1 and dilation 1
along W the kW taps of a row are *adjacent* voxels, so one copy moves kW*C contiguous floats
(96 for a2) per output voxel and kernel row.

Each chunk of samples is first copied into a zero-padded slab ordered (plane, sample, H, W, C).
The 2D columns of every plane are built once (the copies above, for all planes at once)::

    cols[q, n, oh, ow, kh, kw, c] = slab[q, n, oh*s + kh*d, ow*s + kw*d, c]

and, because planes are the outermost axis, the planes that kernel tap ``kd`` reads for all
output planes of the chunk are one contiguous block ``cols[kd : kd + OD]``: a (voxels,
kH*kW*C) matrix with rows ordered (od, n, oh, ow). So a 3D convolution is kD GEMMs of the 2D
columns, and every voxel is copied kH*kW times instead of kD*kH*kW::

    forward:      y_cl (voxels, K)        = sum over kd of  cols[kd block] @ W_cl[kd] (kH*kW*C, K)
    weight grad:  gW_cl[kd] (kH*kW*C, K)  += cols[kd block]^T @ gy^T
    input grad:   dcols[kd block]         += gy^T @ W_cl[kd]^T, then added back tap by tap

with ``gy`` copied as (K, voxels) (``_gy_wide``); BLAS reads the transposed operands in place.

(With a depth stride or dilation > 1 a kd block is every s-th plane and NumPy copies it
together for the GEMM.) Only the layout and the order of the sums change; the mathematics is
that of ``im2col_gemm``.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import numba_copy
from .geometry import ConvGeometry
from .workspace import Workspace, chunks, get_workspace_limit, plan_chunks, zeroed


def _slab_depth(geo, odc):
    return (odc - 1) * geo.stride[0] + geo.dilation[0] * (geo.kernel[0] - 1) + 1


def _padded_hw(geo):
    (_, H, W), (_, ph, pw) = geo.in_size, geo.padding
    return H + ph[0] + ph[1], W + pw[0] + pw[1]


def _plan(geo, itemsize, workspace_limit, what):
    """Chunk (n samples, od output planes): the slab, the 2D columns, y/gy of the chunk and a product."""
    limit = get_workspace_limit() if workspace_limit is None else workspace_limit
    Hp, Wp = _padded_hw(geo)
    taps2d = geo.kernel[1] * geo.kernel[2]

    def bytes_for(n, od):
        planes = _slab_depth(geo, od)
        slab = planes * n * Hp * Wp * geo.Cg
        cols = planes * n * geo.plane * taps2d * geo.Cg
        outs = 2 * od * n * geo.plane * max(geo.Kg, taps2d * geo.Cg)
        return (slab + cols + outs) * itemsize
    n, od = plan_chunks(geo.N, geo.out_size[0], bytes_for, limit, what)
    return n, od, Workspace(limit)


def _depth_window(geo, od0, odc):
    """Input planes the chunk reads: slab plane q is input plane d_lo + q; the valid ones."""
    d_lo = od0 * geo.stride[0] - geo.padding[0][0]
    Sd = _slab_depth(geo, odc)
    a, b = max(d_lo, 0), min(d_lo + Sd, geo.in_size[0])
    return d_lo, Sd, a, b


def _fill_slab(ws, xg, geo, n0, n1, od0, odc):
    """Zero-padded copy (Sd, n, Hp, Wp, C) of the input planes the chunk reads."""
    Hp, Wp = _padded_hw(geo)
    d_lo, Sd, a, b = _depth_window(geo, od0, odc)
    slab = ws.take("slab", (Sd, n1 - n0, Hp, Wp, geo.Cg), xg.dtype, zero=True)
    (_, H, W), ph, pw = geo.in_size, geo.padding[1][0], geo.padding[2][0]
    if b > a:
        slab[a - d_lo:b - d_lo, :, ph:ph + H, pw:pw + W] = \
            xg[n0:n1, :, a:b].transpose(2, 0, 3, 4, 1)
    return slab


def _hw_windows(slab, geo):
    """Yield ``(index into the (kh, kw) axes, view of the slab)`` for each copy of the 2D im2col.

    With stride 1 and dilation 1 along W the kW taps of one kernel row are merged into one
    window of kW*C contiguous floats (overlapping windows: read-only); otherwise each tap is its
    own window of C floats."""
    (_, s_h, s_w), (_, d_h, d_w) = geo.stride, geo.dilation
    (_, kH, kW), (_, OH, OW) = geo.kernel, geo.out_size
    for kh in range(kH):
        rows = slab[:, :, kh * d_h:kh * d_h + (OH - 1) * s_h + 1:s_h]
        if s_w == 1 and d_w == 1:  # (Sd, n, OH, OW, kW*C)
            st = rows.strides
            yield (kh, slice(None)), as_strided(
                rows, shape=rows.shape[:3] + (OW, kW * geo.Cg), strides=st[:3] + (st[3], st[4]),
                writeable=False)
            continue
        for kw in range(kW):
            yield (kh, kw), rows[:, :, :, kw * d_w:kw * d_w + (OW - 1) * s_w + 1:s_w]


def _im2col(ws, slab, geo):
    """The 2D columns (Sd, n, OH, OW, kH, kW, C) of every plane of the slab."""
    _, OH, OW = geo.out_size
    _, kH, kW = geo.kernel
    Sd, n = slab.shape[:2]
    cols = ws.take("col", (Sd, n, OH, OW, kH, kW, geo.Cg), slab.dtype)
    for (kh, kw), window in _hw_windows(slab, geo):
        if isinstance(kw, slice):
            cols[:, :, :, :, kh] = window.reshape(window.shape[:4] + (kW, geo.Cg))
        else:
            cols[:, :, :, :, kh, kw] = window
    return cols


def _kd_block(cols, geo, kd, odc):
    """The planes tap ``kd`` reads for output planes 0..odc-1 of the chunk, as (voxels, kH*kW*C)
    rows ordered (od, n, oh, ow): a view when the depth stride is 1, else a copy."""
    s, d = geo.stride[0], geo.dilation[0]
    return cols[kd * d:kd * d + (odc - 1) * s + 1:s].reshape(-1, int(np.prod(cols.shape[4:])))


def _weight_cl(wg):
    """(K, C, kD, kH, kW) -> (kD, kH*kW*C, K): per depth tap, the row order of the columns."""
    kD = wg.shape[2]
    return np.ascontiguousarray(wg.transpose(2, 3, 4, 1, 0)).reshape(kD, -1, wg.shape[0])


def _gy_wide(ws, gyg, n0, n1, od0, od1):
    """``gy`` of the chunk as (K, od*n*OH*OW): columns in the row order of ``_kd_block``. This
    layout (not (voxels, K)) keeps the copy's inner runs OH*OW floats long on both sides; the
    GEMMs read it transposed at no cost."""
    src = gyg[n0:n1, :, od0:od1].transpose(1, 2, 0, 3, 4)
    buf = ws.take("gy", src.shape, gyg.dtype)
    buf[...] = src
    return buf.reshape(src.shape[0], -1)



def forward(x, w, b, stride, padding, dilation, groups, workspace_limit=None):
    geo = ConvGeometry.of(x.shape, w.shape, stride, padding, dilation, groups)
    n, od, ws = _plan(geo, x.itemsize, workspace_limit, "conv3d forward (channels-last)")
    y = np.empty((geo.N, geo.K) + geo.out_size, dtype=x.dtype)
    g1, (Cg, Kg), (_, OH, OW) = geo.one_group(), (geo.Cg, geo.Kg), geo.out_size
    for g in range(groups):
        xg, yg = x[:, g * Cg:(g + 1) * Cg], y[:, g * Kg:(g + 1) * Kg]
        w_cl = _weight_cl(w[g * Kg:(g + 1) * Kg])
        for n0, n1, od0, od1 in chunks(geo.N, geo.out_size[0], n, od):
            nc, odc = n1 - n0, od1 - od0
            cols = _im2col(ws, _fill_slab(ws, xg, g1, n0, n1, od0, odc), g1)
            y_cl = ws.take("gy", (odc * nc * OH * OW, Kg), x.dtype)
            prod = ws.take("prod", y_cl.shape, x.dtype)
            for kd in range(geo.kernel[0]):
                np.matmul(_kd_block(cols, g1, kd, odc), w_cl[kd], out=prod if kd else y_cl)
                if kd:
                    y_cl += prod
            yg[n0:n1, :, od0:od1] = y_cl.reshape(odc, nc, OH, OW, Kg).transpose(1, 4, 0, 2, 3)
    if b is not None:
        y += b.reshape(1, -1, 1, 1, 1)
    return y


def backward_weight(gy, x, w_shape, stride, padding, dilation, groups, workspace_limit=None):
    geo = ConvGeometry.of(x.shape, w_shape, stride, padding, dilation, groups)
    n, od, ws = _plan(geo, x.itemsize, workspace_limit, "conv3d backward (weight, channels-last)")
    gw = np.empty(w_shape, dtype=x.dtype)
    g1, (Cg, Kg), (kD, kH, kW) = geo.one_group(), (geo.Cg, geo.Kg), geo.kernel
    for g in range(groups):
        xg, gyg = x[:, g * Cg:(g + 1) * Cg], gy[:, g * Kg:(g + 1) * Kg]
        gw_cl = np.zeros((kD, kH * kW * Cg, Kg), dtype=x.dtype)
        for n0, n1, od0, od1 in chunks(geo.N, geo.out_size[0], n, od):
            cols = _im2col(ws, _fill_slab(ws, xg, g1, n0, n1, od0, od1 - od0), g1)
            gy_w = _gy_wide(ws, gyg, n0, n1, od0, od1)
            for kd in range(kD):
                gw_cl[kd] += _kd_block(cols, g1, kd, od1 - od0).T @ gy_w.T
        gw[g * Kg:(g + 1) * Kg] = gw_cl.reshape(kD, kH, kW, Cg, Kg).transpose(4, 3, 0, 1, 2)
    return gw


def backward_input(gy, w, x_shape, stride, padding, dilation, groups, workspace_limit=None):
    geo = ConvGeometry.of(x_shape, w.shape, stride, padding, dilation, groups)
    n, od, ws = _plan(geo, gy.itemsize, workspace_limit, "conv3d backward (input, channels-last)")
    gx = zeroed(x_shape, dtype=gy.dtype)
    g1, (Cg, Kg), (_, OH, OW) = geo.one_group(), (geo.Cg, geo.Kg), geo.out_size
    (s_d, s_h, s_w), (d_d, d_h, d_w) = geo.stride, geo.dilation
    kD, kH, kW = geo.kernel
    (_, H, W), ph, pw = geo.in_size, geo.padding[1][0], geo.padding[2][0]
    Hp, Wp = _padded_hw(g1)
    for g in range(groups):
        gxg, gyg = gx[:, g * Cg:(g + 1) * Cg], gy[:, g * Kg:(g + 1) * Kg]
        w_cl = _weight_cl(w[g * Kg:(g + 1) * Kg])
        for n0, n1, od0, od1 in chunks(geo.N, geo.out_size[0], n, od):
            nc, odc = n1 - n0, od1 - od0
            d_lo, Sd, a, b = _depth_window(g1, od0, odc)
            gy_w = _gy_wide(ws, gyg, n0, n1, od0, od1)
            dcols = ws.take("col", (Sd, nc, OH, OW, kH, kW, Cg), gy.dtype, zero=True)
            prod = ws.take("prod", (odc, nc, OH, OW, kH, kW, Cg), gy.dtype)
            for kd in range(kD):  # the adjoint of the kD GEMMs of the forward pass
                np.matmul(gy_w.T, w_cl[kd].T, out=prod.reshape(gy_w.shape[1], -1))
                dcols[kd * d_d:kd * d_d + (odc - 1) * s_d + 1:s_d] += prod
            slab = ws.take("slab", (Sd, nc, Hp, Wp, Cg), gy.dtype, zero=True)
            # the adjoint of the 2D im2col: every tap adds its window back (compiled loop)
            numba_copy.col2im_channels_last(slab, dcols, (s_h, s_w), (d_h, d_w))
            if b > a:
                gxg[n0:n1, :, a:b] += slab[a - d_lo:b - d_lo, :, ph:ph + H,
                                           pw:pw + W].transpose(1, 4, 0, 2, 3)
    return gx
