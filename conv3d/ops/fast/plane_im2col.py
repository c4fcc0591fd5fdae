"""Strategy ``'im2col-planes'``: a 2D im2col per *input* plane, shared by kD output planes.

Plain 3D im2col copies every input voxel ``kD*kH*kW`` times (27 for a 3x3x3 kernel). But along
depth, output plane ``od`` reads input planes ``od*s - p .. od*s - p + kD - 1``, and the next
output plane reads almost the same ones. So build the 2D columns of each input plane once::

    cols[q] = im2col2d(x[n, :, d_lo + q])       shape (C, kH, kW, OH, OW), q = 0 .. Sd-1

and stack them along the first axis. The kD planes output plane ``od`` needs are then the
*contiguous* rows ``cols[q0 : q0 + kD]`` (q0 = (od - od0)*s): a (kD*C*kH*kW, OH*OW) matrix,
exactly the im2col matrix of that plane with its rows in (kd, c, kh, kw) order, at no copy::

    y[n, :, od]  (K, OH*OW)       = W_r (K, kD*C*kH*kW)  @  cols[q0:q0+kD]
    gW_r         (K, kD*C*kH*kW) += gy[n, :, od]          @  cols[q0:q0+kD]^T

where ``W_r`` is the weight with its kd and c axes swapped. Each input voxel is copied kH*kW
times (9) instead of kD*kH*kW (27): a third of the copying, and the GEMMs are the same size as
plain im2col's. It pays off when one output plane is a long GEMM (many OH*OW columns). With a
depth dilation d > 1 the kD planes are d apart and ``_rows`` copies them together (correct,
and no faster than ``'im2col'``).

The input gradient is the same idea read backwards (``_backward_input``): the kD output planes
that read one input plane are adjacent too, so one GEMM gathers all their contributions to that
plane's 2D columns, and one 2D col2im adds them into ``gx`` (with a depth stride > 1 the
output planes that read an input plane are not the same pattern for every plane, and the
input gradient is that of ``'im2col'``).
"""
from __future__ import annotations

import numpy as np

from dataclasses import replace

from ...core.geometry import ConvGeometry
from . import im2col_gemm
from .im2col_gemm import col2im_add, im2col_into
from .workspace import Workspace, chunks, output, plan_chunks

CHUNK_TARGET = 64 * 2**20  # bytes of columns per chunk: a few output planes share their inputs


def _plan(geo, itemsize, workspace_limit, what):
    row = geo.Cg * geo.kernel[1] * geo.kernel[2] * geo.plane * itemsize  # one plane's 2D columns

    def bytes_for(n, od):
        return n * geo.slab_depth(od) * row
    n, od = plan_chunks(geo.N, geo.OD, bytes_for, workspace_limit, what, target=CHUNK_TARGET)
    return n, od, Workspace(workspace_limit)


def _planes_2d(geo):
    """The geometry of the 2D im2col of input planes: kernel (1, kH, kW), depth stride 1 and no
    depth padding, so that its output plane q is input plane q."""
    return replace(geo, kernel=(1,) + geo.kernel[1:], stride=(1,) + geo.stride[1:],
                   padding=((0, 0),) + geo.padding[1:], dilation=(1,) + geo.dilation[1:])


def _fill(cols, x, geo, g2, n, od0, odc):
    """``cols[q]`` = the 2D columns (C, kH, kW, OH, OW) of input plane ``d_lo + q`` of sample
    ``n``, zeros for planes in the depth padding: ``im2col_into`` with ``g2 = _planes_2d(geo)``
    on ``cols`` seen as its (C, 1, kH, kW, 1, planes, OH, OW) buffer."""
    d_lo, _, a, b = geo.depth_window(od0, odc)
    cols[:max(a - d_lo, 0)] = 0
    cols[max(b - d_lo, 0):] = 0
    if b > a:
        view = cols[a - d_lo:b - d_lo].transpose(1, 2, 3, 0, 4, 5)[:, None, :, :, None]
        im2col_into(view, x, g2, n, n + 1, a, b)


