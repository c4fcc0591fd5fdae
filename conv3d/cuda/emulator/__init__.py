"""Run the CUDA kernels of ``kernels/*.cu`` on the CPU, unmodified.

``EmuModule`` mirrors ``cupy.RawModule`` and its kernels mirror ``cupy.RawKernel``, so one code
path launches a kernel on a GPU (CuPy) or on the CPU (this emulator)::

    from conv3d.cuda.emulator import EmuModule
    mod = EmuModule(code=source, options=("-DFOO=1",), name="kernels/conv3d_direct.cu")
    kern = mod.get_function("conv3d_direct_f32")
    kern(grid, block, (x, w, y, np.int32(N)), shared_mem=0)

How it works (details in the files):

* ``cuda_emu.h`` maps the CUDA built-ins onto the CPU so that g++ compiles the unmodified source;
* ``runtime.cpp`` runs a grid: blocks one after another, a block's threads as fibers that switch
  at ``__syncthreads()``; it poisons shared memory, alternates the thread order between barrier
  rounds, and reports divergent barriers and early returns before a barrier;
* ``build.py`` compiles and caches (``$CONV3D_CACHE_DIR/emu``, default ``~/.cache/conv3d/emu``);
* ``module.py`` checks launch configurations and arguments against each kernel's signature;
* ``asan_check.py`` runs code under AddressSanitizer/UBSan in a subprocess.

Settings (environment variables): ``CONV3D_CACHE_DIR`` (build cache root), ``CXX`` (compiler,
default ``g++``), ``CONV3D_EMU_STACK_KIB`` (stack per thread), ``CONV3D_EMU_SANITIZE=1``
(sanitized builds; needs ASan preloaded, see ``asan_check``). The option ``-DEMU_USE_UCONTEXT``
selects the portable ucontext switch instead of the x86-64 assembly one.

Warp-collective WMMA (``#include <mma.h>``, ``nvcuda::wmma``): the shim ``include/mma.h`` (with
``include/cuda_fp16.h`` and ``include/cuda_bf16.h`` for ``__half`` and ``__nv_bfloat16``; only the
emulator's g++ has that folder on its include path, NVRTC uses CUDA's headers) makes each
fragment operation (``load_matrix_sync``, ``store_matrix_sync``, ``mma_sync``,
``fill_fragment``) a warp collective: every lane of a warp (32 consecutive threads of the block)
parks, then the operation runs once for the warp; lanes that diverge at a collective, an
incomplete warp, lanes that pass different pointers, and tf32 operands not converted with
``__float_to_tf32`` are reported. Inputs round like the hardware (tf32: round to nearest, ties
away from zero; bf16 and fp16: ties to even); each ``mma_sync`` sums its exact products in double
and rounds once to the accumulator type.

What the emulator does not model: the other warp intrinsics (``__shfl_*_sync``, ``__ballot_sync``,
``warpSize``, ... are refused at compile time); the real WMMA fragment layout (CUDA leaves it
opaque; the shim's documented layout is one legal choice, so a kernel that depends on the
hardware's layout is wrong on both); the tensor core's internal accumulation order and width
(results may differ from a GPU in the last bits of float32); the memory model of concurrent
blocks (blocks run one after another, so a kernel that relies on inter-block communication or
spin-waits on another block hangs or misbehaves differently); ``__constant__`` memory written from
the host (no ``get_global``), textures, streams, timing, occupancy, register pressure and spills,
shared-memory bank conflicts and memory coalescing: a kernel that is correct here can still be slow
on a GPU.
"""
from .build import EmuCompileError, EmuError, cache_dir
from .module import BarrierError, EmuKernel, EmuLaunchError, EmuModule, check_launch_config

__all__ = ["EmuModule", "EmuKernel", "EmuError", "EmuCompileError", "EmuLaunchError",
           "BarrierError", "check_launch_config", "cache_dir"]
