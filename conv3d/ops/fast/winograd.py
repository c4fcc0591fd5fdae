"""3D Winograd F(2x2x2, 3x3x3): a stride-1 3x3x3 convolution with 64 multiplications per 2x2x2
output tile instead of 8*27 = 216 (Lavin & Gray 2016, F(2, 3) along each axis).

In one dimension, two outputs of a 3-tap correlation from four inputs ``d`` and taps ``g``::

    y = A^T [(G g) * (B^T d)]     B^T = [[1, 0,-1, 0],   G = [[  1,    0,   0],
                                         [0, 1, 1, 0],        [1/2,  1/2, 1/2],
                                         [0,-1, 1, 0],        [1/2, -1/2, 1/2],
                                         [0, 1, 0,-1]]        [  0,    0,   1]]
                                  A^T = [[1, 1, 1, 0],
                                         [0, 1,-1,-1]]

and in 3D the same matrices act along depth, height and width. The input is cut into 4x4x4
tiles with stride 2 (tile ``t`` of an axis starts at padded input ``2t``), so::

    V[a, c, tile]  = (B^T x B^T x B^T) d[c, tile]          a = (aw, ah, ad): 64 positions
    U[a, k, c]     = (G x G x G) w[k, c]                    once per call
    M[a]  (K, T)   = U[a] (K, C)  @  V[a] (C, T)            64 GEMMs, one batched matmul
    y[k, tile]     = (A^T x A^T x A^T) M[:, k, tile]        2x2x2 outputs per tile

The transforms are compiled loops over the tiles (``_winograd_loops.py``) that keep a tile in
a small local array through all three axes: one pass over memory each. Output sizes that are
odd are handled by padding the input with zeros up to whole tiles and cropping.

A (1, 3, 3) kernel, the spatial half of a (2+1)D block, is the same along height and width and
needs nothing along depth: F(2x2, 3x3), 16 positions, 16 multiplications per 2x2 outputs
instead of 36, one input plane per output plane (``_depth``: a tile's outputs along depth and
its positions).

Only stride 1, dilation 1, groups 1 and a 3x3x3 or (1, 3, 3) kernel (``applies``); any padding
up to 2 on each side (none along depth for (1, 3, 3)), so that the input gradient, the same
convolution of ``gy`` with the flipped and transposed weight and padding ``k - 1 - p``, runs
through the same kernel.
"""
from __future__ import annotations

from concurrent.futures import wait

import numpy as np

from ...core.geometry import ConvGeometry
from . import plane_im2col
from .sample_threads import _workers, threads_for
from .threads import blas_controller
from .workspace import (CACHE_TARGET, Workspace, WorkspaceLimitError, chunks, output, plan_chunks,
                        resolve_limit)

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def applies(geo: ConvGeometry) -> bool:
    """Stride 1, dilation 1, groups 1, a 3x3x3 kernel and padding at most 2 on each side, or a
    (1, 3, 3) kernel without depth padding."""
    return ((geo.kernel == (3, 3, 3) or (geo.kernel == (1, 3, 3) and geo.padding[0] == (0, 0)))
            and geo.stride == (1, 1, 1) and geo.dilation == (1, 1, 1) and geo.groups == 1
            and all(0 <= p <= 2 for pair in geo.padding for p in pair))


def _depth(geo):
    """``(outputs, positions)``: outputs of a tile along depth (2 for F(2, 3) with kD = 3,
    1 without a transform for kD = 1) and the tile's transform positions (64 or 16)."""
    return (2, 64) if geo.kernel[0] == 3 else (1, 16)


def weight_transform(w, threads=1):
    """(K, C, kD, 3, 3) -> U (P, K, C): ``G g G^T`` along each axis with three taps, positions
    (aw, ah, ad) (the order ``_input_transform`` leaves them in: depth varies fastest); P = 64
    for kD = 3, 16 for kD = 1."""
    K, C, kD = w.shape[:3]
    Gd = G if kD == 3 else np.ones((1, 1))
    a = Gd.shape[0]
    G3 = np.kron(np.kron(Gd, G), G).reshape(a, 4, 4, kD * 9)  # rows (ad, ah, aw)
    G3 = G3.transpose(2, 1, 0, 3).reshape(16 * a, kD * 9).astype(w.dtype)  # rows (aw, ah, ad)
    U = np.empty((16 * a, K * C), dtype=w.dtype)
    w_t = w.reshape(K * C, kD * 9).T  # one GEMM per block of positions, no transposed copy
    _by_positions(lambda a0, b0: np.matmul(G3[a0:b0], w_t, out=U[a0:b0]), threads,
                  positions=16 * a)
    return U.reshape(16 * a, K, C)


