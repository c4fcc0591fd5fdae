"""Timing machinery: agreement check first, then interleaved rounds with warm-up, medians.

A *case* is one benchmark on one shape (e.g. "conv3d forward+backward, a1") with several
*implementations*, each a row of the results table. ``run_case``:

1. runs every implementation once and compares its outputs with the case's reference
   (``check``): an implementation that disagrees is reported as ``MISMATCH`` and never timed;
2. warms each one up (the check counts as the first call; one more call follows, except for
   checks of ``WARM_LIMIT`` seconds or more), and takes the faster of the two as its call time;
3. times ``repeats`` rounds (fewer under a time ``budget``, see ``run_case``), and in each
   round every implementation once, one after another (interleaved, so a noisy neighbour slows
   all rows alike), in a new random order each round (a fixed seed, so runs repeat), so that no
   row is always first, last, or right after the same row; reports the median and the best
   (smallest) time. (An earlier version rotated the order by one row per round, which keeps
   every row after the same neighbour: the ``auto`` row always followed the GEMM row, and
   on shape b it was the slowest of three rows that run the same code, in two runs out of two.)

Before each timed call the harness sleeps ``PAUSE`` seconds and then makes *untimed* calls of
the same implementation (none before calls of ``LONG_CALL`` seconds or more; see
``_untimed_calls`` for how many). The pause: thread
pools spin-wait after their work (OpenBLAS's workers for about 0.1 s, OpenMP's in PyTorch and
numba), and on a 2-core machine a pool still spinning from the previous row slowed the next row
by up to 2x. The untimed call: on this project's VM the
first call after an idle gap runs slow (a single-threaded 5.6 MiB NumPy transpose took 3.6 ms
back to back and 9.6 ms after a 0.2 s sleep; a2 forward+backward 55 against 72-76 ms), and not
by the same factor for every implementation: timing that first call measured the VM's wake-up,
not the convolution. A training loop calls its layers back to back, so the timed call follows
untimed ones (as ``timeit`` and ``torch.utils.benchmark`` time repeated calls).

Why up to ``WARM_CALLS`` untimed calls, not one: when two libraries' thread pools share two
cores, the first calls after the *other* library ran wait for their worker thread to be
scheduled, one scheduler tick (4 ms here) or two, however long the pause. Measured with a
128->128 (3,1,1) convolution on 2x3x3 that takes 0.2 ms in a loop: after PyTorch's calls,
conv3d's first two calls took 4-8 ms each and the third 0.3 ms; after conv3d's calls,
PyTorch's first call took 10-16 ms and the second 0.2 ms. With one untimed call the timed call
measured that wait for conv3d's rows and not for PyTorch's. A program that uses one library
does not meet it, and one that switches pays it once per switch, not per layer.
"""
from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

PAUSE = 0.2  # seconds between timed calls: idle threads of the previous row go to sleep
# A call at least this long skips the untimed call before each timed one and the second warm-up
# call: the slow first call after an idle gap costs milliseconds (see above), a few percent of
# such a call at most, while the untimed call would double the suite's time.
MIN_ROUNDS = 3      # rounds a cheap case keeps under any budget (fewer only if fewer repeats)
CHEAP_ROUND = 1.0   # seconds: a round this cheap is never cut below MIN_ROUNDS
LONG_CALL = 0.5
# A check call at least this long skips the second warm-up call. Below it, a first call that
# only looked long (a 32->3 1x1x1 layer on 96^3: 0.78 s for its first forward+backward, which
# faults in 113 MB of fresh pages, 0.085 s from then on) is warmed up once more, and that call's
# time decides whether the row counts as long.
WARM_LIMIT = 2.0
WARM_CALLS = 3      # untimed calls before a timed call of a short implementation, at most ...
WARM_TIME = 0.05    # ... while these seconds have not passed: a long call needs fewer


