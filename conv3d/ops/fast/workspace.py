"""The workspace limit: how many bytes of scratch memory a fast convolution may use.

im2col turns a convolution into one matrix product, but its column matrix is large
(``C*kD*kH*kW x N*OD*OH*OW`` values: 1.3 GiB for N=4, C=64, 16x56x56 and a 3x3x3 kernel). The
fast strategies therefore work in *chunks* of ``n`` samples and ``od`` output depth planes:

* ``plan_chunks`` asks the strategy how many bytes a chunk ``(n, od)`` needs *before* anything
  is allocated and picks whole samples first, then fewer output planes of one sample;
* when even one output plane of one sample does not fit, it raises ``WorkspaceLimitError``
  with the bytes that smallest chunk needs.

The default limit is 256 MiB: ``conv3d.set_workspace_limit(bytes)``, ``with
conv3d.workspace_limit(bytes):``, or ``workspace_limit=`` per call. Inputs, weights and results
are not workspace. A call's buffers outlive it, as in a caching allocator: each thread keeps
them, and a later call of the same shape reuses them instead of touching fresh pages; what a
call uses plus what its thread keeps never exceeds the limit it runs under.
"""
from __future__ import annotations

import contextlib
import math
import numbers
import threading
import weakref

import numpy as np

DEFAULT_WORKSPACE_LIMIT = 256 * 2**20  # bytes
CACHE_TARGET = 8 * 2**20  # preferred chunk size: a column matrix this small stays in cache

_limit = DEFAULT_WORKSPACE_LIMIT
_peak = 0     # the most workspace bytes in use at once since the last reset_peak_workspace()
_in_use = 0   # workspace bytes in use now, summed over threads (a split call runs several)
_count = threading.Lock()


class WorkspaceLimitError(MemoryError):
    """A single chunk of a convolution needs more scratch memory than the workspace limit."""


def _check_limit(limit) -> int:
    if isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit <= 0:
        raise ValueError(f"workspace limit must be a positive number of bytes, got {limit!r}; "
                         f"pass e.g. 256 * 2**20 for 256 MiB")
    return int(limit)


def resolve_limit(limit) -> int:
    """``limit``, or the global limit when it is ``None``."""
    return _limit if limit is None else _check_limit(limit)


def set_workspace_limit(limit: int) -> None:
    """Set the global workspace limit in bytes (default ``DEFAULT_WORKSPACE_LIMIT`` = 256 MiB)."""
    global _limit
    _limit = _check_limit(limit)


def get_workspace_limit() -> int:
    """The current global workspace limit in bytes."""
    return _limit


@contextlib.contextmanager
def workspace_limit(limit: int):
    """``with workspace_limit(64 * 2**20): ...`` lowers (or raises) the limit inside the block."""
    global _limit
    previous, _limit = _limit, _check_limit(limit)
    try:
        yield limit
    finally:
        _limit = previous


def peak_workspace() -> int:
    """The largest workspace (bytes) in use at once since ``reset_peak_workspace``."""
    return _peak


def reset_peak_workspace() -> None:
    global _peak
    _peak = 0


_pools: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # thread -> its kept buffers


def _pool() -> dict:
    """This thread's kept buffers by (name, size, dtype), least recently used first: a buffer
    is never shared between threads."""
    return _pools.setdefault(threading.current_thread(), {})


def kept_workspace() -> int:
    """Bytes of scratch buffers kept between calls, all threads together."""
    return sum(b.nbytes for pool in list(_pools.values()) for b in list(pool.values()))


def release_workspace() -> None:
    """Free the buffers every thread keeps between calls (call it while no convolution runs)."""
    for pool in list(_pools.values()):
        pool.clear()


def _trim(pool: dict, budget: int) -> None:
    """Drop the least recently used kept buffers until they fit in ``budget`` bytes."""
    while pool and sum(b.nbytes for b in pool.values()) > budget:
        del pool[next(iter(pool))]


