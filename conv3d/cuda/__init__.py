"""The CUDA backend: hand-written kernels (``kernels/*.cu``) on a GPU or in the CPU emulator.

Two devices use the same kernels through the same code (``conv3d.cuda.provider``):

* ``'cuda'``: CuPy compiles the sources with NVRTC and launches them on an NVIDIA GPU;
* ``'cuda-emu'``: ``conv3d.cuda.emulator`` compiles the unmodified sources with g++ and runs
  them on the CPU, with the grid and block a GPU would use.

Importing this package registers both providers with ``conv3d.core.backend`` and needs neither
CuPy, nor NVRTC, nor a compiler: kernels are compiled on first use.

    >>> import numpy as np, conv3d, conv3d.functional as F
    >>> x = conv3d.Tensor(np.ones((1, 1, 4, 4, 4), np.float32)).to('cuda-emu')
    >>> w = conv3d.Tensor(np.ones((1, 1, 3, 3, 3), np.float32)).to('cuda-emu')
    >>> conv3d.cuda.set_conv_algorithm('direct')   # or 'tiled' (default), 'im2col', 'tensor-core'
    >>> float(F.conv3d(x, w, padding=1).numpy()[0, 0, 0, 0, 0])   # a corner sees 2*2*2 ones
    8.0
    >>> with conv3d.cuda.conv_algorithm('tensor-core'), conv3d.cuda.tensor_core_precision('bf16'):
    ...     float(F.conv3d(x, w, padding=1).numpy()[0, 0, 0, 0, 0])  # ones are exact in bf16
    8.0
"""
from __future__ import annotations

from ..core.backend import cupy_module, register_kernels
from .launch import LaunchConfig
from .provider import (CONV_ALGORITHMS, TENSOR_CORE_PRECISIONS, CudaKernels, conv_algorithm,
                       get_conv_algorithm, get_tensor_core_precision, set_conv_algorithm,
                       set_tensor_core_precision, tensor_core_precision)
from .sources import KERNELS, get_function, kernel_source


def is_available() -> bool:
    """True when CuPy is installed and sees at least one NVIDIA GPU. Never raises."""
    cp = cupy_module()
    if cp is None:
        return False
    try:
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver, no device, broken CUDA install
        return False


register_kernels("cuda", CudaKernels("cuda"))
register_kernels("cuda-emu", CudaKernels("cuda-emu"))

__all__ = ["is_available", "set_conv_algorithm", "get_conv_algorithm", "conv_algorithm",
           "CONV_ALGORITHMS", "TENSOR_CORE_PRECISIONS", "set_tensor_core_precision",
           "get_tensor_core_precision", "tensor_core_precision", "CudaKernels", "LaunchConfig", "KERNELS", "kernel_source",
           "get_function"]
