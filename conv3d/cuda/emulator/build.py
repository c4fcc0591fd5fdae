"""Compile a CUDA source file for the CPU with g++, and cache the result.

Three steps, the first two only when the cache has no build for this source:

1. **Scan.** Preprocess the source with ``-DEMU_SCAN`` (cuda_emu.h then turns ``__global__`` and
   ``__shared__`` into the markers ``__emu_global__`` and ``__emu_shared__``), so kernels that
   macros define (``DEFINE_KERNEL(float, f32)``) are found too. Collect the kernel names, their
   parameter names (for messages) and the ``extern __shared__`` arrays.
2. **Compile.** One translation unit: ``#include "kernel_table.h"``, then the UNMODIFIED source
   under ``#line 1 "<its name>"`` (so g++ reports ``kernels/foo.cu:12:5: error: ...``), then a few
   generated lines (the *glue*): the dynamic shared memory buffer that every ``extern __shared__``
   name aliases, and the table of kernels (kernel_table.h). g++ builds it together with
   runtime.cpp into a shared library, ``-include cuda_emu.h`` supplying the CUDA built-ins.
3. **Cache.** The library is stored under ``$CONV3D_CACHE_DIR/emu`` (default
   ``~/.cache/conv3d/emu``), named by a SHA-256 of everything that affects it: the source, the
   options, the emulator's own files, the compiler's version and flags, the sanitize switch, and
   the contents of the headers the source includes. A process also keeps what it loaded in memory.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

EMU_DIR = Path(__file__).resolve().parent
HEADER = EMU_DIR / "cuda_emu.h"
# The shims of CUDA headers that kernels include (<mma.h>, <cuda_fp16.h>, <cuda_bf16.h>): only
# the emulator's compiles have this folder on their include path, first, so g++ finds the shims
# and NVRTC/nvcc find CUDA's own headers.
SHIM_DIR = EMU_DIR / "include"
SHIMS = ("mma.h", "cuda_fp16.h", "cuda_bf16.h")
OWN_FILES = ("cuda_emu.h", "kernel_table.h", "fibers.h", "runtime.cpp", "runtime_checks.h",
             *(f"include/{name}" for name in SHIMS))

BASE_FLAGS = ("-O2", "-std=c++17", "-fPIC", "-shared", "-pthread", "-fvisibility=hidden",
              # extern thread_local (= extern __shared__) without dynamic-initialisation wrappers
              "-fno-extern-tls-init",
              # kernels reinterpret shared memory freely (double shared_raw[] used as float*)
              "-fno-strict-aliasing",
              # touch every page of a large stack frame in order, so a thread that outgrows its
              # fiber stack hits the guard page below it instead of another fiber's stack
              "-fstack-clash-protection")
SANITIZE_FLAGS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                  "-fno-omit-frame-pointer", "-g", "-O1")  # -O1: faster builds, exact reports
MAX_DYNAMIC_SHARED = 227 * 1024  # the largest opt-in dynamic shared memory of any GPU (sm_90)

# NVRTC options that mean nothing on the CPU: accepted (so one options tuple serves CuPy and the
# emulator) and ignored. Prefixes; e.g. "-arch" also covers "-arch=sm_80".
_IGNORED_OPTIONS = ("-arch", "--gpu-architecture", "-std", "--std", "--use_fast_math",
                    "-use_fast_math", "-lineinfo", "--generate-line-info", "-G", "--device-debug",
                    "-rdc", "--relocatable-device-code", "-restrict", "--restrict", "-fmad",
                    "--fmad", "-ftz", "--ftz", "-prec-div", "--prec-div", "-prec-sqrt",
                    "--prec-sqrt", "-maxrregcount", "--maxrregcount", "-default-device",
                    "--device-as-default-execution-space", "--extra-device-vectorization",
                    "-dopt", "--dopt", "-dw", "--disable-warnings", "-w")
_RENAMED_OPTIONS = {"--define-macro=": "-D", "--undefine-macro=": "-U", "--include-path=": "-I"}


class EmuError(RuntimeError):
    """Base class of the emulator's errors."""


