"""Run Python under AddressSanitizer + UndefinedBehaviorSanitizer, with every emulated kernel
built sanitized. Usage (the arguments are the ones you would give ``python``)::

    python -m conv3d.cuda.emulator.asan_check -m pytest tests/test_emulator.py -q
    python -m conv3d.cuda.emulator.asan_check my_script.py

What it sets up for the child process:

* ``LD_PRELOAD`` = g++'s ``libasan.so`` (``g++ -print-file-name=libasan.so``): ASan must be the
  first library loaded, before Python, for a sanitized module to load at all;
* ``CONV3D_EMU_SANITIZE=1``: every ``EmuModule`` is built with
  ``-fsanitize=address,undefined -fno-sanitize-recover=undefined`` (cached separately from the
  normal builds). In those builds the runtime copies every array argument into a ``malloc``'ed
  buffer of exactly its size before the launch and back after it: a NumPy array may be a view
  into a larger buffer, and then a read past its end would not be caught;
* ``ASAN_OPTIONS=detect_leaks=0`` (CPython keeps memory alive until exit on purpose) and
  ``UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1``: any report fails the process;
* ``CONV3D_NVRTC_DISABLE=1``: NVRTC (a large closed-source library, not built with ASan) is kept
  out of this process; NVRTC tests skip there.

What ASan sees: out-of-bounds reads and writes of kernel arguments, of the fiber stacks (locals)
and of the heap, and use-after-free. UBSan adds out-of-bounds indexing of arrays with a known
size (such as ``__shared__ float tile[16][16]``), integer overflow, misaligned pointers, etc.
Not covered: overruns *within* the dynamic shared memory buffer (``extern __shared__``), which
ASan sees as one large thread-local block.
"""
from __future__ import annotations

import os
import subprocess
import sys

from .build import EmuError, compiler


def libasan_path() -> str:
    """Absolute path of the compiler's libasan.so; EmuError when it is not installed."""
    cxx = compiler()
    out = subprocess.run([cxx, "-print-file-name=libasan.so"], capture_output=True,
                         text=True).stdout.strip()
    if not os.path.isabs(out) or not os.path.exists(out):
        raise EmuError(f"{cxx} has no AddressSanitizer runtime (libasan.so); install it, e.g. "
                       f"`apt install libasan8` (it comes with g++ on most distributions)")
    return os.path.realpath(out)


def asan_environment(base=None) -> dict:
    """A copy of ``base`` (default: os.environ) set up as described in the module docstring."""
    env = dict(os.environ if base is None else base)
    preload = [libasan_path()] + [p for p in env.get("LD_PRELOAD", "").split() if p]
    env["LD_PRELOAD"] = " ".join(preload)
    env["ASAN_OPTIONS"] = ":".join(filter(None, ["detect_leaks=0", env.get("ASAN_OPTIONS")]))
    env["UBSAN_OPTIONS"] = ":".join(filter(None, ["print_stacktrace=1:halt_on_error=1",
                                                  env.get("UBSAN_OPTIONS")]))
    env["CONV3D_EMU_SANITIZE"] = "1"
    env["CONV3D_NVRTC_DISABLE"] = "1"
    return env


def run(args, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python *args`` under ASan/UBSan; keyword arguments go to ``subprocess.run``."""
    env = asan_environment(kwargs.pop("env", None))
    return subprocess.run([sys.executable, *args], env=env, **kwargs)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    return run(argv).returncode


if __name__ == "__main__":
    sys.exit(main())