def _by_positions(fn, threads, positions):
    """``fn(a, b)`` for blocks of the positions, one per thread (the caller limits BLAS)."""
    if threads == 1:
        fn(0, positions)
        return
    bounds = [positions * i // threads for i in range(threads + 1)]
    futures = [_workers(threads).submit(fn, a, b) for a, b in zip(bounds[1:-1], bounds[2:])]
    try:
        fn(0, bounds[1])
    finally:
        wait(futures)
    for f in futures:
        f.result()


def _tiles(geo):
    m = _depth(geo)[0]
    OD, OH, OW = geo.out_size
    return -(-OD // m), (OH + 1) // 2, (OW + 1) // 2  # TD, TH, TW


def _plan(geo, itemsize, workspace_limit, what):
    """Chunk (n samples, td tile rows along depth): the padded input slab, its transform V and
    the GEMM products M."""
    _, TH, TW = _tiles(geo)
    Hp, Wp = 2 * TH + 2, 2 * TW + 2
    C, K, (m, P) = geo.C, geo.K, _depth(geo)

    def bytes_for(n, td):
        Dp, T = m * td + geo.kernel[0] - 1, n * td * TH * TW
        return (C * n * Dp * Hp * Wp + P * C * T + P * K * T) * itemsize  # slab, V, M
    # every chunk streams the whole transformed weight U (P*K*C) through its GEMMs once, so a
    # chunk is kept near the cache target only while U is smaller than that target
    target = max(CACHE_TARGET, P * K * C * itemsize)
    return plan_chunks(geo.N, _tiles(geo)[0], bytes_for, workspace_limit, what, target=target)


def _slab(ws, x, geo, n0, n1, td0, td1):
    """The zero-padded input (C, n, m*td + kD - 1, 2*TH + 2, 2*TW + 2) that tile rows td0:td1
    of samples n0:n1 read (m = ``_depth(geo)[0]``): padded depth m*td0 .. m*td1 + kD - 2,
    zeros past the data up to whole tiles."""
    _, TH, TW = _tiles(geo)
    m = _depth(geo)[0]
    Dp, Hp, Wp = m * (td1 - td0) + geo.kernel[0] - 1, 2 * TH + 2, 2 * TW + 2
    (pd, _), (ph, _), (pw, _) = geo.padding
    slab = ws.take("slab", (geo.C, n1 - n0, Dp, Hp, Wp), x.dtype)
    d_lo = m * td0 - pd
    a, b = max(d_lo, 0), min(d_lo + Dp, geo.D)
    slab.fill(0)
    if b > a:
        slab[:, :, a - d_lo:b - d_lo, ph:ph + geo.H, pw:pw + geo.W] = \
            x[n0:n1, :, a:b].transpose(1, 0, 2, 3, 4)
    return slab


def _input_transform(ws, x, geo, n0, n1, td0, td1):
    """V (P, C, n*td*TH*TW) of samples n0:n1 and tile rows td0:td1 along depth."""
    from . import _winograd_loops as loops  # noqa: PLC0415 - numba loads only when a loop runs
    _, TH, TW = _tiles(geo)
    m, P = _depth(geo)
    slab = _slab(ws, x, geo, n0, n1, td0, td1)  # (C, n, Dp, Hp, Wp)
    V = ws.take("V", (P, geo.C, n1 - n0, td1 - td0, TH, TW), x.dtype)
    (loops.input_transform if m == 2 else loops.input_transform_2d)(slab, V)
    return V.reshape(P, geo.C, -1)


def _output_transform(ws, M, y, geo, n0, n1, td0, td1):
    """y[n0:n1, :, m*td0 : m*td1] from M (P, K, n*td*TH*TW), cropped to the output size."""
    from . import _winograd_loops as loops  # noqa: PLC0415
    _, TH, TW = _tiles(geo)
    m = _depth(geo)[0]
    od0, od1 = m * td0, min(m * td1, geo.out_size[0])
    transform = loops.output_transform if m == 2 else loops.output_transform_2d
    transform(M.reshape(M.shape[0], geo.K, n1 - n0, td1 - td0, TH, TW), y[n0:n1, :, od0:od1])


def forward(x, w, b, stride, padding, dilation, groups, workspace_limit=None, out=None):
    geo = ConvGeometry.from_shapes(x.shape, w.shape, stride, padding, dilation, groups)
    if not applies(geo):
        raise ValueError(f"Winograd F(2x2x2, 3x3x3) needs a 3x3x3 kernel (or (1, 3, 3) without "
                         f"depth padding), stride 1, dilation 1, "
                         f"groups 1 and padding 0..2 per side; got kernel {geo.kernel}, stride "
                         f"{geo.stride}, dilation {geo.dilation}, groups {geo.groups}, padding "
                         f"{geo.padding}")
    y = output(geo.y_shape, x.dtype, out)
    parts, limit, T = _split(geo, x.itemsize, workspace_limit)
    if T == 1:
        _run_chunks(x, weight_transform(w), y, geo, parts[0], limit, 1)
        return _add_bias(y, b)
    with blas_controller().limit(limits=1, user_api="blas"):
        if len(parts) == 1:  # one chunk: its GEMMs' positions are shared out instead
            _run_chunks(x, weight_transform(w, T), y, geo, parts[0], limit, T)
            return _add_bias(y, b)
        U = weight_transform(w)
        futures = [_workers(len(parts)).submit(_run_chunks, x, U, y, geo, part, limit, 1)
                   for part in parts[1:]]
        try:
            _run_chunks(x, U, y, geo, parts[0], limit, 1)
        finally:
            wait(futures)  # never leave a thread running with BLAS limited
        for f in futures:
            f.result()
    return _add_bias(y, b)


def _add_bias(y, b):
    if b is not None:
        y += b.reshape(1, -1, 1, 1, 1)
    return y


def _split(geo, itemsize, workspace_limit):
    """``(parts, limit, T)``: the chunks cut into one contiguous part per thread, the limit each
    part runs under, and the thread count T. A call of a single chunk (one depth tile) is one
    part, and its T threads share out the positions of its GEMMs instead.

    A one-sample call, which the threads over samples cannot split, is split here over its
    chunks of depth tiles when it is large enough (``sample_threads.threads_for``) and
    ``get_num_threads()`` > 1: its transforms are single-threaded loops and its GEMMs
    per chunk are small, so T threads with a single-threaded BLAS each run whole chunks instead
    of T BLAS threads synchronising on every small GEMM while one core does the transforms.
    (Inside a split call BLAS runs one thread, so a slice is never split again.)"""
    what = "conv3d forward (winograd)"
    T = threads_for(2 if geo.N == 1 else 1, geo.flops())  # 1 unless one sample
    limit = resolve_limit(workspace_limit)
    if T > 1:
        try:
            n, td = _plan(geo, itemsize, limit // T, what)
        except WorkspaceLimitError:
            T = 1
    if T == 1:
        n, td = _plan(geo, itemsize, limit, what)
    todo = list(chunks(geo.N, _tiles(geo)[0], n, td))
    if T > 1 and len(todo) == 1:  # one chunk of all depth tiles: one (smaller) per thread
        todo = list(chunks(geo.N, _tiles(geo)[0], n, -(-_tiles(geo)[0] // T)))
    if len(todo) == 1:
        return [todo], limit, T
    P = min(T, len(todo))
    bounds = [len(todo) * i // P for i in range(P + 1)]
    return [todo[a:b] for a, b in zip(bounds, bounds[1:])], limit // T, T


def _run_chunks(x, U, y, geo, todo, limit, threads):
    """The chunks ``todo`` in turn; ``threads`` > 1 shares out each chunk's GEMMs."""
    ws = Workspace(limit)
    for n0, n1, td0, td1 in todo:
        V = _input_transform(ws, x, geo, n0, n1, td0, td1)
        M = ws.take("M", (V.shape[0], geo.K, V.shape[2]), x.dtype)
        # P GEMMs (K, C) @ (C, tiles), one per position
        _by_positions(lambda a, b: np.matmul(U[a:b], V[a:b], out=M[a:b]), threads, len(U))
        _output_transform(ws, M, y, geo, n0, n1, td0, td1)


def backward(gy, x, w, stride, padding, dilation, groups, output_mask=(True, True),
             workspace_limit=None, out=None):
    """``(gx, gw)``, ``None`` where ``output_mask`` is False; ``out``: the array for ``gx``.

    With stride 1 the input gradient is itself a stride-1 convolution with the same kernel
    size: ``gy`` with the weight flipped along all three axes and its channel axes swapped,
    padded by ``k - 1 - p`` on each side (``gx[i] = sum_k gy[i + p - k] w[k]``), so it runs
    through ``forward``. The weight gradient is that of ``'im2col-planes'``."""
    geo = ConvGeometry.from_shapes(x.shape, w.shape, stride, padding, dilation, groups)
    gx = gw = None
    if output_mask[0]:
        w_t = np.ascontiguousarray(w[:, :, ::-1, ::-1, ::-1].transpose(1, 0, 2, 3, 4))
        pad_t = tuple((k - 1 - lo, k - 1 - hi) for k, (lo, hi) in zip(geo.kernel, geo.padding))
        gx = forward(gy, w_t, None, 1, pad_t, 1, 1, workspace_limit, out)
    if output_mask[1]:
        gw = plane_im2col.backward(gy, x, w, stride, padding, dilation, groups, (False, True),
                                   workspace_limit)[1]
    return gx, gw
