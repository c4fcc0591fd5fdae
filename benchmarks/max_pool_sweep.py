"""Max pooling on every max-pool layer of conv3d/bench/layers.json: PyTorch (inference, and
forward+backward) against conv3d's two forward paths, the NumPy pass per tap (inference only)
and the separable compiled loop (values and indices), and the loop plus its backward. A dev
script; the table it printed is in docs/benchmarks/notes.md.

    python -m benchmarks.max_pool_sweep

Best of 5 calls each, one after the other (not interleaved); the loop's values and indices
are checked against the float64 reference first. Ratios are against torch's inference (loop)
and torch's forward+backward (fb).
"""
import json
import os
import time

import numpy as np
import torch

from conv3d.ops import cpu_reference
from conv3d.ops.fast import pooling


def bench(f, r=5):
    f()
    ts = []
    for _ in range(r):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return min(ts) * 1000


def main():
    torch.set_num_threads(2)
    path = os.path.join(os.path.dirname(__file__), "..", "conv3d", "bench", "layers.json")
    table = json.load(open(path))
    rng = np.random.default_rng(0)
    print("load", os.getloadavg(), flush=True)
    for L in table["layers"]:
        if L["op"] != "max_pool":
            continue
        for N in table["batches"][L["name"].split()[0]]:
            xs = (N,) + tuple(L["x"][1:])
            k, s, p = L["kernel"], L["stride"], L["padding"]
            x = rng.standard_normal(xs, dtype=np.float32)
            tx = torch.from_numpy(x).requires_grad_()
            gy = torch.randn_like(torch.nn.functional.max_pool3d(tx, k, s, p))
            gyn = gy.numpy()

            def torch_fb():
                tx.grad = None
                torch.nn.functional.max_pool3d(tx, k, s, p).backward(gy)
            with torch.no_grad():
                ti = bench(lambda: torch.nn.functional.max_pool3d(tx, k, s, p))
            tb = bench(torch_fb)
            ri = bench(lambda: cpu_reference.max_pool3d_forward(x, k, s, p, (1, 1, 1), False,
                                                                False))
            li = bench(lambda: pooling.max_pool3d_forward(x, k, s, p, (1, 1, 1), False, True))
            y, idx = pooling.max_pool3d_forward(x, k, s, p, (1, 1, 1), False, True)
            y64, idx64 = cpu_reference.max_pool3d_forward(x.astype(np.float64), k, s, p,
                                                          (1, 1, 1), False, True)
            assert np.array_equal(y, y64.astype(np.float32)) and np.array_equal(idx, idx64)
            lb = bench(lambda: pooling.max_pool3d_backward(gyn, idx, xs))
            print(f"| {L['name'][:30]} N={N} | k{k} s{s} | {ti:.2f} | {tb:.2f} | {ri:.2f} | "
                  f"{li:.2f} ({li / ti:.2f}x) | {li + lb:.2f} ({(li + lb) / tb:.2f}x) |",
                  flush=True)
    print("load", os.getloadavg())


if __name__ == "__main__":
    main()
