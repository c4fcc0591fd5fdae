"""Strategy ``'channels-last'``: 2D im2col of each input plane in NDHWC layout, summed over kd.

In NCDHW, one im2col copy per tap moves rows of OW floats, and when OW is small NumPy spends
its time on per-row overhead, not on bytes. In channels-last layout the innermost run is the C
channels of one voxel, and with stride 1 and dilation 1 along W the kW taps of a row are
*adjacent* voxels, so one copy moves kW*C contiguous floats per output voxel and kernel row.

The 2D columns of every input plane a chunk of samples reads are built once, planes outermost
(``xpad``: x zero-padded, channels last), by a compiled loop that transposes one NCDHW plane
into a channels-last tile and copies its windows out while the tile is in L1 cache (NumPy
would need two passes: a padded transposed copy, then the windows)::

    cols[q, n, oh, ow, kh, kw, c] = xpad[n, d_lo + q, oh*s + kh*d, ow*s + kw*d, c]

Because planes are the outermost axis, the planes that kernel tap ``kd`` reads for all
output planes of the chunk are one contiguous block ``cols[kd : kd + OD]``: a (voxels,
kH*kW*C) matrix with rows ordered (od, n, oh, ow). So a 3D convolution is kD GEMMs of the 2D
columns, and every voxel is copied kH*kW times instead of kD*kH*kW::

    forward:      y (K, voxels)          = sum_kd  W_r[:, kd] (K, kH*kW*C) @ cols[kd block]^T
    weight grad:  gW_r[kd] (K, kH*kW*C)  += gy (K, voxels) @ cols[kd block]
    input grad:   per output plane, dcols (plane voxels, kD*kH*kW*C) = gy^T @ W_r (one
                  GEMM), then added back tap by tap onto a zero-padded slab (a compiled loop:
                  NumPy would need one strided add per tap) while the block is in cache

with ``W_r`` the weight as (K, kD, kH, kW, C) and ``gy`` copied as (K, voxels) (``_gy_wide``);
BLAS reads the transposed operands in place. The forward's product comes out with K as rows,
y's own layout: with one sample in the chunk it is written straight into y, with several
only the samples axis moves (runs of OH*OW floats).
``backward`` computes both gradients in one pass over the chunks, so ``gy`` is reordered once
for both.

(With a depth stride or dilation > 1 a kd block is every s-th plane and NumPy copies it
together for the GEMM.) Only the layout and the order of the sums change; the mathematics is
that of ``im2col_gemm``. The compiled loops are serial on purpose: they run between two
multi-threaded BLAS calls, and numba's worker threads and the BLAS threads, each spin-waiting
after its turn, slow each other down (docs/benchmarks/notes.md).
"""
from __future__ import annotations

import math

import numpy as np

from ...core.geometry import ConvGeometry
from .workspace import Workspace, chunks, output, plan_chunks


def _padded_hw(geo):
    (_, H, W), (_, ph, pw) = geo.in_size, geo.padding
    return H + ph[0] + ph[1], W + pw[0] + pw[1]


def _plan(geo, itemsize, workspace_limit, what):
    """Chunk (n samples, od output planes): the 2D columns (or the input gradient's columns),
    the padded slab of the input gradient, y/gy of the chunk and a GEMM product."""
    Hp, Wp = _padded_hw(geo)
    taps2d = geo.kernel[1] * geo.kernel[2]

    def bytes_for(n, od):
        planes, voxels = geo.slab_depth(od), od * n * geo.plane
        slab = (planes * n + 1) * Hp * Wp * geo.Cg  # gx's slab; one plane: im2col's tile
        # cols, or the dcols of *all* od planes although backward makes them one plane at a
        # time: smaller chunks that stay in cache (docs/benchmarks/notes.md)
        cols = max(planes * n * geo.plane * taps2d, voxels * geo.taps) * geo.Cg
        outs = 2 * voxels * geo.Kg                  # y_cl and a GEMM product; gy_wide
        return (slab + cols + outs) * itemsize
    n, od = plan_chunks(geo.N, geo.OD, bytes_for, workspace_limit, what)
    return n, od, Workspace(workspace_limit)


def _im2col(ws, xg, geo, n0, n1, od0, odc):
    """The 2D columns (Sd, n, OH, OW, kH, kW, C) of the input planes the chunk reads
    (a compiled loop: the NCDHW planes are transposed and cut into windows in one pass)."""
    _, OH, OW = geo.out_size
    _, kH, kW = geo.kernel
    d_lo, Sd, _, _ = geo.depth_window(od0, odc)
    cols = ws.take("col", (Sd, n1 - n0, OH, OW, kH, kW, geo.Cg), xg.dtype)
    # cols[q, j, oh, ow, kh, kw, c] = xpad[n0+j, c, d_lo+q, oh*s_h + kh*d_h, ow*s_w + kw*d_w]
    _kernels()[1](cols, xg, n0, d_lo, geo.padding[1][0], geo.padding[2][0], *geo.stride[1:],
                  *geo.dilation[1:])
    return cols


