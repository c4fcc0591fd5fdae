"""How many threads the BLAS library (OpenBLAS, shipped with NumPy) uses for the GEMMs.

``set_num_threads(n)`` sets it for every BLAS library threadpoolctl finds; ``get_num_threads()``
reports it (respecting ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` set before start-up);
``num_threads(n)`` is the context-manager form. The compiled loops never use numba's own
threads: the channels-last copies are serial, and strategy ``'direct'`` and pooling share
their units among this many Python threads (``sample_threads.run_units``).
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


def set_num_threads(n: int) -> None:
    """Use ``n`` BLAS threads from now on."""
    blas_controller().limit(limits=_check(n), user_api="blas")


def get_num_threads() -> int:
    """The BLAS thread count (the largest, if several BLAS libraries are loaded)."""
    counts = [info["num_threads"] for info in blas_info()]
    return max(counts) if counts else 1


@contextlib.contextmanager
def num_threads(n: int):
    """``with num_threads(1): ...`` runs the block with ``n`` BLAS threads."""
    with blas_controller().limit(limits=_check(n), user_api="blas"):
        yield n


def blas_info() -> list[dict]:
    """threadpoolctl's description of the loaded BLAS libraries (for benchmark reports)."""
    return [info for info in blas_controller().info() if info["user_api"] == "blas"]
