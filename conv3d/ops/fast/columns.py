"""Chunked im2col and col2im in NCDHW layout, into a preallocated column buffer.

Output ``o`` along an axis reads input ``i = o*s + k*d - p_lo`` for kernel tap ``k``. Instead of
copying the input into a zero-padded buffer, each tap asks which outputs land inside the data
(``ConvGeometry.tap_ranges``) and copies only those: one strided copy per tap, as in Chainer's
N-d im2col; the rest of the column matrix is written as zeros.
"""
from __future__ import annotations

import itertools

from ...core.geometry import ConvGeometry


def span(lo: int, hi: int, i_lo: int, s: int) -> slice:
    """The input positions read by outputs ``lo .. hi-1`` (the first reads ``i_lo``)."""
    return slice(i_lo, i_lo + (hi - lo - 1) * s + 1, s)


def zero_outside(dst, ranges) -> None:
    """Zero ``dst[..., od, oh, ow]`` outside the box ``ranges`` (per axis ``(lo, hi, _)``)."""
    (d0, d1, _), (h0, h1, _), (w0, w1, _) = ranges
    dst[..., :d0, :, :] = 0
    dst[..., d1:, :, :] = 0
    dst[..., d0:d1, :h0, :] = 0
    dst[..., d0:d1, h1:, :] = 0
    dst[..., d0:d1, h0:h1, :w0] = 0
    dst[..., d0:d1, h0:h1, w1:] = 0


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
