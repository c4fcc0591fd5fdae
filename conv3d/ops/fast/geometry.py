"""Shapes and index ranges shared by the fast strategies, and the chunked im2col / col2im.

One output position ``o`` along an axis reads the input at ``i = o*s + k*d - p_lo`` for kernel
tap ``k`` (stride ``s``, dilation ``d``, padding ``p_lo`` before the data). Instead of copying
the input into a zero-padded buffer, the fast path asks, per kernel tap, *which* outputs land
inside the data (``tap_range``) and copies only those; the rest of the column matrix is zero.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.shapes import conv_output_size


@dataclass(frozen=True)
class ConvGeometry:
    """Every size of one 3D convolution (PyTorch layout: x NCDHW, w (K, C/groups, kD, kH, kW))."""
    N: int
    C: int
    in_size: tuple   # (D, H, W)
    K: int
    groups: int
    kernel: tuple    # (kD, kH, kW)
    stride: tuple
    padding: tuple   # ((lo, hi), (lo, hi), (lo, hi))
    dilation: tuple
    out_size: tuple  # (OD, OH, OW)

    @classmethod
    def of(cls, x_shape, w_shape, stride, padding, dilation, groups) -> ConvGeometry:
        N, C = x_shape[:2]
        K = w_shape[0]
        kernel = tuple(w_shape[2:])
        out = tuple(conv_output_size(i, k, s, p[0], p[1], d) for i, k, s, p, d in
                    zip(x_shape[2:], kernel, stride, padding, dilation))
        return cls(N, C, tuple(x_shape[2:]), K, groups, kernel, tuple(stride),
                   tuple(tuple(p) for p in padding), tuple(dilation), out)

    Cg = property(lambda self: self.C // self.groups)
    Kg = property(lambda self: self.K // self.groups)
    taps = property(lambda self: int(np.prod(self.kernel)))          # kD*kH*kW
    plane = property(lambda self: self.out_size[1] * self.out_size[2])  # OH*OW

    def one_group(self) -> ConvGeometry:
        """The geometry of one group (C/groups -> K/groups channels): the strategies run the
        groups one after another on channel slices."""
        return ConvGeometry(self.N, self.Cg, self.in_size, self.Kg, 1, self.kernel, self.stride,
                            self.padding, self.dilation, self.out_size)

    def flops(self) -> int:
        """Multiply-adds times two of the forward pass (each backward costs about the same)."""
        return 2 * self.N * self.K * self.Cg * self.taps * int(np.prod(self.out_size))

    def tap_ranges(self, tap, od0, od1):
        """Per axis ``(o_lo, o_hi, i_start)`` for kernel tap ``(kd, kh, kw)`` (see ``tap_range``);
        the depth range is limited to output planes ``od0:od1`` and given relative to ``od0``."""
        starts = (od0, 0, 0)
        ends = (od1, self.out_size[1], self.out_size[2])
        return [tap_range(o0, o1, k, s, d, p[0], i) for o0, o1, k, s, d, p, i in
                zip(starts, ends, tap, self.stride, self.dilation, self.padding, self.in_size)]

    def taps_iter(self):
        kD, kH, kW = self.kernel
        for kd in range(kD):
            for kh in range(kH):
                for kw in range(kW):
                    yield kd, kh, kw


def tap_range(o0: int, o1: int, k: int, s: int, d: int, p_lo: int, size: int):
    """Outputs ``o`` in ``[o0, o1)`` whose input ``i = o*s + k*d - p_lo`` lies in ``[0, size)``.

    Returns ``(lo, hi, i_lo)``: the valid outputs are ``o0+lo .. o0+hi-1`` (relative to ``o0``)
    and the first of them reads input ``i_lo``. ``lo == hi`` when none is valid.
    """
    first = max(o0, -((k * d - p_lo) // s))            # ceil((p_lo - k*d) / s)
    last = min(o1, (size - 1 + p_lo - k * d) // s + 1)  # one past the last valid output
    if last <= first:
        return 0, 0, 0
    return first - o0, last - o0, first * s + k * d - p_lo


def _span(lo, hi, i_lo, s):
    return slice(i_lo, i_lo + (hi - lo - 1) * s + 1, s)


def _zero_outside(dst, ranges):
    """Zero the parts of ``dst[..., od, oh, ow]`` outside the valid box given by ``ranges``."""
    (a0, a1, _), (b0, b1, _), (c0, c1, _) = ranges
    dst[..., :a0, :, :] = 0
    dst[..., a1:, :, :] = 0
    dst[..., a0:a1, :b0, :] = 0
    dst[..., a0:a1, b1:, :] = 0
    dst[..., a0:a1, b0:b1, :c0] = 0
    dst[..., a0:a1, b0:b1, c1:] = 0


def im2col_into(col, x, geo: ConvGeometry, n0, n1, od0, od1):
    """Fill ``col`` (C, kD, kH, kW, n, od, OH, OW) with the patches of ``x[n0:n1]`` that output
    planes ``od0:od1`` read. One strided copy per kernel tap (Chainer's N-d im2col), with the
    zero padding written as zeros instead of read from a padded copy of ``x``."""
    xs = x[n0:n1].transpose(1, 0, 2, 3, 4)  # (C, n, D, H, W): a view, no copy
    s = geo.stride
    for tap in geo.taps_iter():
        dst = col[:, tap[0], tap[1], tap[2]]   # (C, n, od, OH, OW)
        ranges = geo.tap_ranges(tap, od0, od1)
        (a0, a1, ia), (b0, b1, ib), (c0, c1, ic) = ranges
        if a0 == a1 or b0 == b1 or c0 == c1:
            dst.fill(0)
            continue
        _zero_outside(dst, ranges)
        dst[:, :, a0:a1, b0:b1, c0:c1] = xs[:, :, _span(a0, a1, ia, s[0]),
                                            _span(b0, b1, ib, s[1]), _span(c0, c1, ic, s[2])]


def col2im_add(gx, col, geo: ConvGeometry, n0, n1, od0, od1):
    """The adjoint of ``im2col_into``: add every column entry back to the input position it was
    copied from (``gx`` must start at zero; overlapping patches add up)."""
    gxs = gx[n0:n1].transpose(1, 0, 2, 3, 4)
    s = geo.stride
    for tap in geo.taps_iter():
        (a0, a1, ia), (b0, b1, ib), (c0, c1, ic) = geo.tap_ranges(tap, od0, od1)
        if a0 == a1 or b0 == b1 or c0 == c1:
            continue
        gxs[:, :, _span(a0, a1, ia, s[0]), _span(b0, b1, ib, s[1]), _span(c0, c1, ic, s[2])] += \
            col[:, tap[0], tap[1], tap[2], :, a0:a1, b0:b1, c0:c1]


def flipped_transposed_weight(w):
    """``w`` (K, C, kD, kH, kW) -> (C, K, kD, kH, kW) with every kernel flipped: the weight of the
    convolution that computes the input gradient of a stride-1 convolution."""
    return np.ascontiguousarray(w[:, :, ::-1, ::-1, ::-1].transpose(1, 0, 2, 3, 4))


def transposed_padding(geo: ConvGeometry):
    """Padding of that gradient convolution: ``d*(k-1) - p_lo`` before, ``d*(k-1) - p_hi`` after
    (negative values crop; ``tap_range`` handles them like any other offset)."""
    return tuple((d * (k - 1) - p[0], d * (k - 1) - p[1])
                 for k, d, p in zip(geo.kernel, geo.dilation, geo.padding))
