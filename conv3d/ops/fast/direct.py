"""Strategy ``'direct'``: compiled loops over the taps, for layers with few channels per group.

A depthwise layer (groups = channels) is C tiny convolutions of one channel each. im2col would
copy every input voxel kD*kH*kW times to feed GEMMs of one row; here each output channel is
accumulated tap by tap instead, one output row at a time::

    y[n, k, od, oh, :]  += w[k, c, a, b, e] * x[n, g*Cg + c, od*s - p + a*d, oh*s - p + b*d, e*d - p :: s]
    gx[n, g*Cg + c, ...] += w[k, c, a, b, e] * gy[n, k, od, oh, :]      (the same rows, scattered)
    gw[k, c, a, b, e]    = sum over n, od, oh, ow of gy[n, k, od, oh, ow] * x[n, g*Cg + c, ...]

For each tap only the outputs whose input lies inside the data are visited (``_valid``), so
there is no padded copy and no workspace at all. The work is cut into independent units: the
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

def _settings(geo: ConvGeometry) -> tuple:
    return geo.stride + tuple(p[0] for p in geo.padding) + geo.dilation


def forward(x, w, b, stride, padding, dilation, groups, workspace_limit=None, out=None):
    """y (N, K, OD, OH, OW); ``workspace_limit`` is accepted and unused (no scratch memory)."""
    geo = ConvGeometry.from_shapes(x.shape, w.shape, stride, padding, dilation, groups)
    y = output(geo.y_shape, x.dtype, out)
    bias = np.zeros(geo.K, x.dtype) if b is None else b
    run_units(_kernels()[0], geo.N * geo.K, geo.flops(), x, w, bias, y, *_settings(geo))
    return y


def backward(gy, x, w, stride, padding, dilation, groups, output_mask=(True, True),
             workspace_limit=None, out=None):
    """``(gx, gw)``, ``None`` where ``output_mask`` is False; ``out``: the array for ``gx``."""
    geo = ConvGeometry.from_shapes(x.shape, w.shape, stride, padding, dilation, groups)
    gx = gw = None
    if output_mask[0]:
        gx = output(geo.x_shape, gy.dtype, out)
        run_units(_kernels()[1], geo.N * geo.C, geo.flops(), gy, w, gx, *_settings(geo))
    if output_mask[1]:
        gw = np.empty(geo.w_shape, dtype=gy.dtype)
        run_units(_kernels()[2], geo.K * geo.Cg, geo.flops(), gy, x, gw, *_settings(geo))
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
                                    xr = xc[od * sd + a * dd - pd, oh * sh + b * dh - ph]
                                    yr = yk[od, oh]
                                    for ow in range(ow0, ow1):
                                        yr[ow] += wv * xr[ow * sw + shift]

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
                                    dst = gxc[od * sd + a * dd - pd, oh * sh + b * dh - ph]
                                    src = gyk[od, oh]
                                    for ow in range(ow0, ow1):
                                        dst[ow * sw + shift] += wv * src[ow]

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
                                    xr = x[n, ci, od * sd + a * dd - pd, oh * sh + b * dh - ph]
                                    gr = gy[n, k, od, oh]
                                    for ow in range(ow0, ow1):
                                        acc += gr[ow] * xr[ow * sw + shift]
                        gw[k, c, a, b, e] = acc

    _compiled = forward_loop, input_loop, weight_loop
    return _compiled
