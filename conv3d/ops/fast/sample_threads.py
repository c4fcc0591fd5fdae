"""Threads over samples: the batch is cut into one slice per thread, and every thread runs a
strategy's whole chunk loop on its slice, with a single-threaded BLAS.

The strategies alternate between copies (im2col, col2im, reordering ``gy``), which run on one
core, and GEMMs, which the BLAS library spreads over all cores and synchronises on every call.
With one slice of the batch per thread, the copies and GEMMs of the slices overlap and no
core waits for another. The samples of a convolution are independent, so the slices need no
communication::

    y[slice]  = forward(x[slice])                   gx[slice] = gradient of x[slice]
    gw        = sum over slices of the weight gradient of (gy[slice], x[slice])

Each thread's chunks are planned under ``limit / T`` bytes, so the slices together stay under
the workspace limit. A call is split only when it has at least ``SPLIT_MIN_FLOPS`` (below, the
hand-off to another thread costs more than it saves) and ``T = min(get_num_threads(), N) > 1``.
While a split call runs, the BLAS library is limited to one thread for the whole process (its
thread count is process-wide); split calls made from several threads of a program at once give
the right results but may leave each other's BLAS at its usual count.
``with sample_split(False):`` turns splitting off, also for ``run_units``: the compiled loops
without BLAS (strategy ``'direct'``, pooling) share their independent units the same way.
"""
from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from .threads import blas_controller, get_num_threads
from .workspace import WorkspaceLimitError, resolve_limit

SPLIT_MIN_FLOPS = 30e6  # forward FLOPs (2 per multiply-add) from which a call is split
UNITS_MIN_WORK = 2e6    # operations from which run_units shares its units among threads

_enabled = True
_executor: ThreadPoolExecutor | None = None  # T-1 threads that live on (they keep workspaces)
_executor_size = 0
last_threads: dict = {}  # 'forward'/'backward' -> number of slices the most recent call ran on


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
    """The pool of ``T - 1`` worker threads (the calling thread is the T-th)."""
    global _executor, _executor_size
    if _executor is None or _executor_size != T - 1:
        if _executor is not None:
            _executor.shutdown(wait=False)  # its threads end once their queued slices are done
        _executor, _executor_size = ThreadPoolExecutor(T - 1, "conv3d-samples"), T - 1
    return _executor


def call(op: str, fn, args: tuple, geo, workspace_limit=None):
    """``fn(*args, workspace_limit=...)``, a strategy's ``forward`` (args ``x, w, b, ...``) or
    ``backward`` (args ``gy, x, w, ..., output_mask``), on slices of the batch in threads when
    the call is large enough; unsplit when a slice's share of the limit is too small for its
    smallest chunk (which raises there if even the whole limit is too small)."""
    T = threads_for(geo.N, geo.flops())
    last_threads[op] = 1
    if T == 1:
        return fn(*args, workspace_limit=workspace_limit)
    limit = resolve_limit(workspace_limit)
    per_sample = 1 if op == "forward" else 2  # forward: x; backward: gy and x
    if op == "forward":
        whole = np.empty(geo.y_shape, dtype=args[0].dtype)
    else:
        whole = np.empty(geo.x_shape, dtype=args[0].dtype) if args[-1][0] else None

    def one(s):
        sliced = tuple(a[s] for a in args[:per_sample]) + args[per_sample:]
        out = None if whole is None else whole[s]
        return fn(*sliced, workspace_limit=limit // T, out=out)

    parts = slices(geo.N, T)
    try:
        with blas_controller().limit(limits=1, user_api="blas"):
            futures = [_workers(T).submit(one, s) for s in parts[1:]]
            try:
                first = one(parts[0])
            finally:
                wait(futures)  # never leave a thread running with BLAS limited
            results = [first] + [f.result() for f in futures]
    except WorkspaceLimitError:
        return fn(*args, workspace_limit=workspace_limit)
    last_threads[op] = T
    if op == "forward":
        return whole
    gws = [gw for _, gw in results]
    return whole, None if gws[0] is None else sum(gws[1:], gws[0])


def run_units(kernel, units: int, work: float, *args) -> None:
    """``kernel(*args, u0, u1)`` over ``range(units)`` in one contiguous range per thread, for
    compiled loops (``nogil``) whose units write disjoint outputs; unsplit below
    ``UNITS_MIN_WORK`` operations, where the hand-off costs more than it saves."""
    T = min(get_num_threads(), units) if _enabled and work >= UNITS_MIN_WORK else 1
    if T == 1:
        return kernel(*args, 0, units)
    parts = slices(units, T)
    futures = [_workers(T).submit(kernel, *args, s.start, s.stop) for s in parts[1:]]
    try:
        kernel(*args, parts[0].start, parts[0].stop)
    finally:
        wait(futures)
    for f in futures:
        f.result()


def run_rows(kernel, x, *per_channel):
    """A new array ``y``, ``kernel(x_rows, y_rows, *channel_rows, lo, hi)`` filling rows
    ``lo:hi`` of it, over the rows (n, c) of ``x`` shared among the threads by ``run_units``;
    each (C,) array of ``per_channel`` is given as one value per row. For elementwise NumPy
    work without a graph (inference ReLU, batch norm): NumPy's ufuncs release the GIL, and one
    core does not use all of the memory bandwidth. Returns None where ``x`` is not a
    C-contiguous NumPy array of at least two axes and one element; the caller then computes
    ``y`` its own way (CuPy arrays, views)."""
    if type(x) is not np.ndarray or x.ndim < 2 or x.size == 0 or not x.flags.c_contiguous:
        return None
    N, C = x.shape[:2]
    y = np.empty_like(x)
    rows = [np.tile(p, N)[:, None] for p in per_channel]  # row n*C + c holds channel c's value
    run_units(kernel, N * C, x.size, x.reshape(N * C, -1), y.reshape(N * C, -1), *rows)
    return y
