"""How much slower the first call after an idle pause is, per implementation (the reason the
harness makes one untimed call before each timed one; see conv3d/bench/harness.py and
docs/benchmarks/notes.md).

    python -m benchmarks.first_call --shape a2 --rounds 11

Three ways of timing conv3d forward+backward against PyTorch, each interleaved (the two rows in a
new random order every round), median of the rounds:

* ``pause``: sleep ``PAUSE`` seconds, time one call (the harness before session 3);
* ``pause+warm``: sleep, one untimed call, time the next (the harness now);
* ``back-to-back``: no sleep, one untimed call, time the next; the untimed call is shorter than
  OpenBLAS's spin-wait, so the timed call can still share the cores with the other row's pool.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import conv3d

from conv3d.bench import cases
from conv3d.bench.harness import PAUSE

MODES = {"pause": (True, False), "pause+warm": (True, True), "back-to-back": (False, True)}


def time_modes(shape: str, rounds: int, threads: int = 2) -> dict:
    """{mode: {'ours': ms, 'PyTorch': ms}} for conv3d forward+backward on ``shape``."""
    torch = cases.torch_module()
    if torch is None:
        raise SystemExit("PyTorch is the peer here: pip install torch")
    conv3d.set_num_threads(threads)
    torch.set_num_threads(threads)
    x, w, b, gy, p, _ = cases._conv_arrays(shape)
    runs = {"ours": cases._conv3d_run(x, w, b, gy, p, backward=True),
            "PyTorch": cases._torch_run(torch, x, w, b, gy, p, True)}
    for run in runs.values():
        run()
    order = np.random.default_rng(0)
    results = {}
    for mode, (pause, warm) in MODES.items():
        times = {name: [] for name in runs}
        for _ in range(rounds):
            for name in order.permutation(list(runs)):
                if pause:
                    time.sleep(PAUSE)
                if warm:
                    runs[name]()
                t0 = time.perf_counter()
                runs[name]()
                times[name].append(time.perf_counter() - t0)
        results[mode] = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="a2", choices=sorted(cases.CONV_SHAPES))
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    for mode, ms in time_modes(args.shape, args.rounds, args.threads).items():
        print(f"{mode:13s} ours {ms['ours']:8.1f} ms   PyTorch {ms['PyTorch']:8.1f} ms   "
              f"ratio {ms['ours'] / ms['PyTorch']:.2f}")


if __name__ == "__main__":
    main()