@dataclass
class Impl:
    """One row: ``run()`` does the timed work once and returns the arrays to check."""
    name: str
    run: Callable | None
    flops: float | None = None
    workspace: Callable | int | str | None = None  # bytes, a callable giving them, or a note
    skip: str | None = None                         # reason this row was not run
    is_peer: bool = False                           # PyTorch: the ratio column's denominator
    is_gemm: bool = False                           # the GEMM rate row of the case
    note: str = ""
    # GPU rows: one call of the work that returns the seconds the GPU spent on it, measured with
    # CUDA events on the row's own stream; the timed rounds use it instead of the wall clock
    # (which would add the launch overhead of the host and the copies of the results).
    device_timer: Callable | None = None


@dataclass
class Case:
    bench: str
    shape: str
    impls: list
    # returns the list of arrays every impl must match; or the name of the impl whose output
    # is the reference (it runs first, the others are checked against it)
    reference: Callable | str | None = None
    rtol: float = 2e-3                 # relative to the largest magnitude of each array
    rows: list = field(default_factory=list)
    detail: str = ""                   # what the case computes, for the report


def errors(outputs, expected) -> list[float]:
    """Each array's largest error relative to the reference array's largest magnitude (inf for
    a shape mismatch; one inf more when the number of arrays differs)."""
    out = []
    for got, want in zip(outputs, expected):
        got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
        if got.shape != want.shape:
            out.append(float("inf"))
            continue
        scale = max(float(np.max(np.abs(want))), 1e-30) if want.size else 1.0
        out.append(float(np.max(np.abs(got - want))) / scale if want.size else 0.0)
    return out + ([float("inf")] if len(outputs) != len(expected) else [])


def agree(outputs, expected) -> float:
    """The largest of ``errors``: 0 when every array is equal."""
    return max(errors(outputs, expected), default=0.0)


def _workspace(impl):
    from conv3d.ops.fast import peak_workspace  # noqa: PLC0415
    if callable(impl.workspace):
        return impl.workspace()
    if impl.workspace == "measured":
        return peak_workspace()
    return impl.workspace


