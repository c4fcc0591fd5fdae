"""ptxas' resource report and theoretical occupancy (conv3d.cuda.resources).

The parser is tested on real logs: one captured from nvcc 13 (kept verbatim below) and ones
made here by NVRTC or nvcc from small kernels whose resources are known by construction (a
256-float static shared array is 1024 bytes; a 32-register cap on 48 live accumulators must
spill). Each compiler-backed test is skipped with its reason where that compiler is missing.
The occupancy values are worked out by hand from the per-SM limits in the docstrings.
"""
from __future__ import annotations

import pytest

from conv3d.cuda import nvrtc, resources
from conv3d.cuda.resources import KernelResources, occupancy, parse_ptxas

# `nvcc -cubin -arch=sm_90 -Xptxas -v kernels/conv3d_tiled.cu` with nvcc 13.0 (V13.0.88):
NVCC13_LOG = """\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'conv3d_tiled_f64' for 'sm_90'
ptxas info    : Function properties for conv3d_tiled_f64
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 58 registers, used 1 barriers
ptxas info    : Compile time = 97.478 ms
ptxas info    : Compiling entry function 'conv3d_tiled_f32' for 'sm_90'
ptxas info    : Function properties for conv3d_tiled_f32
    8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads
ptxas info    : Used 48 registers, used 1 barriers, 8 bytes cumulative stack size
ptxas info    : Compile time = 110.548 ms
"""

# Two entry points with known resources: 256 floats of static shared memory (1024 bytes), and
# 48 accumulators that stay live across a loop (more than 32 registers can hold).
KNOWN = """
#define TILE 256
#define ACC 48
extern "C" __global__ void shared_tile(const float* x, float* y, int n)
{
    __shared__ float tile[TILE];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    tile[threadIdx.x % TILE] = i < n ? x[i] : 0.0f;
    __syncthreads();
    if (i < n) y[i] = tile[(threadIdx.x + 1) % TILE];
}

extern "C" __global__ void many_live(const float* x, float* y, int n)
{
    float acc[ACC];
    for (int j = 0; j < ACC; ++j) acc[j] = (float)j;
    for (int k = 0; k < n; ++k) {
        float v = x[k];
        #pragma unroll
        for (int j = 0; j < ACC; ++j) acc[j] = acc[j] * v + (float)(j + k);
    }
    float s = 0.0f;
    #pragma unroll
    for (int j = 0; j < ACC; ++j) s += acc[j] * (float)(j + 1);
    y[blockIdx.x * blockDim.x + threadIdx.x] = s;
}
"""


def test_parses_a_captured_nvcc13_log():
    found = parse_ptxas(NVCC13_LOG)
    assert set(found) == {"conv3d_tiled_f32", "conv3d_tiled_f64"}
    assert found["conv3d_tiled_f64"] == KernelResources("conv3d_tiled_f64", "sm_90", 58, 0, 0,
                                                        0, 0, 1)
    assert found["conv3d_tiled_f32"] == KernelResources("conv3d_tiled_f32", "sm_90", 48, 4, 4,
                                                        8, 0, 1)


def test_a_log_without_ptxas_verbose_is_an_error():
    with pytest.raises(ValueError, match="-Xptxas -v"):
        parse_ptxas("ptxas info    : 0 bytes gmem\n")


def _check_known(log, arch):
    found = parse_ptxas(log)
    assert set(found) == {"shared_tile", "many_live"}
    tile, live = found["shared_tile"], found["many_live"]
    assert tile.arch == live.arch == arch
    assert tile.shared == 256 * 4 and tile.barriers == 1
    assert tile.spill_stores == tile.spill_loads == 0
    assert 1 <= tile.registers <= 255
    assert live.registers <= 32                       # the cap was obeyed ...
    assert live.spill_stores > 0 and live.spill_loads > 0 and live.stack > 0  # ... by spilling


@pytest.mark.skipif(not nvrtc.nvrtc_available(), reason=f"no NVRTC library: {nvrtc.INSTALL_HINT}")
def test_parses_a_real_nvrtc_log():
    cubin, log = nvrtc.compile_cubin_verbose(KNOWN, "known.cu", "sm_80",
                                             options=("--maxrregcount=32",))
    assert nvrtc.cubin_arch(cubin) == "sm_80"
    _check_known(log, "sm_80")


@pytest.mark.skipif(nvrtc.nvcc_path() is None, reason="nvcc is not installed (optional)")
def test_parses_a_real_nvcc_log():
    cubin, log = nvrtc.nvcc_compile_cubin_verbose(KNOWN, "known.cu", "sm_90",
                                                  options=("-maxrregcount=32",))
    assert nvrtc.cubin_arch(cubin) == "sm_90"
    _check_known(log, "sm_90")


@pytest.mark.skipif(not nvrtc.nvrtc_available(), reason=f"no NVRTC library: {nvrtc.INSTALL_HINT}")
def test_every_entry_point_of_a_kernel_file_is_reported():
    found = resources.kernel_resources("conv3d_backward_weight", "sm_90")
    assert set(found) == {f"conv3d_backward_weight{p}_{t}" for p in ("", "_reduce")
                          for t in ("f32", "f64")}


def _res(registers, shared=0):
    return KernelResources("k", "sm_80", registers, shared=shared)


def test_occupancy_limited_by_registers():
    # 96 registers: 96*32 = 3072 per warp; a sub-partition's 16384 hold 5 warps, the SM 20;
    # 2 blocks of 8 warps fit: 16 of 64 warp slots.
    occ = occupancy(_res(96), threads=256, arch="sm_80")
    assert (occ.blocks, occ.warps, occ.fraction, occ.limiter) == (2, 16, 0.25, "registers")


def test_occupancy_limited_by_shared_memory():
    # 33792 dynamic + 1024 reserved = 34816 bytes per block; 164 KiB = 167936 hold 4 blocks.
    occ = occupancy(_res(16), threads=128, dynamic_shared=33792, arch="sm_80")
    assert (occ.blocks, occ.warps, occ.fraction, occ.limiter) == (4, 16, 0.25, "shared")


def test_occupancy_limited_by_warps_and_by_blocks():
    # sm_75: 32 warp slots, 256 threads = 8 warps: 4 blocks fill the SM
    occ = occupancy(KernelResources("k", "sm_75", 16), threads=256)
    assert (occ.blocks, occ.fraction, occ.limiter) == (4, 1.0, "warps")
    # sm_90: one-warp blocks stop at 32 resident blocks, half of the 64 warp slots
    occ = occupancy(KernelResources("k", "sm_90", 8), threads=32)
    assert (occ.blocks, occ.fraction, occ.limiter) == (32, 0.5, "blocks")


def test_occupancy_rejects_unknown_arch_and_empty_blocks():
    with pytest.raises(ValueError, match="sm_52"):
        occupancy(_res(32), threads=256, arch="sm_52")
    with pytest.raises(ValueError, match="threads"):
        occupancy(_res(32), threads=0)
