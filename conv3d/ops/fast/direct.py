"""Strategy ``'direct'``: compiled loops over the taps, for layers with few channels per group.

A depthwise layer (groups = channels) is C tiny convolutions of one channel each. im2col would
copy every input voxel kD*kH*kW times to feed GEMMs of one row; here each output channel is
accumulated tap by tap instead, one output row at a time::

    y[n, k, od, oh, :]  += w[k, c, a, b, e] * x[n, g*Cg + c, od*s - p + a*d, oh*s - p + b*d, e*d - p :: s]
    gx[n, g*Cg + c, ...] += w[k, c, a, b, e] * gy[n, k, od, oh, :]      (the same rows, scattered)
    gw[k, c, a, b, e]    = sum over n, od, oh, ow of gy[n, k, od, oh, ow] * x[n, g*Cg + c, ...]

For each tap only the outputs whose input lies inside the data are visited (``_valid``). With
stride 1 a tap is instead one shift of the whole zero-padded channel: each unit copies its
channel into a padded flat buffer once, and every tap is then one long contiguous loop (that
the compiler vectorizes) in place of OD*OH short rows. Neither needs a workspace: the loops'
buffers are one channel's volume. The work is cut into independent units: the
forward by (sample, output channel), the input gradient by (sample, input channel), the weight
gradient by (output channel, input channel of its group). Units never write to the same array
element, so threads each run a contiguous range of them in the compiled loop, which releases
the GIL (``sample_threads.run_units``); the weight gradient sums in float64.
"""
from __future__ import annotations

import numpy as np

from ...core.geometry import ConvGeometry
from .sample_threads import run_units
from .workspace import output

def _wide(geo: ConvGeometry) -> int:
    """3 (the offset of the wide loops in ``_kernels()``) for stride 1, else 0."""
    return 3 if geo.stride == (1, 1, 1) else 0


def _settings(geo: ConvGeometry) -> tuple:
    return geo.stride + tuple(p[0] for p in geo.padding) + geo.dilation


def forward(x, w, b, stride, padding, dilation, groups, workspace_limit=None, out=None):
    """y (N, K, OD, OH, OW); ``workspace_limit`` is accepted and unused (no scratch memory)."""
    geo = ConvGeometry.from_shapes(x.shape, w.shape, stride, padding, dilation, groups)
    y = output(geo.y_shape, x.dtype, out)
    bias = np.zeros(geo.K, x.dtype) if b is None else b
    run_units(_kernels()[0 + _wide(geo)], geo.N * geo.K, geo.flops(), x, w, bias, y,
              *_settings(geo))
    return y


def backward(gy, x, w, stride, padding, dilation, groups, output_mask=(True, True),
             workspace_limit=None, out=None):
    """``(gx, gw)``, ``None`` where ``output_mask`` is False; ``out``: the array for ``gx``."""
    geo = ConvGeometry.from_shapes(x.shape, w.shape, stride, padding, dilation, groups)
    gx = gw = None
    if output_mask[0]:
        gx = output(geo.x_shape, gy.dtype, out)
        run_units(_kernels()[1 + _wide(geo)], geo.N * geo.C, geo.flops(), gy, w, gx,
                  *_settings(geo))
    if output_mask[1]:
        gw = np.empty(geo.w_shape, dtype=gy.dtype)
        run_units(_kernels()[2 + _wide(geo)], geo.K * geo.Cg, geo.flops(), gy, x, gw,
                  *_settings(geo))
    return gx, gw


_compiled = None


