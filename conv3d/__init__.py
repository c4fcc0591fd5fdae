"""conv3d: an educational 3D convolution engine.

Layers, bottom to top (each imports only from the ones below it):

* ``conv3d.core``: Tensor, autograd, devices, shape arithmetic.
* ``conv3d.ops`` (used as ``conv3d.functional``): convolution, pooling, activations, losses;
  ``conv3d.cuda``: the CUDA kernels, on a GPU through CuPy or on the CPU through the emulator.
* ``conv3d.nn``, ``conv3d.optim``: layers, initializers, optimizers.
* ``conv3d.datasets``, ``conv3d.train``: data and the training loop.
* ``conv3d.teach``, ``conv3d.cli``: teaching tools and the ``conv3d`` command.
"""
import os as _os
import sys as _sys

# OpenBLAS's worker threads spin for 2^28 cycles (about 0.1 s) after each BLAS call before they
# sleep. On a machine with few cores a spinning worker takes a core from the compiled loops and
# sample threads that run between conv3d's GEMMs; 2^24 cycles (a few milliseconds) still keeps
# it awake between the GEMMs of one call and between back-to-back calls. OpenBLAS reads the
# setting when NumPy loads it, so it applies only when conv3d is imported before NumPy, and a
# value already set is kept.
if "numpy" not in _sys.modules:
    _os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "24")

from .core import (Function, GradcheckError, Tensor, get_array_module, gradcheck,  # noqa: E402
                   is_grad_enabled, no_grad)
from .core.dlpack import from_dlpack  # noqa: E402
from . import functional  # noqa: E402  (also registers the CPU kernel provider)
from . import cuda  # noqa: E402  (registers the 'cuda' and 'cuda-emu' kernel providers; needs no CuPy)
from .nn.summary import summary  # noqa: E402  (a tool above conv3d.nn; nn never imports it)
from .ops.fast import (get_num_threads, get_workspace_limit, set_num_threads,  # noqa: E402
                       set_workspace_limit, workspace_limit)

__version__ = "0.1.0"

__all__ = ["Tensor", "Function", "no_grad", "is_grad_enabled", "gradcheck", "GradcheckError",
           "get_array_module", "functional", "from_dlpack"]
