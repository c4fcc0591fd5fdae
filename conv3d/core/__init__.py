"""The bottom layer: tensors, the autograd graph, devices and shape arithmetic.

Nothing in ``conv3d.core`` imports from the layers above it (ops, nn, cuda, teach, cli).
"""
from .arith import setup_tensor
from .backend import get_array_module, kernels_for, register_kernels
from .gradcheck import GradcheckError, gradcheck
from .tensor import Function, Tensor, as_tensor, is_grad_enabled, no_grad

setup_tensor()  # Tensor's operators are arith's Functions (DeZero's setup_variable)

__all__ = ["Tensor", "Function", "as_tensor", "no_grad", "is_grad_enabled", "gradcheck",
           "GradcheckError", "get_array_module", "kernels_for", "register_kernels"]
