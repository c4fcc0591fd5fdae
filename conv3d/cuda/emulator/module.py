"""``EmuModule`` and ``EmuKernel``: the CuPy ``RawModule``/``RawKernel`` API, run on the CPU.

::

    mod = EmuModule(code=source, options=("-DTILE=8",), name="kernels/conv3d_direct.cu")
    kern = mod.get_function("conv3d_direct_f32")
    kern(grid, block, (x, w, y, np.int32(N), ...), shared_mem=0)

Before a launch, every argument is checked against the kernel's C signature, which the compiler
itself reports (kernel_table.h): a ``const float*`` needs a C-contiguous float32 NumPy array, an
``int`` needs exactly ``np.int32``. On a GPU, CuPy does not check: it passes a Python int as 8
bytes of int64 and a Python float as 8 bytes of float64, and the kernel reads whatever bytes its
parameter type says. The emulator refuses those calls instead, so the bug shows up here first.
"""
from __future__ import annotations

import ctypes
import numbers
import os
import threading

import numpy as np

from .build import MAX_DYNAMIC_SHARED, EmuError, build, gxx_options

DEFAULT_STACK_SIZE = 64 * 1024           # bytes per fiber (one fiber per thread of a block)
DEFAULT_SANITIZE_STACK_SIZE = 256 * 1024  # ASan's redzones make frames larger
DEFAULT_MAX_DYNAMIC_SHARED = 48 * 1024    # dynamic shared memory per block without opting in

_C_NAMES = {"float32": "float", "float64": "double", "int8": "char", "uint8": "unsigned char",
            "int16": "short", "uint16": "unsigned short", "int32": "int",
            "uint32": "unsigned int", "int64": "long long", "uint64": "unsigned long long",
            "bool": "bool"}
_NP_NAMES = {"float32": "np.float32", "float64": "np.float64", "int32": "np.int32",
             "int64": "np.int64", "uint32": "np.uint32", "uint64": "np.uint64",
             "int8": "np.int8", "uint8": "np.uint8", "int16": "np.int16", "uint16": "np.uint16",
             "bool": "np.bool_"}


class EmuLaunchError(EmuError):
    """A launch failed inside the kernel (e.g. ``__trap()``) or could not start."""


class BarrierError(EmuLaunchError):
    """A divergent ``__syncthreads()``, an early return before one, or lanes of a warp that
    diverge at a warp collective (WMMA): a hang or garbage on a GPU."""


class Param:
    """One kernel parameter: its name in the source and the type the compiler reported."""

    def __init__(self, name: str, code: str):
        self.name = name
        self.code = code                        # "const float32*", "void*", "int32", "?Foo"
        self.supported = not code.startswith("?")
        self.pointer = code.endswith("*")
        self.const = code.startswith("const ")
        self.dtype = code.removeprefix("const ").rstrip("*") if self.supported else None

    @property
    def ctype(self) -> str:
        """The C spelling, e.g. ``const float*``."""
        if not self.supported:
            return self.code[1:]
        base = "void" if self.dtype == "void" else _C_NAMES[self.dtype]
        return ("const " if self.const else "") + base + ("*" if self.pointer else "")

    def __repr__(self):
        return f"{self.ctype} {self.name}".strip()


def _default_sanitize() -> bool:
    return os.environ.get("CONV3D_EMU_SANITIZE", "").strip().lower() in ("1", "true", "yes", "on")


def _asan_loaded() -> bool:
    try:
        ctypes.CDLL(None).__asan_init  # noqa: B018 - a symbol lookup
        return True
    except AttributeError:
        return False


class _Library:
    """A loaded shared library with its kernel table; one per build, shared within a process."""

    def __init__(self, path, info):
        self.path = path
        self.lib = lib = ctypes.CDLL(str(path))
        lib.emu_kernel_name.restype = ctypes.c_char_p
        lib.emu_kernel_signature.restype = ctypes.c_char_p
        lib.emu_runtime_info.restype = ctypes.c_char_p
        lib.emu_launch.restype = ctypes.c_int
        lib.emu_launch.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                   ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t,
                                   ctypes.c_char_p, ctypes.c_size_t]
        self.runtime = lib.emu_runtime_info().decode()
        static, dynamic = ctypes.c_size_t(), ctypes.c_size_t()
        lib.emu_shared_sizes(ctypes.byref(static), ctypes.byref(dynamic))
        self.static_shared_bytes = static.value
        self.dynamic_shared_capacity = dynamic.value
        self.kernels = {}
        for i in range(lib.emu_kernel_count()):
            name = lib.emu_kernel_name(i).decode()
            codes = lib.emu_kernel_signature(i).decode()
            codes = codes.split(",") if codes else []
            names = info.kernels.get(name, [])
            names = names if len(names) == len(codes) else [""] * len(codes)
            self.kernels[name] = (i, tuple(Param(n, c) for n, c in zip(names, codes)))
        self.templates = list(info.templates)


