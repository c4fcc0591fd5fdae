"""The workspace limit: how many bytes of scratch memory a fast convolution may use.

im2col turns a convolution into one matrix product, but its column matrix is large: for the
C3D-like layer (N=4, C=64, 16x56x56, 3x3x3 kernel) it holds ``C*kD*kH*kW x N*OD*OH*OW`` floats,
1.32 GiB. The fast strategies therefore work in *chunks* of ``n`` samples and ``od`` output depth
planes, and size each chunk so that its scratch buffers (the column matrix, a padded copy or a
temporary product) fit under the limit:

* the chunk planner asks the strategy how many bytes a chunk of ``(n, od)`` needs *before*
  anything is allocated, tries whole samples first (batching over N), then fewer output planes of
  one sample (chunking over depth);
* when even one output plane of one sample does not fit, it raises ``WorkspaceLimitError`` and
  says how many bytes that smallest chunk needs.

The default limit is 256 MiB (``DEFAULT_WORKSPACE_LIMIT``). Change it globally with
``conv3d.set_workspace_limit(bytes)``, for a block with ``with conv3d.workspace_limit(bytes):``,
or per call through the ``workspace_limit=`` argument of the fast provider's functions.
Inputs, weights and the output itself are not workspace: they exist whatever the strategy.
"""
from __future__ import annotations

import contextlib
import numbers
import threading
import weakref

import numpy as np

DEFAULT_WORKSPACE_LIMIT = 256 * 2**20  # bytes
CACHE_TARGET = 8 * 2**20  # preferred chunk size: a column matrix this small stays in L2/L3 cache

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
    """The largest workspace (bytes) a fast convolution allocated since ``reset_peak_workspace``."""
    return _peak


def reset_peak_workspace() -> None:
    global _peak
    _peak = 0


class _Pool(dict):
    """One thread's kept buffers, by (name, size, dtype), least recently used first."""

    __hash__ = object.__hash__  # by identity, for the WeakSet of all pools


_kept = threading.local()      # per thread: buffers earlier calls left for later ones
_all_pools = weakref.WeakSet()  # every thread's pool, for kept_workspace/release_workspace


def _pool() -> _Pool:
    """This thread's kept buffers: a network whose layers need different sizes keeps one set
    of buffers per layer shape. Each thread has its own (the sample threads of a split call,
    ``sample_threads.py``, reuse theirs from call to call), so a buffer is never shared."""
    pool = getattr(_kept, "buffers", None)
    if pool is None:
        pool = _kept.buffers = _Pool()
        _all_pools.add(pool)
    return pool


def kept_workspace() -> int:
    """Bytes of scratch buffers kept between calls, all threads together. Each thread keeps at
    most the limit it last ran under; a split call's threads run under a share each."""
    return sum(b.nbytes for pool in list(_all_pools) for b in list(pool.values()))


def release_workspace() -> None:
    """Free the scratch buffers every thread keeps between convolution calls (call it while no
    convolution runs)."""
    for pool in list(_all_pools):
        pool.clear()


def _trim(pool: dict, budget: int) -> None:
    """Drop the least recently used kept buffers until they fit in ``budget`` bytes."""
    while pool and sum(b.nbytes for b in pool.values()) > budget:
        del pool[next(iter(pool))]