def _kd_block(cols, geo, kd, odc):
    """The planes tap ``kd`` reads for output planes 0..odc-1 of the chunk, as (voxels, kH*kW*C)
    rows ordered (od, n, oh, ow): a view when the depth stride is 1, else a copy."""
    s, d = geo.stride[0], geo.dilation[0]
    return cols[kd * d:kd * d + (odc - 1) * s + 1:s].reshape(-1, math.prod(cols.shape[4:]))


def _weight_rows(wg):
    """(K, C, kD, kH, kW) -> (K, kD, kH*kW*C): per filter and depth tap, the column order of
    the columns (``[:, kd]`` is a (K, kH*kW*C) matrix BLAS reads in place)."""
    K, _, kD = wg.shape[:3]
    return np.ascontiguousarray(wg.transpose(0, 2, 3, 4, 1)).reshape(K, kD, -1)


def _gy_wide(ws, gyg, n0, n1, od0, od1):
    """``gy`` of the chunk as (K, od*n*OH*OW): columns in the row order of ``_kd_block``. This
    layout (not (voxels, K)) keeps the copy's inner runs OH*OW floats long on both sides; the
    GEMMs read it transposed at no cost."""
    src = gyg[n0:n1, :, od0:od1].transpose(1, 2, 0, 3, 4)
    buf = ws.take("gy", src.shape, gyg.dtype)
    buf[...] = src
    return buf.reshape(src.shape[0], -1)


def forward(x, w, b, stride, padding, dilation, groups, workspace_limit=None, out=None):
    geo = ConvGeometry.from_shapes(x.shape, w.shape, stride, padding, dilation, groups)
    n, od, ws = _plan(geo, x.itemsize, workspace_limit, "conv3d forward (channels-last)")
    y = output((geo.N, geo.K) + geo.out_size, x.dtype, out)
    g1, (Cg, Kg), (_, OH, OW) = geo.one_group(), (geo.Cg, geo.Kg), geo.out_size
    for g in range(groups):
        xg, yg = x[:, g * Cg:(g + 1) * Cg], y[:, g * Kg:(g + 1) * Kg]
        w_r = _weight_rows(w[g * Kg:(g + 1) * Kg])
        for n0, n1, od0, od1 in chunks(geo.N, geo.out_size[0], n, od):
            nc, odc = n1 - n0, od1 - od0
            cols = _im2col(ws, xg, g1, n0, n1, od0, odc)
            # (K, voxels), voxels ordered (od, n, oh, ow): with one sample, y's own chunk
            acc = (yg[n0, :, od0:od1].reshape(Kg, -1) if nc == 1 else
                   ws.take("gy", (Kg, odc * nc * OH * OW), x.dtype))
            prod = ws.take("prod", acc.shape, x.dtype) if geo.kernel[0] > 1 else None
            for kd in range(geo.kernel[0]):
                np.matmul(w_r[:, kd], _kd_block(cols, g1, kd, odc).T, out=prod if kd else acc)
                if kd:
                    acc += prod
            if b is not None:  # while the chunk is in cache, not as another pass over y
                acc += b[g * Kg:(g + 1) * Kg, None]
            if nc > 1:
                yg[n0:n1, :, od0:od1] = acc.reshape(Kg, odc, nc, OH, OW).transpose(2, 0, 1, 3, 4)
    return y