_LIBRARIES: dict = {}
_LIBRARIES_LOCK = threading.Lock()


class EmuModule:
    """A CUDA source compiled for the CPU; the emulator's ``cupy.RawModule``.

    Parameters
    ----------
    code : str
        The CUDA C source, unmodified (e.g. the text of ``kernels/conv3d_direct.cu``).
    options : tuple of str
        ``-DNAME=VALUE``, ``-UNAME``, ``-IDIR``; GPU-only NVRTC options (``-arch=...``,
        ``--use_fast_math``, ...) are accepted and ignored, so CuPy's options tuple works as is.
    name : str
        The file name g++ reports in its messages (``kernels/foo.cu:12:5: error: ...``). It is
        only a label: as with CuPy, ``#include "x.cuh"`` needs ``-I<directory>`` in options.
    sanitize : bool, optional
        Build with ``-fsanitize=address,undefined``. The process must have ASan loaded first
        (``LD_PRELOAD=$(g++ -print-file-name=libasan.so)``; see ``asan_check.py``). Defaults to
        the environment variable ``CONV3D_EMU_SANITIZE``.
    stack_size : int, optional
        Bytes of stack per thread (fiber): 64 KiB, or 256 KiB when sanitized. Overridable with
        the environment variable ``CONV3D_EMU_STACK_KIB``.
    """

    def __init__(self, code: str, options=(), name: str = "kernel.cu", *, sanitize=None,
                 stack_size=None):
        if not isinstance(code, str):
            raise TypeError(f"code must be the CUDA source as a str, got {type(code).__name__}")
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty file name str, got {name!r}")
        self.name = name
        self.sanitize = _default_sanitize() if sanitize is None else bool(sanitize)
        self.options = tuple(gxx_options(tuple(options)))
        if stack_size is None:
            kib = os.environ.get("CONV3D_EMU_STACK_KIB")
            stack_size = int(kib) * 1024 if kib else (
                DEFAULT_SANITIZE_STACK_SIZE if self.sanitize else DEFAULT_STACK_SIZE)
        if not isinstance(stack_size, numbers.Integral) or stack_size < 16 * 1024:
            raise ValueError(f"stack_size must be an int of at least 16384 bytes, got "
                             f"{stack_size!r}")
        self.stack_size = int(stack_size)
        if self.sanitize and not _asan_loaded():
            raise EmuError("sanitize=True needs AddressSanitizer loaded before Python starts: run "
                           "with LD_PRELOAD=$(g++ -print-file-name=libasan.so), e.g. through "
                           "`python -m conv3d.cuda.emulator.asan_check`")
        path, info = build(code, name, list(self.options), self.sanitize)
        with _LIBRARIES_LOCK:
            if str(path) not in _LIBRARIES:
                _LIBRARIES[str(path)] = _Library(path, info)
            self._lib = _LIBRARIES[str(path)]
        self._functions = {}

    @property
    def kernels(self) -> tuple:
        """Names of the kernels (``__global__`` functions) in the source."""
        return tuple(self._lib.kernels)

    @property
    def static_shared_bytes(self) -> int:
        """Bytes of static ``__shared__`` memory of ALL kernels in the source together (the
        emulator cannot tell them apart; on a GPU each kernel has only its own)."""
        return self._lib.static_shared_bytes

    @property
    def runtime(self) -> str:
        """How threads switch in this build: ``'x86-64 asm'`` or ``'ucontext'`` (+``'+asan'``)."""
        return self._lib.runtime

    def get_function(self, name: str) -> "EmuKernel":
        """The kernel called ``name`` (like ``cupy.RawModule.get_function``)."""
        if name not in self._functions:
            if name not in self._lib.kernels:
                hint = ""
                if name in self._lib.templates:
                    hint = (" It is a __global__ template; the emulator calls kernels by plain "
                            "name, so wrap it in an extern \"C\" __global__ function.")
                raise KeyError(f"no kernel named {name!r} in {self.name}; it defines "
                               f"{', '.join(self._lib.kernels) or 'no kernels'}.{hint}")
            self._functions[name] = EmuKernel(self, name)
        return self._functions[name]

    def __repr__(self):
        return f"EmuModule({self.name!r}, kernels={list(self.kernels)}, runtime={self.runtime!r})"


