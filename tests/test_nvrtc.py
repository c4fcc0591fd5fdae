"""The compile check: every kernel in kernels/ compiles to CUBIN with NVRTC for sm_75, sm_80 and
sm_90, and NVRTC's errors (including ptxas' resource checks) come back with file and line.

Skipped, with the reason, where no libnvrtc can be loaded (``pip install conv3d[nvrtc]``)."""
from pathlib import Path

import pytest

from conv3d.cuda import nvrtc
from conv3d.cuda.sources import include_options

ROOT = Path(__file__).resolve().parents[1]
KERNEL_FILES = sorted((ROOT / "kernels").glob("*.cu"))         # whatever is there at collection
TEST_KERNEL_FILES = sorted((ROOT / "tests" / "emu_kernels").glob("*.cu"))

needs_nvrtc = pytest.mark.skipif(not nvrtc.nvrtc_available(),
                                 reason=f"no NVRTC library: {nvrtc.INSTALL_HINT}")
BROKEN = 'extern "C" __global__ void k(float* y)\n{\n    y[0] = undefined_name;\n}\n'
# 100 KB of static shared memory: valid C++, valid PTX, but over the 48 KB static limit.
TOO_MUCH_SHARED = """extern "C" __global__ void big(float* y)
{
    __shared__ float tile[25600];
    tile[threadIdx.x] = y[threadIdx.x];
    __syncthreads();
    y[threadIdx.x] = tile[(threadIdx.x + 1) % blockDim.x];
}
"""


@needs_nvrtc
def test_kernel_files_exist():  # (an empty parametrization would pass silently)
    assert KERNEL_FILES, "kernels/*.cu is empty"


@needs_nvrtc
@pytest.mark.parametrize("arch", nvrtc.ARCHS)
@pytest.mark.parametrize("path", KERNEL_FILES, ids=lambda p: p.name)
def test_every_kernel_compiles_to_cubin(path, arch):
    cubin = nvrtc.compile_cubin(path.read_text(), f"kernels/{path.name}", arch,
                                options=include_options())  # for #include "indexing.cuh"
    assert nvrtc.cubin_arch(cubin) == arch


@needs_nvrtc
@pytest.mark.parametrize("path", TEST_KERNEL_FILES, ids=lambda p: p.name)
def test_the_emulator_test_kernels_are_real_cuda(path):
    # including warp_shuffle.cu, which only the emulator refuses; wmma_tile.cu needs CUDA's mma.h
    cubin = nvrtc.compile_cubin(path.read_text(), f"tests/emu_kernels/{path.name}", "sm_80",
                                options=include_options())
    assert nvrtc.cubin_arch(cubin) == "sm_80"


@needs_nvrtc
def test_compile_error_has_file_and_line():
    with pytest.raises(nvrtc.NVRTCError, match=r"kernels/broken\.cu\(3\): error: identifier "
                                               r"\"undefined_name\" is undefined") as err:
        nvrtc.compile_cubin(BROKEN, "kernels/broken.cu", "sm_75")
    assert "kernels/broken.cu(3)" in err.value.log


@needs_nvrtc
def test_nvrtc_rejects_infinity_but_accepts_the_bit_pattern():
    src = 'extern "C" __global__ void k(float* y) {\n    y[0] = %s;\n}\n'
    with pytest.raises(nvrtc.NVRTCError, match=r"kernels/inf\.cu\(2\): error: identifier "
                                               r"\"INFINITY\" is undefined"):
        nvrtc.compile_cubin(src % "-INFINITY", "kernels/inf.cu")
    assert nvrtc.compile_cubin(src % "-__int_as_float(0x7f800000)", "kernels/inf.cu")


@needs_nvrtc
def test_too_much_shared_memory_fails_at_cubin_stage_only():
    ptx = nvrtc.compile_ptx(TOO_MUCH_SHARED, "kernels/big.cu", "compute_80")
    assert ".shared" in ptx and ".entry big" in ptx
    with pytest.raises(nvrtc.NVRTCError, match=r"ptxas.*too much shared data"):
        nvrtc.compile_cubin(TOO_MUCH_SHARED, "kernels/big.cu", "sm_80")


