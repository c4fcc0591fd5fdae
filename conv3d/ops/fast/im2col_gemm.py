"""Strategy ``'im2col'``: chunked im2col into a preallocated buffer, then one GEMM per chunk.

The readable version (``conv3d/ops/im2col.py``) builds the whole column matrix at once. Here the
column buffer is allocated once per call, sized by the workspace planner, and refilled for each
chunk of samples / output planes (``workspace.py``). Two buffer layouts:

* ``wide``: col is (C*taps, n*od*OH*OW); one GEMM ``W (K, C*taps) @ col`` covers all ``n``
  samples of the chunk (good when each sample is small: a2, 5x5x5 outputs), then the product
  (K, n, ...) is copied into y's (n, K, ...) layout. With one sample per chunk the GEMM writes
  straight into y.
* ``batched``: col is (n, C*taps, od*OH*OW); one GEMM per sample (NumPy's stacked matmul), each
  writing straight into ``y[n]``: no temporary product, no transpose.

im2col is a strided NumPy copy per kernel tap (``geometry.py``). Its adjoint, col2im, is a serial
numba loop by default (``copy='numba'``, ``numba_copy.py``); ``copy='numpy'`` uses the
NumPy scatter-add of ``geometry.py``, easier to read and slower when output rows are short.
Groups run one after another on channel slices (views, no copies).
The input gradient of a stride-1 convolution is itself a convolution (of ``gy`` with the flipped,
transposed weight), so ``backward_input`` can reuse ``forward`` (``method='transposed'``); the
general method is the GEMM ``W^T @ gy`` followed by col2im (``method='col2im'``).
"""
from __future__ import annotations

import numpy as np

from . import geometry, numba_copy
from .geometry import ConvGeometry, flipped_transposed_weight, transposed_padding
from .workspace import Workspace, chunks, get_workspace_limit, output, plan_chunks

LAYOUTS = ("wide", "batched")
COPIES = {"numba": (geometry.im2col_into, numba_copy.col2im_add),  # col2im: a compiled loop
          "numpy": (geometry.im2col_into, geometry.col2im_add)}     # one strided copy per tap
SMALL_COL = 2**16  # elements: below this, waking numba's threads costs more than the copy


def _limit(workspace_limit):
    return get_workspace_limit() if workspace_limit is None else workspace_limit


def _col_buffer(ws, geo, layout, nc, odc, dtype):
    """The column buffer of one chunk and the (C, kD, kH, kW, n, od, OH, OW) view im2col fills."""
    Cg, (kD, kH, kW), (_, OH, OW) = geo.Cg, geo.kernel, geo.out_size
    if layout == "wide":
        col = ws.take("col", (Cg, kD, kH, kW, nc, odc, OH, OW), dtype)
        return col, col
    col = ws.take("col", (nc, Cg, kD, kH, kW, odc, OH, OW), dtype)
    return col, col.transpose(1, 2, 3, 4, 0, 5, 6, 7)


def _bytes(geo, layout, itemsize, product_too):
    """Workspace of a chunk: the column buffer, plus (wide layout, several samples) the
    (K, n, od*OH*OW) product/gradient buffer."""
    def bytes_for(n, od):
        cols = n * od * geo.plane
        extra = geo.Kg * cols if (product_too and layout == "wide" and n > 1) else 0
        return (geo.Cg * geo.taps * cols + extra) * itemsize
    return bytes_for


def forward(x, w, b, stride, padding, dilation, groups, layout="wide", copy="numba",
            workspace_limit=None, out=None):
    geo = ConvGeometry.of(x.shape, w.shape, stride, padding, dilation, groups)
    N, K, (OD, OH, OW) = geo.N, geo.K, geo.out_size
    limit = _limit(workspace_limit)
    n, od = plan_chunks(N, OD, _bytes(geo, layout, x.itemsize, True), limit, "conv3d forward")
    y = output((N, K, OD, OH, OW), x.dtype, out)
    ws = Workspace(limit)
    im2col_into = COPIES[copy][0]
    g1 = geo.one_group()
    Cg, Kg, P = geo.Cg, geo.Kg, geo.plane
    for g in range(groups):
        xg = x[:, g * Cg:(g + 1) * Cg]
        wg = w[g * Kg:(g + 1) * Kg].reshape(Kg, -1)
        yg = y[:, g * Kg:(g + 1) * Kg]
        for n0, n1, od0, od1 in chunks(N, OD, n, od):
            nc, odc = n1 - n0, od1 - od0
            col, view = _col_buffer(ws, g1, layout, nc, odc, x.dtype)
            im2col_into(view, xg, g1, n0, n1, od0, od1)
            if layout == "batched":  # one GEMM per sample, straight into y
                out = yg[n0:n1, :, od0:od1].reshape(nc, Kg, odc * P)
                np.matmul(wg, col.reshape(nc, -1, odc * P), out=out)
            elif nc == 1:
                np.matmul(wg, col.reshape(-1, odc * P), out=yg[n0, :, od0:od1].reshape(Kg, -1))
            else:
                prod = ws.take("prod", (Kg, nc, odc * P), x.dtype)
                np.matmul(wg, col.reshape(-1, nc * odc * P), out=prod.reshape(Kg, -1))
                yg[n0:n1, :, od0:od1] = prod.reshape(Kg, nc, odc, OH, OW).transpose(1, 0, 2, 3, 4)
    if b is not None:
        y += b.reshape(1, K, 1, 1, 1)
    return y


