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
"""
from __future__ import annotations

import numpy as np

from ...core.geometry import ConvGeometry
from . import columns, numba_copy
from .workspace import Workspace, chunks, output, plan_chunks

SMALL_COL = 2**16  # elements: below this the compiled col2im's call costs more than it saves


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
    g2 = ws.take("prod", (gyg.shape[1], n1 - n0, (od1 - od0) * int(np.prod(gyg.shape[3:]))),
                 gyg.dtype)
    g2[...] = gyg[n0:n1, :, od0:od1].reshape(n1 - n0, gyg.shape[1], -1).transpose(1, 0, 2)
    return g2.reshape(g2.shape[0], -1)


def forward(x, w, b, stride, padding, dilation, groups, workspace_limit=None, out=None):
    geo = ConvGeometry.from_shapes(x.shape, w.shape, stride, padding, dilation, groups)
    n, od, ws = _plan(geo, x.itemsize, workspace_limit, "conv3d forward")
    y = output(geo.y_shape, x.dtype, out)
    g1, Cg, Kg = geo.one_group(), geo.Cg, geo.Kg
    for g in range(groups):
        xg, yg = x[:, g * Cg:(g + 1) * Cg], y[:, g * Kg:(g + 1) * Kg]
        wg = w[g * Kg:(g + 1) * Kg].reshape(Kg, -1)
        for n0, n1, od0, od1 in chunks(geo.N, geo.OD, n, od):
            nc, odc = n1 - n0, od1 - od0
            col = _col(ws, g1, nc, odc, x.dtype)
            columns.im2col_into(col, xg, g1, n0, n1, od0, od1)
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
             workspace_limit=None, out=None, compiled_col2im=False):
    """``(gx, gw)``, ``None`` where ``output_mask`` is False; ``out``: the array for ``gx``.
    ``compiled_col2im``: add large column matrices back with ``numba_copy``'s loop instead of
    one NumPy scatter-add per tap (whose per-row cost dominates when output rows are short)."""
    geo = ConvGeometry.from_shapes(x.shape, w.shape, stride, padding, dilation, groups)
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
                big = compiled_col2im and col.size >= SMALL_COL
                col2im = numba_copy.col2im_add if big else columns.col2im_add
                col2im(gx[:, g * Cg:(g + 1) * Cg], col, g1, n0, n1, od0, od1)
        if gw is None:
            continue
        gwg = gw[g * Kg:(g + 1) * Kg].reshape(Kg, -1)
        for n0, n1, od0, od1 in chunks(geo.N, geo.OD, n, od):
            col = _col(ws, g1, n1 - n0, od1 - od0, gy.dtype)
            columns.im2col_into(col, xg, g1, n0, n1, od0, od1)
            gwg += _gy_rows(ws, gyg, n0, n1, od0, od1) @ col.reshape(gwg.shape[1], -1).T
    return gx, gw