@needs_nvrtc
def test_missing_cuda_headers_say_where_they_come_from():
    # NVRTC has no headers of its own: without the CUDA include folder mma.h is not found
    src = '#include <mma.h>\nextern "C" __global__ void k(float* y) { y[0] = 1; }\n'
    with pytest.raises(nvrtc.NVRTCError, match=r"could not open source file \"mma.h\"(.|\n)*"
                                               r"CUDA's mma.h, cuda_fp16.h and cuda_bf16.h come "
                                               r"from a CUDA toolkit"):
        nvrtc.compile_cubin(src, "kernels/wmma.cu", "sm_80")
    if nvrtc.cuda_include_dir() is None:
        pytest.skip("no CUDA include folder here (CUDA_PATH, /usr/local/cuda, nvidia wheels)")
    assert nvrtc.compile_cubin(src, "kernels/wmma.cu", "sm_80", options=include_options())


@needs_nvrtc
def test_options_reach_the_compiler():
    src = ('#ifndef TILE\n#error TILE is not defined\n#endif\n'
           'extern "C" __global__ void k(float* y) { y[0] = TILE; }\n')
    assert nvrtc.compile_cubin(src, "kernels/opt.cu", "sm_80", options=("-DTILE=4",))
    with pytest.raises(nvrtc.NVRTCError, match=r"kernels/opt\.cu\(2\).*TILE is not defined"):
        nvrtc.compile_cubin(src, "kernels/opt.cu", "sm_80")


@needs_nvrtc
def test_compile_all_gives_one_cubin_per_arch():
    cubins = nvrtc.compile_all((ROOT / "tests/emu_kernels/indices.cu").read_text(), "indices.cu")
    assert {arch: nvrtc.cubin_arch(c) for arch, c in cubins.items()} == \
        {a: a for a in nvrtc.ARCHS}


def test_bad_arch_is_a_value_error():
    with pytest.raises(ValueError, match="real architecture"):
        nvrtc.compile_cubin(BROKEN, "k.cu", "compute_80")
    with pytest.raises(ValueError, match="sm_80"):
        nvrtc.compile_cubin(BROKEN, "k.cu", "sm_eighty")


def test_missing_library_says_what_to_install(monkeypatch):
    monkeypatch.delenv("CONV3D_NVRTC_DISABLE", raising=False)
    monkeypatch.setattr(nvrtc, "_LIB", None)
    monkeypatch.setattr(nvrtc, "_candidates", lambda: iter(["/nonexistent/libnvrtc.so.12"]))
    monkeypatch.setattr(nvrtc, "_cupy_candidates", lambda: [])
    with pytest.raises(nvrtc.NVRTCNotFoundError, match=r"pip install conv3d\[nvrtc\]"):
        nvrtc.compile_cubin(BROKEN, "k.cu")
    assert not nvrtc.nvrtc_available()


def test_disabled_in_the_asan_process(monkeypatch):
    monkeypatch.setattr(nvrtc, "_LIB", None)
    monkeypatch.setenv("CONV3D_NVRTC_DISABLE", "1")
    with pytest.raises(nvrtc.NVRTCNotFoundError, match="disabled"):
        nvrtc.load_nvrtc()


@pytest.mark.skipif(nvrtc.nvcc_path() is None, reason="nvcc is not installed (optional)")
@pytest.mark.parametrize("arch", ["sm_75", "sm_90"])
def test_nvcc_compiles_a_kernel_too(arch):
    path = ROOT / "kernels" / KERNEL_FILES[0].name
    cubin = nvrtc.nvcc_compile_cubin(path.read_text(), str(path), arch, options=include_options())
    assert nvrtc.cubin_arch(cubin) == arch


@pytest.mark.skipif(nvrtc.nvcc_path() is None, reason="nvcc is not installed (optional)")
def test_nvcc_error_has_file_and_line():
    with pytest.raises(nvrtc.NVRTCError, match=r"kernels/broken\.cu\(3\): error"):
        nvrtc.nvcc_compile_cubin(BROKEN, "kernels/broken.cu", "sm_80")