def _dims(value, what: str) -> tuple:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if (not isinstance(value, (tuple, list)) or not 1 <= len(value) <= 3
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)):
        raise TypeError(f"{what} must be an int or a tuple of 1 to 3 ints, got {value!r}")
    dims = tuple(int(v) for v in value) + (1,) * (3 - len(value))
    if min(dims) < 1:
        raise ValueError(f"{what} must be positive in every dimension, got {tuple(value)}")
    return dims


def check_launch_config(grid, block) -> tuple:
    """Normalize grid and block to int triples and apply CUDA's limits."""
    grid, block = _dims(grid, "grid"), _dims(block, "block")
    if block[0] > 1024 or block[1] > 1024 or block[2] > 64:
        raise ValueError(f"block {block} exceeds CUDA's per-dimension limits (1024, 1024, 64)")
    if block[0] * block[1] * block[2] > 1024:
        raise ValueError(f"block {block} has {block[0] * block[1] * block[2]} threads; CUDA "
                         f"allows at most 1024 threads per block")
    if grid[0] > 2**31 - 1 or grid[1] > 65535 or grid[2] > 65535:
        raise ValueError(f"grid {grid} exceeds CUDA's limits (2**31 - 1, 65535, 65535)")
    return grid, block


class EmuKernel:
    """One kernel of an EmuModule; call it like a ``cupy.RawKernel``."""

    def __init__(self, module: EmuModule, name: str):
        self.module = module
        self.name = name
        self._index, self.params = module._lib.kernels[name]
        self._max_dynamic = DEFAULT_MAX_DYNAMIC_SHARED

    @property
    def max_dynamic_shared_size_bytes(self) -> int:
        """Largest ``shared_mem`` a launch may ask for; settable, like ``cupy.RawKernel``'s.

        A GPU allows 48 KiB of dynamic shared memory per block unless the kernel opts in to more
        (up to 227 KiB on sm_90, minus its static shared memory); launches above the limit fail
        there, so they fail here. (The static part is checked by ptxas: see conv3d.cuda.nvrtc.)
        """
        return self._max_dynamic

    @max_dynamic_shared_size_bytes.setter
    def max_dynamic_shared_size_bytes(self, value):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or \
                not 0 <= value <= MAX_DYNAMIC_SHARED:
            raise ValueError(f"max_dynamic_shared_size_bytes must be an int in [0, "
                             f"{MAX_DYNAMIC_SHARED}] (227 KiB, the most any GPU allows), got "
                             f"{value!r}")
        self._max_dynamic = int(value)

    def __repr__(self):
        return f"<EmuKernel {self.name}({', '.join(map(repr, self.params))})>"

    def _where(self, i: int, p: Param) -> str:
        label = f" '{p.name}'" if p.name else ""
        return f"kernel '{self.name}' argument {i}{label} (`{p.ctype}`)"

    def _pack(self, args) -> tuple:
        """Check every argument against the signature; fill the 8-byte slots the runtime reads."""
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"args must be a tuple of arguments (like CuPy's), got "
                            f"{type(args).__name__}")
        if len(args) != len(self.params):
            raise TypeError(f"kernel '{self.name}' takes {len(self.params)} arguments "
                            f"({', '.join(map(repr, self.params))}), got {len(args)}")
        slots = np.zeros(max(len(args), 1), dtype=np.uint64)
        raw = slots.view(np.uint8)
        nbytes = np.full(max(len(args), 1), -1, dtype=np.int64)
        for i, (a, p) in enumerate(zip(args, self.params)):
            if not p.supported:
                raise TypeError(f"{self._where(i, p)}: the emulator cannot pass this type; "
                                f"kernel parameters must be pointers or arithmetic scalars")
            if p.pointer:
                self._check_array(i, a, p)
                slots[i] = a.__array_interface__["data"][0]
                nbytes[i] = a.nbytes
            else:
                value = self._check_scalar(i, a, p)
                raw[8 * i:8 * i + value.itemsize] = np.frombuffer(value.tobytes(), np.uint8)
        return slots, nbytes

    def _check_array(self, i, a, p):
        if (isinstance(a, np.ndarray) and (p.dtype == "void" or a.dtype == p.dtype)
                and a.flags.c_contiguous and (p.const or a.flags.writeable)):
            return  # the common case, checked without building messages
        where = self._where(i, p)
        if not isinstance(a, np.ndarray):
            if type(a).__module__.startswith("cupy"):
                raise TypeError(f"{where} got a CuPy array; the emulator runs on the CPU, so "
                                f"pass a NumPy array (a.get())")
            raise TypeError(f"{where} needs a NumPy array, got {type(a).__name__}")
        if p.dtype != "void" and a.dtype != np.dtype(p.dtype):
            raise TypeError(f"{where} needs a {p.dtype} array, got a {a.dtype} array of shape "
                            f"{a.shape}; convert it with a.astype(np.{p.dtype})")
        if not a.flags.c_contiguous:
            raise ValueError(f"{where} needs a C-contiguous array (a kernel indexes it as flat "
                             f"memory), got shape {a.shape} with strides {a.strides}; pass "
                             f"np.ascontiguousarray(a)")
        if not p.const and not a.flags.writeable:
            raise ValueError(f"{where} is written by the kernel, but the array is read-only")

    def _check_scalar(self, i, a, p):
        want = np.dtype(p.dtype)
        if isinstance(a, np.generic) and a.dtype == want:
            return a
        where = self._where(i, p)
        fix = f"pass {_NP_NAMES[p.dtype]}({a!r})" if isinstance(a, (int, float, np.generic)) \
            else f"pass a {_NP_NAMES[p.dtype]}"
        if isinstance(a, (bool, int, float)):
            raise TypeError(
                f"{where} got a Python {type(a).__name__} ({a!r}). CuPy sends a Python int as "
                f"the 8 raw bytes of an int64 and a Python float as the 8 raw bytes of a "
                f"float64, whatever the kernel's parameter type: a float parameter then reads "
                f"half a double and a 64-bit one reads past a 32-bit value, a real bug on the "
                f"GPU. {fix[0].upper() + fix[1:]}.")
        if isinstance(a, np.generic):
            raise TypeError(f"{where} needs a {_NP_NAMES[p.dtype]}, got {type(a).__name__}({a!r})"
                            f" ({a.dtype.itemsize} bytes, not {want.itemsize}); {fix}")
        if isinstance(a, np.ndarray):
            raise TypeError(f"{where} is a scalar, got an array of shape {a.shape}; {fix}")
        raise TypeError(f"{where} needs a {_NP_NAMES[p.dtype]}, got {type(a).__name__}")

    def __call__(self, grid, block, args, shared_mem=0, stream=None):
        """Launch over ``grid`` x ``block`` (ints or 1-3 tuples) like ``cupy.RawKernel``."""
        del stream  # accepted for CuPy compatibility; the emulator runs synchronously
        grid, block = check_launch_config(grid, block)
        if not isinstance(shared_mem, numbers.Integral) or isinstance(shared_mem, bool) \
                or shared_mem < 0:
            raise TypeError(f"shared_mem must be a non-negative int (bytes), got {shared_mem!r}")
        if shared_mem > self.max_dynamic_shared_size_bytes:
            raise ValueError(
                f"kernel '{self.name}': shared_mem={shared_mem} bytes of dynamic shared memory "
                f"exceeds max_dynamic_shared_size_bytes={self.max_dynamic_shared_size_bytes} "
                f"(48 KiB by default, as on a GPU without opting in); raise "
                f"kernel.max_dynamic_shared_size_bytes, as with cupy.RawKernel, if you need more")
        lib = self.module._lib
        slots, nbytes = self._pack(args)
        g = (ctypes.c_uint * 3)(*grid)
        b = (ctypes.c_uint * 3)(*block)
        err = ctypes.create_string_buffer(4096)
        code = lib.lib.emu_launch(self._index, g, b, int(shared_mem), slots.ctypes.data,
                                  nbytes.ctypes.data, len(self.params), self.module.stack_size,
                                  err, len(err))
        # 1: early return before a barrier, 2: divergent barrier, 3: trap, 4: no memory,
        # 5: divergent lanes at a warp collective, 6: a warp collective misused
        if code:
            error = BarrierError if code in (1, 2, 5) else EmuLaunchError
            raise error(err.value.decode(errors="replace"))

    @property
    def attributes(self) -> dict:
        """Some of ``cupy.RawKernel.attributes``: what the emulator knows."""
        return {"max_threads_per_block": 1024,
                "max_dynamic_shared_size_bytes": self.max_dynamic_shared_size_bytes}
