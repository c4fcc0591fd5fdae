"""The ops layer: differentiable operations on tensors, exposed to users as ``conv3d.functional``.

Each op is a ``Function`` subclass (forward and backward side by side) plus a lower-case wrapper
that validates its arguments. Convolution and pooling reach their arrays through the kernel
provider of the tensor's device (``conv3d.core.backend.kernels_for``), so one Function serves the
CPU, a CUDA GPU and the CUDA emulator. The CPU provider, NumPy im2col + BLAS, is registered here.
"""
from ..core.backend import register_kernels
from . import cpu_reference, fast  # noqa: F401  (cpu_reference: the readable path)

register_kernels("cpu", fast.provider)  # fast.set_strategy("reference") selects the readable path
