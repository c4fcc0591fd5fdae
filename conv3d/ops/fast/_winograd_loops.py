"""The compiled loops of strategy ``'winograd'``: its input and output transforms, a tile at a time,
for the 3x3x3 kernel and (the ``_2d`` pair) the (1, 3, 3) one
(see winograd.py for the matrices B^T and A^T and the layouts).

A tile's 4x4x4 values stay in a small local array through all three axes, so each transform is
one pass over memory. Done with NumPy, one axis at a time, every axis would be a pass of its own
that writes an array up to 4x larger than the one it reads. Module-level functions, so that
numba's on-disk cache (``cache=True``) finds them again in a new process (as in
``_direct_loops.py``); ``nogil`` lets the threads of ``winograd._split`` run them side by side.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def input_transform(slab, V):
    """``V[aw*16 + ah*4 + ad, c, m, i, j, k]`` = ``(B^T x B^T x B^T) d`` at position (ad, ah, aw)
    for the tile ``d = slab[c, m, 2i:2i+4, 2j:2j+4, 2k:2k+4]``.

    slab: (C, n, 2*TD + 2, 2*TH + 2, 2*TW + 2), the zero-padded input; V: (64, C, n, TD, TH, TW).
    B^T along an axis: (d0 - d2, d1 + d2, d2 - d1, d1 - d3). One row of tiles (c, m, i, j) at a
    time, its inner loops over the row's voxels: they run over contiguous memory, and the
    row's intermediates (4 x 4 x Wp values) stay in L1 cache."""
    C, n, TD, TH, TW = V.shape[1], V.shape[2], V.shape[3], V.shape[4], V.shape[5]
    Wp = slab.shape[4]
    a = np.empty((4, 4, Wp), V.dtype)  # after depth: a[ad, h, w]
    b = np.empty((4, 4, Wp), V.dtype)  # after height: b[ad, ah, w]
    for c in range(C):
        for m in range(n):
            for i in range(TD):
                for j in range(TH):
                    z, y = 2 * i, 2 * j
                    for h in range(4):
                        for w in range(Wp):
                            d0, d1 = slab[c, m, z, y + h, w], slab[c, m, z + 1, y + h, w]
                            d2, d3 = slab[c, m, z + 2, y + h, w], slab[c, m, z + 3, y + h, w]
                            a[0, h, w], a[1, h, w] = d0 - d2, d1 + d2
                            a[2, h, w], a[3, h, w] = d2 - d1, d1 - d3
                    for ad in range(4):
                        for w in range(Wp):
                            d0, d1, d2, d3 = a[ad, 0, w], a[ad, 1, w], a[ad, 2, w], a[ad, 3, w]
                            b[ad, 0, w], b[ad, 1, w] = d0 - d2, d1 + d2
                            b[ad, 2, w], b[ad, 3, w] = d2 - d1, d1 - d3
                    for ad in range(4):
                        for ah in range(4):
                            p = ah * 4 + ad
                            for k in range(TW):
                                d0, d1 = b[ad, ah, 2 * k], b[ad, ah, 2 * k + 1]
                                d2, d3 = b[ad, ah, 2 * k + 2], b[ad, ah, 2 * k + 3]
                                V[p, c, m, i, j, k] = d0 - d2
                                V[16 + p, c, m, i, j, k] = d1 + d2
                                V[32 + p, c, m, i, j, k] = d2 - d1
                                V[48 + p, c, m, i, j, k] = d1 - d3


@njit(cache=True, nogil=True)
def output_transform(M, y):
    """``y[m, kk, 2i + od, 2j + oh, 2k + ow]`` = ``(A^T x A^T x A^T) M[:, kk, m, i, j, k]`` at
    output (od, oh, ow) of the tile, for the outputs inside y (the last tiles may hang over).

    M: (64, K, n, TD, TH, TW), positions aw*16 + ah*4 + ad; y: (n, K, OD, OH, OW), a view.
    A^T along an axis: (m0 + m1 + m2, m1 - m2 - m3). One row of tiles at a time, as above."""
    K, n, TD, TH, TW = M.shape[1], M.shape[2], M.shape[3], M.shape[4], M.shape[5]
    OD, OH, OW = y.shape[2], y.shape[3], y.shape[4]
    s = np.empty((4, 4, 2, TW), M.dtype)  # after depth: s[aw, ah, od, k]
    t = np.empty((4, 2, 2, TW), M.dtype)  # after height: t[aw, oh, od, k]
    for kk in range(K):
        for m in range(n):
            for i in range(TD):
                for j in range(TH):
                    for aw in range(4):
                        for ah in range(4):
                            p = aw * 16 + ah * 4
                            for k in range(TW):
                                m0, m1 = M[p, kk, m, i, j, k], M[p + 1, kk, m, i, j, k]
                                m2, m3 = M[p + 2, kk, m, i, j, k], M[p + 3, kk, m, i, j, k]
                                s[aw, ah, 0, k], s[aw, ah, 1, k] = m0 + m1 + m2, m1 - m2 - m3
                    for aw in range(4):
                        for od in range(2):
                            for k in range(TW):
                                m0, m1 = s[aw, 0, od, k], s[aw, 1, od, k]
                                m2, m3 = s[aw, 2, od, k], s[aw, 3, od, k]
                                t[aw, 0, od, k], t[aw, 1, od, k] = m0 + m1 + m2, m1 - m2 - m3
                    for oh in range(2):
                        for od in range(2):
                            zz, yy = 2 * i + od, 2 * j + oh
                            if zz >= OD or yy >= OH:
                                continue
                            for k in range(TW):
                                m0, m1 = t[0, oh, od, k], t[1, oh, od, k]
                                m2, m3 = t[2, oh, od, k], t[3, oh, od, k]
                                y[m, kk, zz, yy, 2 * k] = m0 + m1 + m2
                                if 2 * k + 1 < OW:
                                    y[m, kk, zz, yy, 2 * k + 1] = m1 - m2 - m3