def backward_weight(gy, x, w_shape, stride, padding, dilation, groups, layout="wide",
                    copy="numba", workspace_limit=None):
    geo = ConvGeometry.of(x.shape, w_shape, stride, padding, dilation, groups)
    N, OD, P = geo.N, geo.out_size[0], geo.plane
    limit = _limit(workspace_limit)
    n, od = plan_chunks(N, OD, _bytes(geo, layout, x.itemsize, True), limit,
                        "conv3d backward (weight)")
    gw = np.zeros(w_shape, dtype=x.dtype)
    ws = Workspace(limit)
    im2col_into = COPIES[copy][0]
    g1 = geo.one_group()
    Cg, Kg = geo.Cg, geo.Kg
    for g in range(groups):
        xg = x[:, g * Cg:(g + 1) * Cg]
        gyg = gy[:, g * Kg:(g + 1) * Kg]
        gwg = gw[g * Kg:(g + 1) * Kg].reshape(Kg, -1)
        for n0, n1, od0, od1 in chunks(N, OD, n, od):
            nc, odc = n1 - n0, od1 - od0
            col, view = _col_buffer(ws, g1, layout, nc, odc, x.dtype)
            im2col_into(view, xg, g1, n0, n1, od0, od1)
            if layout == "batched":  # sum over samples of gy[n] @ col[n]^T
                g3 = gyg[n0:n1, :, od0:od1].reshape(nc, Kg, odc * P)
                gwg += np.matmul(g3, col.reshape(nc, -1, odc * P).transpose(0, 2, 1)).sum(0)
                continue
            if nc == 1:
                g2 = gyg[n0, :, od0:od1].reshape(Kg, -1)
            else:
                g2 = ws.take("prod", (Kg, nc, odc * P), x.dtype)
                g2[...] = gyg[n0:n1, :, od0:od1].reshape(nc, Kg, -1).transpose(1, 0, 2)
                g2 = g2.reshape(Kg, -1)
            gwg += g2 @ col.reshape(-1, nc * odc * P).T
    return gw


def backward_input(gy, w, x_shape, stride, padding, dilation, groups, layout="wide",
                   method="col2im", copy="numba", workspace_limit=None, out=None):
    """``method='transposed'`` (stride 1 only): gx = conv(gy, flipped transposed w);
    ``method='col2im'`` (any stride): dcol = W^T @ gy per chunk, then scatter-add."""
    geo = ConvGeometry.of(x_shape, w.shape, stride, padding, dilation, groups)
    if method == "transposed":
        if geo.stride != (1, 1, 1):
            raise ValueError(f"method='transposed' needs stride 1, got {geo.stride}; "
                             f"use method='col2im'")
        wt = np.concatenate([flipped_transposed_weight(w[g * geo.Kg:(g + 1) * geo.Kg])
                             for g in range(groups)])
        return forward(gy, wt, None, (1, 1, 1), transposed_padding(geo), dilation, groups,
                       layout=layout, copy=copy, workspace_limit=workspace_limit, out=out)
    N, OD, P = geo.N, geo.out_size[0], geo.plane
    limit = _limit(workspace_limit)
    n, od = plan_chunks(N, OD, _bytes(geo, layout, gy.itemsize, True), limit,
                        "conv3d backward (input)")
    gx = output(x_shape, gy.dtype, out, zero=True)
    ws = Workspace(limit)
    col2im_numba = COPIES[copy][1]
    g1 = geo.one_group()
    Cg, Kg = geo.Cg, geo.Kg
    for g in range(groups):
        gxg = gx[:, g * Cg:(g + 1) * Cg]
        gyg = gy[:, g * Kg:(g + 1) * Kg]
        wT = w[g * Kg:(g + 1) * Kg].reshape(Kg, -1).T
        for n0, n1, od0, od1 in chunks(N, OD, n, od):
            nc, odc = n1 - n0, od1 - od0
            col, view = _col_buffer(ws, g1, layout, nc, odc, gy.dtype)
            if layout == "batched":
                np.matmul(wT, gyg[n0:n1, :, od0:od1].reshape(nc, Kg, odc * P),
                          out=col.reshape(nc, -1, odc * P))
            else:
                if nc == 1:
                    g2 = gyg[n0, :, od0:od1].reshape(Kg, -1)
                else:
                    g2 = ws.take("prod", (Kg, nc, odc * P), gy.dtype)
                    g2[...] = gyg[n0:n1, :, od0:od1].reshape(nc, Kg, -1).transpose(1, 0, 2)
                    g2 = g2.reshape(Kg, -1)
                np.matmul(wT, g2, out=col.reshape(-1, nc * odc * P))
            col2im_add = geometry.col2im_add if col.size < SMALL_COL else col2im_numba
            col2im_add(gxg, view, g1, n0, n1, od0, od1)
    return gx
