"""Issue 16's tiny call: conv3d of a (1, 1, 8, 8, 8) input with one 3x3x3 filter, padding 1,
forward and forward+backward through each library's autograd API, against PyTorch.

    python -m benchmarks.tiny_call

Best (and median) of 200 calls each, in 10 interleaved blocks of 20, after 20 warm-up calls;
both libraries on 2 threads. The forward runs without a graph (``no_grad``), the
forward+backward computes the gradients of x, w and b for gy = 1.
"""
import os
import statistics
import time

import numpy as np
import torch

import conv3d
import conv3d.functional as F

BLOCKS, PER_BLOCK, WARM = 10, 20, 20


def timed(f):
    out = []
    for _ in range(PER_BLOCK):
        t0 = time.perf_counter()
        f()
        out.append(time.perf_counter() - t0)
    return out


def main():
    torch.set_num_threads(2)
    conv3d.set_num_threads(2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, 8, 8, 8), dtype=np.float32)
    w = rng.standard_normal((1, 1, 3, 3, 3), dtype=np.float32)
    b = rng.standard_normal(1, dtype=np.float32)
    ox, ow, ob = (conv3d.Tensor(a, requires_grad=True) for a in (x, w, b))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))

    def ours_fwd():
        with conv3d.no_grad():
            F.conv3d(ox, ow, ob, padding=1)

    def theirs_fwd():
        with torch.no_grad():
            torch.nn.functional.conv3d(tx, tw, tb, padding=1)

    def ours_fb():
        for t in (ox, ow, ob):
            t.grad = None
        F.conv3d(ox, ow, ob, padding=1).sum().backward()

    def theirs_fb():
        for t in (tx, tw, tb):
            t.grad = None
        torch.nn.functional.conv3d(tx, tw, tb, padding=1).sum().backward()

    ours_fb(), theirs_fb()
    np.testing.assert_allclose(np.asarray(ox.grad), tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(ow.grad), tw.grad.numpy(), rtol=1e-4, atol=1e-4)
    print("load", os.getloadavg())
    for name, ours, theirs in (("forward", ours_fwd, theirs_fwd),
                               ("forward+backward", ours_fb, theirs_fb)):
        for _ in range(WARM):
            ours(), theirs()
        t = {"conv3d": [], "PyTorch": []}
        for _ in range(BLOCKS):
            t["conv3d"] += timed(ours)
            t["PyTorch"] += timed(theirs)
        best = {k: min(v) * 1e3 for k, v in t.items()}
        med = {k: statistics.median(v) * 1e3 for k, v in t.items()}
        print(f"{name}: conv3d best {best['conv3d']:.3f} ms (median {med['conv3d']:.3f}), "
              f"PyTorch best {best['PyTorch']:.3f} ms (median {med['PyTorch']:.3f}); "
              f"ratio of best times {best['conv3d'] / best['PyTorch']:.2f}x")
    print("load", os.getloadavg())


if __name__ == "__main__":
    main()
