"""Compile CUDA C to CUBIN with NVRTC, with no GPU and no driver: the compile check.

NVRTC is the compiler CuPy itself uses for ``RawModule``, so whatever it rejects would fail on a
user's GPU too; and it rejects things g++ (and the CPU emulator) accept, such as ``INFINITY``
(there are no host headers on the GPU side). We ask for CUBIN, not only PTX: CUBIN runs ``ptxas``,
the assembler that also checks resources (``too much shared data``, too many registers for
``__launch_bounds__``), for each real architecture::

    from conv3d.cuda.nvrtc import compile_cubin, compile_all
    cubin = compile_cubin(source, "kernels/conv3d_tiled.cu", arch="sm_80")
    cubins = compile_all(source, "kernels/conv3d_tiled.cu")  # {"sm_75": b"...", "sm_80": ...}

The library ``libnvrtc`` is found, in this order, at ``$CONV3D_NVRTC`` (a file path), in the pip
wheel ``nvidia-cuda-nvrtc-cu12`` (``pip install conv3d[nvrtc]``) or ``nvidia-cuda-nvrtc``, in a
CUDA toolkit (``$CUDA_PATH``, ``$CUDA_HOME``, ``/usr/local/cuda``), through the system's library
path, or next to CuPy's CUDA. It is loaded on the first compile, never at import, so processes
that must not load it can import this module safely; ``CONV3D_NVRTC_DISABLE=1`` (set by the
AddressSanitizer run) makes loading it fail as if it were not installed.

NVRTC has no headers of its own: a kernel that includes CUDA's ``<mma.h>``, ``<cuda_fp16.h>`` or
``<cuda_bf16.h>`` (the tensor-core kernel) needs the folder of a CUDA toolkit's headers on its
include path. ``cuda_include_dir`` finds the first folder that has them (``$CUDA_PATH/include``,
``$CUDA_HOME/include``, an ``nvidia/*/include`` folder of NVIDIA's pip wheels,
``/usr/local/cuda/include``, next to CuPy's CUDA), and ``conv3d.cuda.sources.include_options``
passes it.

``nvcc_compile_cubin`` does the same with ``nvcc`` when it is installed (optional: users
usually do not have it).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ARCHS = ("sm_75", "sm_80", "sm_90")  # Turing, Ampere, Hopper

INSTALL_HINT = ("install the NVRTC wheel with `pip install conv3d[nvrtc]` (that is, "
                "`pip install nvidia-cuda-nvrtc-cu12`), install a CUDA toolkit, or set "
                "CONV3D_NVRTC to the path of libnvrtc.so")


class NVRTCError(RuntimeError):
    """NVRTC (or nvcc) rejected the source; the message holds the log (``f.cu(12): error: ...``)."""

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


class NVRTCNotFoundError(RuntimeError):
    """No libnvrtc could be found or loaded."""


class NvccNotFoundError(RuntimeError):
    """``nvcc`` is not installed (it is optional)."""


def _candidates():
    """Possible libnvrtc paths, most preferred first."""
    env = os.environ.get("CONV3D_NVRTC")
    if env:
        yield env
    # pip wheels: nvidia/cuda_nvrtc/lib/libnvrtc.so.12 (CUDA 12), nvidia/cu13/lib/... (CUDA 13)
    for base in sys.path:
        nvidia = Path(base or ".") / "nvidia"
        if nvidia.is_dir():
            for pattern in ("cuda_nvrtc/lib/libnvrtc.so*", "*/lib/libnvrtc.so*"):
                yield from sorted(glob.glob(str(nvidia / pattern)), reverse=True)
    for var in ("CUDA_PATH", "CUDA_HOME"):
        if os.environ.get(var):
            yield from sorted(glob.glob(os.path.join(os.environ[var], "lib*", "libnvrtc.so*")))
    yield from sorted(glob.glob("/usr/local/cuda/lib64/libnvrtc.so*"))
    found = ctypes.util.find_library("nvrtc")
    if found:
        yield found
    yield "libnvrtc.so"


def _cupy_candidates():
    """libnvrtc next to the CUDA that CuPy uses (only tried last: importing CuPy is slow)."""
    try:
        import cupy  # noqa: PLC0415 - optional dependency
        path = cupy.cuda.get_cuda_path()
    except Exception:
        return []
    return sorted(glob.glob(os.path.join(path or "", "lib*", "libnvrtc.so*"))) if path else []


# The headers a tensor-core kernel includes; a folder that has them is a CUDA include folder.
CUDA_HEADERS = ("mma.h", "cuda_fp16.h", "cuda_bf16.h")


def _include_candidates():
    for var in ("CUDA_PATH", "CUDA_HOME"):
        if os.environ.get(var):
            yield os.path.join(os.environ[var], "include")
    for base in sys.path:  # pip wheels: nvidia/cuda_runtime/include (12), nvidia/cu13/include
        nvidia = Path(base or ".") / "nvidia"
        if nvidia.is_dir():
            yield from sorted(glob.glob(str(nvidia / "*" / "include")), reverse=True)
    yield "/usr/local/cuda/include"
    try:
        import cupy  # noqa: PLC0415 - optional dependency
        path = cupy.cuda.get_cuda_path()
    except Exception:
        path = None
    if path:
        yield os.path.join(path, "include")


def cuda_include_dir():
    """The first folder that holds CUDA's ``mma.h``, ``cuda_fp16.h`` and ``cuda_bf16.h`` (see
    the module docstring for the order searched), or None. Never raises."""
    for folder in _include_candidates():
        if all(os.path.isfile(os.path.join(folder, h)) for h in CUDA_HEADERS):
            return folder
    return None


_LIB = None
_LIB_PATH = None
_LOCK = threading.Lock()


def load_nvrtc():
    """Load libnvrtc (once per process) or raise NVRTCNotFoundError saying what to install."""
    global _LIB, _LIB_PATH
    with _LOCK:
        if _LIB is not None:
            return _LIB
        if os.environ.get("CONV3D_NVRTC_DISABLE", "") not in ("", "0"):
            raise NVRTCNotFoundError("NVRTC is disabled in this process (CONV3D_NVRTC_DISABLE is "
                                     "set, as in the AddressSanitizer run, which must not load it)")
        tried = []
        for path in [*_candidates(), *_cupy_candidates()]:
            if "builtins" in os.path.basename(path) or ".alt." in os.path.basename(path):
                continue
            try:
                lib = ctypes.CDLL(path)
                lib.nvrtcVersion  # noqa: B018 - is it really NVRTC?
            except (OSError, AttributeError) as exc:
                tried.append(f"{path} ({exc})")
                continue
            _setup(lib)
            _LIB, _LIB_PATH = lib, path
            return lib
        raise NVRTCNotFoundError(
            "NVRTC (the CUDA runtime compiler, libnvrtc) was not found, so the CUDA kernels "
            f"cannot be compiled to CUBIN. To fix it, {INSTALL_HINT}. Tried: "
            + "; ".join(tried[:6]))


def _setup(lib):
    c = ctypes
    lib.nvrtcGetErrorString.restype = c.c_char_p
    lib.nvrtcGetErrorString.argtypes = [c.c_int]
    lib.nvrtcVersion.argtypes = [c.POINTER(c.c_int), c.POINTER(c.c_int)]
    lib.nvrtcCreateProgram.argtypes = [c.POINTER(c.c_void_p), c.c_char_p, c.c_char_p, c.c_int,
                                       c.c_void_p, c.c_void_p]
    lib.nvrtcCompileProgram.argtypes = [c.c_void_p, c.c_int, c.POINTER(c.c_char_p)]
    lib.nvrtcDestroyProgram.argtypes = [c.POINTER(c.c_void_p)]
    for what in ("ProgramLog", "CUBIN", "PTX"):
        getattr(lib, f"nvrtcGet{what}Size").argtypes = [c.c_void_p, c.POINTER(c.c_size_t)]
        getattr(lib, f"nvrtcGet{what}").argtypes = [c.c_void_p, c.c_char_p]


def nvrtc_path() -> str:
    """Path of the libnvrtc in use (loads it)."""
    load_nvrtc()
    return _LIB_PATH


def nvrtc_version() -> tuple:
    """(major, minor) of the loaded NVRTC."""
    lib = load_nvrtc()
    major, minor = ctypes.c_int(), ctypes.c_int()
    _check(lib, lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
    return major.value, minor.value


def nvrtc_available() -> bool:
    """True when libnvrtc can be loaded. Never raises."""
    try:
        load_nvrtc()
        return True
    except NVRTCNotFoundError:
        return False


def _check(lib, result: int, what: str):
    if result != 0:
        raise RuntimeError(f"{what} failed: {lib.nvrtcGetErrorString(result).decode()}")


def _arch_number(arch: str) -> str:
    if not isinstance(arch, str) or not arch.startswith(("sm_", "compute_")) \
            or not arch.split("_", 1)[1].rstrip("a").isdigit():
        raise ValueError(f"arch must look like 'sm_80' (CUBIN) or 'compute_80' (PTX), got {arch!r}")
    return arch.split("_", 1)[1]


def _options(name: str, options) -> list:
    if isinstance(options, str):
        raise TypeError(f"options must be a tuple of strings, got the string {options!r}")
    return [str(o) for o in options]  # #include "x.cuh" needs -I<directory>, as with CuPy


def _compile(source: str, name: str, arch: str, options, output: str) -> bytes:
    return _compile_with_log(source, name, arch, options, output)[0]


def _compile_with_log(source: str, name: str, arch: str, options, output: str):
    """``(output bytes, NVRTC's log)``; the log of a successful compile holds ptxas' messages."""
    if not isinstance(source, str):
        raise TypeError(f"source must be the CUDA source as a str, got {type(source).__name__}")
    _arch_number(arch)
    lib = load_nvrtc()
    prog = ctypes.c_void_p()
    _check(lib, lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0,
                                       None, None), "nvrtcCreateProgram")
    try:
        opts = [f"-arch={arch}", *_options(name, options)]
        argv = (ctypes.c_char_p * len(opts))(*[o.encode() for o in opts])
        result = lib.nvrtcCompileProgram(prog, len(opts), argv)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        buf = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, buf)
        log = buf.value.decode(errors="replace").strip()
        if result != 0:
            reason = lib.nvrtcGetErrorString(result).decode()
            if any(f'could not open source file "{h}"' in log for h in CUDA_HEADERS):
                log += ("\n(NVRTC has no headers of its own: CUDA's mma.h, cuda_fp16.h and "
                        "cuda_bf16.h come from a CUDA toolkit. Install one, or set CUDA_PATH "
                        "to it; "
                        "conv3d.cuda.sources.include_options() then adds its include folder.)")
            raise NVRTCError(f"NVRTC could not compile {name} for {arch} ({reason}):\n{log}", log)
        getattr(lib, f"nvrtcGet{output}Size")(prog, ctypes.byref(size))
        out = ctypes.create_string_buffer(size.value)
        _check(lib, getattr(lib, f"nvrtcGet{output}")(prog, out), f"nvrtcGet{output}")
        return out.raw, log
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def compile_cubin(source: str, name: str, arch: str = "sm_80", options=()) -> bytes:
    """Compile ``source`` to a CUBIN for the real architecture ``arch`` (``'sm_75'``, ...).

    ``name`` is the file name NVRTC puts in its messages (``kernels/foo.cu(12): error: ...``).
    Raises NVRTCError with NVRTC's log on a compile error, including ptxas' resource checks.
    """
    if not arch.startswith("sm_"):
        raise ValueError(f"a CUBIN needs a real architecture such as 'sm_80', got {arch!r}")
    return _compile(source, name, arch, options, "CUBIN")


def compile_cubin_verbose(source: str, name: str, arch: str = "sm_80", options=()):
    """``(cubin, log)``: ``compile_cubin`` with ptxas' resource report (``--ptxas-options=-v``:
    registers, spill stores and loads, shared memory per entry point) in the log; see
    ``conv3d.cuda.resources.parse_ptxas``."""
    if not arch.startswith("sm_"):
        raise ValueError(f"a CUBIN needs a real architecture such as 'sm_80', got {arch!r}")
    return _compile_with_log(source, name, arch, (*_options(name, options),
                                                  "--ptxas-options=-v"), "CUBIN")


def compile_ptx(source: str, name: str, arch: str = "compute_80", options=()) -> str:
    """Compile ``source`` to PTX only (no ptxas, so no resource checks); returns the PTX text."""
    return _compile(source, name, arch, options, "PTX").rstrip(b"\0").decode()


def compile_all(source: str, name: str, archs=ARCHS, options=()) -> dict:
    """CUBINs for every architecture in ``archs``: ``{"sm_75": bytes, ...}``."""
    return {arch: compile_cubin(source, name, arch, options) for arch in archs}


def cubin_arch(cubin: bytes) -> str:
    """The architecture a CUBIN was built for, read from its ELF header (e.g. ``'sm_80'``)."""
    if len(cubin) < 64 or cubin[:4] != b"\x7fELF" or int.from_bytes(cubin[18:20], "little") != 190:
        raise ValueError("not a CUBIN (an ELF file with e_machine EM_CUDA = 190)")
    flags = int.from_bytes(cubin[48:52], "little")
    # CUDA ELF ABI version 7 keeps the SM number in the low byte of e_flags; version 8 (CUDA 13)
    # in the second byte.
    sm = flags & 0xFF if cubin[8] < 8 else (flags >> 8) & 0xFF
    return f"sm_{sm}"


def nvcc_path():
    """Path of nvcc (``$CUDA_PATH/bin``, ``/usr/local/cuda/bin`` or the PATH), or None."""
    for var in ("CUDA_PATH", "CUDA_HOME"):
        if os.environ.get(var) and os.access(os.path.join(os.environ[var], "bin", "nvcc"), os.X_OK):
            return os.path.join(os.environ[var], "bin", "nvcc")
    return shutil.which("nvcc") or next(
        (p for p in ("/usr/local/cuda/bin/nvcc",) if os.access(p, os.X_OK)), None)


def nvcc_compile_cubin(source: str, name: str, arch: str = "sm_80", options=()) -> bytes:
    """Compile to CUBIN with nvcc; raises NvccNotFoundError when nvcc is not installed."""
    return nvcc_compile_cubin_verbose(source, name, arch, options, verbose=False)[0]


def nvcc_compile_cubin_verbose(source: str, name: str, arch: str = "sm_80", options=(),
                               verbose: bool = True):
    """``(cubin, log)`` from nvcc, with ptxas' resource report (``-Xptxas -v``) in the log."""
    nvcc = nvcc_path()
    if nvcc is None:
        raise NvccNotFoundError("nvcc is not installed (it is optional: NVRTC does the same "
                                "check, see compile_cubin)")
    _arch_number(arch)
    with tempfile.TemporaryDirectory(prefix="conv3d-nvcc-") as tmp:
        src = Path(tmp) / (Path(name).name or "kernel.cu")
        src.write_text(source)
        out = Path(tmp) / "out.cubin"
        cmd = [nvcc, "-cubin", f"-arch={arch}", *_options(name, options),
               *(["-Xptxas", "-v"] if verbose else []), "-o", str(out), str(src)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        log = (proc.stdout + proc.stderr).replace(str(src), name).strip()
        if proc.returncode != 0:
            raise NVRTCError(f"nvcc could not compile {name} for {arch}:\n{log}", log)
        return out.read_bytes(), log
