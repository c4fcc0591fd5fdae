"""The kernel sources in ``kernels/*.cu``, and compiling them once per process.

The ``.cu`` files are package data of ``conv3d.kernels`` (see pyproject.toml), read through
``importlib.resources`` so they are found both in a checkout and after ``pip install``.

``get_function(kernel, dtype, device)`` returns a launchable function with CuPy's calling
convention, ``fn(grid, block, args, shared_mem=...)``:

* ``'cuda'``: ``cupy.RawModule`` (NVRTC, then the driver loads the CUBIN on the GPU);
* ``'cuda-emu'``: ``conv3d.cuda.emulator.EmuModule`` (g++ compiles the same unmodified source
  for the CPU; blocks run one after another, a block's threads as fibers).

Each (file, device) is compiled once and cached (the emulator also caches on disk).
"""
from __future__ import annotations

import functools
from importlib.resources import files

import numpy as np

from ..core.backend import require_cupy

# Every kernel file, with the one-line description ``conv3d kernels list`` prints.
KERNELS = {
    "conv3d_direct": "conv3d forward, one thread per output element (the simplest kernel)",
    "conv3d_tiled": "conv3d forward, shared-memory tiles of input (with halo) and weights",
    "im2col3d": "unfold the input into a column matrix for the GEMM (cuBLAS) path",
    "col2im3d": "fold columns back into a volume (gather, no atomics): GEMM-path input gradient",
    "conv3d_backward_input": "conv3d input gradient, one thread per input element (gather)",
    "conv3d_backward_weight": "conv3d weight gradient, one block per weight, shared-memory reduction",
    "max_pool3d_forward": "max pooling with PyTorch's argmax indices (first max wins, NaN wins)",
    "max_pool3d_backward": "max pooling gradient, scattered to the argmax with atomicAdd",
    "avg_pool3d_forward": "average pooling, PyTorch's divisor rule (count_include_pad, ceil_mode)",
    "avg_pool3d_backward": "average pooling gradient, one thread per input element (gather)",
    "bias_add": "add a per-channel bias to a convolution output, in place",
}

DTYPE_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


def check_kernel_name(kernel: str) -> str:
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    return kernel


def kernel_source(kernel: str) -> str:
    """The CUDA C source of ``kernels/<kernel>.cu``."""
    return files("conv3d.kernels").joinpath(f"{check_kernel_name(kernel)}.cu").read_text()


def kernel_filename(kernel: str) -> str:
    """The name compilers print in their messages, e.g. ``kernels/conv3d_direct.cu``."""
    return f"kernels/{check_kernel_name(kernel)}.cu"


def function_name(kernel: str, dtype) -> str:
    """``conv3d_direct`` + float32 -> ``conv3d_direct_f32`` (the ``extern "C"`` wrapper)."""
    try:
        suffix = DTYPE_SUFFIX[np.dtype(dtype)]
    except (KeyError, TypeError):
        raise TypeError(f"the CUDA kernels take float32 or float64 arrays, got dtype {dtype}; "
                        f"convert first, e.g. t.astype(np.float32)") from None
    return f"{kernel}_{suffix}"


@functools.cache
def get_module(kernel: str, device: str):
    """The compiled module of ``kernels/<kernel>.cu`` for ``device`` (compiled once, cached)."""
    source = kernel_source(kernel)
    if device == "cuda":
        cp = require_cupy()
        return cp.RawModule(code=source)
    if device == "cuda-emu":
        from .emulator import EmuModule  # noqa: PLC0415 - only needed for emulation
        return EmuModule(code=source, name=kernel_filename(kernel))
    raise ValueError(f"CUDA kernels run on device 'cuda' or 'cuda-emu', not {device!r}")


def get_function(kernel: str, dtype, device: str):
    """The launchable ``<kernel>_<f32|f64>`` of ``device``: ``fn(grid, block, args, shared_mem=0)``."""
    return get_module(kernel, device).get_function(function_name(kernel, dtype))
