"""conv3d: an educational 3D convolution engine.

Layers, bottom to top (each imports only from the ones below it):

* ``conv3d.core``: Tensor, autograd, devices, shape arithmetic.
* ``conv3d.ops`` (used as ``conv3d.functional``): convolution, pooling, activations, losses;
  ``conv3d.cuda``: the CUDA kernels, on a GPU through CuPy or on the CPU through the emulator.
* ``conv3d.nn``, ``conv3d.optim``: layers, initializers, optimizers.
* ``conv3d.datasets``, ``conv3d.train``: data and the training loop.
* ``conv3d.teach``, ``conv3d.cli``: teaching tools and the ``conv3d`` command.
"""
from .core import (Function, GradcheckError, Tensor, get_array_module, gradcheck, is_grad_enabled,
                   no_grad)
from .core.dlpack import from_dlpack
from . import functional  # noqa: E402  (also registers the CPU kernel provider)
from . import cuda  # noqa: E402  (registers the 'cuda' and 'cuda-emu' kernel providers; needs no CuPy)
from .nn.summary import summary  # noqa: E402  (a tool above conv3d.nn; nn never imports it)
from .ops.fast import (get_num_threads, get_workspace_limit, set_num_threads,  # noqa: E402
                       set_workspace_limit, workspace_limit)

__version__ = "0.1.0"

__all__ = ["Tensor", "Function", "no_grad", "is_grad_enabled", "gradcheck", "GradcheckError",
           "get_array_module", "functional", "from_dlpack"]
