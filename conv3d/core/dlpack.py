"""Zero-copy exchange with other array libraries through DLPack and NumPy's array protocol.

DLPack is the common in-memory tensor format that NumPy, CuPy, PyTorch, JAX and others all speak.
An exchange hands over a pointer, a shape, strides and a dtype, never the bytes, so both sides
see (and can write to) the same memory:

* out of conv3d: ``torch.from_dlpack(t)``, ``np.from_dlpack(t)``, ``cupy.from_dlpack(t)`` call
  ``Tensor.__dlpack__`` / ``Tensor.__dlpack_device__``;
* into conv3d: ``conv3d.from_dlpack(obj)`` accepts any object with ``__dlpack__``;
* NumPy also needs no DLPack at all: ``Tensor(np_array)`` wraps the array itself (no copy), and
  ``np.asarray(t)`` (``Tensor.__array__``) or ``t.numpy()`` give the data back without a copy
  when the tensor lives on the CPU.

Autograd does not travel: the imported tensor is a new leaf, and what a peer library computes
from an exported tensor is outside conv3d's graph.
"""
from __future__ import annotations

import numpy as np

from .backend import require_cupy
from .tensor import Tensor

#: DLPack device codes (``DLDeviceType`` in dlpack.h) that conv3d can hold.
DLPACK_CPU = 1
DLPACK_CUDA = 2
DLPACK_CUDA_HOST = 3
DLPACK_CUDA_MANAGED = 13


def from_dlpack(obj, requires_grad: bool = False) -> Tensor:
    """Wrap the memory of another library's array as a ``Tensor``, without copying.

    Args:
        obj: any object with ``__dlpack__`` and ``__dlpack_device__``: a NumPy array, a PyTorch
            tensor (``detach()`` it first when it requires grad), a CuPy array, ...
        requires_grad: make the new tensor a leaf that collects ``.grad``.

    Returns:
        A tensor on ``'cpu'`` (NumPy data) for host memory, or on ``'cuda'`` (CuPy data) for
        GPU memory. It shares memory with ``obj``: writing to one changes the other.

    >>> import numpy as np, conv3d
    >>> a = np.arange(4, dtype=np.float32)
    >>> t = conv3d.from_dlpack(a)
    >>> a[0] = 9.0            # the tensor sees the change: no copy was made
    >>> t.numpy()
    array([9., 1., 2., 3.], dtype=float32)
    """
    if not hasattr(obj, "__dlpack__") or not hasattr(obj, "__dlpack_device__"):
        raise TypeError(f"from_dlpack: obj must support DLPack (have __dlpack__ and "
                        f"__dlpack_device__), got {type(obj).__name__}; for lists or other "
                        f"sequences use conv3d.Tensor(np.asarray(obj)) instead")
    device_type, _ = obj.__dlpack_device__()
    if device_type in (DLPACK_CUDA, DLPACK_CUDA_MANAGED):
        importer = require_cupy().from_dlpack  # GPU memory stays on the GPU, as CuPy data
    elif device_type in (DLPACK_CPU, DLPACK_CUDA_HOST):
        importer = np.from_dlpack
    else:
        raise ValueError(f"from_dlpack: obj lives on DLPack device type {device_type}, but conv3d "
                         f"holds only CPU ({DLPACK_CPU}) and CUDA ({DLPACK_CUDA}) memory; copy "
                         f"it to the CPU first")
    try:
        data = importer(obj)
    except (BufferError, RuntimeError, TypeError) as exc:
        raise ValueError(f"from_dlpack: {type(obj).__name__} refused to export its memory "
                         f"({exc}); for a PyTorch tensor that requires grad pass obj.detach(), "
                         f"for an exotic array pass a NumPy copy") from exc
    return Tensor(data, requires_grad=requires_grad)
