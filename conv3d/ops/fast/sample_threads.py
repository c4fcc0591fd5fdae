"""Threads over samples: the batch is cut into one slice per thread, and every thread runs a
strategy's whole chunk loop on its own slice, with a single-threaded BLAS.

The strategies alternate between copies (im2col, col2im, reordering ``gy``), which run on one
core, and GEMMs, which OpenBLAS spreads over all cores. On a 2-core machine one core therefore
idles during every copy, and OpenBLAS's two threads synchronise on every GEMM; its GEMM rate
on a2's chunks was 130-165 GFLOP/s on 2 threads against about 90 on one. With one slice of the
batch per thread, copies and GEMMs of the two slices overlap and nothing waits for the other
core (a2, conv3d forward+backward through autograd, session-5 benchmark run: 50.6 ms split
against 67.8 ms unsplit, PyTorch 36.7 ms; more in docs/benchmarks/notes.md). The samples of a
convolution are independent, so the slices need no communication:

    y[slice]  = forward(x[slice])                   gx[slice] = backward_input(gy[slice])
    gw        = sum over slices of backward_weight(gy[slice], x[slice])

Each thread's chunks are planned under ``limit / T`` bytes, so the slices together stay under
the workspace limit. A call is split only when it is large enough (``SPLIT_MIN_FLOPS``) and
``T = min(get_num_threads(), N) > 1``. While a split call runs, the BLAS library is limited to one
thread for the whole process (its thread count is process-wide). Split calls made from several
threads of a program at once give the right results, but share the worker threads and may
leave each other's BLAS at its usual count. ``with sample_split(False):`` turns splitting off
(the benchmarks time both).
"""
from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from .threads import blas_controller, get_num_threads
from .workspace import WorkspaceLimitError, get_workspace_limit

# Below this many FLOPs (forward, 2 per multiply-add) a call runs unsplit: the hand-off to
# another thread costs more than it saves. Measured forward, 3x3x3, 2 threads: 7 MFLOP 1.8 ms
# split against 1.1 ms unsplit; 57 MFLOP 2.2 against 2.8 ms; 191 MFLOP 5.4 against 8.1 ms.
SPLIT_MIN_FLOPS = 30e6

_enabled = True
_executor: ThreadPoolExecutor | None = None  # T-1 threads that live on (they keep workspaces)
_executor_size = 0
last_threads: dict = {}  # op -> number of sample slices the most recent call ran on


@contextlib.contextmanager
def sample_split(enabled: bool):
    """``with sample_split(False): ...`` runs every call of the block unsplit."""
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    try:
        yield
    finally:
        _enabled = previous


def threads_for(N: int, flops: float) -> int:
    """How many slices a call with batch ``N`` and ``flops`` runs on (1: unsplit)."""
    if not _enabled or N < 2 or flops < SPLIT_MIN_FLOPS:
        return 1
    return min(get_num_threads(), N)


def slices(N: int, T: int) -> list[slice]:
    """``T`` contiguous slices of ``range(N)`` whose sizes differ by at most one."""
    bounds = [N * i // T for i in range(T + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def _workers(T: int) -> ThreadPoolExecutor:
    """The pool of ``T - 1`` worker threads (the calling thread is the T-th); a new pool when
    ``T`` changes."""
    global _executor, _executor_size
    if _executor is None or _executor_size != T - 1:
        if _executor is not None:
            _executor.shutdown(wait=False)  # its threads end once their queued slices are done
        _executor, _executor_size = ThreadPoolExecutor(T - 1, "conv3d-samples"), T - 1
    return _executor


def _slice_args(op, args, s):
    """The arguments of ``op`` for the samples ``s`` (the per-sample arrays come first)."""
    if op == "forward":                      # (x, w, b, ...)
        return (args[0][s],) + args[1:]
    if op == "backward_input":               # (gy, w, x_shape, ...)
        return (args[0][s], args[1], (s.stop - s.start,) + tuple(args[2][1:])) + args[3:]
    return (args[0][s], args[1][s]) + args[2:]  # backward_weight, backward: (gy, x, ...)


def _result(op, args, geo):
    """The whole per-sample result (``y`` or ``gx``) that the slices write into, or ``None``
    (``backward_weight``; ``backward`` without the input gradient)."""
    if op == "forward":
        return np.empty((geo.N, geo.K) + geo.out_size, dtype=args[0].dtype)
    if op == "backward_input" or (op == "backward" and args[-1][0]):
        return np.empty((geo.N, geo.C) + geo.in_size, dtype=args[0].dtype)
    return None


def _sum(parts):
    return None if parts[0] is None else sum(parts[1:], parts[0])


def run(op: str, fn, args: tuple, options: dict, geo, T: int, workspace_limit=None):
    """``fn(*args, **options, workspace_limit=...)`` on ``T`` slices of the batch at once, each
    writing its part of the result in place (``out=``); weight gradients are summed. When a
    slice's share of the limit is too small for its smallest chunk, the call runs unsplit
    instead (and raises there if even the whole limit is too small)."""
    limit = get_workspace_limit() if workspace_limit is None else workspace_limit
    parts = slices(geo.N, T)
    whole = _result(op, args, geo)

    def one(s):
        out = {} if whole is None else {"out": whole[s]}
        return fn(*_slice_args(op, args, s), **options, **out, workspace_limit=limit // T)

    try:
        with blas_controller().limit(limits=1, user_api="blas"):
            futures = [_workers(T).submit(one, s) for s in parts[1:]]
            try:
                first = one(parts[0])
            finally:
                wait(futures)  # never leave a thread running with BLAS limited
            results = [first] + [f.result() for f in futures]
    except WorkspaceLimitError:
        last_threads[op] = 1
        return fn(*args, **options, workspace_limit=workspace_limit)
    last_threads[op] = T
    if op == "backward_weight":
        return _sum(results)
    if op == "backward":
        return whole, _sum([gw for _, gw in results])
    return whole
