"""``conv3d kernels check --device cuda|cuda-emu --report DIR``: check a machine in one command.

Four parts, each a section of ONE report (``DIR/device-check.md`` and the same rows in
``DIR/device-check.json``), with the machine, the versions, the command and the date:

1. **GPU tests**: pytest on the test files marked ``gpu`` (``tests/`` of a source checkout), as a
   subprocess with a time limit; the report keeps pytest's summary line.
2. **Kernels vs the float64 NumPy reference** (``_device_cases``): every kernel through the
   provider on the device, every convolution algorithm, float32 and float64, including the
   geometries that break kernels (channels above the tile, N = 0, depthwise, 1x1x1, grids over
   65,535 blocks); max error and pass/fail per row.
3. **Timings against cuDNN** (``conv3d.bench.gpu``): CUDA events, fp32 strict, TF32, bf16.
4. **Registers, spills and occupancy** per entry point: ptxas' report from NVRTC (or nvcc) for
   each architecture, theoretical occupancy (``conv3d.cuda.resources``) at the block size and
   shared memory of the largest launch part 2 made; on a GPU also what CuPy's ``RawKernel``
   and the driver say for the GPU's own architecture.

``--device cuda-emu`` runs parts 2 and 4 without a GPU (the kernels in the CPU emulator) and marks
parts 1 and 3 skipped with the reason. ``--device cuda`` on a machine without a usable GPU exits
with status 2 and a message saying what is missing, and writes no report: a report of skipped
rows would look like a check that ran. Any failing row gives exit status 1.
"""
from __future__ import annotations

import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from . import _device_cases

TOTAL_BUDGET = 240        # seconds: the whole check must finish within four minutes on one GPU
GPU_TEST_TIMEOUT = 120    # seconds for the GPU tests (their emulator comparisons build kernels)
TIMING_BUDGET = 2.0       # seconds of timed rounds per (case, pass) on the GPU
TIMING_RESERVE = 40       # seconds a timed case may need at most (warm-up, compiles, cuDNN
                          # benchmark mode) plus the resource rows that follow
DEVICE_CHECK_ARCHS = ("sm_80", "sm_90")
IN_CHECK_ENV = "CONV3D_IN_DEVICE_CHECK"  # set for the GPU tests the check runs
EMU_SKIP = "skipped: --device cuda-emu runs no GPU (run --device cuda on a machine with one)"
# The cases timed against cuDNN: the shapes a1, a2, b of ``conv3d bench`` (the article's two layers
# at batch 128 and a C3D layer) and issue 18's N2 C32 K32 64^3 layer.
TIMED = (("ops a1", (128, 3, 16, 16, 16), (32, 3, 3, 3, 3), 0),
         ("ops a2", (128, 32, 7, 7, 7), (64, 32, 3, 3, 3), 0),
         ("ops b", (4, 64, 16, 56, 56), (128, 64, 3, 3, 3), 1),
         ("issue 18: N2 C32 K32 64^3", (2, 32, 64, 64, 64), (32, 32, 3, 3, 3), 1))


def _progress(text):
    print(text, flush=True)


def _source_tests() -> Path | None:
    tests = Path(__file__).resolve().parents[2] / "tests"
    return tests if tests.is_dir() else None


def gpu_test_files() -> list[Path]:
    """The test files that carry the ``gpu`` marker (read at run time, so new ones count)."""
    tests = _source_tests()
    if tests is None:
        return []
    return sorted(p for p in tests.glob("test_*.py") if "pytest.mark.gpu" in p.read_text())


def run_gpu_tests() -> dict:
    files = gpu_test_files()
    if not files:
        return dict(status="skipped: no tests/ folder with gpu-marked tests (an installed "
                           "package has none; run the check from a source checkout)")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu", "-rs",
           *map(str, files)]
    start = time.perf_counter()
    try:
        # IN_CHECK_ENV: the test of this check itself is a GPU test; it skips inside the check
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=GPU_TEST_TIMEOUT,
                              cwd=files[0].parents[1], env={**os.environ, IN_CHECK_ENV: "1"})
    except subprocess.TimeoutExpired:
        return dict(status=f"FAIL: timed out after {GPU_TEST_TIMEOUT} s",
                    command=shlex.join(cmd))
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    summary = next((ln for ln in reversed(lines) if re.search(r"passed|failed|skipped|error",
                                                              ln)), "no summary line")
    failed = proc.returncode not in (0, 5)  # 5: nothing collected
    return dict(status=("FAIL: " if failed else "") + summary.strip("= "),
                command=shlex.join(cmd), seconds=round(time.perf_counter() - start, 1),
                tail="\n".join(lines[-25:]), files=[f.name for f in files])


