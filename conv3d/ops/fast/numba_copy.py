"""Copies as compiled numba loops, for the copies that NumPy does slowly: the im2col and col2im
of ``'channels-last'``, and the NCDHW col2im that ``'im2col-planes'`` uses for a depth stride > 1.
``kernels()`` compiles them on first use.

* col2im: ``gx[window] += col[tap]`` in NumPy is a generic strided loop that pays a fixed cost
  per *row*; when output rows are short that cost, once per tap, dominates. The loop does the
  same additions one (sample, channel) input plane at a time.
* channels-last im2col also *transposes* (NCDHW planes into channels-last tiles, then windows
  of C floats out of them). NumPy needs two passes for that; the loop does both per (plane,
  sample) while the tile is in L1 cache.

The loops are serial on purpose: they run between two multi-threaded BLAS calls, and numba's
worker threads and the BLAS threads, each spin-waiting after its turn, slow each other down.
The NCDHW im2col stays a NumPy copy: it only writes, and a strided copy does that well.
(Measurements: docs/benchmarks/notes.md.)
"""
from __future__ import annotations

_kernels = None


def kernels():
    """Compile on first use (numba is slow to import); ``(col2im, col2im_cl, im2col_cl)``."""
    global _kernels
    if _kernels is not None:
        return _kernels
    import numpy as np  # noqa: PLC0415
    from numba import njit  # noqa: PLC0415

    @njit(cache=True, nogil=True, inline="always")
    def valid_range(o_count, k, s, d, p, size):
        """First and one-past-last output index whose input o*s + k*d - p lies in [0, size)."""
        lo = 0
        while lo < o_count and lo * s + k * d - p < 0:
            lo += 1
        hi = o_count
        while hi > lo and (hi - 1) * s + k * d - p >= size:
            hi -= 1
        return lo, hi

    @njit(cache=True, nogil=True)
    def col2im(gx, col, n0, od0, stride, pad, dil):
        # gx (N, C, D, H, W) is added to; col (C, kD, kH, kW, n, od, OH, OW).
        C, kD, kH, kW, nc, odc, OH, OW = col.shape
        D, H, W = gx.shape[2], gx.shape[3], gx.shape[4]
        for t in range(nc * C):
            j, c = t // C, t % C
            for kd in range(kD):
                for kh in range(kH):
                    h_lo, h_hi = valid_range(OH, kh, stride[1], dil[1], pad[1], H)
                    for kw in range(kW):
                        w_lo, w_hi = valid_range(OW, kw, stride[2], dil[2], pad[2], W)
                        base = kw * dil[2] - pad[2]
                        for a in range(odc):
                            i_d = (od0 + a) * stride[0] + kd * dil[0] - pad[0]
                            if i_d < 0 or i_d >= D:
                                continue
                            for oh in range(h_lo, h_hi):
                                dst = gx[n0 + j, c, i_d, oh * stride[1] + kh * dil[1] - pad[1]]
                                src = col[c, kd, kh, kw, j, a, oh]
                                for ow in range(w_lo, w_hi):
                                    dst[ow * stride[2] + base] += src[ow]

    @njit(cache=True, nogil=True)
    def col2im_cl(slab, prod, s_d, s_h, s_w, d_d, d_h, d_w):
        # slab (Sd, n, Hp, Wp, C) += prod (odc, n, OH, OW, kD, kH, kW, C) at its windows
        odc, n, OH, OW, kD, kH, kW, C = prod.shape
        for a in range(odc):
            for kd in range(kD):
                q = a * s_d + kd * d_d
                for j in range(n):
                    for oh in range(OH):
                        for kh in range(kH):
                            row = slab[q, j, oh * s_h + kh * d_h]
                            for ow in range(OW):
                                for kw in range(kW):
                                    dst = row[ow * s_w + kw * d_w]
                                    src = prod[a, j, oh, ow, kd, kh, kw]
                                    for c in range(C):
                                        dst[c] += src[c]

    @njit(cache=True, nogil=True)
    def im2col_cl(cols, x, n0, d_lo, p_h, p_w, s_h, s_w, d_h, d_w):
        # cols (Sd, n, OH, OW, kH, kW, C) = windows of input planes d_lo.. of samples n0.. of x
        Sd, n, OH, OW, kH, kW, C = cols.shape
        D, H, W = x.shape[2], x.shape[3], x.shape[4]
        Hp = max((OH - 1) * s_h + (kH - 1) * d_h + 1, H + p_h)
        Wp = max((OW - 1) * s_w + (kW - 1) * d_w + 1, W + p_w)
        tile = np.zeros((Hp, Wp, C), dtype=cols.dtype)  # one padded plane; borders stay zero
        for q in range(Sd):
            d = d_lo + q
            for j in range(n):
                if d < 0 or d >= D:  # a padding plane
                    cols[q, j] = 0
                    continue
                for h in range(H):
                    for w in range(W):
                        t = tile[h + p_h, w + p_w]
                        for c in range(C):
                            t[c] = x[n0 + j, c, d, h, w]
                for oh in range(OH):
                    for ow in range(OW):
                        for kh in range(kH):
                            for kw in range(kW):
                                t = tile[oh * s_h + kh * d_h, ow * s_w + kw * d_w]
                                dst = cols[q, j, oh, ow, kh, kw]
                                for c in range(C):
                                    dst[c] = t[c]

    _kernels = col2im, col2im_cl, im2col_cl
    return _kernels


def col2im_add(gx, col, geo, n0, n1, od0, od1):
    """Drop-in for ``geometry.col2im_add``."""
    kernels()[0](gx, col, n0, od0, geo.stride, tuple(p[0] for p in geo.padding), geo.dilation)


def im2col_channels_last(cols, x, n0, d_lo, pad_hw, stride_hw, dilation_hw):
    """``cols`` (planes, n, OH, OW, kH, kW, C) = the 2D columns of input planes ``d_lo, d_lo+1,
    ...`` of samples ``n0, n0+1, ...`` of ``x`` (N, C, D, H, W), zero where they read padding:
    ``cols[q, j, oh, ow, kh, kw, c] = xpad[n0+j, c, d_lo+q, oh*s_h + kh*d_h, ow*s_w + kw*d_w]``
    with ``pad_hw`` the padding before the data along H and W."""
    kernels()[2](cols, x, n0, d_lo, *pad_hw, *stride_hw, *dilation_hw)


def col2im_channels_last(slab, prod, stride, dilation):
    """The adjoint of channels-last im2col: ``slab`` (planes, n, Hp, Wp, C), zero-padded, += every
    entry of ``prod`` (od, n, OH, OW, kD, kH, kW, C) at the position it was read from: output
    plane ``a`` and depth tap ``kd`` land on slab plane ``a*s_d + kd*d_d``. NumPy would need one
    strided add per tap, each over rows of C floats."""
    kernels()[1](slab, prod, *stride, *dilation)