class Workspace:
    """Scratch buffers for one call, with the bytes counted against the limit.

    ``take(name, shape, dtype)`` hands out a buffer and reuses it for later chunks of the same
    or a smaller size, so a call allocates each buffer once. ``note(name, nbytes)`` counts memory
    allocated elsewhere (numba's per-thread accumulators) under the same limit.

    Buffers also outlive the call, like the blocks a caching allocator keeps: when the call's
    ``Workspace`` is dropped (the strategy function returns), its buffers go to a per-thread
    pool, and a later call's ``take`` of the same name and size reuses them. Fresh memory costs
    a page fault per 4 KiB page on first touch; on this project's VM that was about a tenth of a2's
    time (fwd+bwd 60.5 against 67.4 ms, median of 11 interleaved runs). The buffers a call uses
    plus the ones its thread keeps never exceed the limit it runs under (each thread of a split
    call runs under its share of the limit); ``release_workspace()`` frees them.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.buffers: dict[str, np.ndarray] = {}
        self.noted: dict[str, int] = {}
        self.counted = 0  # bytes of this workspace included in _in_use

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self.buffers.values()) + sum(self.noted.values())

    def _grew(self):
        global _peak, _in_use
        nbytes = self.nbytes
        if nbytes > self.limit:  # the planner predicted this; a bug if it happens
            raise WorkspaceLimitError(f"internal error: workspace {nbytes} bytes exceeds "
                                      f"the limit {self.limit} bytes")
        with _count:  # threads of one split call grow their workspaces at the same time
            _in_use += nbytes - self.counted
            self.counted = nbytes
            _peak = max(_peak, _in_use)

    def note(self, name: str, nbytes: int) -> None:
        self.noted[name] = max(self.noted.get(name, 0), int(nbytes))
        self._grew()

    def _reuse_kept(self, name, size, dtype):
        # the same size only (a larger one would count more than the planner predicted);
        # popped, so no other call can touch it while this one uses it
        kept = _pool().pop((name, size, np.dtype(dtype).str), None)
        if kept is not None:
            self.buffers[name] = kept
            self._grew()
        return kept

    def take(self, name: str, shape, dtype, zero: bool = False) -> np.ndarray:
        size = int(np.prod(shape))
        buf = self.buffers.get(name)
        if buf is None:
            buf = self._reuse_kept(name, size, dtype)
        if buf is None or buf.size < size or buf.dtype != dtype:
            self.buffers.pop(name, None)
            _trim(_pool(), self.limit - self.nbytes - size * np.dtype(dtype).itemsize)
            buf = np.empty(size, dtype=dtype)
            self.buffers[name] = buf
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


def zeroed(shape, dtype) -> np.ndarray:
    """``np.zeros`` for an array the caller will add into (a gradient accumulated chunk by chunk).

    ``np.zeros`` of a large array gets fresh pages from the OS that are mapped lazily: the first
    ``+=`` then faults every page twice (the read maps the shared zero page, the write copies
    it). Writing the zeros ourselves faults each page once. On this project's 2-core VM a 5.6 MiB
    ``np.zeros`` + ``+=`` took 5-12 ms, ``np.empty`` + ``fill(0)`` + ``+=`` under 2 ms.
    """
    out = np.empty(shape, dtype=dtype)
    out.fill(0)
    return out


def output(shape, dtype, out=None, zero=False) -> np.ndarray:
    """The array a strategy writes its per-sample result into (``y`` or ``gx``): ``out`` when the
    caller passes one (``sample_threads`` hands each thread its slice of the whole result, so
    the slices need no copy), else a new array; zeroed (see ``zeroed``) when it is added into."""
    if out is None:
        return zeroed(shape, dtype) if zero else np.empty(shape, dtype=dtype)
    if out.shape != tuple(shape) or out.dtype != dtype:
        raise ValueError(f"out= has shape {out.shape} and dtype {out.dtype}; this call needs "
                         f"shape {tuple(shape)} and dtype {np.dtype(dtype)}")
    if zero:
        out.fill(0)
    return out


def plan_chunks(N: int, OD: int, bytes_for, limit: int | None, what: str,
                target: int | None = CACHE_TARGET) -> tuple[int, int]:
    """Pick the chunk ``(n, od)``: the most samples, then the most output planes, that fit.

    ``bytes_for(n, od)`` predicts the workspace of a chunk of ``n`` samples and ``od`` output
    depth planes (it must grow with both). Returns ``(n, od)`` with ``od == OD`` whenever
    ``n >= 1`` whole samples fit. Raises ``WorkspaceLimitError`` when ``(1, 1)`` does not fit.
    ``target`` (default ``CACHE_TARGET``) caps chunks below the limit: a chunk whose column matrix
    is still in cache when the GEMM reads it runs faster than one that went out to memory (a
    chunk is never made smaller than one output plane for it).
    """
    limit = _limit if limit is None else _check_limit(limit)
    if bytes_for(1, 1) <= limit and target is not None:
        limit = min(limit, max(target, bytes_for(1, 1)))
    if bytes_for(1, OD) <= limit:  # whole samples: binary search the largest n
        lo, hi = 1, N
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if bytes_for(mid, OD) <= limit else (lo, mid - 1)
        return lo, OD
    need = bytes_for(1, 1)
    if need > limit:
        raise WorkspaceLimitError(
            f"{what}: even the smallest chunk (1 sample, 1 output depth plane) needs {need} bytes "
            f"({need / 2**20:.1f} MiB) of workspace, more than the limit of {limit} bytes "
            f"({limit / 2**20:.1f} MiB). Raise the limit, e.g. conv3d.set_workspace_limit({need}) "
            f"or `with conv3d.workspace_limit({need}):`, or use a smaller input.")
    lo, hi = 1, OD
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if bytes_for(1, mid) <= limit else (lo, mid - 1)
    return 1, lo


def chunks(N: int, OD: int, n: int, od: int):
    """Yield ``(n0, n1, od0, od1)`` covering ``range(N) x range(OD)`` in chunks of ``(n, od)``."""
    for n0 in range(0, N, n):
        for od0 in range(0, OD, od):
            yield n0, min(n0 + n, N), od0, min(od0 + od, OD)
