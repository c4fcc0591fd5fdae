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

What the emulator does not model: warps (warp intrinsics are refused), the memory model of
concurrent blocks (blocks run one after another, so a kernel that relies on inter-block
communication or spin-waits on another block hangs or misbehaves differently), ``__constant__``
memory written from the host (no ``get_global``), textures, streams and timing.
"""
from .build import EmuCompileError, EmuError, cache_dir
from .module import BarrierError, EmuKernel, EmuLaunchError, EmuModule, check_launch_config

__all__ = ["EmuModule", "EmuKernel", "EmuError", "EmuCompileError", "EmuLaunchError",
           "BarrierError", "check_launch_config", "cache_dir"]