def backward(gy, x, w, stride, padding, dilation, groups, output_mask=(True, True),
             workspace_limit=None, out=None):
    """``(gx, gw)`` in one pass over the chunks, ``None`` where ``output_mask`` says it is not
    wanted (``x`` is read only for ``gw``, ``w`` only for ``gx``): each chunk's ``gy`` is
    reordered once and feeds the GEMMs of both gradients. ``out``: the array for ``gx``."""
    need_x, need_w = output_mask
    geo = ConvGeometry.from_shapes(x.shape, w.shape, stride, padding, dilation, groups)
    n, od, ws = _plan(geo, gy.itemsize, workspace_limit, "conv3d backward (channels-last)")
    gx = output(x.shape, gy.dtype, out, zero=True) if need_x else None
    gw = np.empty(w.shape, dtype=gy.dtype) if need_w else None
    g1, (Cg, Kg), (_, OH, OW) = geo.one_group(), (geo.Cg, geo.Kg), geo.out_size
    (kD, kH, kW), (_, H, W) = geo.kernel, geo.in_size
    ph, pw = geo.padding[1][0], geo.padding[2][0]
    # the 2D columns of x and one output plane's input-gradient columns share one buffer
    ws.take("col", (max(geo.slab_depth(od) * kH * kW, geo.taps) * n * geo.plane * Cg,),
            gy.dtype)
    for g in range(groups):
        xg, gyg = x[:, g * Cg:(g + 1) * Cg], gy[:, g * Kg:(g + 1) * Kg]
        w_r = _weight_rows(w[g * Kg:(g + 1) * Kg]).reshape(Kg, -1) if need_x else None
        gw_cl = np.zeros((kD, Kg, kH * kW * Cg), dtype=gy.dtype) if need_w else None
        for n0, n1, od0, od1 in chunks(geo.N, geo.out_size[0], n, od):
            nc, odc = n1 - n0, od1 - od0
            gy_w = _gy_wide(ws, gyg, n0, n1, od0, od1)
            if need_w:
                cols = _im2col(ws, xg, g1, n0, n1, od0, odc)
                for kd in range(kD):
                    gw_cl[kd] += gy_w @ _kd_block(cols, g1, kd, odc)
            if need_x:  # per output plane: one GEMM for all taps, then the entries go back
                d_lo, Sd, a, b = g1.depth_window(od0, odc)
                dslab = ws.take("dslab", (Sd, nc) + _padded_hw(g1) + (Cg,), gy.dtype, zero=True)
                rows = nc * OH * OW
                dcols = ws.take("col", (1, nc, OH, OW, kD, kH, kW, Cg), gy.dtype)
                for o in range(odc):
                    np.matmul(gy_w[:, o * rows:(o + 1) * rows].T, w_r,
                              out=dcols.reshape(rows, -1))
                    _kernels()[0](dslab[o * geo.stride[0]:], dcols, *geo.stride, *geo.dilation)
                if b > a:
                    gx[n0:n1, g * Cg:(g + 1) * Cg, a:b] += dslab[
                        a - d_lo:b - d_lo, :, ph:ph + H, pw:pw + W].transpose(1, 4, 0, 2, 3)
        if need_w:
            gw[g * Kg:(g + 1) * Kg] = gw_cl.reshape(kD, Kg, kH, kW, Cg).transpose(1, 4, 0, 2, 3)
    return gx, gw


_compiled = None


def _kernels():
    """``(col2im, im2col)`` compiled on first use (numba is slow to import)."""
    global _compiled
    if _compiled is not None:
        return _compiled
    from numba import njit  # noqa: PLC0415

    @njit(cache=True, nogil=True)
    def col2im_cl(slab, prod, s_d, s_h, s_w, d_d, d_h, d_w):
        # slab (Sd, n, Hp, Wp, C) += prod (odc, n, OH, OW, kD, kH, kW, C) at its windows
        odc, n, OH, OW, kD, kH, kW, C = prod.shape
        for a in range(odc):
            for kd in range(kD):
                q = a * s_d + kd * d_d
                for j in range(n):
                    for oh in range(OH):
                        for kh in range(kH):
                            row = slab[q, j, oh * s_h + kh * d_h]
                            for ow in range(OW):
                                for kw in range(kW):
                                    dst = row[ow * s_w + kw * d_w]
                                    src = prod[a, j, oh, ow, kd, kh, kw]
                                    for c in range(C):
                                        dst[c] += src[c]

    @njit(cache=True, nogil=True)
    def im2col_cl(cols, x, n0, d_lo, p_h, p_w, s_h, s_w, d_h, d_w):
        # cols (Sd, n, OH, OW, kH, kW, C) = windows of input planes d_lo.. of samples n0.. of x
        Sd, n, OH, OW, kH, kW, C = cols.shape
        D, H, W = x.shape[2], x.shape[3], x.shape[4]
        Hp = max((OH - 1) * s_h + (kH - 1) * d_h + 1, H + p_h)
        Wp = max((OW - 1) * s_w + (kW - 1) * d_w + 1, W + p_w)
        tile = np.zeros((Hp, Wp, C), dtype=cols.dtype)  # one padded plane; borders stay zero
        for q in range(Sd):
            d = d_lo + q
            for j in range(n):
                if d < 0 or d >= D:  # a padding plane
                    cols[q, j] = 0
                    continue
                for h in range(H):
                    for w in range(W):
                        t = tile[h + p_h, w + p_w]
                        for c in range(C):
                            t[c] = x[n0 + j, c, d, h, w]
                for oh in range(OH):
                    for ow in range(OW):
                        for kh in range(kH):
                            for kw in range(kW):
                                t = tile[oh * s_h + kh * d_h, ow * s_w + kw * d_w]
                                dst = cols[q, j, oh, ow, kh, kw]
                                for c in range(C):
                                    dst[c] = t[c]

    _compiled = col2im_cl, im2col_cl
    return _compiled
