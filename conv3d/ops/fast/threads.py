"""How many threads the fast CPU path uses: the BLAS library's and numba's.

The matrix products run in the BLAS library that NumPy ships (OpenBLAS), the small-channel
kernels in numba's thread pool. ``set_num_threads(n)`` sets both; ``get_num_threads()`` reports
the BLAS count as threadpoolctl sees it (which also respects ``OMP_NUM_THREADS`` /
``OPENBLAS_NUM_THREADS`` set before start-up). ``num_threads(n)`` is the context-manager form.
"""
from __future__ import annotations

import contextlib
import numbers

from threadpoolctl import ThreadpoolController

_controller = None


def blas_controller() -> ThreadpoolController:
    """threadpoolctl's controller of the loaded thread pools (made once: finding them is slow)."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller


def _check(n) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"number of threads must be a positive int, got {n!r}; pass e.g. 2")
    return int(n)


def _numba_max() -> int:
    import numba  # noqa: PLC0415 - numba is imported lazily (it is slow to import)
    return numba.config.NUMBA_NUM_THREADS


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for BLAS (every BLAS library threadpoolctl finds) and for numba.

    numba cannot use more threads than it started with (``NUMBA_NUM_THREADS``, by default the
    number of cores), so its count is capped there.
    """
    n = _check(n)
    blas_controller().limit(limits=n, user_api="blas")  # takes effect now and stays until changed
    import numba  # noqa: PLC0415
    numba.set_num_threads(min(n, _numba_max()))


def get_num_threads() -> int:
    """The BLAS thread count (the largest, if several BLAS libraries are loaded)."""
    counts = [info["num_threads"] for info in blas_info()]
    return max(counts) if counts else 1


@contextlib.contextmanager
def num_threads(n: int):
    """``with num_threads(1): ...`` runs the block with ``n`` BLAS and numba threads."""
    import numba  # noqa: PLC0415
    n = _check(n)
    previous_numba = numba.get_num_threads()
    with blas_controller().limit(limits=n, user_api="blas"):
        numba.set_num_threads(min(n, _numba_max()))
        try:
            yield n
        finally:
            numba.set_num_threads(previous_numba)


def blas_info() -> list[dict]:
    """threadpoolctl's description of the loaded BLAS libraries (for benchmark reports)."""
    return [info for info in blas_controller().info() if info["user_api"] == "blas"]
