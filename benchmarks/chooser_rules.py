"""The previous auto rule against today's, on every layer of conv3d/bench/layers.json whose
choice changed and on the benchmark shapes a1, a2 and b (a dev script; the table it printed is
in docs/benchmarks/notes.md).

    python -m benchmarks.chooser_rules

Interleaved in a random order, best of up to 3 provider calls per strategy: forward, and the
backward with both gradients. No PyTorch: only the two rules are compared. ``previous_auto``
is the rule as committed before the change, frozen here.
"""
import json
import os
import random
import time

import numpy as np

from conv3d.core.geometry import ConvGeometry
from conv3d.ops import fast
from conv3d.ops.fast import chooser, im2col_gemm, winograd


def previous_auto(geo, op):
    """The rule of c78aea1 (the tables of the changes before were made against the rules of
    a3d7863, 7ad8bc1 and dc57b37: see this file's history)."""
    if geo.Cg == 1 and geo.Kg <= 4:
        return "direct"
    if im2col_gemm.pointwise(geo):
        return "im2col"
    if (geo.plane * geo.OD <= 4096 and geo.kernel[1] * geo.kernel[2] > 1 and geo.Kg <= 128
            and 256 < geo.Cg * geo.taps < 2048):
        return "channels-last"
    if (winograd.applies(geo) and (op == "forward" or geo.plane < 1024)
            and geo.C >= 32 and geo.K >= 32 and geo.N * geo.plane * geo.OD >= 4096):
        return "winograd"
    if geo.plane >= 1024 and geo.dilation[0] == 1:
        return "im2col-planes"
    return "im2col"


BENCH_SHAPES = [  # name, x, w, stride, padding, dilation, groups
    ("a1", (128, 3, 16, 16, 16), (32, 3, 3, 3, 3), 1, 0, 1, 1),
    ("a2", (128, 32, 7, 7, 7), (64, 32, 3, 3, 3), 1, 0, 1, 1),
    ("b", (4, 64, 16, 56, 56), (128, 64, 3, 3, 3), 1, 1, 1, 1),
]


def layer_shapes():
    path = os.path.join(os.path.dirname(__file__), "..", "conv3d", "bench", "layers.json")
    table = json.load(open(path))
    for L in table["layers"]:
        if L["op"] != "conv":
            continue
        for N in table["batches"][L["used_by"][0].split()[0]]:
            yield (L["name"][:40], (N,) + tuple(L["x"][1:]), tuple(L["w"]), tuple(L["stride"]),
                   tuple(L["padding"]), tuple(L["dilation"]), L["groups"])


def best(f, rounds):
    b = 1e9
    for _ in range(rounds):
        t0 = time.perf_counter()
        f()
        b = min(b, time.perf_counter() - t0)
    return b * 1e3


def compare(name, xs, ws, *args, rng):
    geo = ConvGeometry.from_shapes(xs, ws, *args)
    ch = {op: (previous_auto(geo, op), chooser._auto(geo, op)) for op in ("forward", "backward")}
    if all(a == b for a, b in ch.values()) and not name.startswith(("a1", "a2", "b")):
        return None
    x = rng.standard_normal(xs, dtype=np.float32)
    w = rng.standard_normal(ws, dtype=np.float32) * 0.05
    gy = np.ones(geo.y_shape, np.float32)
    res = {}
    for op in ("forward", "backward"):
        o, n = ch[op]

        def run(strategy):
            with fast.use_strategy(strategy):
                if op == "forward":
                    fast.provider.conv3d_forward(x, w, None, *args)
                else:
                    fast.provider.conv3d_backward(gy, x, w, *args, (True, True))
        t = {}
        for s in {o, n}:
            run(s)
        rounds = 3 if geo.flops() < 1e11 else 1
        for _ in range(rounds):
            order = list({o, n})
            random.shuffle(order)
            for s in order:
                t[s] = min(t.get(s, 1e9), best(lambda: run(s), 1))
        res[op] = (o, n, t[o], t[n])
    f, b = res["forward"], res["backward"]
    print(f"| {name} N={xs[0]} | {f[0]} -> {f[1]}: {f[2]:.2f} -> {f[3]:.2f} | "
          f"{b[0]} -> {b[1]}: {b[2]:.2f} -> {b[3]:.2f} |", flush=True)
    return f[3] / f[2], b[3] / b[2]


def main():
    rng = np.random.default_rng(0)
    print("load", os.getloadavg(), flush=True)
    ratios = []
    for shape in BENCH_SHAPES + list(layer_shapes()):
        r = compare(*shape, rng=rng)
        if r is not None and shape[0] not in ("a1", "a2", "b"):
            ratios.append(r)
    if ratios:
        gf, gb = (float(np.exp(np.mean(np.log([r[i] for r in ratios])))) for i in (0, 1))
        print(f"{len(ratios)} changed layer-batches, geometric mean new/old: forward {gf:.3f}, "
              f"backward {gb:.3f}")
    print("load", os.getloadavg())


if __name__ == "__main__":
    main()
