"""Strategy ``'numba'``: direct convolution loops compiled by numba, for small-channel layers.

When C*kD*kH*kW is small (the first layer: C=3 colour channels), im2col's GEMM is *thin*: its
inner dimension is 81, so BLAS spends its time moving the column matrix, not multiplying. These
kernels skip the column matrix and loop directly, with the blocking that makes loops fast:

* each thread owns one output plane ``(n, od)`` (``prange``: no two threads write the same
  element) and accumulates it one output row at a time in an (OW, K) block that stays in L1;
* the innermost loop runs over the K output channels, contiguous in the block and in the
  channels-last copy of the weight, so LLVM turns it into SIMD multiply-adds (``fastmath``);
* for the usual 3-wide kernel the three width taps are fused into one pass (three multiply-adds
  per load and store of the accumulator: 2x faster on the C=3 layer than one tap per pass);
* kernel taps whose input lies in the padding are skipped by index checks, never read.

The backward kernels use the same blocking: the weight gradient gives each thread one
``(c, kd, kh)`` slice of the weight; the input gradient gives each thread one input plane
``(n, id)`` and gathers from every output that read it (a gather, so again no write conflicts).
Compiled on first use and cached on disk (``cache=True``).
"""
from __future__ import annotations

import numpy as np

from .geometry import ConvGeometry
from .workspace import Workspace, chunks, get_workspace_limit, plan_chunks, zeroed

_kernels = None