class Workspace:
    """One call's scratch buffers, counted against the limit.

    ``take(name, shape, dtype)`` hands out a buffer, reusing it for later chunks of the same or
    a smaller size, or a kept one of exactly that size (a larger one would count more than the
    planner predicted). When the call's ``Workspace`` is dropped its buffers go to the pool.
    """

    def __init__(self, limit: int | None):
        self.limit = resolve_limit(limit)
        self.buffers: dict[str, np.ndarray] = {}
        self.counted = 0  # bytes of this workspace included in _in_use

    def _grew(self):
        global _peak, _in_use
        nbytes = sum(b.nbytes for b in self.buffers.values())
        if nbytes > self.limit:  # the planner predicted this; a bug if it happens
            raise WorkspaceLimitError(f"internal error: workspace {nbytes} bytes exceeds "
                                      f"the limit {self.limit} bytes")
        with _count:  # the threads of a split call grow their workspaces at the same time
            _in_use += nbytes - self.counted
            self.counted = nbytes
            _peak = max(_peak, _in_use)

    def take(self, name: str, shape, dtype, zero: bool = False) -> np.ndarray:
        size, dtype = math.prod(shape), np.dtype(dtype)
        buf = self.buffers.get(name)
        if buf is None:  # popped: no other call can touch it while this one uses it
            buf = _pool().pop((name, size, dtype.str), None)
            if buf is not None:
                self.buffers[name] = buf
                self._grew()
        if buf is None or buf.size < size or buf.dtype != dtype:
            self.buffers.pop(name, None)
            in_use = sum(b.nbytes for b in self.buffers.values())
            _trim(_pool(), self.limit - in_use - size * dtype.itemsize)
            buf = self.buffers[name] = np.empty(size, dtype=dtype)
            self._grew()
        out = buf[:size].reshape(shape)
        if zero:
            out.fill(0)
        return out

    def __del__(self):
        global _in_use
        try:
            pool = _pool()
            with _count:
                _in_use -= self.counted
        except Exception:  # noqa: BLE001 - interpreter shutdown: nothing to keep
            return
        for name, buf in self.buffers.items():  # back in, as the most recently used
            key = (name, buf.size, buf.dtype.str)
            pool.pop(key, None)
            pool[key] = buf
        _trim(pool, self.limit)


def output(shape, dtype, out=None, zero=False) -> np.ndarray:
    """The array a strategy writes its result into (``y`` or ``gx``): ``out`` when the caller
    passes one (each sample thread gets its slice of the whole result), else a new array.
    ``zero``: for a result that is added into; ``empty`` + ``fill(0)`` faults each fresh page
    once, where ``np.zeros`` + ``+=`` faults it twice (the zero page, then the copy)."""
    if out is None:
        out = np.empty(shape, dtype=dtype)
    elif out.shape != tuple(shape) or out.dtype != dtype:
        raise ValueError(f"out= has shape {out.shape} and dtype {out.dtype}; this call needs "
                         f"shape {tuple(shape)} and dtype {np.dtype(dtype)}")
    if zero:
        out.fill(0)
    return out


def plan_chunks(N: int, OD: int, bytes_for, limit: int | None, what: str,
                target: int | None = CACHE_TARGET) -> tuple[int, int]:
    """Pick the chunk ``(n, od)``: the most samples, then the most output planes, that fit.

    ``bytes_for(n, od)`` predicts the workspace of a chunk (it must grow with both). Returns
    ``(n, OD)`` whenever whole samples fit, else ``(1, od)``. Chunks are also kept under
    ``target`` bytes (but never below one output plane): a column matrix still in cache when
    the GEMM reads it is read faster. Raises ``WorkspaceLimitError`` when ``(1, 1)`` does not fit.
    """
    limit = resolve_limit(limit)
    need = bytes_for(1, 1)
    if need > limit:
        raise WorkspaceLimitError(
            f"{what}: even the smallest chunk (1 sample, 1 output depth plane) needs {need} bytes "
            f"({need / 2**20:.1f} MiB) of workspace, more than the limit of {limit} bytes "
            f"({limit / 2**20:.1f} MiB). Raise the limit, e.g. conv3d.set_workspace_limit({need}) "
            f"or `with conv3d.workspace_limit({need}):`, or use a smaller input.")
    if target is not None:
        limit = min(limit, max(target, need))
    if bytes_for(1, OD) <= limit:
        return _largest(lambda n: bytes_for(n, OD) <= limit, N), OD
    return 1, _largest(lambda od: bytes_for(1, od) <= limit, OD)


def _largest(fits, top: int) -> int:
    """The largest ``v`` in ``1..top`` with ``fits(v)`` (``fits`` holds for 1, and for every
    value below one that it holds for): a binary search."""
    lo, hi = 1, top
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def chunks(N: int, OD: int, n: int, od: int):
    """Yield ``(n0, n1, od0, od1)`` covering ``range(N) x range(OD)`` in chunks of ``(n, od)``."""
    for n0 in range(0, N, n):
        for od0 in range(0, OD, od):
            yield n0, min(n0 + n, N), od0, min(od0 + od, OD)
