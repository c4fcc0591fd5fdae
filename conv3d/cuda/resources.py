"""Registers, spills, shared memory and theoretical occupancy of the kernels, without a GPU.

``ptxas``, the assembler behind every CUBIN, reports what each entry point uses when asked with
``-v`` (NVRTC: ``--ptxas-options=-v``, nvcc: ``-Xptxas -v``)::

    ptxas info    : Compiling entry function 'conv3d_tiled_f32' for 'sm_90'
    ptxas info    : Function properties for conv3d_tiled_f32
        8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads
    ptxas info    : Used 48 registers, used 1 barriers, 1024 bytes smem, 392 bytes cmem[0]

``parse_ptxas`` turns that log into one ``KernelResources`` per entry point, and ``occupancy``
computes how many blocks of a given size fit on one streaming multiprocessor (SM) of an
architecture, from the per-SM limits in ``ARCH_LIMITS``, the rules of NVIDIA's occupancy
calculator (``cuda_occupancy.h``): registers are allocated per warp in units of 256, split over
the SM's four sub-partitions; shared memory in units of 128 bytes (256 on sm_75) plus 1 KB that
the driver reserves per block on sm_80 and later. This is *theoretical* occupancy: the share of
the SM's warp slots a launch can fill, not a measurement. On a GPU, ``conv3d kernels check
--device cuda`` also asks the driver (``cuOccupancyMaxActiveBlocksPerMultiprocessor``).

    from conv3d.cuda.resources import kernel_resources, occupancy
    res = kernel_resources("conv3d_tiled", "sm_90")      # {entry: KernelResources}
    occupancy(res["conv3d_tiled_f32"], threads=256, dynamic_shared=9216, arch="sm_90")
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from . import nvrtc
from .sources import include_options, kernel_filename, kernel_source


@dataclass(frozen=True)
class ArchLimits:
    """Per-SM limits of one compute capability (CUDA C Programming Guide, "Compute
    Capabilities", table "Technical Specifications per Compute Capability")."""
    name: str
    max_warps: int          # resident warps per SM
    max_blocks: int         # resident blocks per SM
    registers: int          # 32-bit registers per SM
    shared: int             # shared memory per SM usable by blocks (the largest carve-out), bytes
    shared_unit: int        # shared memory allocation granularity, bytes
    reserved_shared: int    # shared memory the driver reserves per block, bytes


REGISTER_UNIT = 256          # registers are allocated per warp in multiples of 256 (all archs)
SUB_PARTITIONS = 4           # an SM's register file is split over four warp schedulers
WARP_SIZE = 32
MAX_REGISTERS_PER_THREAD = 255

ARCH_LIMITS = {
    "sm_75": ArchLimits("Turing (T4, RTX 20)", 32, 16, 65536, 64 * 1024, 256, 0),
    "sm_80": ArchLimits("Ampere (A100)", 64, 32, 65536, 164 * 1024, 128, 1024),
    "sm_86": ArchLimits("Ampere (RTX 30, A10)", 48, 16, 65536, 100 * 1024, 128, 1024),
    "sm_89": ArchLimits("Ada (RTX 40, L4)", 48, 24, 65536, 100 * 1024, 128, 1024),
    "sm_90": ArchLimits("Hopper (H100, H200)", 64, 32, 65536, 228 * 1024, 128, 1024),
}

_ENTRY = re.compile(r"Compiling entry function '([^']+)' for '(sm_\w+)'")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
_SMEM = re.compile(r"(\d+) bytes smem")
_BARRIERS = re.compile(r"used (\d+) barriers")


@dataclass(frozen=True)
class KernelResources:
    """What ptxas reports for one entry point on one architecture."""
    entry: str
    arch: str
    registers: int
    spill_stores: int = 0    # bytes per thread written to local memory because registers ran out
    spill_loads: int = 0     # bytes per thread read back
    stack: int = 0           # bytes of stack frame per thread (local arrays, spills)
    shared: int = 0          # bytes of static shared memory per block (dynamic comes at launch)
    barriers: int = 0


def parse_ptxas(log: str) -> dict:
    """``{entry: KernelResources}`` from ptxas' ``-v`` output (NVRTC's or nvcc's log; both
    print one "Compiling entry function" block per entry point). Raises ValueError when the log
    has no such block (ptxas was not asked for ``-v``)."""
    found, current = {}, None
    for line in log.splitlines():
        match = _ENTRY.search(line)
        if match:
            current = dict(entry=match.group(1), arch=match.group(2))
            continue
        if current is None:
            continue
        frame = _FRAME.search(line)
        if frame:
            current.update(stack=int(frame.group(1)), spill_stores=int(frame.group(2)),
                           spill_loads=int(frame.group(3)))
        used = _USED.search(line)
        if used:  # the last line of an entry's block
            smem, barriers = _SMEM.search(line), _BARRIERS.search(line)
            current.update(registers=int(used.group(1)),
                           shared=int(smem.group(1)) if smem else 0,
                           barriers=int(barriers.group(1)) if barriers else 0)
            found[current["entry"]] = KernelResources(**current)
            current = None
    if not found:
        raise ValueError("no 'Compiling entry function' lines in this log: compile with "
                         "ptxas' -v (NVRTC --ptxas-options=-v, nvcc -Xptxas -v)")
    return found


def ptxas_log(kernel: str, arch: str, compiler: str = "nvrtc") -> str:
    """ptxas' ``-v`` report for ``kernels/<kernel>.cu`` on ``arch``, from NVRTC or nvcc."""
    source, name = kernel_source(kernel), kernel_filename(kernel)
    if compiler == "nvrtc":
        return nvrtc.compile_cubin_verbose(source, name, arch, options=include_options())[1]
    if compiler == "nvcc":
        return nvrtc.nvcc_compile_cubin_verbose(source, name, arch, options=include_options())[1]
    raise ValueError(f"compiler must be 'nvrtc' or 'nvcc', got {compiler!r}")


def kernel_resources(kernel: str, arch: str, compiler: str = "nvrtc") -> dict:
    """``{entry: KernelResources}`` of every entry point of ``kernels/<kernel>.cu``."""
    return parse_ptxas(ptxas_log(kernel, arch, compiler))


def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit


@dataclass(frozen=True)
class Occupancy:
    blocks: int              # resident blocks per SM
    warps: int               # resident warps per SM
    fraction: float          # warps / the SM's warp slots
    limiter: str             # what stops one more block: 'warps', 'blocks', 'registers', 'shared'


def occupancy(res: KernelResources, threads: int, dynamic_shared: int = 0,
              arch: str | None = None) -> Occupancy:
    """Theoretical occupancy of a launch of ``threads`` threads per block with
    ``dynamic_shared`` bytes of dynamic shared memory (``arch`` defaults to ``res.arch``)."""
    arch = arch or res.arch
    if arch not in ARCH_LIMITS:
        raise ValueError(f"no per-SM limits for {arch!r}; the table has {', '.join(ARCH_LIMITS)}")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    lim = ARCH_LIMITS[arch]
    warps_per_block = -(-threads // WARP_SIZE)
    limits = {"warps": lim.max_warps // warps_per_block, "blocks": lim.max_blocks}
    if res.registers:
        per_warp = _round_up(res.registers * WARP_SIZE, REGISTER_UNIT)
        warps_per_partition = (lim.registers // SUB_PARTITIONS) // per_warp
        limits["registers"] = warps_per_partition * SUB_PARTITIONS // warps_per_block
    shared = res.shared + dynamic_shared
    if shared:
        per_block = _round_up(shared + lim.reserved_shared, lim.shared_unit)
        limits["shared"] = lim.shared // per_block
    limiter = min(limits, key=limits.get)
    blocks = limits[limiter]
    return Occupancy(blocks, blocks * warps_per_block,
                     blocks * warps_per_block / lim.max_warps, limiter)