def _kernels():
    """``(forward, input gradient, weight gradient)``, compiled on first use."""
    global _compiled
    if _compiled is not None:
        return _compiled
    from numba import njit  # noqa: PLC0415

    @njit(cache=True, nogil=True, inline="always")
    def _valid(tap, s, p, d, size, out):
        # outputs o in [lo, hi) whose input o*s + tap*d - p lies in [0, size)
        lo = max(0, -((tap * d - p) // s))
        hi = min(out, (size - 1 + p - tap * d) // s + 1)
        return lo, max(lo, hi)

    @njit(cache=True, nogil=True)
    def forward_loop(x, w, bias, y, sd, sh, sw, pd, ph, pw, dd, dh, dw, u0, u1):
        C, D, H, W = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
        K, Cg, kD, kH, kW = w.shape
        OD, OH, OW = y.shape[2], y.shape[3], y.shape[4]
        Kg = K // (C // Cg)
        for u in range(u0, u1):  # u = n*K + k
            n, k = u // K, u % K
            yk = y[n, k]
            yk[...] = bias[k]
            for c in range(Cg):
                xc = x[n, (k // Kg) * Cg + c]
                for a in range(kD):
                    od0, od1 = _valid(a, sd, pd, dd, D, OD)
                    for b in range(kH):
                        oh0, oh1 = _valid(b, sh, ph, dh, H, OH)
                        for e in range(kW):
                            ow0, ow1 = _valid(e, sw, pw, dw, W, OW)
                            wv, shift = w[k, c, a, b, e], e * dw - pw
                            for od in range(od0, od1):
                                for oh in range(oh0, oh1):
                                    xr = xc[od * sd + a * dd - pd, oh * sh + b * dh - ph,
                                            ow0 * sw + shift::sw]  # views, see forward_wide
                                    yr = yk[od, oh, ow0:ow1]
                                    for t in range(ow1 - ow0):
                                        yr[t] += wv * xr[t]

    @njit(cache=True, nogil=True)
    def input_loop(gy, w, gx, sd, sh, sw, pd, ph, pw, dd, dh, dw, u0, u1):
        C, D, H, W = gx.shape[1], gx.shape[2], gx.shape[3], gx.shape[4]
        K, Cg, kD, kH, kW = w.shape
        OD, OH, OW = gy.shape[2], gy.shape[3], gy.shape[4]
        Kg = K // (C // Cg)
        for u in range(u0, u1):  # u = n*C + input channel
            n, ci = u // C, u % C
            g, c = ci // Cg, ci % Cg
            gxc = gx[n, ci]
            gxc[...] = 0
            for k in range(g * Kg, (g + 1) * Kg):
                gyk = gy[n, k]
                for a in range(kD):
                    od0, od1 = _valid(a, sd, pd, dd, D, OD)
                    for b in range(kH):
                        oh0, oh1 = _valid(b, sh, ph, dh, H, OH)
                        for e in range(kW):
                            ow0, ow1 = _valid(e, sw, pw, dw, W, OW)
                            wv, shift = w[k, c, a, b, e], e * dw - pw
                            for od in range(od0, od1):
                                for oh in range(oh0, oh1):
                                    dst = gxc[od * sd + a * dd - pd, oh * sh + b * dh - ph,
                                              ow0 * sw + shift::sw]
                                    src = gyk[od, oh, ow0:ow1]
                                    for t in range(ow1 - ow0):
                                        dst[t] += wv * src[t]

    @njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
    def weight_loop(gy, x, gw, sd, sh, sw, pd, ph, pw, dd, dh, dw, u0, u1):
        N, C, D, H, W = x.shape
        K, Cg, kD, kH, kW = gw.shape
        OD, OH, OW = gy.shape[2], gy.shape[3], gy.shape[4]
        Kg = K // (C // Cg)
        for u in range(u0, u1):  # u = k*Cg + c
            k, c = u // Cg, u % Cg
            ci = (k // Kg) * Cg + c
            for a in range(kD):
                od0, od1 = _valid(a, sd, pd, dd, D, OD)
                for b in range(kH):
                    oh0, oh1 = _valid(b, sh, ph, dh, H, OH)
                    for e in range(kW):
                        ow0, ow1 = _valid(e, sw, pw, dw, W, OW)
                        shift, acc = e * dw - pw, 0.0
                        for n in range(N):
                            for od in range(od0, od1):
                                for oh in range(oh0, oh1):
                                    xr = x[n, ci, od * sd + a * dd - pd, oh * sh + b * dh - ph,
                                           ow0 * sw + shift::sw]
                                    gr = gy[n, k, od, oh, ow0:ow1]
                                    for t in range(ow1 - ow0):
                                        acc += gr[t] * xr[t]
                        gw[k, c, a, b, e] = acc

    # Stride 1: every tap reads the zero-padded input plane-slab shifted by one constant offset,
    # so a volume laid out with the padded row and plane lengths (Hp*Wp per plane, Wp per row;
    # "wide": the positions past OW or OH hold values nobody reads) makes each tap one long
    # contiguous loop instead of OD*OH loops of OW values.
    @njit(cache=True, nogil=True, inline="always")
    def _embed(dst, src, pd, ph, pw, Hp, Wp):
        # dst (wide, flat)[(i + pd)*Hp*Wp + (j + ph)*Wp + l + pw] = src[i, j, l]
        for i in range(src.shape[0]):
            for j in range(src.shape[1]):
                base = (i + pd) * Hp * Wp + (j + ph) * Wp + pw
                for l in range(src.shape[2]):
                    dst[base + l] = src[i, j, l]

    @njit(cache=True, nogil=True)
    def forward_wide(x, w, bias, y, sd, sh, sw, pd, ph, pw, dd, dh, dw, u0, u1):
        C = x.shape[1]
        K, Cg, kD, kH, kW = w.shape
        OD, OH, OW = y.shape[2], y.shape[3], y.shape[4]
        Kg = K // (C // Cg)
        Dp, Hp, Wp = OD + dd * (kD - 1), OH + dh * (kH - 1), OW + dw * (kW - 1)
        L = (OD - 1) * Hp * Wp + (OH - 1) * Wp + OW  # one past the last output read back
        xp, yw = np.zeros(Dp * Hp * Wp, x.dtype), np.empty(L, y.dtype)
        for u in range(u0, u1):  # u = n*K + k
            n, k = u // K, u % K
            yw[:] = bias[k]
            for c in range(Cg):
                _embed(xp, x[n, (k // Kg) * Cg + c], pd, ph, pw, Hp, Wp)
                for a in range(kD):
                    for b in range(kH):
                        for e in range(kW):
                            wv, off = w[k, c, a, b, e], (a * dd * Hp + b * dh) * Wp + e * dw
                            src = xp[off:off + L]  # a view: indices from range(L) need
                            for q in range(L):     # no negative-index check, so it vectorizes
                                yw[q] += wv * src[q]
            for od in range(OD):
                for oh in range(OH):
                    for ow in range(OW):
                        y[n, k, od, oh, ow] = yw[(od * Hp + oh) * Wp + ow]

    @njit(cache=True, nogil=True)
    def input_wide(gy, w, gx, sd, sh, sw, pd, ph, pw, dd, dh, dw, u0, u1):
        C, D, H, W = gx.shape[1], gx.shape[2], gx.shape[3], gx.shape[4]
        K, Cg, kD, kH, kW = w.shape
        OD, OH, OW = gy.shape[2], gy.shape[3], gy.shape[4]
        Kg = K // (C // Cg)
        Dp, Hp, Wp = OD + dd * (kD - 1), OH + dh * (kH - 1), OW + dw * (kW - 1)
        L = (OD - 1) * Hp * Wp + (OH - 1) * Wp + OW
        gyw, gxw = np.zeros(L, gy.dtype), np.empty(Dp * Hp * Wp, gx.dtype)
        for u in range(u0, u1):  # u = n*C + input channel
            n, ci = u // C, u % C
            g, c = ci // Cg, ci % Cg
            gxw[:] = 0
            for k in range(g * Kg, (g + 1) * Kg):
                _embed(gyw, gy[n, k], 0, 0, 0, Hp, Wp)  # the wide gaps stay zero
                for a in range(kD):
                    for b in range(kH):
                        for e in range(kW):
                            wv, off = w[k, c, a, b, e], (a * dd * Hp + b * dh) * Wp + e * dw
                            dst = gxw[off:off + L]
                            for q in range(L):
                                dst[q] += wv * gyw[q]
            for i in range(D):
                for j in range(H):
                    for l in range(W):
                        gx[n, ci, i, j, l] = gxw[((i + pd) * Hp + j + ph) * Wp + l + pw]

    @njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
    def weight_wide(gy, x, gw, sd, sh, sw, pd, ph, pw, dd, dh, dw, u0, u1):
        N, C = x.shape[0], x.shape[1]
        K, Cg, kD, kH, kW = gw.shape
        OD, OH, OW = gy.shape[2], gy.shape[3], gy.shape[4]
        Kg = K // (C // Cg)
        Dp, Hp, Wp = OD + dd * (kD - 1), OH + dh * (kH - 1), OW + dw * (kW - 1)
        L = (OD - 1) * Hp * Wp + (OH - 1) * Wp + OW
        xp, gyw = np.zeros(Dp * Hp * Wp, x.dtype), np.zeros(L, gy.dtype)
        acc = np.empty((kD, kH, kW))
        for u in range(u0, u1):  # u = k*Cg + c
            k, c = u // Cg, u % Cg
            acc[...] = 0
            for n in range(N):
                _embed(xp, x[n, (k // Kg) * Cg + c], pd, ph, pw, Hp, Wp)
                _embed(gyw, gy[n, k], 0, 0, 0, Hp, Wp)
                for a in range(kD):
                    for b in range(kH):
                        for e in range(kW):
                            off, total = (a * dd * Hp + b * dh) * Wp + e * dw, 0.0
                            src = xp[off:off + L]
                            for q in range(L):
                                total += gyw[q] * src[q]
                            acc[a, b, e] += total
            gw[k, c] = acc

    _compiled = (forward_loop, input_loop, weight_loop, forward_wide, input_wide, weight_wide)
    return _compiled
