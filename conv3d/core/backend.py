"""Where a tensor's data lives, and which kernels compute on it.

Three devices:

* ``'cpu'``: a NumPy array; the kernels are NumPy (im2col + BLAS) code.
* ``'cuda'``: a CuPy array on an NVIDIA GPU; the kernels are the CUDA C sources in ``kernels/``.
* ``'cuda-emu'``: a NumPy array, but the kernels are the *same* CUDA C sources compiled for the
  CPU by the emulator in ``conv3d.cuda``, launched with the grid and block a GPU would use.

``xp = get_array_module(x)`` gives ``numpy`` or ``cupy`` so that one code path serves both
(Chainer/DeZero style). Ops that need a real kernel (convolution, pooling) ask
``kernels_for(device)`` for a *kernel provider*, an object with these array-level functions
(arrays in, arrays out, no autograd; the settings already checked and normalized by
``conv3d.ops``: int triples, convolution padding as three ``(before, after)`` pairs)::

    conv3d_forward(x, w, b, stride, padding, dilation, groups)                  -> y
    conv3d_backward(gy, x, w, stride, padding, dilation, groups, output_mask)   -> (gx, gw)
    max_pool3d_forward(x, kernel_size, stride, padding, dilation, ceil_mode,
                       return_indices)                                          -> (y, indices)
    max_pool3d_backward(gy, indices, x_shape)                                   -> gx
    avg_pool3d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad) -> y
    avg_pool3d_backward(gy, x_shape, kernel_size, stride, padding, ceil_mode,
                        count_include_pad)                                      -> gx
    interpolate_forward(x, matrices)                                            -> y
    interpolate_backward(gy, matrices)                                          -> gx

``conv3d_backward`` computes only the gradients ``output_mask = (want_gx, want_gw)`` asks for
and returns ``None`` for the others (PyTorch's ``convolution_backward``); how it gets them (one
pass or two) is the provider's business. ``max_pool3d_forward`` returns ``indices=None`` when
``return_indices`` is False (inference needs no argmax). ``matrices`` are the three (O, I)
NumPy resize matrices of ``conv3d.ops.resample`` (depth, height, width), which hold PyTorch's
index rules; a transposed convolution needs no entry of its own (``conv3d.ops.conv_transpose``
calls ``conv3d_backward`` for its forward and ``conv3d_forward`` for its input gradient).
Providers are registered by the layers that implement them (``conv3d.ops`` for the CPU,
``conv3d.cuda`` for the GPU and the emulator), so this module, at the bottom of the package,
imports none of them.
"""
from __future__ import annotations

import numpy as np

DEVICES = ("cpu", "cuda", "cuda-emu")

_KERNELS: dict = {}


def cupy_module():
    """Return the ``cupy`` module, or ``None`` when CuPy is not installed or unusable."""
    try:
        import cupy  # noqa: PLC0415 - optional dependency
    except Exception:  # ImportError, or a CUDA library error raised at import time
        return None
    return cupy


def get_array_module(*arrays):
    """``cupy`` if any argument is a CuPy array, else ``numpy`` (accepts Tensors too)."""
    for a in arrays:
        if type(a).__name__ == "Tensor":
            a = a.data
        if type(a).__module__.startswith("cupy"):
            return cupy_module()
    return np


def normalize_device(device) -> str:
    """Accept ``'cpu'``, ``'cuda'``, ``'cuda:0'`` and ``'cuda-emu'``; raise a clear error otherwise."""
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu', 'cuda' or 'cuda-emu', "
                        f"got {type(device).__name__} {device!r}")
    name = device.strip().lower()
    if name in ("cuda:0", "gpu"):
        name = "cuda"
    if name not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    return name


def require_cupy():
    """Return ``cupy`` or raise a RuntimeError that says what is missing and how to get it."""
    cp = cupy_module()
    if cp is None:
        raise RuntimeError(
            "device 'cuda' needs CuPy and an NVIDIA GPU, but CuPy is not installed. Install it "
            "with `pip install conv3d[gpu-cuda12]` (CUDA 12 driver) or `conv3d[gpu-cuda13]` "
            "(CUDA 13 driver) on a machine with an NVIDIA driver, or use "
            "device 'cuda-emu' to run the same CUDA kernels on the CPU.")
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver, no device
        raise RuntimeError(
            f"device 'cuda' needs an NVIDIA GPU, but CuPy cannot reach one ({exc}). Use device "
            f"'cuda-emu' to run the same CUDA kernels on the CPU.") from exc
    if count < 1:
        raise RuntimeError("device 'cuda' needs an NVIDIA GPU, but none was found. Use device "
                           "'cuda-emu' to run the same CUDA kernels on the CPU.")
    return cp


def move_array(array, device: str):
    """Return ``array`` on ``device``: a CuPy array for ``'cuda'``, a NumPy array otherwise.

    The result is always a new array, so the source and the moved tensor never share memory.
    """
    if device == "cuda":
        return require_cupy().array(array, copy=True)
    if type(array).__module__.startswith("cupy"):
        return array.get()
    return np.array(array, copy=True)


def register_kernels(device: str, provider) -> None:
    """Make ``provider`` the kernel provider for ``device`` (see the module docstring)."""
    _KERNELS[normalize_device(device)] = provider


def kernels_for(device: str):
    """The kernel provider registered for ``device``."""
    try:
        return _KERNELS[device]
    except KeyError:
        raise RuntimeError(f"no kernels are registered for device {device!r}; "
                           f"`import conv3d` registers them for {', '.join(DEVICES)}") from None