@njit(cache=True, nogil=True)
def input_transform_2d(slab, V):
    """The (1, 3, 3) kernel's ``input_transform``: ``V[aw*4 + ah, c, m, i, j, k]`` =
    ``(B^T x B^T) d`` at position (ah, aw) for the tile ``d = slab[c, m, i, 2j:2j+4, 2k:2k+4]``
    of input plane ``i`` (depth needs no transform: one tap, one plane per output plane).

    slab: (C, n, TD, 2*TH + 2, 2*TW + 2); V: (16, C, n, TD, TH, TW). One row of tiles at a time."""
    C, n, TD, TH, TW = V.shape[1], V.shape[2], V.shape[3], V.shape[4], V.shape[5]
    Wp = slab.shape[4]
    b = np.empty((4, Wp), V.dtype)  # after height: b[ah, w]
    for c in range(C):
        for m in range(n):
            for i in range(TD):
                for j in range(TH):
                    y = 2 * j
                    for w in range(Wp):
                        d0, d1 = slab[c, m, i, y, w], slab[c, m, i, y + 1, w]
                        d2, d3 = slab[c, m, i, y + 2, w], slab[c, m, i, y + 3, w]
                        b[0, w], b[1, w], b[2, w], b[3, w] = d0 - d2, d1 + d2, d2 - d1, d1 - d3
                    for ah in range(4):
                        for k in range(TW):
                            d0, d1 = b[ah, 2 * k], b[ah, 2 * k + 1]
                            d2, d3 = b[ah, 2 * k + 2], b[ah, 2 * k + 3]
                            V[ah, c, m, i, j, k] = d0 - d2
                            V[4 + ah, c, m, i, j, k] = d1 + d2
                            V[8 + ah, c, m, i, j, k] = d2 - d1
                            V[12 + ah, c, m, i, j, k] = d1 - d3


@njit(cache=True, nogil=True)
def output_transform_2d(M, y):
    """The (1, 3, 3) kernel's ``output_transform``: ``y[m, kk, i, 2j + oh, 2k + ow]`` =
    ``(A^T x A^T) M[:, kk, m, i, j, k]`` at output (oh, ow) of the tile, inside y.

    M: (16, K, n, TD, TH, TW), positions aw*4 + ah; y: (n, K, OD, OH, OW), a view."""
    K, n, TD, TH, TW = M.shape[1], M.shape[2], M.shape[3], M.shape[4], M.shape[5]
    OH, OW = y.shape[3], y.shape[4]
    s = np.empty((4, 2, TW), M.dtype)  # after height: s[aw, oh, k]
    for kk in range(K):
        for m in range(n):
            for i in range(TD):
                for j in range(TH):
                    for aw in range(4):
                        p = aw * 4
                        for k in range(TW):
                            m0, m1 = M[p, kk, m, i, j, k], M[p + 1, kk, m, i, j, k]
                            m2, m3 = M[p + 2, kk, m, i, j, k], M[p + 3, kk, m, i, j, k]
                            s[aw, 0, k], s[aw, 1, k] = m0 + m1 + m2, m1 - m2 - m3
                    for oh in range(2):
                        yy = 2 * j + oh
                        if yy >= OH:
                            continue
                        for k in range(TW):
                            m0, m1, m2, m3 = s[0, oh, k], s[1, oh, k], s[2, oh, k], s[3, oh, k]
                            y[m, kk, i, yy, 2 * k] = m0 + m1 + m2
                            if 2 * k + 1 < OW:
                                y[m, kk, i, yy, 2 * k + 1] = m1 - m2 - m3
