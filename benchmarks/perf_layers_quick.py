"""Quick interleaved timings of the layer families of issue 16 against PyTorch (a dev script).

    python -m benchmarks.perf_layers_quick [--rounds 9] [--threads 1 2] [--only dw,pool,...]

Each round times every row of a case once, in a new random order, after one untimed call;
the table gives the best of the rounds in ms and the ratio to PyTorch's best. ``conv3d[name]``
rows force one strategy (``with use_strategy(name)``) so old and new code are compared in one
run. The load average is printed with each table: on a shared machine only ratios within one
table mean much.
"""
from __future__ import annotations

import argparse
import os
import random
import time

import numpy as np
import torch

import conv3d
import conv3d.functional as F
from conv3d.ops import fast

CONV = {  # name: (x shape, w shape, stride, padding, dilation, groups, strategies to compare)
    "dw24 8x28x28": ((2, 24, 8, 28, 28), (24, 1, 3, 3, 3), 1, 1, 1, 24, ("im2col", "direct")),
    "dw48 16x14x14": ((2, 48, 16, 14, 14), (48, 1, 3, 3, 3), 1, 1, 1, 48, ("im2col", "direct")),
    "dw96 16x14x14": ((2, 96, 16, 14, 14), (96, 1, 3, 3, 3), 1, 1, 1, 96, ("im2col", "direct")),
    "dw96 s2 16x14x14": ((2, 96, 16, 14, 14), (96, 1, 3, 3, 3), (1, 2, 2), 1, 1, 96,
                         ("im2col", "direct")),
    "tiny 8^3": ((1, 1, 8, 8, 8), (1, 1, 3, 3, 3), 1, 1, 1, 1, ("im2col", "direct")),
    "pw s2 64->128": ((2, 64, 8, 28, 28), (128, 64, 1, 1, 1), 2, 0, 1, 1, ("im2col",)),
    "stem C=3 (3,7,7)": ((1, 3, 8, 56, 56), (64, 3, 3, 7, 7), (1, 2, 2), (1, 3, 3), 1, 1,
                         ("im2col",)),
}
POOL = {  # name: (x shape, max or avg, kernel, stride, padding)
    "max (1,3,3) s(1,2,2)": ((1, 64, 16, 56, 56), "max", (1, 3, 3), (1, 2, 2), (0, 1, 1)),
    "max 3 s2 p1": ((1, 64, 16, 56, 56), "max", 3, 2, 1),
    "max 2 s2": ((1, 64, 16, 56, 56), "max", 2, 2, 0),
    "max 3 s1 p1": ((1, 64, 8, 28, 28), "max", 3, 1, 1),
    "avg (2,7,7) s1": ((2, 512, 2, 7, 7), "avg", (2, 7, 7), 1, 0),
}


def _conv_rows(spec):
    xs, ws, s, p, d, g, strategies = spec
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    cx, cw, cb = (conv3d.Tensor(a, requires_grad=True) for a in (x, w, b))

    def ours(strategy):
        def fwd():
            with fast.use_strategy(strategy), conv3d.no_grad():
                F.conv3d(cx, cw, cb, s, p, d, g)

        def both():
            with fast.use_strategy(strategy):
                F.conv3d(cx, cw, cb, s, p, d, g).sum().backward()
        return fwd, both

    def theirs():
        def fwd():
            with torch.no_grad():
                torch.nn.functional.conv3d(tx, tw, tb, s, p, d, g)

        def both():
            torch.nn.functional.conv3d(tx, tw, tb, s, p, d, g).sum().backward()
        return fwd, both
    rows = {"torch": theirs(), "conv3d auto": ours("auto")}
    rows.update({f"conv3d[{name}]": ours(name) for name in strategies
                 if name in fast.STRATEGIES})  # an older checkout may lack one
    return rows


def _pool_rows(spec):
    xs, kind, k, s, p = spec
    x = np.random.default_rng(0).standard_normal(xs).astype(np.float32)
    tx, cx = torch.tensor(x, requires_grad=True), conv3d.Tensor(x, requires_grad=True)
    ours = getattr(F, f"{kind}_pool3d")
    theirs = getattr(torch.nn.functional, f"{kind}_pool3d")

    def pair(fn, t, grad_ctx):
        def fwd():
            with grad_ctx():
                fn(t, k, s, p)

        def both():
            fn(t, k, s, p).sum().backward()
        return fwd, both
    rows = {"torch": pair(theirs, tx, torch.no_grad), "conv3d auto": pair(ours, cx, conv3d.no_grad)}
    rows["conv3d[reference]"] = (lambda: _with_reference(rows["conv3d auto"][0]),
                                 lambda: _with_reference(rows["conv3d auto"][1]))
    return rows


def _with_reference(fn):
    with fast.use_strategy("reference"):
        fn()


def _time(rows, which, rounds, rng):
    best = {name: float("inf") for name in rows}
    for _ in range(rounds):
        order = list(rows)
        rng.shuffle(order)
        for name in order:
            fn = rows[name][which]
            fn()
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--only", default="", help="comma-separated substrings of case names")
    args = ap.parse_args(argv)
    wanted = [w for w in args.only.split(",") if w]
    cases = [(n, _conv_rows, s) for n, s in CONV.items()] + \
            [(n, _pool_rows, s) for n, s in POOL.items()]
    rng = random.Random(0)
    for T in args.threads:
        torch.set_num_threads(T)
        conv3d.set_num_threads(T)
        print(f"\n## {T} thread(s), load average {os.getloadavg()[0]:.1f}")
        print(f"| case | row | fwd ms | x torch | fwd+bwd ms | x torch |\n|---|---|---:|---:|---:|---:|")
        for name, make, spec in cases:
            if wanted and not any(w in name for w in wanted):
                continue
            rows = make(spec)
            fwd = _time(rows, 0, args.rounds, rng)
            both = _time(rows, 1, args.rounds, rng)
            for row in rows:
                print(f"| {name} | {row} | {fwd[row] * 1e3:.2f} | {fwd[row] / fwd['torch']:.2f} "
                      f"| {both[row] * 1e3:.2f} | {both[row] / both['torch']:.2f} |", flush=True)
        print(f"(load average after: {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