def _compiler():
    from ..cuda import nvrtc  # noqa: PLC0415
    if nvrtc.nvrtc_available():
        major, minor = nvrtc.nvrtc_version()
        return "nvrtc", f"NVRTC {major}.{minor} ({nvrtc.nvrtc_path()})"
    if nvrtc.nvcc_path():
        return "nvcc", f"nvcc ({nvrtc.nvcc_path()})"
    return None, f"neither NVRTC nor nvcc: {nvrtc.INSTALL_HINT}"


def resource_rows(archs, blocks) -> list[dict]:
    """Per (kernel entry, arch): ptxas' registers, spills, shared memory, and the theoretical
    occupancy of the largest launch recorded in ``blocks`` (``{entry: (threads, shared)}``)."""
    from ..cuda import resources  # noqa: PLC0415
    from ..cuda.sources import KERNELS  # noqa: PLC0415
    compiler, _ = _compiler()
    rows = []
    for kernel in KERNELS:
        for arch in archs:
            base = dict(kernel=kernel, arch=arch, source=compiler)
            if compiler is None:
                rows.append(dict(base, entry="-", status="skipped: no NVRTC or nvcc"))
                continue
            try:
                found = resources.kernel_resources(kernel, arch, compiler)
            except Exception as exc:  # noqa: BLE001 - a compile error is a failing row
                rows.append(dict(base, entry="-", status=f"FAIL: {str(exc)[:300]}"))
                continue
            for entry, res in sorted(found.items()):
                row = dict(base, entry=entry, registers=res.registers,
                           spill_stores=res.spill_stores, spill_loads=res.spill_loads,
                           stack=res.stack, static_shared=res.shared, status="ok")
                if entry in blocks and arch in resources.ARCH_LIMITS:
                    threads, dynamic = blocks[entry]
                    occ = resources.occupancy(res, threads, dynamic, arch)
                    row.update(threads=threads, dynamic_shared=dynamic, blocks_per_sm=occ.blocks,
                               occupancy=occ.fraction, limiter=occ.limiter)
                elif entry not in blocks:
                    row["occupancy_note"] = "not launched by the comparisons: no block size"
                else:
                    row["occupancy_note"] = f"no per-SM limits for {arch} in the table"
                rows.append(row)
    return rows


