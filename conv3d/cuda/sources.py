"""The kernel sources in ``kernels/*.cu``, and compiling them once per process.

The ``.cu`` files are package data of ``conv3d.kernels`` (see pyproject.toml), read through
``importlib.resources`` so they are found both in a checkout and after ``pip install``.

``get_function(kernel, dtype, device)`` returns a launchable function with CuPy's calling
convention, ``fn(grid, block, args, shared_mem=...)``:

* ``'cuda'``: ``cupy.RawModule`` (NVRTC, then the driver loads the CUBIN on the GPU);
* ``'cuda-emu'``: ``conv3d.cuda.emulator.EmuModule`` (g++ compiles the same unmodified source
  for the CPU; blocks run one after another, a block's threads as fibers).

The kernels ``#include "indexing.cuh"`` (the index arithmetic they share, in the same folder), so
every compile passes ``include_options()``: CuPy, the emulator and the NVRTC compile check
(``conv3d kernels check``) alike. The tensor-core kernel also includes CUDA's ``<mma.h>``,
``<cuda_fp16.h>`` and ``<cuda_bf16.h>``: for NVRTC and CuPy ``include_options()`` adds the CUDA
toolkit's include folder (``conv3d.cuda.nvrtc.cuda_include_dir``); the emulator gets only the
kernels' folder, and its g++ finds its own stand-ins of those headers
(conv3d/cuda/emulator/include).

Each (file, device) is compiled once and cached (the emulator also caches on disk).
"""
from __future__ import annotations

import functools
import hashlib
from importlib.resources import files
from pathlib import Path

import numpy as np

from ..core.backend import require_cupy

# Every kernel file, with the one-line description ``conv3d kernels list`` prints.
KERNELS = {
    "conv3d_direct": "conv3d forward, one thread per output element (the simplest kernel)",
    "conv3d_tiled": "conv3d forward, shared-memory tiles of input (with halo) and weights",
    "im2col3d": "unfold the input into a column matrix for the GEMM (cuBLAS) path",
    "col2im3d": "fold columns back into a volume (gather, no atomics): GEMM-path input gradient",
    "conv3d_backward_input": "conv3d input gradient, one thread per input element (gather)",
    "conv3d_backward_weight": "conv3d weight gradient, a two-pass reduction over product slices",
    "max_pool3d_forward": "max pooling with PyTorch's argmax indices (first max wins, NaN wins)",
    "max_pool3d_backward": "max pooling gradient, one block per plane (owner-computes, no atomics)",
    "avg_pool3d_forward": "average pooling, PyTorch's divisor rule (count_include_pad, ceil_mode)",
    "avg_pool3d_backward": "average pooling gradient, one thread per input element (gather)",
    "conv3d_implicit_gemm_tc": "conv3d forward, implicit GEMM on tensor cores (WMMA; tf32, "
                               "bf16 or fp16 inputs, float32 accumulation)",
    "bias_add": "add a per-channel bias to a convolution output, in place",
    "upsample_trilinear_forward": "trilinear (or nearest) resize, one thread per output element",
    "upsample_trilinear_backward": "resize gradient, one thread per input element (gather)",
}

HEADERS = ("indexing.cuh",)  # the headers in kernels/ that the .cu files include

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


def kernel_dir() -> Path:
    """The folder holding the kernel sources and their headers (``kernels/`` in a checkout)."""
    return Path(str(files("conv3d.kernels")))


def header_source(header: str = "indexing.cuh") -> str:
    """The text of a shared header, e.g. ``kernels/indexing.cuh``."""
    if header not in HEADERS:
        raise ValueError(f"unknown header {header!r}; choose one of {', '.join(HEADERS)}")
    return files("conv3d.kernels").joinpath(header).read_text()


def kernel_include_options() -> tuple:
    """The option that lets ``#include "indexing.cuh"`` find the header (what the emulator gets)."""
    return (f"--include-path={kernel_dir()}",)


def include_options() -> tuple:
    """The options for NVRTC, nvcc and CuPy's RawModule: the kernels' folder, and the CUDA
    toolkit's include folder when one is found (CUDA's ``<mma.h>``, ``<cuda_fp16.h>``; without
    it only the tensor-core kernel fails to compile, with a message saying what to install)."""
    from .nvrtc import cuda_include_dir  # noqa: PLC0415 - nvrtc loads nothing at import
    cuda = cuda_include_dir()
    return kernel_include_options() + ((f"--include-path={cuda}",) if cuda else ())


def _headers_digest() -> str:
    return hashlib.sha256("".join(header_source(h) for h in HEADERS).encode()).hexdigest()[:16]


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
        # CuPy's on-disk kernel cache is keyed by the source and the options, not by the headers
        # they include: the headers' digest, as a macro, makes an edited header recompile.
        options = (*include_options(), f"-DCONV3D_HEADERS_DIGEST={_headers_digest()}")
        return cp.RawModule(code=source, options=options)
    if device == "cuda-emu":
        from .emulator import EmuModule  # noqa: PLC0415 - only needed for emulation
        # (the emulator's cache tracks included headers itself)
        return EmuModule(code=source, options=kernel_include_options(),
                         name=kernel_filename(kernel))
    raise ValueError(f"CUDA kernels run on device 'cuda' or 'cuda-emu', not {device!r}")


def get_function(kernel: str, dtype, device: str, entry: str | None = None):
    """The launchable ``<kernel>_<f32|f64>`` of ``device``: ``fn(grid, block, args, shared_mem=0)``.
    ``entry`` names another entry point of the same file (e.g. a second pass), dtype suffix aside."""
    return get_module(kernel, device).get_function(function_name(entry or kernel, dtype))
