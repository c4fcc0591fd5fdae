"""The compiled loops of strategy ``'direct'`` (see direct.py for what they compute).

They are module-level functions, imported only when first needed (numba's import and compile
take seconds): numba's on-disk cache (``cache=True``) then finds them again in a new process.
Loops defined inside a function and calling each other would be keyed by their closure, which
differs in every process: the cache would never hit, and every process would add a file to it.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _wide_sizes(w_shape, y_shape, sd, sh, sw, dd, dh, dw):
    # the padded extent the outputs read (Dp, Hp, Wp), and L: one past the last output
    OD, OH, OW = y_shape[2], y_shape[3], y_shape[4]
    Dp = (OD - 1) * sd + dd * (w_shape[2] - 1) + 1
    Hp = (OH - 1) * sh + dh * (w_shape[3] - 1) + 1
    Wp = (OW - 1) * sw + dw * (w_shape[4] - 1) + 1
    return Dp, Hp, Wp, ((OD - 1) * sd * Hp + (OH - 1) * sh) * Wp + (OW - 1) * sw + 1


@njit(cache=True, nogil=True, inline="always")
def _embed_x(dst, src, pd, ph, pw, Dp, Hp, Wp):
    # dst[((i + pd)*Hp + j + ph)*Wp + l + pw] = src[i, j, l], for the voxels inside Dp, Hp, Wp
    for i in range(min(src.shape[0], Dp - pd)):
        for j in range(min(src.shape[1], Hp - ph)):
            base = ((i + pd) * Hp + j + ph) * Wp + pw
            for l in range(min(src.shape[2], Wp - pw)):
                dst[base + l] = src[i, j, l]


@njit(cache=True, nogil=True, inline="always")
def _embed_y(dst, src, sd, sh, sw, Hp, Wp):
    # dst[(od*sd*Hp + oh*sh)*Wp + ow*sw] = src[od, oh, ow]; the rest of dst stays as it is
    for od in range(src.shape[0]):
        for oh in range(src.shape[1]):
            base = (od * sd * Hp + oh * sh) * Wp
            for ow in range(src.shape[2]):
                dst[base + ow * sw] = src[od, oh, ow]


@njit(cache=True, nogil=True)
def forward_loop(x, w, bias, y, sd, sh, sw, pd, ph, pw, dd, dh, dw, u0, u1):
    C = x.shape[1]
    K, Cg, kD, kH, kW = w.shape
    OD, OH, OW = y.shape[2], y.shape[3], y.shape[4]
    Kg = K // (C // Cg)
    Dp, Hp, Wp, L = _wide_sizes(w.shape, y.shape, sd, sh, sw, dd, dh, dw)
    xp, yw = np.zeros(Dp * Hp * Wp, x.dtype), np.empty(L, y.dtype)
    for u in range(u0, u1):  # u = n*K + k
        n, k = u // K, u % K
        yw[:] = bias[k]
        for c in range(Cg):
            _embed_x(xp, x[n, (k // Kg) * Cg + c], pd, ph, pw, Dp, Hp, Wp)
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
                    y[n, k, od, oh, ow] = yw[(od * sd * Hp + oh * sh) * Wp + ow * sw]


@njit(cache=True, nogil=True)
def input_loop(gy, w, gx, sd, sh, sw, pd, ph, pw, dd, dh, dw, u0, u1):
    C, D, H, W = gx.shape[1], gx.shape[2], gx.shape[3], gx.shape[4]
    K, Cg, kD, kH, kW = w.shape
    Kg = K // (C // Cg)
    Dp, Hp, Wp, L = _wide_sizes(w.shape, gy.shape, sd, sh, sw, dd, dh, dw)
    gyw, gxw = np.zeros(L, gy.dtype), np.empty(Dp * Hp * Wp, gx.dtype)
    for u in range(u0, u1):  # u = n*C + input channel
        n, ci = u // C, u % C
        g, c = ci // Cg, ci % Cg
        gxw[:] = 0
        for k in range(g * Kg, (g + 1) * Kg):
            _embed_y(gyw, gy[n, k], sd, sh, sw, Hp, Wp)  # the gaps stay zero
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
                    inside = i + pd < Dp and j + ph < Hp and l + pw < Wp
                    gx[n, ci, i, j, l] = gxw[((i + pd) * Hp + j + ph) * Wp + l + pw] \
                        if inside else 0  # voxels no output reads


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def weight_loop(gy, x, gw, sd, sh, sw, pd, ph, pw, dd, dh, dw, u0, u1):
    N, C = x.shape[0], x.shape[1]
    K, Cg, kD, kH, kW = gw.shape
    Kg = K // (C // Cg)
    Dp, Hp, Wp, L = _wide_sizes(gw.shape, gy.shape, sd, sh, sw, dd, dh, dw)
    xp, gyw = np.zeros(Dp * Hp * Wp, x.dtype), np.zeros(L, gy.dtype)
    acc = np.empty((kD, kH, kW))
    for u in range(u0, u1):  # u = k*Cg + c
        k, c = u // Cg, u % Cg
        acc[...] = 0
        for n in range(N):
            _embed_x(xp, x[n, (k // Kg) * Cg + c], pd, ph, pw, Dp, Hp, Wp)
            _embed_y(gyw, gy[n, k], sd, sh, sw, Hp, Wp)
            for a in range(kD):
                for b in range(kH):
                    for e in range(kW):
                        off, total = (a * dd * Hp + b * dh) * Wp + e * dw, 0.0
                        src = xp[off:off + L]
                        for q in range(L):
                            total += gyw[q] * src[q]
                        acc[a, b, e] += total
        gw[k, c] = acc
