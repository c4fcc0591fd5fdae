"""The compiled loops of the CPU pooling (see pooling.py for what they compute).

They are module-level functions, imported only when first needed (numba's import and compile
take seconds): numba's on-disk cache (``cache=True``) then finds them again in a new process.
Loops defined inside a function and calling each other would be keyed by their closure, which
differs in every process: the cache would never hit, and every process would add a file to it.
"""
from __future__ import annotations

import numpy as np
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
def _windows(O, k, s, p, d, size, include_pad):
    """Per output o of one axis: the first input its window reads, the taps [lo, hi) that land
    inside the input, and its average pooling divisor (``_taps`` and ``_divisor``, computed
    once per call and axis, not once per voxel: they divide)."""
    w = np.empty((O, 4), np.int64)
    for o in range(O):
        w[o, 0], w[o, 1], w[o, 2] = _taps(o, k, s, p, d, size)
        w[o, 3] = _divisor(o, k, s, p, size, include_pad)
    return w


@njit(cache=True, nogil=True, inline="always")
def _row_max(best, where, src, src_at, nan):
    """``best = max(best, src)`` element by element along one row, ``where`` following. Ties
    keep ``best``; with ``nan`` (the volume holds a NaN) a NaN always wins. The plain ``>`` is
    the fast loop: a compound condition in it makes the whole loop several times slower."""
    for q in range(best.size):
        v = src[q]
        if v > best[q]:
            best[q], where[q] = v, src_at[q]
        elif nan and v != v:
            best[q], where[q] = v, src_at[q]


@njit(cache=True, nogil=True)
def max_forward(x, y, idx, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw, u0, u1):
    """Per (n, c) volume, the maximum of each window as three one-axis maxima (along width,
    then height, then depth): 3 + 3 + 3 comparisons per output of a 3x3x3 window instead of
    27, the height and depth passes over whole rows. The width and height passes run plane by
    plane, so that the width-maxima of a plane are still in cache when the height pass reads
    them (a whole volume's would not be, at the U-Net's 96^3).
    The flat index follows its value through the passes, and the first tap in (kd, kh, kw)
    order still wins a tie: the depth pass keeps the first plane holding the maximum, whose
    value came from its first such row, whose value came from its first such voxel. A NaN
    wins (the last one in that order, as in a loop over all taps with ``v > best or v != v``):
    the width pass notes NaNs as it goes and rereads only the windows that hold one."""
    C, D, H, W = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    OD, OH, OW = y.shape[2], y.shape[3], y.shape[4]
    wd, wh, ww = (_windows(OD, kd, sd, pd, dd, D, True), _windows(OH, kh, sh, ph, dh, H, True),
                  _windows(OW, kw, sw, pw, dw, W, True))
    v1, i1 = np.empty((H, OW), x.dtype), np.empty((H, OW), np.int64)  # one plane: in cache
    v2, i2 = np.empty((D, OH, OW), x.dtype), np.empty((D, OH, OW), np.int64)
    for u in range(u0, u1):
        n, c = u // C, u % C
        xc, yc, ic = x[n, c], y[n, c].reshape(OD, -1), idx[n, c].reshape(OD, -1)
        any_nan = False
        for i in range(D):
            for j in range(H):  # along width: window by window
                row, base = xc[i, j], (i * H + j) * W
                for o in range(OW):
                    start, lo, hi = ww[o, 0], ww[o, 1], ww[o, 2]
                    at = start + lo * dw
                    best = row[at]
                    nan = best != best
                    for e in range(lo + 1, hi):
                        v = row[start + e * dw]
                        nan |= v != v
                        if v > best:
                            best, at = v, start + e * dw
                    if nan:  # the last NaN of the window is its maximum
                        any_nan = True
                        for e in range(lo, hi):
                            if row[start + e * dw] != row[start + e * dw]:
                                best, at = row[start + e * dw], start + e * dw
                    v1[j, o], i1[j, o] = best, base + at
            for o in range(OH):  # along height: whole rows of this plane's width-maxima
                start, lo, hi = wh[o, 0], wh[o, 1], wh[o, 2]
                t = start + lo * dh
                v2[i, o], i2[i, o] = v1[t], i1[t]
                for e in range(lo + 1, hi):
                    t = start + e * dh
                    _row_max(v2[i, o], i2[i, o], v1[t], i1[t], any_nan)
        p2, q2 = v2.reshape(D, -1), i2.reshape(D, -1)
        for o in range(OD):  # along depth: whole planes of height-maxima
            start, lo, hi = wd[o, 0], wd[o, 1], wd[o, 2]
            t = start + lo * dd
            yc[o], ic[o] = p2[t], q2[t]
            for e in range(lo + 1, hi):
                t = start + e * dd
                _row_max(yc[o], ic[o], p2[t], q2[t], any_nan)


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
    wd, wh, ww = (_windows(OD, kd, sd, pd, 1, D, include_pad),
                  _windows(OH, kh, sh, ph, 1, H, include_pad),
                  _windows(OW, kw, sw, pw, 1, W, include_pad))
    for u in range(u0, u1):
        n, c = u // C, u % C
        xc, yc = x[n, c], y[n, c]
        for od in range(OD):
            zd, ad, bd, qd = wd[od, 0], wd[od, 1], wd[od, 2], wd[od, 3]
            for oh in range(OH):
                zh, ah, bh, qh = wh[oh, 0], wh[oh, 1], wh[oh, 2], wh[oh, 3]
                for ow in range(OW):
                    zw, aw, bw = ww[ow, 0], ww[ow, 1], ww[ow, 2]
                    total = xc[0, 0, 0] * 0
                    for i in range(zd + ad, zd + bd):
                        for j in range(zh + ah, zh + bh):
                            row = xc[i, j]
                            for e in range(zw + aw, zw + bw):
                                total += row[e]
                    yc[od, oh, ow] = total / (qd * qh * ww[ow, 3])