def _compile():
    """Define (and JIT-compile lazily) the three kernels; numba is imported only when needed."""
    global _kernels
    if _kernels is not None:
        return _kernels
    from numba import njit, prange  # noqa: PLC0415

    @njit(parallel=True, cache=True, fastmath=True)
    def forward_kernel(x, wt, y, stride, pad, dil):
        # x (N, C, D, H, W); wt (C, kD, kH, kW, K); y (N, K, OD, OH, OW), fully written.
        N, C, D, H, W = x.shape
        kD, kH, kW, K = wt.shape[1], wt.shape[2], wt.shape[3], wt.shape[4]
        OD, OH, OW = y.shape[2], y.shape[3], y.shape[4]
        for t in prange(N * OD):
            n, od = t // OD, t % OD
            acc = np.empty((OW, K), dtype=y.dtype)  # one output row, all K channels: in L1
            for oh in range(OH):
                acc[:, :] = 0
                for c in range(C):
                    for kd in range(kD):
                        i_d = od * stride[0] + kd * dil[0] - pad[0]
                        if i_d < 0 or i_d >= D:
                            continue
                        for kh in range(kH):
                            i_h = oh * stride[1] + kh * dil[1] - pad[1]
                            if i_h < 0 or i_h >= H:
                                continue
                            xrow, wrow = x[n, c, i_d, i_h], wt[c, kd, kh]  # (W,), (kW, K)
                            for ow in range(OW):
                                a = acc[ow]
                                i_w = ow * stride[2] - pad[2]
                                if kW == 3 and i_w >= 0 and i_w + 2 * dil[2] < W:
                                    # the common 3-wide kernel, all taps inside: three
                                    # multiply-adds per load and store of the accumulator
                                    d = dil[2]
                                    x0, x1, x2 = xrow[i_w], xrow[i_w + d], xrow[i_w + 2 * d]
                                    w0, w1, w2 = wrow[0], wrow[1], wrow[2]
                                    for k in range(K):
                                        a[k] += x0 * w0[k] + x1 * w1[k] + x2 * w2[k]
                                    continue
                                for kw in range(kW):
                                    j = i_w + kw * dil[2]
                                    if 0 <= j < W:
                                        xv, wv = xrow[j], wrow[kw]
                                        for k in range(K):
                                            a[k] += xv * wv[k]
                for ow in range(OW):
                    for k in range(K):
                        y[n, k, od, oh, ow] = acc[ow, k]

    @njit(parallel=True, cache=True, fastmath=True)
    def weight_kernel(x, gyt, gwt, od0, stride, pad, dil):
        # gyt (n, od, OH, OW, K): channels-last gradient of output planes od0..; gwt (C, kD, kH,
        # kW, K) is added to. x holds the same n samples.
        N, C, D, H, W = x.shape
        ODc, OH, OW, K = gyt.shape[1], gyt.shape[2], gyt.shape[3], gyt.shape[4]
        kD, kH, kW = gwt.shape[1], gwt.shape[2], gwt.shape[3]
        for t in prange(C * kD * kH):
            c, kd, kh = t // (kD * kH), (t // kH) % kD, t % kH
            acc = np.zeros((kW, K), dtype=gwt.dtype)
            for n in range(N):
                for j in range(ODc):
                    i_d = (od0 + j) * stride[0] + kd * dil[0] - pad[0]
                    if i_d < 0 or i_d >= D:
                        continue
                    for oh in range(OH):
                        i_h = oh * stride[1] + kh * dil[1] - pad[1]
                        if i_h < 0 or i_h >= H:
                            continue
                        xrow, grow = x[n, c, i_d, i_h], gyt[n, j, oh]  # (W,), (OW, K)
                        for ow in range(OW):
                            g = grow[ow]
                            i_w = ow * stride[2] - pad[2]
                            if kW == 3 and i_w >= 0 and i_w + 2 * dil[2] < W:
                                d = dil[2]  # fused taps: one load of g for three updates
                                x0, x1, x2 = xrow[i_w], xrow[i_w + d], xrow[i_w + 2 * d]
                                a0, a1, a2 = acc[0], acc[1], acc[2]
                                for k in range(K):
                                    a0[k] += x0 * g[k]
                                    a1[k] += x1 * g[k]
                                    a2[k] += x2 * g[k]
                                continue
                            for kw in range(kW):
                                jw = i_w + kw * dil[2]
                                if 0 <= jw < W:
                                    xv, a = xrow[jw], acc[kw]
                                    for k in range(K):
                                        a[k] += xv * g[k]
            for kw in range(kW):
                for k in range(K):
                    gwt[c, kd, kh, kw, k] += acc[kw, k]

    @njit(parallel=True, cache=True, fastmath=True)
    def input_kernel(gyt, w, wkc, gx, od0, stride, pad, dil):
        # gyt (n, od, OH, OW, K) for output planes od0..; the weight twice: w (C, kD, kH, kW, K)
        # and wkc (kD, kH, kW, K, C); gx (n, C, D, H, W) is added to. Each thread gathers one
        # input plane (n, id). Many channels (C >= 16): axpy over C per output channel k, the
        # contiguous C-loop vectorizes; few channels (C=3): one dot product over K per channel.
        N, C, D, H, W = gx.shape
        ODc, OH, OW, K = gyt.shape[1], gyt.shape[2], gyt.shape[3], gyt.shape[4]
        kD, kH, kW = w.shape[1], w.shape[2], w.shape[3]
        for t in prange(N * D):
            n, i_d = t // D, t % D
            acc = np.zeros((H * W, C), dtype=gx.dtype)
            for kd in range(kD):
                num = i_d + pad[0] - kd * dil[0]
                if num % stride[0] != 0:
                    continue
                j = num // stride[0] - od0
                if j < 0 or j >= ODc:
                    continue
                for kh in range(kH):
                    for i_h in range(H):
                        num = i_h + pad[1] - kh * dil[1]
                        if num % stride[1] != 0 or num < 0 or num // stride[1] >= OH:
                            continue
                        oh = num // stride[1]
                        for kw in range(kW):
                            for i_w in range(W):
                                num = i_w + pad[2] - kw * dil[2]
                                if num % stride[2] != 0 or num < 0 or num // stride[2] >= OW:
                                    continue
                                g = gyt[n, j, oh, num // stride[2]]
                                arow = acc[i_h * W + i_w]
                                if C >= 16:
                                    for k in range(K):
                                        gk, wr = g[k], wkc[kd, kh, kw, k]
                                        for c in range(C):
                                            arow[c] += gk * wr[c]
                                    continue
                                for c in range(C):
                                    wv = w[c, kd, kh, kw]
                                    s = arow[c]
                                    for k in range(K):
                                        s += g[k] * wv[k]
                                    arow[c] = s
            for c in range(C):
                for r in range(H * W):
                    gx[n, c, i_d, r // W, r % W] += acc[r, c]

    _kernels = (forward_kernel, weight_kernel, input_kernel)
    return _kernels


def _pad_lo(geo):
    return tuple(p[0] for p in geo.padding)


def _channels_last_weight(w):
    """(K, C, kD, kH, kW) -> contiguous (C, kD, kH, kW, K)."""
    return np.ascontiguousarray(w.transpose(1, 2, 3, 4, 0))


def _threads():
    import numba  # noqa: PLC0415
    return numba.get_num_threads()


def _plan(geo, itemsize, workspace_limit, what, block, gy_copy=True):
    """Chunks and workspace for a kernel whose threads each hold a ``block``-element accumulator
    and (the backward kernels, ``gy_copy``) that reads gy through a channels-last copy of the
    chunk. Raises ``WorkspaceLimitError`` when even one plane does not fit."""
    limit = get_workspace_limit() if workspace_limit is None else workspace_limit
    acc = _threads() * block * itemsize
    gy_copy = geo.Kg * geo.plane * itemsize if gy_copy else 0
    n, od = plan_chunks(geo.N, geo.out_size[0], lambda n, od: acc + gy_copy * n * od, limit, what)
    ws = Workspace(limit)
    ws.note("per-thread accumulators", acc)
    return n, od, ws


def _gy_channels_last(ws, gy, n0, n1, od0, od1):
    """gy[n0:n1, :, od0:od1] as a contiguous (n, od, OH, OW, K) buffer."""
    src = gy[n0:n1, :, od0:od1].transpose(0, 2, 3, 4, 1)
    buf = ws.take("gy channels-last", src.shape, gy.dtype)
    buf[...] = src
    return buf


def forward(x, w, b, stride, padding, dilation, groups, workspace_limit=None):
    geo = ConvGeometry.of(x.shape, w.shape, stride, padding, dilation, groups)
    forward_kernel = _compile()[0]
    _plan(geo, x.itemsize, workspace_limit, "conv3d forward (numba)", geo.out_size[2] * geo.Kg,
          gy_copy=False)
    y = np.empty((geo.N, geo.K) + geo.out_size, dtype=x.dtype)
    Cg, Kg = geo.Cg, geo.Kg
    for g in range(groups):
        out = np.empty((geo.N, Kg) + geo.out_size, dtype=x.dtype) if groups > 1 else y
        forward_kernel(np.ascontiguousarray(x[:, g * Cg:(g + 1) * Cg]),
                       _channels_last_weight(w[g * Kg:(g + 1) * Kg]), out,
                       geo.stride, _pad_lo(geo), geo.dilation)
        if groups > 1:
            y[:, g * Kg:(g + 1) * Kg] = out
    if b is not None:
        y += b.reshape(1, -1, 1, 1, 1)
    return y


def backward_weight(gy, x, w_shape, stride, padding, dilation, groups, workspace_limit=None):
    geo = ConvGeometry.of(x.shape, w_shape, stride, padding, dilation, groups)
    weight_kernel = _compile()[1]
    n, od, ws = _plan(geo, x.itemsize, workspace_limit, "conv3d backward (weight, numba)",
                      geo.kernel[2] * geo.Kg)
    Cg, Kg = geo.Cg, geo.Kg
    gw = np.empty(w_shape, dtype=x.dtype)
    for g in range(groups):
        gwt = np.zeros((Cg,) + geo.kernel + (Kg,), dtype=x.dtype)
        xg = np.ascontiguousarray(x[:, g * Cg:(g + 1) * Cg])
        for n0, n1, od0, od1 in chunks(geo.N, geo.out_size[0], n, od):
            gyt = _gy_channels_last(ws, gy[:, g * Kg:(g + 1) * Kg], n0, n1, od0, od1)
            weight_kernel(xg[n0:n1], gyt, gwt, od0, geo.stride, _pad_lo(geo), geo.dilation)
        gw[g * Kg:(g + 1) * Kg] = gwt.transpose(4, 0, 1, 2, 3)
    return gw


def backward_input(gy, w, x_shape, stride, padding, dilation, groups, workspace_limit=None):
    geo = ConvGeometry.of(x_shape, w.shape, stride, padding, dilation, groups)
    input_kernel = _compile()[2]
    n, od, ws = _plan(geo, gy.itemsize, workspace_limit, "conv3d backward (input, numba)",
                      geo.in_size[1] * geo.in_size[2] * geo.Cg)
    Cg, Kg = geo.Cg, geo.Kg
    gx = zeroed(x_shape, dtype=gy.dtype)
    for g in range(groups):
        wt = _channels_last_weight(w[g * Kg:(g + 1) * Kg])
        wkc = np.ascontiguousarray(w[g * Kg:(g + 1) * Kg].transpose(2, 3, 4, 0, 1))
        out = np.zeros((geo.N, Cg) + geo.in_size, dtype=gy.dtype) if groups > 1 else gx
        for n0, n1, od0, od1 in chunks(geo.N, geo.out_size[0], n, od):
            gyt = _gy_channels_last(ws, gy[:, g * Kg:(g + 1) * Kg], n0, n1, od0, od1)
            input_kernel(gyt, wt, wkc, out[n0:n1], od0, geo.stride, _pad_lo(geo), geo.dilation)
        if groups > 1:
            gx[:, g * Cg:(g + 1) * Cg] = out
    return gx
