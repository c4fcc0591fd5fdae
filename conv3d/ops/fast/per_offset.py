"""Strategy ``'per-offset'``: one small GEMM per kernel tap, no column matrix at all.

A 3x3x3 convolution is the sum of 27 shifted 1x1x1 convolutions::

    y[n, :, o] = sum over taps t of  W[:, :, t] (K x C)  @  x[n, :, o*s + t*d - p]

so for each tap we copy the shifted input window (C x n*od*OH*OW, only the part inside the data)
into a buffer, multiply by that tap's (K x C) weight and add the product into y. The workspace
is one tap's window and product instead of all 27 (``taps`` times smaller than im2col), but each
GEMM has an inner dimension of only C: fine for C=64, poor for C=3 (a thin GEMM).
The backward passes are the same sums read the other way round.
"""
from __future__ import annotations

import numpy as np

from .geometry import ConvGeometry, _span
from .workspace import Workspace, chunks, get_workspace_limit, output, plan_chunks


def _plan(geo, itemsize, workspace_limit, what):
    limit = get_workspace_limit() if workspace_limit is None else workspace_limit

    def bytes_for(n, od):  # the shifted window (C rows) and the product (K rows)
        return (geo.Cg + geo.Kg) * n * od * geo.plane * itemsize
    return plan_chunks(geo.N, geo.out_size[0], bytes_for, limit, what), Workspace(limit)


def _windows(geo, tap, n0, n1, od0, od1):
    """For one tap and one chunk: the output box (relative to the chunk) and the input slices it
    reads, or ``None`` when the tap reads only padding."""
    (a0, a1, ia), (b0, b1, ib), (c0, c1, ic) = geo.tap_ranges(tap, od0, od1)
    if a0 == a1 or b0 == b1 or c0 == c1:
        return None
    s = geo.stride
    out_box = (slice(n0, n1), slice(None), slice(od0 + a0, od0 + a1), slice(b0, b1), slice(c0, c1))
    in_box = (slice(n0, n1), slice(None), _span(a0, a1, ia, s[0]), _span(b0, b1, ib, s[1]),
              _span(c0, c1, ic, s[2]))
    return out_box, in_box


def _gather(ws, name, src):
    """Copy ``src`` (n, ch, a, b, c) into a contiguous (ch, n*a*b*c) buffer."""
    n, ch = src.shape[:2]
    buf = ws.take(name, (ch, n) + src.shape[2:], src.dtype)
    buf[...] = src.transpose(1, 0, 2, 3, 4)
    return buf.reshape(ch, -1)


def _scatter_add(dst, prod, ch):
    """``dst`` (n, ch, a, b, c) += ``prod`` (ch, n*a*b*c)."""
    dst += prod.reshape((ch, dst.shape[0]) + dst.shape[2:]).transpose(1, 0, 2, 3, 4)


def _tap_boxes(geo, n, od):
    """Yield ``(g, tap, out_box, in_box)`` for every group, chunk and kernel tap that reads data;
    the three passes below are each one GEMM per item of this loop."""
    for g in range(geo.groups):
        for n0, n1, od0, od1 in chunks(geo.N, geo.out_size[0], n, od):
            for tap in geo.taps_iter():
                boxes = _windows(geo, tap, n0, n1, od0, od1)
                if boxes is not None:
                    yield (g, tap) + boxes


def _channels(geo, g):
    """The input and output channel slices of group ``g``."""
    return slice(g * geo.Cg, (g + 1) * geo.Cg), slice(g * geo.Kg, (g + 1) * geo.Kg)


def forward(x, w, b, stride, padding, dilation, groups, workspace_limit=None, out=None):
    geo = ConvGeometry.of(x.shape, w.shape, stride, padding, dilation, groups)
    (n, od), ws = _plan(geo, x.itemsize, workspace_limit, "conv3d forward")
    y = output((geo.N, geo.K) + geo.out_size, x.dtype, out, zero=True)
    for g, tap, out_box, in_box in _tap_boxes(geo, n, od):
        cs, ks = _channels(geo, g)
        window = _gather(ws, "window", x[:, cs][in_box])
        prod = ws.take("prod", (geo.Kg, window.shape[1]), x.dtype)
        np.matmul(w[ks, :, tap[0], tap[1], tap[2]], window, out=prod)
        _scatter_add(y[:, ks][out_box], prod, geo.Kg)
    if b is not None:
        y += b.reshape(1, -1, 1, 1, 1)
    return y


def backward_weight(gy, x, w_shape, stride, padding, dilation, groups, workspace_limit=None):
    geo = ConvGeometry.of(x.shape, w_shape, stride, padding, dilation, groups)
    (n, od), ws = _plan(geo, x.itemsize, workspace_limit, "conv3d backward (weight)")
    gw = np.zeros(w_shape, dtype=x.dtype)
    for g, tap, out_box, in_box in _tap_boxes(geo, n, od):
        cs, ks = _channels(geo, g)
        window = _gather(ws, "window", x[:, cs][in_box])
        grad = _gather(ws, "prod", gy[:, ks][out_box])
        gw[ks, :, tap[0], tap[1], tap[2]] += grad @ window.T
    return gw


def backward_input(gy, w, x_shape, stride, padding, dilation, groups, workspace_limit=None,
                   out=None):
    geo = ConvGeometry.of(x_shape, w.shape, stride, padding, dilation, groups)
    (n, od), ws = _plan(geo, gy.itemsize, workspace_limit, "conv3d backward (input)")
    gx = output(x_shape, gy.dtype, out, zero=True)
    for g, tap, out_box, in_box in _tap_boxes(geo, n, od):
        cs, ks = _channels(geo, g)
        grad = _gather(ws, "prod", gy[:, ks][out_box])
        window = ws.take("window", (geo.Cg, grad.shape[1]), gy.dtype)
        np.matmul(w[ks, :, tap[0], tap[1], tap[2]].T, grad, out=window)
        _scatter_add(gx[:, cs][in_box], window, geo.Cg)
    return gx