def cupy_attribute_rows(blocks, entry_files) -> list[dict]:
    """On a GPU: CuPy's RawKernel attributes of each launched entry point (the GPU's own
    architecture, compiled by CuPy) and the driver's occupancy for the recorded launch."""
    import cupy as cp  # noqa: PLC0415

    from ..cuda import resources  # noqa: PLC0415
    from ..cuda.sources import get_module  # noqa: PLC0415
    rows = []
    for entry, (threads, dynamic) in sorted(blocks.items()):
        kernel = entry_files[entry]
        row = dict(kernel=kernel, entry=entry, threads=threads, dynamic_shared=dynamic)
        try:
            fn = get_module(kernel, "cuda").get_function(entry)
            row.update(registers=fn.num_regs, local_bytes=fn.local_size_bytes,
                       static_shared=fn.shared_size_bytes, max_threads=fn.max_threads_per_block,
                       binary_version=fn.binary_version)
            blocks_per_sm = cp.cuda.driver.occupancyMaxActiveBlocksPerMultiprocessor(
                fn.kernel.ptr, threads, dynamic)
            props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
            warps = props["maxThreadsPerMultiProcessor"] // 32
            row.update(blocks_per_sm=blocks_per_sm,
                       occupancy=blocks_per_sm * -(-threads // 32) / warps, status="ok")
            arch = f"sm_{props['major']}{props['minor']}"
            if arch in resources.ARCH_LIMITS:
                res = resources.KernelResources(entry, arch, fn.num_regs,
                                                shared=fn.shared_size_bytes)
                row["table_blocks"] = resources.occupancy(res, threads, dynamic).blocks
            else:
                row["table_blocks"] = f"{arch} is not in the table"
        except Exception as exc:  # noqa: BLE001
            row["status"] = f"FAIL: {type(exc).__name__}: {str(exc)[:200]}"
        rows.append(row)
    return rows


def machine_info(device, compiler_text) -> dict:
    from ..bench.gpu import device_info  # noqa: PLC0415
    info = device_info()
    info["device"] = device
    try:
        from ..bench.harness import machine_info as cpu_info  # noqa: PLC0415
        cpu = cpu_info()
        info["cpu"] = f"{cpu['cpu']} ({cpu['cores']} cores)"
    except ImportError:  # numba or threadpoolctl missing: the plain platform name
        info["cpu"] = platform.processor() or platform.machine()
    info["kernel compiler (resource rows)"] = compiler_text
    info["g++ (emulator)"] = shutil.which("g++") or "not found"
    return info


def run_device_check(args) -> int:
    from ..cuda.sources import KERNELS  # noqa: PLC0415
    from ._device_report import write_report  # noqa: PLC0415
    device = args.device
    if args.kernel or args.no_emulation:
        print("error: --kernel and --no-emulation belong to the plain `conv3d kernels check`; "
              "the device check (--device) always checks every kernel")
        return 2
    command = "conv3d " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["kernels"] else \
        "conv3d kernels check --device " + device + (f" --report {args.report}"
                                                     if args.report else "")
    if device == "cuda":
        from ..bench.gpu import cuda_unavailable_reason  # noqa: PLC0415
        reason = cuda_unavailable_reason()
        if reason:
            print(f"conv3d kernels check --device cuda: cannot run: {reason}. Nothing was "
                  f"checked and no report was written; `conv3d kernels check --device cuda-emu "
                  f"--report DIR` checks everything that runs without a GPU.", file=sys.stderr)
            return 2
    elif shutil.which("g++") is None:
        print("conv3d kernels check --device cuda-emu: the emulator needs g++ to compile the "
              "kernels for the CPU; install it (e.g. apt-get install g++)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    archs = [a.strip() for a in args.arch.split(",") if a.strip()] if args.arch \
        else list(DEVICE_CHECK_ARCHS)
    dtypes = {"float32": [np.float32], "float64": [np.float64],
              "both": [np.float32, np.float64]}[args.dtype]
    compiler, compiler_text = _compiler()
    info = machine_info(device, compiler_text)
    _progress(f"conv3d device check on {device}: {info['gpu']}")
    report = dict(command=command, info=info, sections={})

    if device == "cuda":
        _progress(f"[1/4] GPU tests (pytest, at most {GPU_TEST_TIMEOUT} s) ...")
        report["sections"]["gpu_tests"] = run_gpu_tests()
    else:
        report["sections"]["gpu_tests"] = dict(status=EMU_SKIP)
    _progress(f"[1/4] GPU tests: {report['sections']['gpu_tests']['status']}")

    _progress("[2/4] kernels vs the float64 NumPy reference ...")
    provider = _device_cases.RecordingKernels(device)
    if device == "cuda":
        import cupy as cp  # noqa: PLC0415
        to_device, to_host = cp.asarray, cp.asnumpy
    else:
        to_device = to_host = np.asarray
    rows = _device_cases.conv_rows(provider, to_device, to_host, dtypes, _progress)
    rows += _device_cases.pool_resize_rows(provider, to_device, to_host, dtypes, _progress)
    for kernel in KERNELS:
        if kernel not in provider.entry_files.values():
            rows.append(dict(section="coverage", case=kernel, algorithm="-", dtype="-", op="-",
                             error=None, tolerance=None,
                             status="not exercised: no provider operation launched this "
                                    "kernel (see `conv3d kernels check --kernel NAME`)"))
    report["sections"]["comparisons"] = rows

    if device == "cuda":
        from ..bench import gpu  # noqa: PLC0415
        _progress(f"[3/4] timings against cuDNN ({TIMING_BUDGET:g} s per case and pass) ...")
        timed = []
        for label, xs, ws, p in TIMED:
            spec = gpu.ConvSpec(label, xs, ws, padding=(p, p, p))
            for backward in (False, True):
                if time.perf_counter() - t0 > TOTAL_BUDGET - TIMING_RESERVE:
                    timed.append(dict(case=label, pas="backward" if backward else "forward",
                                      impl="-", ms=None, best_ms=None, rounds=0, ratio=None,
                                      vs_peer=None, status=f"skipped: the check's "
                                      f"{TOTAL_BUDGET} s budget is used up"))
                    continue
                timed += gpu.time_spec(spec, backward, budget=TIMING_BUDGET, log=_progress)
        report["sections"]["timings"] = timed
    else:
        report["sections"]["timings"] = EMU_SKIP
        _progress(f"[3/4] timings against cuDNN: {EMU_SKIP}")

    _progress(f"[4/4] registers, spills, occupancy for {', '.join(archs)} ({compiler_text}) ...")
    report["sections"]["resources"] = resource_rows(archs, provider.blocks)
    report["sections"]["cupy_attributes"] = (
        cupy_attribute_rows(provider.blocks, provider.entry_files) if device == "cuda"
        else EMU_SKIP)
    info["seconds"] = round(time.perf_counter() - t0, 1)
    out = Path(args.report or "device-check")
    out.mkdir(parents=True, exist_ok=True)
    md = write_report(report, out)
    with open(out / "device-check.json", "w") as f:
        json.dump(report, f, indent=1, default=str)
    failures = count_failures(report)
    _progress(f"wrote {md} and {out / 'device-check.json'} in {info['seconds']:.0f} s: "
              + (f"{failures} failing row(s)" if failures else "no failures"))
    return 1 if failures else 0


def count_failures(report) -> int:
    n = 0
    for value in report["sections"].values():
        rows = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
        n += sum(str(r.get("status", "")).startswith(("FAIL", "error")) for r in rows)
    return n