def _rows(cols, geo, od, od0):
    """The im2col matrix (kD*C*kH*kW, OH*OW) of output plane ``od``: a view into ``cols``
    (with a depth dilation d > 1 the planes are d apart and NumPy copies them together)."""
    q0, d = (od - od0) * geo.stride[0], geo.dilation[0]
    return cols[q0:q0 + d * (geo.kernel[0] - 1) + 1:d].reshape(-1, geo.plane)


def _weight_rows(wg):
    """(K, C, kD, kH, kW) -> (K, kD*C*kH*kW): the row order of ``cols``."""
    return np.ascontiguousarray(wg.transpose(0, 2, 1, 3, 4)).reshape(wg.shape[0], -1)


def _output_planes(x, geo, workspace_limit, what):
    """Yield ``(g, n, o, rows)``: group, sample, output plane and its im2col matrix
    (kD*C*kH*kW, OH*OW), built by ``_fill`` one chunk of output planes of one sample at a time."""
    _, od, ws = _plan(geo, x.itemsize, workspace_limit, what)
    g1, Cg = geo.one_group(), geo.Cg
    g2 = _planes_2d(g1)
    for g in range(geo.groups):
        for _, _, od0, od1 in chunks(1, geo.OD, 1, od):
            cols = ws.take("cols", (geo.slab_depth(od1 - od0), Cg) + geo.kernel[1:]
                           + geo.out_size[1:], x.dtype)
            for n in range(geo.N):
                _fill(cols, x[:, g * Cg:(g + 1) * Cg], g1, g2, n, od0, od1 - od0)
                for o in range(od0, od1):
                    yield g, n, o, _rows(cols, geo, o, od0)


def forward(x, w, b, stride, padding, dilation, groups, workspace_limit=None, out=None):
    geo = ConvGeometry.from_shapes(x.shape, w.shape, stride, padding, dilation, groups)
    y = output(geo.y_shape, x.dtype, out)
    Kg = geo.Kg
    w_r = [_weight_rows(w[g * Kg:(g + 1) * Kg]) for g in range(groups)]
    for g, n, o, rows in _output_planes(x, geo, workspace_limit, "conv3d forward (im2col-planes)"):
        np.matmul(w_r[g], rows, out=y[n, g * Kg:(g + 1) * Kg, o].reshape(Kg, -1))
    if b is not None:
        y += b.reshape(1, -1, 1, 1, 1)
    return y


def backward(gy, x, w, stride, padding, dilation, groups, output_mask=(True, True),
             workspace_limit=None, out=None):
    """``(gx, gw)``, ``None`` where ``output_mask`` is False; ``out``: the array for ``gx``."""
    geo = ConvGeometry.from_shapes(x.shape, w.shape, stride, padding, dilation, groups)
    gx = _backward_input(gy, x, w, geo, workspace_limit, out) if output_mask[0] else None
    gw = _backward_weight(gy, x, geo, workspace_limit) if output_mask[1] else None
    return gx, gw


def _backward_weight(gy, x, geo, workspace_limit):
    """``gW_r[g] += gy[n, :, o] @ rows^T`` over every output plane; then back to (K, C, kD, ...)."""
    Kg, (kD, kH, kW) = geo.Kg, geo.kernel
    gw_r = np.zeros((geo.groups, Kg, kD * geo.Cg * kH * kW), dtype=x.dtype)
    prod = np.empty_like(gw_r[0])
    for g, n, o, rows in _output_planes(x, geo, workspace_limit,
                                        "conv3d backward (weight, im2col-planes)"):
        np.matmul(gy[n, g * Kg:(g + 1) * Kg, o].reshape(Kg, -1), rows.T, out=prod)
        gw_r[g] += prod
    return np.ascontiguousarray(gw_r.reshape(geo.K, kD, geo.Cg, kH, kW).transpose(0, 2, 1, 3, 4))


