"""Experiment: 3D Winograd F(2x2x2, 3x3x3) against conv3d's 'auto' and PyTorch, forward only.

    .venv/bin/python -m benchmarks.winograd_experiment --threads 1 2 --rounds 5

Shapes: the stride-1 3x3x3 convolutions of r3d_18 on a 16x112x112 clip (layer1..4) and of a
3D U-Net's levels. In every round each implementation is called once, in a new random order
(fixed seed), each after a short pause and one untimed call (as benchmarks/harness.py does, for
the same reasons); the table gives the best of the rounds. Winograd runs through the same
threads over samples as every fast strategy (``sample_threads.call``).

Then the accuracy: max|y - y64| / max|y64| of float32 Winograd and float32 im2col against the
float64 reference path, on N(0, 1) inputs and Kaiming-scaled weights (std sqrt(2 / (27 C))).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import time

import numpy as np

import conv3d
from conv3d.core.geometry import ConvGeometry
from conv3d.ops import fast
from conv3d.ops.fast import chooser, sample_threads, winograd
from conv3d.ops.fast.workspace import Workspace, chunks, output

PAUSE = 0.2

# (name, N, C, K, (D, H, W)); padding 1 ('same')
SHAPES = [
    ("r3d layer1", 1, 64, 64, (16, 56, 56)),
    ("r3d layer2", 1, 128, 128, (8, 28, 28)),
    ("r3d layer3", 1, 256, 256, (4, 14, 14)),
    ("r3d layer4", 1, 512, 512, (2, 7, 7)),
    ("r3d layer2", 4, 128, 128, (8, 28, 28)),
    ("r3d layer3", 8, 256, 256, (4, 14, 14)),
    ("r3d layer4", 8, 512, 512, (2, 7, 7)),
    ("unet 32ch", 1, 32, 32, (48, 48, 48)),
    ("unet 128ch", 1, 128, 128, (24, 24, 24)),
    ("unet 256ch", 1, 256, 256, (12, 12, 12)),
]
PAD = ((1, 1),) * 3


_compiled = None


def _kernels():
    """``(input_transform, output_transform)``, the variant with numba loops: one tile at a
    time, its 64 values in a small local array, one row of tiles written out per position
    (NumPy's strided adds in conv3d/ops/fast/winograd.py make every stage a pass over memory).
    Positions in the order (aw, ah, ad) of ``winograd.weight_transform``."""
    global _compiled
    if _compiled is not None:
        return _compiled
    from numba import njit  # noqa: PLC0415

    @njit(cache=True, nogil=True)
    def input_tiles(V, slab):
        # V (64, C, n, td, TH, TW) = (B^T x B^T x B^T) of the 4x4x4 tiles of slab (C, n, Dp, Hp, Wp)
        _, C, n, td, TH, TW = V.shape
        d = np.empty((4, 4, 4), dtype=slab.dtype)
        row = np.empty((64, TW), dtype=slab.dtype)  # one row of tiles, copied out per position
        for c in range(C):
            for s in range(n):
                for t in range(td):
                    for i in range(TH):
                        for j in range(TW):
                            for a in range(4):  # along width
                                for b in range(4):
                                    h, w = 2 * i + b, 2 * j
                                    r0, r1 = slab[c, s, 2 * t + a, h, w], \
                                        slab[c, s, 2 * t + a, h, w + 1]
                                    r2, r3 = slab[c, s, 2 * t + a, h, w + 2], \
                                        slab[c, s, 2 * t + a, h, w + 3]
                                    d[a, b, 0] = r0 - r2
                                    d[a, b, 1] = r1 + r2
                                    d[a, b, 2] = r2 - r1
                                    d[a, b, 3] = r1 - r3
                            for a in range(4):  # along height
                                for k in range(4):
                                    e0, e1, e2, e3 = d[a, 0, k], d[a, 1, k], d[a, 2, k], d[a, 3, k]
                                    d[a, 0, k] = e0 - e2
                                    d[a, 1, k] = e1 + e2
                                    d[a, 2, k] = e2 - e1
                                    d[a, 3, k] = e1 - e3
                            for b in range(4):  # along depth, written out
                                for k in range(4):
                                    e0, e1, e2, e3 = d[0, b, k], d[1, b, k], d[2, b, k], d[3, b, k]
                                    q = k * 16 + b * 4  # positions (aw, ah, ad)
                                    row[q, j] = e0 - e2
                                    row[q + 1, j] = e1 + e2
                                    row[q + 2, j] = e2 - e1
                                    row[q + 3, j] = e1 - e3
                        for q in range(64):  # 64 contiguous runs, not 64 interleaved streams
                            V[q, c, s, t, i, :] = row[q]

    @njit(cache=True, nogil=True)
    def output_tiles(y, M, n0, od0):
        # y[n0 + s, k, od0 + 2t + a, 2i + b, 2j + c] = (A^T x A^T x A^T) of M (64, K, n, td, TH, TW)
        _, K, n, td, TH, TW = M.shape
        _, _, OD, OH, OW = y.shape
        m = np.empty((4, 4, 4), dtype=M.dtype)
        row = np.empty((64, TW), dtype=M.dtype)
        for s in range(n):
            for k in range(K):
                for t in range(td):
                    for i in range(TH):
                        for q in range(64):  # 64 contiguous runs, not 64 interleaved streams
                            row[q] = M[q, k, s, t, i, :]
                        for j in range(TW):
                            for q in range(16):  # along depth; positions (aw, ah, ad)
                                p = (q % 4) * 16 + (q // 4) * 4
                                m0, m1 = row[p, j], row[p + 1, j]
                                m2, m3 = row[p + 2, j], row[p + 3, j]
                                m[0, q // 4, q % 4] = m0 + m1 + m2
                                m[1, q // 4, q % 4] = m1 - m2 - m3
                            for a in range(2):  # along height
                                for c in range(4):
                                    e0, e1, e2, e3 = m[a, 0, c], m[a, 1, c], m[a, 2, c], m[a, 3, c]
                                    m[a, 0, c] = e0 + e1 + e2
                                    m[a, 1, c] = e1 - e2 - e3
                            for a in range(2):  # along width, written out (cropped)
                                od = od0 + 2 * t + a
                                if od >= OD:
                                    continue
                                for b in range(2):
                                    oh = 2 * i + b
                                    if oh >= OH:
                                        continue
                                    ow = 2 * j
                                    y[n0 + s, k, od, oh, ow] = m[a, b, 0] + m[a, b, 1] + m[a, b, 2]
                                    if ow + 1 < OW:
                                        y[n0 + s, k, od, oh, ow + 1] = \
                                            m[a, b, 1] - m[a, b, 2] - m[a, b, 3]

    _compiled = (input_tiles, output_tiles)
    return _compiled


def numba_forward(x, w, b, stride, padding, dilation, groups, workspace_limit=None, out=None):
    """``winograd.forward`` with the transforms of ``_kernels`` (same chunks, same GEMMs)."""
    geo = ConvGeometry.from_shapes(x.shape, w.shape, stride, padding, dilation, groups)
    y = output(geo.y_shape, x.dtype, out)
    n, td = winograd._plan(geo, x.itemsize, workspace_limit, "conv3d forward (winograd)")
    ws = Workspace(workspace_limit)
    U = winograd.weight_transform(w)
    TD, TH, TW = winograd._tiles(geo)
    for n0, n1, td0, td1 in chunks(geo.N, TD, n, td):
        slab = winograd._slab(ws, x, geo, n0, n1, td0, td1)
        V = ws.take("V", (64, geo.C, n1 - n0, td1 - td0, TH, TW), x.dtype)
        _kernels()[0](V, slab)
        M = ws.take("M", (64, geo.K, V[0, 0].size), x.dtype)
        np.matmul(U, V.reshape(64, geo.C, -1), out=M)
        _kernels()[1](y, M.reshape(64, geo.K, n1 - n0, td1 - td0, TH, TW), n0, 2 * td0)
    if b is not None:
        y += b.reshape(1, -1, 1, 1, 1)
    return y


def _arrays(N, C, K, size, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C) + size).astype(dtype)
    w = (rng.standard_normal((K, C, 3, 3, 3)) * np.sqrt(2.0 / (27 * C))).astype(dtype)
    return x, w


@contextlib.contextmanager
def _no_winograd():
    """'auto' as it chose before 'winograd' existed: its channel threshold out of reach."""
    previous, chooser.WINOGRAD_CHANNELS = chooser.WINOGRAD_CHANNELS, float("inf")
    try:
        yield
    finally:
        chooser.WINOGRAD_CHANNELS = previous


def _impls(x, w, with_numba):
    import torch  # noqa: PLC0415
    geo = ConvGeometry.from_shapes(x.shape, w.shape, 1, PAD, (1, 1, 1), 1)
    args = (x, w, None, 1, PAD, (1, 1, 1), 1)
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)

    def wino(compiled):
        def run():
            fn = numba_forward if compiled else winograd.forward
            return sample_threads.call("forward", fn, args, geo)
        return run

    def auto_without_winograd():
        with _no_winograd():
            return fast.provider.conv3d_forward(*args)

    impls = {"winograd": wino(False),
             "auto": auto_without_winograd,
             "torch": lambda: torch.nn.functional.conv3d(xt, wt, padding=1).numpy()}
    if with_numba:
        impls["winograd-numba"] = wino(True)
    return impls


def best_of_rounds(impls, rounds, order):
    """{key: best seconds}: in each round every implementation runs once warm and once timed,
    in a shuffled order with a pause before each, so that drift in the machine's load is
    shared by all of them instead of landing on whichever ran last."""
    best = {k: float("inf") for k in impls}
    for _ in range(rounds):
        keys = list(impls)
        order.shuffle(keys)
        for key in keys:
            time.sleep(PAUSE)
            impls[key]()
            t = time.perf_counter()
            impls[key]()
            best[key] = min(best[key], time.perf_counter() - t)
    return best


def time_shapes(shapes, rounds, threads, with_numba):
    import torch  # noqa: PLC0415
    conv3d.set_num_threads(threads)
    torch.set_num_threads(threads)
    order = random.Random(0)
    load0 = os.getloadavg()
    print(f"\n### {threads} thread(s); load average at start {load0[0]:.1f} {load0[1]:.1f} "
          f"{load0[2]:.1f}\n")
    print("| layer | N | C=K | D x H x W | winograd | winograd-numba | auto without winograd "
          "(its strategy) "
          "| torch | auto / winograd | torch / winograd |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for name, N, C, K, size in shapes:
        x, w = _arrays(N, C, K, size)
        impls = _impls(x, w, with_numba)
        ref = impls["torch"]()
        for key, fn in impls.items():  # agreement first, and the first (slow) call untimed
            got = fn()
            err = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
            assert err < 1e-4, (name, key, err)
        with _no_winograd():
            impls["auto"]()
            chosen = fast.last_choice["forward"]
        best = best_of_rounds(impls, rounds, order)
        ms = {k: v * 1e3 for k, v in best.items()}
        numba = f"{ms['winograd-numba']:.1f}" if "winograd-numba" in ms else "-"
        print(f"| {name} | {N} | {C} | {'x'.join(map(str, size))} | {ms['winograd']:.1f} | "
              f"{numba} | {ms['auto']:.1f} ({chosen}) | {ms['torch']:.1f} | "
              f"{ms['auto'] / ms['winograd']:.2f} | {ms['torch'] / ms['winograd']:.2f} |",
              flush=True)
    load1 = os.getloadavg()
    print(f"\nload average at end {load1[0]:.1f} {load1[1]:.1f} {load1[2]:.1f}")


def time_gx(shapes, rounds, threads):
    """The input gradient alone: winograd's (the forward kernel on gy) against auto's."""
    conv3d.set_num_threads(threads)
    order = random.Random(1)
    load0 = os.getloadavg()
    print(f"\n### input gradient, {threads} thread(s); load average at start {load0[0]:.1f}\n")
    print("| layer | N | C=K | D x H x W | winograd gx | auto gx (its strategy) "
          "| auto / winograd |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for name, N, C, K, size in shapes:
        x, w = _arrays(N, C, K, size)
        gy = np.random.default_rng(2).standard_normal((N, K) + size).astype(np.float32)
        geo = ConvGeometry.from_shapes(x.shape, w.shape, 1, PAD, (1, 1, 1), 1)
        args = (gy, x, w, (1, 1, 1), PAD, (1, 1, 1), 1, (True, False))
        impls = {"winograd": lambda: sample_threads.call("backward", winograd.backward, args,
                                                         geo)[0],
                 "auto": lambda: fast.provider.conv3d_backward(*args[:-1],
                                                               output_mask=(True, False))[0]}
        a, b = impls["winograd"](), impls["auto"]()
        assert float(np.max(np.abs(a - b)) / np.max(np.abs(b))) < 1e-4, name
        chosen = fast.last_choice["backward"]
        best = best_of_rounds(impls, rounds, order)
        print(f"| {name} | {N} | {C} | {'x'.join(map(str, size))} | {best['winograd'] * 1e3:.1f} "
              f"| {best['auto'] * 1e3:.1f} ({chosen}) | {best['auto'] / best['winograd']:.2f} |",
              flush=True)


def rel_err(y, y64):
    return float(np.max(np.abs(y.astype(np.float64) - y64)) / np.max(np.abs(y64)))


def accuracy(channels, size=(8, 8, 8)):
    print("\n### float32 error against the float64 reference path "
          f"(N=1, {'x'.join(map(str, size))}, padding 1, N(0,1) x, Kaiming w)\n")
    print("| C=K | winograd f32 | im2col f32 | winograd / im2col | winograd f64 |")
    print("|---:|---:|---:|---:|---:|")
    for C in channels:
        x, w = _arrays(1, C, C, size, np.float64, seed=C)
        with fast.use_strategy("reference"):
            y64 = fast.provider.conv3d_forward(x, w, None, (1, 1, 1), PAD, (1, 1, 1), 1)
        x32, w32 = x.astype(np.float32), w.astype(np.float32)
        ew = rel_err(winograd.forward(x32, w32, None, 1, PAD, 1, 1), y64)
        with fast.use_strategy("im2col"):
            ei = rel_err(fast.provider.conv3d_forward(x32, w32, None, 1, PAD, (1, 1, 1), 1), y64)
        e64 = rel_err(winograd.forward(x, w, None, 1, PAD, 1, 1), y64)
        print(f"| {C} | {ew:.2e} | {ei:.2e} | {ew / ei:.1f} | {e64:.1e} |", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--only", nargs="*", help="indices into SHAPES")
    p.add_argument("--numba", action="store_true", help="also time the numba transforms")
    p.add_argument("--no-accuracy", action="store_true")
    p.add_argument("--gx", action="store_true", help="time the input gradient instead")
    a = p.parse_args(argv)
    shapes = SHAPES if not a.only else [SHAPES[int(i)] for i in a.only]
    import torch  # noqa: PLC0415
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"numpy {np.__version__}, torch {torch.__version__}; "
          f"BLAS {[b.get('internal_api') for b in fast.blas_info()]}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    for t in a.threads:
        if a.gx:
            time_gx(shapes, a.rounds, t)
        else:
            time_shapes(shapes, a.rounds, t, a.numba)
    if not a.no_accuracy:
        accuracy([64, 128, 256, 512])


if __name__ == "__main__":
    main()
