"""The fast CPU path for 3D convolution: GEMM, Winograd and direct-loop strategies under a
workspace limit.

``conv3d/ops/cpu_reference.py`` is the version to read first: one im2col, one matmul. This
package is the version to run. It keeps the same mathematics (Winograd: the same result by
fewer multiplications) and adds what speed and memory need, each in its own module:

* ``chooser.py``: the per-shape choice (``'auto'``) and the kernel provider ``provider``;
* ``im2col_gemm.py``: strategy ``'im2col'``, chunked NCDHW im2col/col2im + one GEMM per chunk;
* ``plane_im2col.py``: strategy ``'im2col-planes'``, 2D columns per input plane shared along depth;
* ``channels_last.py``: strategy ``'channels-last'``, 2D columns in NDHWC layout (numba loops);
* ``winograd.py``: strategy ``'winograd'``, Winograd F(2x2x2, 3x3x3) and F(2x2, 3x3) for stride-1
  3x3x3 and (1, 3, 3) layers;
* ``workspace.py``: the workspace limit (default 256 MiB) and the chunk planner;
* ``sample_threads.py``: large calls run on one slice of the batch per thread;
* ``threads.py``: the BLAS thread count;
* ``direct.py``: strategy ``'direct'``, compiled loops over the taps for depthwise layers;
* ``pooling.py``: max and average pooling, compiled loops (max: one axis at a time).

``conv3d.ops`` registers ``provider`` for the ``'cpu'`` device. To run the readable path
instead: ``conv3d.ops.fast.set_strategy('reference')`` or ``with use_strategy('reference'):``.
"""
from .chooser import (STRATEGIES, FastCPUKernels, choose, get_strategy, last_choice, provider,
                      set_strategy, use_strategy)
from .sample_threads import sample_split
from .threads import blas_info, get_num_threads, num_threads, set_num_threads
from .workspace import (DEFAULT_WORKSPACE_LIMIT, WorkspaceLimitError, get_workspace_limit,
                        kept_workspace, peak_workspace, release_workspace, reset_peak_workspace,
                        set_workspace_limit, workspace_limit)

__all__ = ["STRATEGIES", "FastCPUKernels", "provider", "choose", "set_strategy", "get_strategy",
           "use_strategy", "last_choice", "set_num_threads", "get_num_threads", "num_threads",
           "blas_info", "DEFAULT_WORKSPACE_LIMIT", "WorkspaceLimitError", "set_workspace_limit",
           "get_workspace_limit", "workspace_limit", "peak_workspace", "reset_peak_workspace",
           "kept_workspace", "release_workspace", "sample_split"]