def _input_plane_sources(geo, i):
    """The output planes that read input plane ``i`` (depth stride 1): ``o = i + p - kd*d``
    for the taps ``kd`` that land inside ``0 <= o < OD``. Returns ``(o_min, count, j0)``: the
    planes ``o_min, o_min + d, ...`` (``count`` of them, 0 when none) and ``j0``, the first
    block of ``_stacked_weight`` they meet."""
    (kD, _, _), d, p, OD = geo.kernel, geo.dilation[0], geo.padding[0][0], geo.out_size[0]
    kd_lo = max(0, -((OD - 1 - i - p) // d))  # ceil((i + p - OD + 1) / d)
    kd_hi = min(kD - 1, (i + p) // d)
    if kd_hi < kd_lo:
        return 0, 0, 0
    return i + p - kd_hi * d, kd_hi - kd_lo + 1, kD - 1 - kd_hi


def _stacked_weight(wg):
    """(K, C, kD, kH, kW) -> (C*kH*kW, kD*K), block j holding tap kd = kD-1-j transposed: the
    weight that maps kD consecutive planes of ``gy`` to the 2D columns of one input plane."""
    K, C, kD, kH, kW = wg.shape
    return np.ascontiguousarray(wg[:, :, ::-1].transpose(1, 3, 4, 2, 0)).reshape(-1, kD * K)


def _backward_input(gy, x, w, geo, workspace_limit, out):
    """The adjoint of ``forward``, input plane by input plane (depth stride 1)::

        dcols[i] (C*kH*kW, OH*OW) = W_s (C*kH*kW, kD*K) @ gy[n, :, o_lo:o_hi]  (kD*K, OH*OW)
        gx[n, :, i]              += col2im2d(dcols[i])

    The kD output planes that read input plane ``i`` are adjacent, so with ``gy`` copied to
    (OD, K, OH*OW) order they are one matrix and one GEMM sums all their contributions; the 2D
    col2im then runs once per input plane instead of once per output plane and tap ``kd``.
    Depth stride > 1 uses ``im2col_gemm``'s col2im."""
    if geo.stride[0] != 1:
        return im2col_gemm.backward(gy, x, w, geo.stride, geo.padding, geo.dilation, geo.groups,
                                    (True, False), workspace_limit, out)[0]
    g2, Cg, Kg, P = _planes_2d(geo.one_group()), geo.Cg, geo.Kg, geo.plane
    (D, _, _), (kD, kH, kW), OD = geo.in_size, geo.kernel, geo.out_size[0]

    d, p = geo.dilation[0], geo.padding[0][0]

    def bytes_for(n, planes):  # gy in (OD, K, P) order for the planes read, one plane's dcols
        gy_count = min(planes + d * (kD - 1), OD)
        return n * (gy_count * Kg + Cg * kH * kW) * P * gy.itemsize
    _, chunk = plan_chunks(geo.N, D, bytes_for, workspace_limit,
                           "conv3d backward (input, im2col-planes)", target=CHUNK_TARGET)
    ws = Workspace(workspace_limit)
    gx = output(geo.x_shape, gy.dtype, out, zero=True)
    dcols = ws.take("dcols", (Cg, kH, kW) + geo.out_size[1:], gy.dtype)
    for g in range(geo.groups):
        w_s = _stacked_weight(w[g * Kg:(g + 1) * Kg])
        for _, _, i0, i1 in chunks(1, D, 1, chunk):
            # o = i + p - kd*d: the output planes input planes i0..i1-1 can read
            o0, o1 = max(0, i0 + p - (kD - 1) * d), min(OD, i1 + p)
            if o1 <= o0:
                continue  # these input planes are read by no output plane
            for n in range(geo.N):
                gy_t = ws.take("gy", (o1 - o0, Kg, P), gy.dtype)
                gy_t[...] = gy[n, g * Kg:(g + 1) * Kg, o0:o1].reshape(Kg, o1 - o0, P) \
                    .transpose(1, 0, 2)
                for i in range(i0, i1):
                    o_min, count, j0 = _input_plane_sources(geo, i)
                    if count == 0:
                        continue
                    q = o_min - o0
                    np.matmul(w_s[:, j0 * Kg:(j0 + count) * Kg],
                              gy_t[q:q + (count - 1) * d + 1:d].reshape(-1, P),
                              out=dcols.reshape(-1, P))
                    # gx[n, :, i] += the 2D col2im of dcols (the adjoint of one plane of _fill)
                    col2im_add(gx[:, g * Cg:(g + 1) * Cg], dcols[:, None, :, :, None, None], g2,
                               n, n + 1, i, i + 1)
    return gx
