"""Strategy ``'channels-last'``: im2col in NDHWC layout, so every copy moves whole channel runs.

In NCDHW, one im2col copy per tap moves rows of OW floats: 5 floats per row for a 5x5x5
output (a2), so NumPy spends its time on per-row overhead, not on bytes. In channels-last
layout (N, D, H, W, C) the innermost run is the C channels of one voxel, and with stride 1 and
dilation 1 along W the kW taps of a row are *adjacent* voxels, so one copy moves kW*C
contiguous floats (96 for a2) per output voxel and kernel row. The column matrix is then
(voxels, taps*C), row-major, and the products are plain GEMMs::

    forward:         y_cl  (voxels, K)     = col (voxels, taps*C) @ W_cl (taps*C, K)
    weight grad:     gW_cl (taps*C, K)    += col^T @ gy_cl (voxels, K)
    input grad:      dcol  (voxels, taps*C) = gy_cl @ W_cl^T, then added back tap by tap

Each chunk of samples / output planes is first copied into a zero-padded channels-last slab
(workspace), so the windows never leave the data. Only the layout changes; the mathematics is
that of ``im2col_gemm``.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .geometry import ConvGeometry
from .workspace import Workspace, chunks, get_workspace_limit, plan_chunks


def _slab_depth(geo, odc):
    return (odc - 1) * geo.stride[0] + geo.dilation[0] * (geo.kernel[0] - 1) + 1


def _padded_hw(geo):
    (_, H, W), (_, ph, pw) = geo.in_size, geo.padding
    return H + ph[0] + ph[1], W + pw[0] + pw[1]


def _plan(geo, itemsize, workspace_limit, what):
    limit = get_workspace_limit() if workspace_limit is None else workspace_limit
    Hp, Wp = _padded_hw(geo)

    def bytes_for(n, od):
        slab = n * _slab_depth(geo, od) * Hp * Wp * geo.Cg
        voxels = n * od * geo.plane
        return (slab + voxels * (geo.taps * geo.Cg + geo.Kg)) * itemsize
    n, od = plan_chunks(geo.N, geo.out_size[0], bytes_for, limit, what)
    return n, od, Workspace(limit)


def _depth_window(geo, od0, odc):
    """Input planes the chunk reads: slab plane q is input plane d_lo + q; the valid ones."""
    d_lo = od0 * geo.stride[0] - geo.padding[0][0]
    Sd = _slab_depth(geo, odc)
    a, b = max(d_lo, 0), min(d_lo + Sd, geo.in_size[0])
    return d_lo, Sd, a, b


def _fill_slab(ws, xg, geo, n0, n1, od0, odc):
    """Zero-padded channels-last copy (n, Sd, Hp, Wp, C) of the input planes the chunk reads."""
    Hp, Wp = _padded_hw(geo)
    d_lo, Sd, a, b = _depth_window(geo, od0, odc)
    slab = ws.take("slab", (n1 - n0, Sd, Hp, Wp, geo.Cg), xg.dtype, zero=True)
    (_, H, W), ph, pw = geo.in_size, geo.padding[1][0], geo.padding[2][0]
    if b > a:
        slab[:, a - d_lo:b - d_lo, ph:ph + H, pw:pw + W] = \
            xg[n0:n1, :, a:b].transpose(0, 2, 3, 4, 1)
    return slab


def _windows(slab, geo, odc):
    """Yield ``(index into the tap axes, strided view of the slab)`` for each copy of im2col.

    With stride 1 and dilation 1 along W the kW taps of one kernel row are merged into one
    window of kW*C contiguous floats; otherwise each tap is its own window of C floats."""
    (s_d, s_h, s_w), (d_d, d_h, d_w) = geo.stride, geo.dilation
    kD, kH, kW = geo.kernel
    _, OH, OW = geo.out_size
    merged = s_w == 1 and d_w == 1
    for kd in range(kD):
        for kh in range(kH):
            rows = slab[:, kd * d_d:kd * d_d + (odc - 1) * s_d + 1:s_d,
                        kh * d_h:kh * d_h + (OH - 1) * s_h + 1:s_h]
            if merged:  # (n, od, OH, OW, kW*C): overlapping windows, read-only
                st = rows.strides
                yield (kd, kh, slice(None)), as_strided(
                    rows, shape=rows.shape[:3] + (OW, kW * geo.Cg),
                    strides=st[:3] + (st[3], st[4]), writeable=False)
                continue
            for kw in range(kW):
                yield (kd, kh, kw), rows[:, :, :, kw * d_w:kw * d_w + (OW - 1) * s_w + 1:s_w]


def _im2col(ws, slab, geo, nc, odc):
    _, OH, OW = geo.out_size
    col = ws.take("col", (nc, odc, OH, OW) + geo.kernel + (geo.Cg,), slab.dtype)
    kW = geo.kernel[2]
    for (kd, kh, kw), window in _windows(slab, geo, odc):
        if isinstance(kw, slice):
            col[:, :, :, :, kd, kh] = window.reshape(window.shape[:4] + (kW, geo.Cg))
        else:
            col[:, :, :, :, kd, kh, kw] = window
    return col.reshape(nc * odc * OH * OW, -1)


def _weight_cl(wg):
    """(K, C, kD, kH, kW) -> (kD*kH*kW*C, K), the row order of the channels-last columns."""
    return np.ascontiguousarray(wg.transpose(2, 3, 4, 1, 0)).reshape(-1, wg.shape[0])


def _gy_cl(ws, gyg, n0, n1, od0, od1):
    src = gyg[n0:n1, :, od0:od1].transpose(0, 2, 3, 4, 1)
    buf = ws.take("gy", src.shape, gyg.dtype)
    buf[...] = src
    return buf.reshape(-1, src.shape[-1])


def _group_geo(geo):
    return ConvGeometry(geo.N, geo.Cg, geo.in_size, geo.Kg, 1, geo.kernel, geo.stride,
                        geo.padding, geo.dilation, geo.out_size)


def forward(x, w, b, stride, padding, dilation, groups, workspace_limit=None):
    geo = ConvGeometry.of(x.shape, w.shape, stride, padding, dilation, groups)
    n, od, ws = _plan(geo, x.itemsize, workspace_limit, "conv3d forward (channels-last)")
    y = np.empty((geo.N, geo.K) + geo.out_size, dtype=x.dtype)
    g1, (Cg, Kg), (_, OH, OW) = _group_geo(geo), (geo.Cg, geo.Kg), geo.out_size
    for g in range(groups):
        xg, yg = x[:, g * Cg:(g + 1) * Cg], y[:, g * Kg:(g + 1) * Kg]
        w_cl = _weight_cl(w[g * Kg:(g + 1) * Kg])
        for n0, n1, od0, od1 in chunks(geo.N, geo.out_size[0], n, od):
            nc, odc = n1 - n0, od1 - od0
            col = _im2col(ws, _fill_slab(ws, xg, g1, n0, n1, od0, odc), g1, nc, odc)
            prod = ws.take("gy", (col.shape[0], Kg), x.dtype)
            np.matmul(col, w_cl, out=prod)
            yg[n0:n1, :, od0:od1] = prod.reshape(nc, odc, OH, OW, Kg).transpose(0, 4, 1, 2, 3)
    if b is not None:
        y += b.reshape(1, -1, 1, 1, 1)
    return y


def backward_weight(gy, x, w_shape, stride, padding, dilation, groups, workspace_limit=None):
    geo = ConvGeometry.of(x.shape, w_shape, stride, padding, dilation, groups)
    n, od, ws = _plan(geo, x.itemsize, workspace_limit, "conv3d backward (weight, channels-last)")
    gw = np.empty(w_shape, dtype=x.dtype)
    g1, (Cg, Kg) = _group_geo(geo), (geo.Cg, geo.Kg)
    for g in range(groups):
        xg, gyg = x[:, g * Cg:(g + 1) * Cg], gy[:, g * Kg:(g + 1) * Kg]
        gw_cl = np.zeros((geo.taps * Cg, Kg), dtype=x.dtype)
        for n0, n1, od0, od1 in chunks(geo.N, geo.out_size[0], n, od):
            nc, odc = n1 - n0, od1 - od0
            col = _im2col(ws, _fill_slab(ws, xg, g1, n0, n1, od0, odc), g1, nc, odc)
            gw_cl += col.T @ _gy_cl(ws, gyg, n0, n1, od0, od1)
        gw[g * Kg:(g + 1) * Kg] = gw_cl.reshape(geo.kernel + (Cg, Kg)).transpose(4, 3, 0, 1, 2)
    return gw


def backward_input(gy, w, x_shape, stride, padding, dilation, groups, workspace_limit=None):
    geo = ConvGeometry.of(x_shape, w.shape, stride, padding, dilation, groups)
    n, od, ws = _plan(geo, gy.itemsize, workspace_limit, "conv3d backward (input, channels-last)")
    gx = np.zeros(x_shape, dtype=gy.dtype)
    g1, (Cg, Kg), (_, OH, OW) = _group_geo(geo), (geo.Cg, geo.Kg), geo.out_size
    (s_d, s_h, s_w), (d_d, d_h, d_w) = geo.stride, geo.dilation
    (_, H, W), ph, pw = geo.in_size, geo.padding[1][0], geo.padding[2][0]
    for g in range(groups):
        gxg, gyg = gx[:, g * Cg:(g + 1) * Cg], gy[:, g * Kg:(g + 1) * Kg]
        w_cl = _weight_cl(w[g * Kg:(g + 1) * Kg])
        for n0, n1, od0, od1 in chunks(geo.N, geo.out_size[0], n, od):
            nc, odc = n1 - n0, od1 - od0
            dcol = ws.take("col", (nc, odc, OH, OW) + geo.kernel + (Cg,), gy.dtype)
            np.matmul(_gy_cl(ws, gyg, n0, n1, od0, od1), w_cl.T,
                      out=dcol.reshape(nc * odc * OH * OW, -1))
            d_lo, Sd, a, b = _depth_window(g1, od0, odc)
            Hp, Wp = _padded_hw(g1)
            slab = ws.take("slab", (nc, Sd, Hp, Wp, Cg), gy.dtype, zero=True)
            for kd, kh, kw in g1.taps_iter():  # col2im: every tap adds its window back
                slab[:, kd * d_d:kd * d_d + (odc - 1) * s_d + 1:s_d,
                     kh * d_h:kh * d_h + (OH - 1) * s_h + 1:s_h,
                     kw * d_w:kw * d_w + (OW - 1) * s_w + 1:s_w] += dcol[:, :, :, :, kd, kh, kw]
            if b > a:
                gxg[n0:n1, :, a:b] += slab[:, a - d_lo:b - d_lo, ph:ph + H,
                                           pw:pw + W].transpose(0, 4, 1, 2, 3)
    return gx
