"""The compiled loops of the CPU pooling (see pooling.py for what they compute).

They are module-level functions, imported only when first needed (numba's import and compile
take seconds): numba's on-disk cache (``cache=True``) then finds them again in a new process.
Loops defined inside a function and calling each other would be keyed by their closure, which
differs in every process: the cache would never hit, and every process would add a file to it.
"""
from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _taps(o, k, s, p, d, size):
    # the window of output o starts at o*s - p; taps t in [lo, hi) read inside [0, size)
    start = o * s - p
    lo = 0 if start >= 0 else (-start + d - 1) // d
    hi = min(k, (size - 1 - start) // d + 1)
    return start, lo, max(lo, hi)


@njit(cache=True, nogil=True, inline="always")
def _divisor(o, k, s, p, size, include_pad):
    start = o * s - p
    end = min(start + k, size + p)
    if include_pad:
        return end - start
    return min(end, size) - max(start, 0)


@njit(cache=True, nogil=True)
def max_forward(x, y, idx, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw, u0, u1):
    C, D, H, W = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    OD, OH, OW = y.shape[2], y.shape[3], y.shape[4]
    for u in range(u0, u1):
        n, c = u // C, u % C
        xc, yc, ic = x[n, c], y[n, c], idx[n, c]
        for od in range(OD):
            zd, ad, bd = _taps(od, kd, sd, pd, dd, D)
            for oh in range(OH):
                zh, ah, bh = _taps(oh, kh, sh, ph, dh, H)
                for ow in range(OW):
                    zw, aw, bw = _taps(ow, kw, sw, pw, dw, W)
                    i0, j0, w0 = zd + ad * dd, zh + ah * dh, zw + aw * dw
                    best, at = xc[i0, j0, w0], (i0 * H + j0) * W + w0  # the first tap
                    for a in range(ad, bd):
                        i = zd + a * dd
                        for b in range(ah, bh):
                            j = zh + b * dh
                            for e in range(aw, bw):
                                v = xc[i, j, zw + e * dw]
                                if v > best or v != v:
                                    best, at = v, (i * H + j) * W + zw + e * dw
                    yc[od, oh, ow] = best
                    ic[od, oh, ow] = at


@njit(cache=True, nogil=True)
def max_backward(gy, idx, gx, u0, u1):
    C = gx.shape[1]
    for u in range(u0, u1):
        n, c = u // C, u % C
        dst, src, at = gx[n, c].reshape(-1), gy[n, c].reshape(-1), idx[n, c].reshape(-1)
        dst[:] = 0
        for q in range(src.size):
            dst[at[q]] += src[q]


@njit(cache=True, nogil=True)
def avg_forward(x, y, kd, kh, kw, sd, sh, sw, pd, ph, pw, include_pad, u0, u1):
    C, D, H, W = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    OD, OH, OW = y.shape[2], y.shape[3], y.shape[4]
    for u in range(u0, u1):
        n, c = u // C, u % C
        xc, yc = x[n, c], y[n, c]
        for od in range(OD):
            zd, ad, bd = _taps(od, kd, sd, pd, 1, D)
            qd = _divisor(od, kd, sd, pd, D, include_pad)
            for oh in range(OH):
                zh, ah, bh = _taps(oh, kh, sh, ph, 1, H)
                qh = _divisor(oh, kh, sh, ph, H, include_pad)
                for ow in range(OW):
                    zw, aw, bw = _taps(ow, kw, sw, pw, 1, W)
                    total = xc[0, 0, 0] * 0
                    for i in range(zd + ad, zd + bd):
                        for j in range(zh + ah, zh + bh):
                            row = xc[i, j]
                            for e in range(zw + aw, zw + bw):
                                total += row[e]
                    q = qd * qh * _divisor(ow, kw, sw, pw, W, include_pad)
                    yc[od, oh, ow] = total / q


@njit(cache=True, nogil=True)
def avg_backward(gy, gx, kd, kh, kw, sd, sh, sw, pd, ph, pw, include_pad, u0, u1):
    C, D, H, W = gx.shape[1], gx.shape[2], gx.shape[3], gx.shape[4]
    OD, OH, OW = gy.shape[2], gy.shape[3], gy.shape[4]
    for u in range(u0, u1):
        n, c = u // C, u % C
        gc, gyc = gx[n, c], gy[n, c]
        gc[...] = 0
        for od in range(OD):
            zd, ad, bd = _taps(od, kd, sd, pd, 1, D)
            qd = _divisor(od, kd, sd, pd, D, include_pad)
            for oh in range(OH):
                zh, ah, bh = _taps(oh, kh, sh, ph, 1, H)
                qh = _divisor(oh, kh, sh, ph, H, include_pad)
                for ow in range(OW):
                    zw, aw, bw = _taps(ow, kw, sw, pw, 1, W)
                    g = gyc[od, oh, ow] / (qd * qh * _divisor(ow, kw, sw, pw, W, include_pad))
                    for i in range(zd + ad, zd + bd):
                        for j in range(zh + ah, zh + bh):
                            row = gc[i, j]
                            for e in range(zw + aw, zw + bw):
                                row[e] += g
