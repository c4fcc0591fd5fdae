"""col2im as numba loops: the scatter-add of ``geometry.col2im_add`` (NCDHW, for ``'im2col'``)
and the 2D one of ``'channels-last'``, compiled; ``kernels()`` compiles both on first use.

NumPy's ``gx[window] += col[tap]`` reads and writes a strided window with a generic loop that
pays a few nanoseconds per *row*; for a 5x5x5 output that row is 5 floats long (a2), and each of
the 27 taps makes another pass. These kernels do the same additions with plain compiled loops,
one (sample, channel) input plane at a time. They are deliberately single-threaded: it runs between
two multi-threaded BLAS calls, and on a 2-core machine numba's OpenMP threads and OpenBLAS's
threads, each spin-waiting for work after their turn, slowed each other down by up to 7x.
(im2col itself stays a NumPy copy: it only writes, and measured faster than a numba loop.)
"""
from __future__ import annotations

_kernels = None


def kernels():
    """Compile (on first use; numba is slow to import) and return ``(col2im, col2im_cl)``."""
    global _kernels
    if _kernels is not None:
        return _kernels
    from numba import njit  # noqa: PLC0415

    @njit(cache=True, inline="always")
    def valid_range(o_count, k, s, d, p, size):
        """First and one-past-last output index whose input o*s + k*d - p lies in [0, size)."""
        lo = 0
        while lo < o_count and lo * s + k * d - p < 0:
            lo += 1
        hi = o_count
        while hi > lo and (hi - 1) * s + k * d - p >= size:
            hi -= 1
        return lo, hi

    @njit(cache=True)
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

    @njit(cache=True)
    def col2im_cl(slab, dcols, s_h, s_w, d_h, d_w):
        # slab (Sd, n, Hp, Wp, C) += dcols (Sd, n, OH, OW, kH, kW, C) at its windows
        Sd, n, OH, OW, kH, kW, C = dcols.shape
        for q in range(Sd):
            for j in range(n):
                for oh in range(OH):
                    for kh in range(kH):
                        row = slab[q, j, oh * s_h + kh * d_h]
                        for ow in range(OW):
                            for kw in range(kW):
                                dst = row[ow * s_w + kw * d_w]
                                src = dcols[q, j, oh, ow, kh, kw]
                                for c in range(C):
                                    dst[c] += src[c]

    _kernels = col2im, col2im_cl
    return _kernels


def col2im_add(gx, col, geo, n0, n1, od0, od1):
    """Drop-in for ``geometry.col2im_add``."""
    kernels()[0](gx, col, n0, od0, geo.stride, tuple(p[0] for p in geo.padding), geo.dilation)


def col2im_channels_last(slab, dcols, stride_hw, dilation_hw):
    """The adjoint of channels-last 2D im2col: ``slab`` (planes, n, Hp, Wp, C), zero-padded,
    += every entry of ``dcols`` (planes, n, OH, OW, kH, kW, C) at the position it was copied
    from. NumPy would need one strided add per (kh, kw) tap, each over rows of C floats."""
    kernels()[1](slab, dcols, stride_hw[0], stride_hw[1], dilation_hw[0], dilation_hw[1])