@njit(cache=True, nogil=True)
def avg_backward(gy, gx, kd, kh, kw, sd, sh, sw, pd, ph, pw, include_pad, u0, u1):
    C, D, H, W = gx.shape[1], gx.shape[2], gx.shape[3], gx.shape[4]
    OD, OH, OW = gy.shape[2], gy.shape[3], gy.shape[4]
    wd, wh, ww = (_windows(OD, kd, sd, pd, 1, D, include_pad),
                  _windows(OH, kh, sh, ph, 1, H, include_pad),
                  _windows(OW, kw, sw, pw, 1, W, include_pad))
    for u in range(u0, u1):
        n, c = u // C, u % C
        gc, gyc = gx[n, c], gy[n, c]
        gc[...] = 0
        for od in range(OD):
            zd, ad, bd, qd = wd[od, 0], wd[od, 1], wd[od, 2], wd[od, 3]
            for oh in range(OH):
                zh, ah, bh, qh = wh[oh, 0], wh[oh, 1], wh[oh, 2], wh[oh, 3]
                for ow in range(OW):
                    zw, aw, bw = ww[ow, 0], ww[ow, 1], ww[ow, 2]
                    g = gyc[od, oh, ow] / (qd * qh * ww[ow, 3])
                    for i in range(zd + ad, zd + bd):
                        for j in range(zh + ah, zh + bh):
                            row = gc[i, j]
                            for e in range(zw + aw, zw + bw):
                                row[e] += g


@njit(cache=True, nogil=True)
def max_forward_taps(x, y, idx, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw, u0, u1):
    """``max_forward`` for windows that share no voxel (stride at least the window's extent on
    every axis): each output reads its taps in (kd, kh, kw) order, with no intermediates (a
    2x2x2 window makes 7 comparisons either way, and the separable passes would write and
    reread two intermediate volumes). Ties keep the first tap; a window holding a NaN is
    reread, and its last NaN wins."""
    C, D, H, W = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    OD, OH, OW = y.shape[2], y.shape[3], y.shape[4]
    wd, wh, ww = (_windows(OD, kd, sd, pd, dd, D, True), _windows(OH, kh, sh, ph, dh, H, True),
                  _windows(OW, kw, sw, pw, dw, W, True))
    for u in range(u0, u1):
        n, c = u // C, u % C
        xc, yc, ic = x[n, c], y[n, c], idx[n, c]
        for od in range(OD):
            zd, ad, bd = wd[od, 0], wd[od, 1], wd[od, 2]
            for oh in range(OH):
                zh, ah, bh = wh[oh, 0], wh[oh, 1], wh[oh, 2]
                for ow in range(OW):
                    zw, aw, bw = ww[ow, 0], ww[ow, 1], ww[ow, 2]
                    i, j, e = zd + ad * dd, zh + ah * dh, zw + aw * dw
                    best, at = xc[i, j, e], (i * H + j) * W + e
                    nan = best != best
                    for a in range(ad, bd):
                        i = zd + a * dd
                        for b in range(ah, bh):
                            row, base = xc[i, zh + b * dh], (i * H + zh + b * dh) * W
                            for t in range(aw, bw):
                                v = row[zw + t * dw]
                                nan |= v != v
                                if v > best:
                                    best, at = v, base + zw + t * dw
                    if nan:  # the last NaN of the window is its maximum
                        for a in range(ad, bd):
                            i = zd + a * dd
                            for b in range(ah, bh):
                                row, base = xc[i, zh + b * dh], (i * H + zh + b * dh) * W
                                for t in range(aw, bw):
                                    if row[zw + t * dw] != row[zw + t * dw]:
                                        best, at = row[zw + t * dw], base + zw + t * dw
                    yc[od, oh, ow], ic[od, oh, ow] = best, at