def _untimed_calls(t):
    """How many untimed calls precede a timed call of ``t`` seconds: none from ``LONG_CALL``,
    else as many of ``WARM_CALLS`` as fit in ``WARM_TIME`` seconds, at least one."""
    if t >= LONG_CALL:
        return 0
    return max(1, min(WARM_CALLS, int(WARM_TIME // max(t, 1e-9))))


def _round_cost(t, pause):
    """Seconds one timed round of a row takes whose call takes ``t`` seconds."""
    return pause + max(t, 0.0) * (1 + _untimed_calls(t))


def run_case(case: Case, repeats: int, log=print, pause: float = PAUSE,
             budget: float | None = None) -> list[dict]:
    """Check, warm up and time every implementation of ``case``; return one dict per row.

    ``budget``: seconds the timed rounds of this case may take (None: no limit). The number of
    rounds is then ``min(repeats, max(floor, budget // cost))``, where ``cost`` is one round's
    time predicted from the check call of every row (pause + untimed call + timed call) and
    ``floor`` is ``MIN_ROUNDS`` for rounds of at most ``CHEAP_ROUND`` seconds, else 1: the
    budget trims only expensive cases, since a best of one call is no best (a single slow call
    of a sub-millisecond layer would stand as its time)."""
    from conv3d.ops.fast import reset_peak_workspace  # noqa: PLC0415
    ref_name = case.reference if isinstance(case.reference, str) else None
    expected = case.reference() if callable(case.reference) else None
    live, rows, call_s = [], {}, {}
    for impl in sorted(case.impls, key=lambda i: i.name != ref_name):  # the reference first
        row = dict(bench=case.bench, shape=case.shape, impl=impl.name, ms=None, best_ms=None,
                   rounds=0, gflops=None, ratio=None, best_ratio=None, frac_gemm=None,
                   workspace=None, status="ok", note=impl.note, is_peer=impl.is_peer,
                   is_gemm=impl.is_gemm, error=None, checked=False, detail=case.detail)
        rows[impl.name] = row
        if impl.skip:
            row["status"] = f"skipped: {impl.skip}"
            continue
        reset_peak_workspace()
        try:
            t0 = time.perf_counter()
            out = impl.run()
            call_s[impl.name] = time.perf_counter() - t0
        except Exception as exc:  # report, never hide: the row says what went wrong
            row["status"] = f"error: {type(exc).__name__}: {str(exc)[:120]}"
            log(f"  {case.bench} / {case.shape} / {impl.name}: {row['status']}")
            continue
        row["workspace"] = _workspace(impl)
        if impl.name == ref_name:
            expected = out
        elif ref_name and expected is None:
            row["status"] = f"not checked: the reference row {ref_name!r} did not run"
            continue
        elif expected is not None and not impl.is_gemm:
            err = agree(out, expected)
            row["error"], row["checked"] = err, True
            if not err <= case.rtol:
                row["status"] = f"MISMATCH (max rel. error {err:.2e} > {case.rtol:.0e})"
                log(f"  {case.bench} / {case.shape} / {impl.name}: {row['status']}")
                continue
        if call_s[impl.name] < WARM_LIMIT:  # second warm-up call (a long call's check call
            t0 = time.perf_counter()       # is warm-up enough); it times a warm call better
            impl.run()
            call_s[impl.name] = min(call_s[impl.name], time.perf_counter() - t0)
        live.append(impl)
    if budget is not None and live:
        cost = sum(_round_cost(call_s[i.name], pause) for i in live)
        floor = min(repeats, MIN_ROUNDS) if cost <= CHEAP_ROUND else 1
        repeats = min(repeats, max(floor, int(budget // cost)))
    times = {impl.name: [] for impl in live}
    order = np.random.default_rng(0)  # fixed seed: every run times the same orders
    for _ in range(repeats):
        for impl in (live[i] for i in order.permutation(len(live))):
            time.sleep(pause)  # the previous row's thread pools go quiet
            for _ in range(_untimed_calls(call_s[impl.name])):
                impl.run()     # untimed: the first calls after an idle gap (see above)
            if impl.device_timer is not None:
                times[impl.name].append(impl.device_timer())
                continue
            t0 = time.perf_counter()
            impl.run()
            times[impl.name].append(time.perf_counter() - t0)
    peer = next((i.name for i in live if i.is_peer), None)
    gemm = next((i for i in live if i.is_gemm), None)
    gemm_rate = gemm.flops / statistics.median(times[gemm.name]) if gemm else None
    for impl in live:
        t = statistics.median(times[impl.name])
        row = rows[impl.name]
        row["ms"], row["best_ms"], row["rounds"] = t * 1e3, min(times[impl.name]) * 1e3, repeats
        if impl.flops:
            row["gflops"] = impl.flops / t / 1e9
            if gemm_rate and not impl.is_gemm:
                row["frac_gemm"] = impl.flops / t / gemm_rate
        if peer and not impl.is_gemm:
            row["ratio"] = t / statistics.median(times[peer])
            row["best_ratio"] = min(times[impl.name]) / min(times[peer])
    for impl in case.impls:
        r = rows[impl.name]
        ms = f"{r['ms']:.2f} ms" if r["ms"] is not None else r["status"]
        log(f"  {case.bench:28s} {case.shape:6s} {impl.name:38s} {ms}"
            + (f"  x{r['ratio']:.2f} vs torch" if r["ratio"] else ""))
    case.rows = list(rows.values())
    return case.rows


def load_average():
    """The 1, 5 and 15 minute load averages (None where the OS has none)."""
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def machine_info() -> dict:
    """What the numbers were measured on: CPU model, cores, BLAS, threads, versions, date."""
    import numba  # noqa: PLC0415
    from threadpoolctl import threadpool_info  # noqa: PLC0415

    from conv3d import get_num_threads  # noqa: PLC0415
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model, "cores": os.cpu_count(), "blas_threads": get_num_threads(),
        "numba_threads": numba.get_num_threads(), "python": platform.python_version(),
        "numpy": np.__version__, "numba": numba.__version__,
        "blas": "; ".join(f"{b['internal_api']} {b['version']} ({b.get('architecture', '?')} "
                          f"kernel, {b['num_threads']} threads)" for b in threadpool_info()
                         if b["user_api"] == "blas"),
        "env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")},
        "load_average": load_average(),
    }
    try:
        import torch  # noqa: PLC0415
        info["torch"] = f"{torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        info["torch"] = None
    return info