class EmuCompileError(EmuError):
    """g++ rejected the source; the message holds its diagnostics (file:line: error: ...)."""


@dataclass
class BuildInfo:
    """What the scan found; stored next to the library so a cache hit needs no scan."""
    kernels: dict = field(default_factory=dict)        # name -> list of parameter names
    templates: list = field(default_factory=list)      # __global__ templates (not callable by name)
    extern_shared: list = field(default_factory=list)  # names of extern __shared__ arrays
    deps: dict = field(default_factory=dict)           # included user header -> sha256


MAX_CACHED_LIBRARIES = 256  # older builds are deleted beyond this many


def cache_dir() -> Path:
    """``$CONV3D_CACHE_DIR/emu``, or ``~/.cache/conv3d/emu``; a temporary directory when that
    cannot be written (a read-only home, for instance). Delete it to clear the cache."""
    root = os.environ.get("CONV3D_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache",
                                                              "conv3d")
    path = Path(root) / "emu"
    try:
        path.mkdir(parents=True, exist_ok=True)
        if os.access(path, os.W_OK):
            return path
    except OSError:
        pass
    path = Path(tempfile.gettempdir()) / f"conv3d-emu-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _prune(root: Path):
    """Keep the newest MAX_CACHED_LIBRARIES libraries (a manifest whose library is gone rebuilds)."""
    try:
        libs = sorted(root.glob("*.so"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in libs[MAX_CACHED_LIBRARIES:]:
            old.unlink(missing_ok=True)
    except OSError:  # another process pruned at the same time
        pass


def compiler() -> str:
    """The C++ compiler: ``$CXX`` or ``g++``, which must exist."""
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        raise EmuError(f"the CUDA emulator needs a C++17 compiler, but {cxx!r} was not found. "
                       "Install g++ (Debian/Ubuntu: `apt install g++`; macOS is not supported) "
                       "or set the CXX environment variable.")
    return cxx


_COMPILER_ID: dict = {}


def compiler_id(cxx: str) -> str:
    """Version and target of the compiler (part of the cache key), computed once per process."""
    if cxx not in _COMPILER_ID:
        out = subprocess.run([cxx, "-dumpfullversion", "-dumpversion", "-dumpmachine"],
                             capture_output=True, text=True)
        _COMPILER_ID[cxx] = f"{cxx} {out.stdout.strip()}"
    return _COMPILER_ID[cxx]


def gxx_options(options) -> list:
    """Translate CuPy/NVRTC-style options into g++ ones: keep -D, -U, -I; ignore GPU-only ones."""
    if isinstance(options, str):
        raise TypeError(f"options must be a tuple of strings, e.g. ('-DBLOCK=128',), got the "
                        f"string {options!r}")
    out = []
    for opt in options:
        if not isinstance(opt, str):
            raise TypeError(f"options must be strings, got {type(opt).__name__} {opt!r}")
        for long_form, short in _RENAMED_OPTIONS.items():
            if opt.startswith(long_form):
                opt = short + opt[len(long_form):]
        if opt.startswith(("-D", "-U", "-I")) and len(opt) > 2:
            out.append(opt)
        elif not any(opt == p or opt.startswith(p + "=") for p in _IGNORED_OPTIONS):
            raise ValueError(f"option {opt!r} is not understood by the CUDA emulator; it accepts "
                             f"-DNAME[=VALUE], -UNAME, -IDIR and ignores GPU-only NVRTC options "
                             f"such as -arch=sm_80 or --use_fast_math")
    return out


def _sha256(data) -> str:
    return hashlib.sha256(data if isinstance(data, bytes) else data.encode()).hexdigest()


_OWN_HASH: list = []


def _own_files_hash() -> str:
    if not _OWN_HASH:
        # this file too: it generates the glue
        files = (*OWN_FILES, Path(__file__).name)
        _OWN_HASH.append(_sha256(b"".join((EMU_DIR / f).read_bytes() for f in files)))
    return _OWN_HASH[0]


def build_key(source: str, name: str, options: list, sanitize: bool, cxx: str) -> str:
    """The cache key: everything that changes the library, except included headers (see deps)."""
    parts = [source, name, "\0".join(options), _own_files_hash(), compiler_id(cxx),
             " ".join(BASE_FLAGS), " ".join(SANITIZE_FLAGS) if sanitize else "no-sanitize"]
    return _sha256("\x1f".join(parts))[:32]


# ---- scanning the preprocessed source --------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_]\w*")
_EXTERN_SHARED = re.compile(r"\bextern\s+__emu_shared__\b[^;{}]*?([A-Za-z_]\w*)\s*\[\s*\]\s*;")


def _matching_paren(text: str, open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return len(text)


def _split_top_level(params: str) -> list:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(params):
        depth += {"(": 1, "<": 1, "[": 1, ")": -1, ">": -1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(params[start:i])
            start = i + 1
    parts.append(params[start:])
    return [p.strip() for p in parts if p.strip() and p.strip() != "void"]


def _param_name(param: str) -> str:
    words = _IDENT.findall(param.split("=")[0])
    return words[-1] if len(words) > 1 else ""


def parse_preprocessed(text: str) -> BuildInfo:
    """Find the kernels and extern shared arrays in preprocessed (``-DEMU_SCAN``) source."""
    info = BuildInfo()
    for m in re.finditer(r"\b__emu_global__\b", text):
        paren = text.find("(", m.end())
        if paren < 0:
            continue
        words = _IDENT.findall(text[m.end():paren])
        if not words:
            continue
        name = words[-1]
        head = text[:m.start()]
        head = head[max(head.rfind(";"), head.rfind("}"), head.rfind("{")) + 1:]
        if re.search(r"\btemplate\b", head):
            if name not in info.templates:
                info.templates.append(name)
            continue
        close = _matching_paren(text, paren)
        info.kernels[name] = [_param_name(p) for p in _split_top_level(text[paren + 1:close])]
    for m in _EXTERN_SHARED.finditer(text):
        if m.group(1) not in info.extern_shared:
            info.extern_shared.append(m.group(1))
    return info


def generate_glue(info: BuildInfo) -> str:
    """The lines appended to the kernel file: dynamic shared memory and the kernel table."""
    lines = ['#line 1 "<cuda-emu generated glue>"',
             'extern "C" {',
             "// 16 bytes, 16-aligned, so that it adds no padding to the thread-local block whose",
             "// size (minus this and the dynamic buffer) is the static shared memory",
             "alignas(16) thread_local unsigned char emu_tls_anchor[16];",
             'void emu_touch_tls() { *(volatile unsigned char*)emu_tls_anchor = 0; }']
    if info.extern_shared:
        lines += [f"alignas(16) thread_local unsigned char emu_dynamic_shared_buffer"
                  f"[{MAX_DYNAMIC_SHARED}];",
                  "unsigned char* emu_dynamic_shared(unsigned long* emu_capacity) {",
                  f"    *emu_capacity = {MAX_DYNAMIC_SHARED}; return emu_dynamic_shared_buffer;",
                  "}"]
    else:
        lines += ["unsigned char* emu_dynamic_shared(unsigned long* emu_capacity) {",
                  "    *emu_capacity = 0; return nullptr;", "}"]
    lines.append("}")
    for name in info.extern_shared:  # every extern __shared__ array is the same buffer, as on a GPU
        lines.append(f'asm(".globl {name}\\n\\t.hidden {name}\\n\\t.set {name}, '
                     f'emu_dynamic_shared_buffer");')
    entries = "".join(f'    ::emu::kernel_info("{k}", &{k}),\n' for k in info.kernels)
    if entries:
        lines.append(f"static const ::emu::KernelInfo emu_kernel_table[] = {{\n{entries}}};")
        table = "emu_kernel_table"
    else:
        table = "nullptr"
    lines += ['extern "C" const ::emu::KernelInfo* emu_module_kernels(int* emu_count) {',
              f"    *emu_count = {len(info.kernels)}; return {table};", "}"]
    return "\n".join(lines) + "\n"


# ---- compiling -------------------------------------------------------------------------------

def _compile_error(what, name, log):
    return EmuCompileError(f"{what} of {name} for the CUDA emulator failed:\n{log}")


def _run(cmd, workdir, name, src_path, what):
    env = dict(os.environ, LC_ALL="C")  # plain ASCII quotes in g++'s messages
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        log = proc.stderr.replace(str(src_path), name).strip()
        raise _compile_error(what, name, f"{log}\n(command: {' '.join(map(str, cmd))})")
    return proc


def _read_deps(depfile: Path, exclude) -> dict:
    """Header files a source includes (from g++ -MMD), with their SHA-256."""
    if not depfile.exists():
        return {}
    text = depfile.read_text().replace("\\\n", " ")
    paths = text.split(":", 1)[1].split() if ":" in text else []
    deps = {}
    for p in paths:
        path = Path(p).resolve()
        if path.parent in (EMU_DIR, SHIM_DIR) and path.name in (*OWN_FILES, *SHIMS) \
                or path in exclude:
            continue
        deps[str(path)] = _sha256(path.read_bytes())
    return deps


def _deps_current(deps: dict) -> bool:
    try:
        return all(_sha256(Path(p).read_bytes()) == h for p, h in deps.items())
    except OSError:
        return False


def _write_manifest(work: Path, manifest: Path, record: dict):
    tmp = work / "manifest.json"
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, manifest)  # atomic: a concurrent reader sees the old or the new file


def build(source: str, name: str, options: list, sanitize: bool) -> tuple:
    """Return (path of the shared library, BuildInfo), compiling only on a cache miss."""
    cxx = compiler()
    key = build_key(source, name, options, sanitize, cxx)
    root = cache_dir()
    manifest = root / f"{key}.json"
    if manifest.exists():
        try:
            data = json.loads(manifest.read_text())
            info = BuildInfo(**data["info"])
            if _deps_current(info.deps):
                if data.get("error"):  # the same inputs failed before: fail the same way, fast
                    raise _compile_error("compilation", name, data["error"])
                lib = root / data["library"]
                if lib.exists():
                    return lib, info
        except (ValueError, KeyError, TypeError, OSError):
            pass  # unreadable manifest: rebuild
    work = Path(tempfile.mkdtemp(prefix="build-", dir=root))
    try:
        stem = re.sub(r"\W", "_", Path(name).stem) or "module"
        src = work / f"{stem}.cu"
        src.write_text(source)
        common = [cxx, "-std=c++17", "-I", str(SHIM_DIR), "-I", str(EMU_DIR), *options]
        scan = _run([*common, "-x", "c++", "-E", "-P", "-DEMU_SCAN", "-include", str(HEADER),
                     "-MMD", "-MF", str(work / "deps.d"), "-o", str(work / "scan.ii"), str(src)],
                    work, name, src, "preprocessing")
        del scan
        info = parse_preprocessed((work / "scan.ii").read_text(errors="replace"))
        info.deps = _read_deps(work / "deps.d", exclude={src.resolve()})
        unit = work / f"{stem}.emu.cpp"
        unit.write_text('#include "kernel_table.h"\n'
                        f'#line 1 "{name}"\n{source}\n' + generate_glue(info))
        flags = [*BASE_FLAGS, *(SANITIZE_FLAGS if sanitize else ())]
        out = work / "module.so"
        lib = root / f"{key}-{_sha256(json.dumps(info.deps, sort_keys=True))[:12]}.so"
        record = {"library": lib.name, "name": name, "info": info.__dict__}
        try:
            _run([*common, *flags, "-include", str(HEADER), str(unit),
                  str(EMU_DIR / "runtime.cpp"), "-o", str(out)], work, name, unit, "compilation")
        except EmuCompileError as exc:
            record["error"] = str(exc).split("\n", 1)[1]
            _write_manifest(work, manifest, record)
            raise
        os.replace(out, lib)
        _write_manifest(work, manifest, record)
        _prune(root)
        return lib, info
    finally:
        shutil.rmtree(work, ignore_errors=True)
