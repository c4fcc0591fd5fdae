"""The CUDA emulator itself (conv3d.cuda.emulator), with the small kernels in tests/emu_kernels/.

Every expected value is computed independently here (NumPy, float64 loops, hand-derived index
maps), never by the emulator. Builds are cached on disk, so only a cold cache pays for g++.
"""
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conv3d.cuda.emulator import (BarrierError, EmuCompileError, EmuLaunchError, EmuModule,
                                  build, check_launch_config)
from conv3d.cuda.emulator.module import _default_sanitize

KDIR = Path(__file__).parent / "emu_kernels"


def load(name, **kw):
    path = KDIR / name
    return EmuModule(path.read_text(), name=f"tests/emu_kernels/{name}", **kw)


def line_of(name, pattern, after=None):
    """1-based line number of the first line matching ``pattern`` (after the line ``after``)."""
    lines = (KDIR / name).read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if after in l) if after else 0
    return next(i + 1 for i in range(start, len(lines)) if re.search(pattern, lines[i]))


@pytest.fixture(scope="module")
def reduce_mod():
    return load("block_reduce.cu")


@pytest.fixture(scope="module")
def idx_mod():
    return load("indices.cu")


@pytest.fixture(scope="module")
def bugs_mod():
    return load("barrier_bugs.cu")


def block_sums(x, block):
    """float64 reference: the sum of each block of ``block`` consecutive elements."""
    out = []
    for b in range(0, len(x), block):
        out.append(sum(float(v) for v in x[b:b + block]))
    return np.array(out)


# ---- results against NumPy -------------------------------------------------------------------

@given(n=st.integers(1, 700), block=st.sampled_from([1, 2, 32, 64, 128, 256]),
       seed=st.integers(0, 2**16))
def test_block_sum_static_shared_matches_numpy(reduce_mod, n, block, seed):
    x = np.random.default_rng(seed).standard_normal(n).astype(np.float32)
    grid = (n + block - 1) // block
    out = np.zeros(grid, np.float32)
    reduce_mod.get_function("block_sum_static")(grid, block, (x, out, np.int32(n)))
    np.testing.assert_allclose(out, block_sums(x, block), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype,suffix", [(np.float32, "f32"), (np.float64, "f64")])
@pytest.mark.parametrize("block", [4, 128, 1024])
def test_block_sum_extern_shared_matches_numpy(reduce_mod, dtype, suffix, block):
    n = 3 * block - 1  # a partial last block
    x = np.random.default_rng(block).standard_normal(n).astype(dtype)
    out = np.zeros(3, dtype)
    kern = reduce_mod.get_function(f"block_sum_extern_{suffix}")
    kern(3, block, (x, out, np.int32(n)), shared_mem=block * x.itemsize)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, block_sums(x, block), rtol=tol, atol=tol)


def test_missing_barrier_changes_the_result(reduce_mod):
    # Threads run in opposite orders in neighbouring blocks (and rounds): whichever order hides
    # the race in one block exposes it in the other.
    x = np.tile(np.arange(1, 257, dtype=np.float32), 2)
    good, bad = np.zeros(2, np.float32), np.zeros(2, np.float32)
    reduce_mod.get_function("block_sum_static")(2, 256, (x, good, np.int32(512)))
    reduce_mod.get_function("block_sum_missing_barrier")(2, 256, (x, bad, np.int32(512)))
    assert (good == 256 * 257 / 2).all()
    assert (bad != good).any()


def test_grid_and_block_indices_in_3d(idx_mod):
    grid, block = (3, 2, 2), (4, 3, 2)
    nthreads = 3 * 2 * 2 * 4 * 3 * 2
    out = np.full((nthreads, 12), -7, np.int32)
    idx_mod.get_function("write_indices")(grid, block, (out,))
    expected = []
    for bz in range(2):
        for by in range(2):
            for bx in range(3):
                for tz in range(2):
                    for ty in range(3):
                        for tx in range(4):
                            expected.append([bx, by, bz, tx, ty, tz, *block, *grid])
    np.testing.assert_array_equal(out, np.array(expected, np.int32))


def test_shared_memory_nobody_wrote_is_poisoned(idx_mod):
    out_f, out_i = np.zeros(2 * 64, np.float32), np.zeros(2 * 64, np.int32)
    idx_mod.get_function("read_unwritten_shared")(2, 64, (out_f, out_i))
    t = np.tile(np.arange(64), 2)
    even = t % 2 == 0
    np.testing.assert_array_equal(out_f[even], t[even])
    assert np.isnan(out_f[~even]).all()
    np.testing.assert_array_equal(out_i[even], t[even])
    assert (out_i[~even] == -1).all()  # 0xFFFFFFFF


def test_extern_shared_names_alias_one_buffer(reduce_mod):
    out = np.zeros(4, np.int32)
    reduce_mod.get_function("extern_alias")(1, 4, (out,), shared_mem=16)
    np.testing.assert_array_equal(out, [4, 3, 2, 1])  # 0x01020304, little-endian bytes


def test_syncthreads_count_and_or(reduce_mod):
    flags = np.random.default_rng(3).integers(0, 2, size=(4, 32)).astype(np.int32)
    flags[1] = 1
    flags[2] = 0
    out = np.zeros((4, 3), np.int32)
    reduce_mod.get_function("barrier_reductions")(4, 32, (flags, out))
    expected = np.stack([flags.sum(1), flags.all(1), flags.any(1)], axis=1)
    np.testing.assert_array_equal(out, expected)


def test_atomic_add_float_and_int(idx_mod):
    n = 1000
    rng = np.random.default_rng(0)
    x = rng.random(n).astype(np.float32)
    bins = rng.integers(0, 10, n).astype(np.int32)
    total, hist = np.zeros(1, np.float32), np.zeros(10, np.int32)
    idx_mod.get_function("atomic_sum_and_histogram")(8, 128, (x, bins, total, hist, np.int32(n)))
    np.testing.assert_allclose(total[0], x.astype(np.float64).sum(), rtol=1e-5)
    np.testing.assert_array_equal(hist, np.bincount(bins, minlength=10))


def test_results_are_deterministic(idx_mod, reduce_mod):
    x = np.random.default_rng(1).random(5000).astype(np.float32)
    bins = np.zeros(5000, np.int32)
    runs = []
    for _ in range(3):
        total, hist = np.zeros(1, np.float32), np.zeros(1, np.int32)
        idx_mod.get_function("atomic_sum_and_histogram")(40, 128, (x, bins, total, hist,
                                                                   np.int32(5000)))
        bad = np.zeros(20, np.float32)
        reduce_mod.get_function("block_sum_missing_barrier")(20, 256, (x, bad, np.int32(5000)))
        runs.append((total.tobytes(), bad.tobytes()))
    assert runs[0] == runs[1] == runs[2]


def test_scalars_of_every_type_arrive_unchanged(idx_mod):
    out_d, out_ll = np.zeros(3), np.zeros(2, np.int64)
    args = (out_d, out_ll, np.int32(-123456), np.float32(0.1), np.float64(1 / 3),
            np.int64(2**40 + 3), np.uint32(2**31 + 5))
    idx_mod.get_function("echo_scalars")(1, 1, args)
    assert out_d.tolist() == [-123456.0, float(np.float32(0.1)), 1 / 3]
    assert out_ll.tolist() == [2**40 + 3, 2**31 + 5]


def test_math_builtins(idx_mod):
    x = np.array([-3.0, 0.0, 2.5, 1e30], np.float32)
    y = np.zeros((4, 4), np.float32)
    idx_mod.get_function("math_builtins")(1, 4, (x, y))
    np.testing.assert_allclose(y[:, 0], x)
    np.testing.assert_allclose(y[:, 1], 1 / np.sqrt(np.abs(x.astype(np.float64)) + 1), rtol=1e-6)
    np.testing.assert_allclose(y[:, 2], x / 2.0 + 1 + 0.5, rtol=1e-6)
    assert (y[:, 3] == -np.inf).all()


# ---- bugs are reported, never a deadlock -----------------------------------------------------

def test_early_return_before_barrier_raises(bugs_mod):
    x, y = np.ones(100, np.float32), np.zeros(100, np.float32)
    with pytest.raises(BarrierError) as err:
        bugs_mod.get_function("early_return")(1, 128, (x, y, np.int32(100)))
    msg = str(err.value)
    line = line_of("barrier_bugs.cu", r"__syncthreads", after="void early_return")
    assert "early return" in msg and "'early_return'" in msg and "blockIdx=(0,0,0)" in msg
    assert "28 threads (threadIdx (100,0,0)" in msg and "100 threads" in msg
    assert f"tests/emu_kernels/barrier_bugs.cu:{line}" in msg


def test_divergent_barrier_raises(bugs_mod):
    y = np.zeros(128, np.float32)
    with pytest.raises(BarrierError) as err:
        bugs_mod.get_function("divergent_barrier")((1, 2), 64, (y,))
    msg = str(err.value)
    first = line_of("barrier_bugs.cu", r"__syncthreads", after="void divergent_barrier")
    second = line_of("barrier_bugs.cu", r"__syncthreads", after="} else {")
    assert "divergent barrier" in msg and "'divergent_barrier'" in msg
    assert f"barrier_bugs.cu:{first}" in msg and f"barrier_bugs.cu:{second}" in msg
    assert "threadIdx (0,0,0)" in msg and "threadIdx (1,0,0)" in msg


def test_a_failed_launch_leaves_the_module_usable(bugs_mod, reduce_mod):
    x = np.ones(100, np.float32)
    with pytest.raises(BarrierError):
        bugs_mod.get_function("early_return")(1, 128, (x, np.zeros(100, np.float32),
                                                       np.int32(100)))
    y = np.zeros(1, np.float32)
    bugs_mod.get_function("early_return")(1, 100, (x, np.zeros(100, np.float32), np.int32(100)))
    reduce_mod.get_function("block_sum_static")(1, 128, (x, y, np.int32(100)))
    assert y[0] == 100


def test_trap_fails_the_launch(idx_mod):
    x = np.ones(64, np.float32)
    x[37] = -1
    with pytest.raises(EmuLaunchError, match=r"__trap\(\).*'trap_on_negative'.*blockIdx=\(1,0,0\), "
                                             r"threadIdx=\(5,0,0\)"):
        idx_mod.get_function("trap_on_negative")(2, 32, (x,))


def test_warp_intrinsic_refused_at_compile_time():
    with pytest.raises(EmuCompileError) as err:
        load("warp_shuffle.cu")
    line = line_of("warp_shuffle.cu", r"__shfl_down_sync\(0x")
    assert f"tests/emu_kernels/warp_shuffle.cu:{line}" in str(err.value)
    assert "warp-level intrinsic __shfl_down_sync is not supported" in str(err.value)


def test_warp_size_and_infinity_refused():
    src = 'extern "C" __global__ void k(int* y) { y[0] = warpSize; }\n'
    with pytest.raises(EmuCompileError, match="warpSize"):
        EmuModule(src, name="kernels/warp.cu")
    src = 'extern "C" __global__ void k(float* y) {\n  y[0] = -INFINITY;\n}\n'
    with pytest.raises(EmuCompileError, match=r"kernels/inf\.cu:2.*|INFINITY does not exist in "
                                              r"NVRTC") as err:
        EmuModule(src, name="kernels/inf.cu")
    assert "__int_as_float(0x7f800000)" in str(err.value)


def test_compile_error_names_file_and_line():
    src = 'extern "C" __global__ void k(float* y)\n{\n    y[0] = undefined_name;\n}\n'
    with pytest.raises(EmuCompileError, match=r"kernels/broken\.cu:3:\d+: error: "
                                              r"'undefined_name' was not declared"):
        EmuModule(src, name="kernels/broken.cu")


CRASH = r"""
import sys
import numpy as np
from conv3d.cuda.emulator import EmuModule
mod = EmuModule(open("tests/emu_kernels/crashes.cu").read(), name="tests/emu_kernels/crashes.cu")
y = np.zeros(4, np.float32)
if sys.argv[1] == "big_locals":
    mod.get_function("big_locals")((2, 1), 4, (y, np.int32(65536)))
else:
    mod.get_function("wild_pointer")((1, 3), 4, (y, np.int64(16)))
print("survived")
"""


@pytest.mark.parametrize("kernel,message", [
    ("big_locals", r"cuda-emu: stack overflow in kernel 'big_locals', blockIdx=\(0,0,0\), "
                   r"threadIdx=\(0,0,0\): the thread used more than its \d+ KiB fiber stack"),
    ("wild_pointer", r"cuda-emu: invalid memory access in kernel 'wild_pointer', "
                     r"blockIdx=\(0,0,0\), threadIdx=\(0,0,0\)\. Probably an index out of bounds")])
def test_a_crash_in_a_kernel_says_where(kernel, message):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-c", CRASH, kernel], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert proc.returncode != 0 and "survived" not in proc.stdout
    if _default_sanitize():  # in the ASan run, ASan reports the crash instead
        assert "ERROR: AddressSanitizer" in proc.stderr
    else:
        assert re.search(message, proc.stderr), proc.stderr[-2000:]


def test_a_larger_fiber_stack_fits_large_locals():
    mod = load("crashes.cu", stack_size=1024 * 1024)
    y = np.zeros(4, np.float32)
    mod.get_function("big_locals")(2, 4, (y, np.int32(65536)))
    assert (y == 65535).all()


# ---- arguments and launch configurations -----------------------------------------------------

def test_python_scalars_are_rejected_with_the_cupy_explanation(reduce_mod):
    x, out = np.ones(4, np.float32), np.zeros(1, np.float32)
    kern = reduce_mod.get_function("block_sum_static")
    with pytest.raises(TypeError, match=r"argument 2 'n' \(`int`\) got a Python int \(4\).*"
                                        r"CuPy.*raw bytes.*np\.int32\(4\)"):
        kern(1, 4, (x, out, 4))
    with pytest.raises(TypeError, match=r"needs a np\.int32, got int64"):
        kern(1, 4, (x, out, np.int64(4)))
    assert out[0] == 0  # nothing ran


def test_python_float_is_rejected_for_a_float_parameter(idx_mod):
    args = [np.zeros(3), np.zeros(2, np.int64), np.int32(1), 0.5, np.float64(1), np.int64(1),
            np.uint32(1)]
    with pytest.raises(TypeError, match=r"argument 3 'f' \(`float`\) got a Python float"):
        idx_mod.get_function("echo_scalars")(1, 1, tuple(args))


def test_arrays_are_checked(reduce_mod):
    kern = reduce_mod.get_function("block_sum_static")
    out, n = np.zeros(1, np.float32), np.int32(4)
    with pytest.raises(TypeError, match=r"argument 0 'x' \(`const float\*`\) needs a float32 "
                                        r"array, got a float64 array"):
        kern(1, 4, (np.ones(4), out, n))
    with pytest.raises(ValueError, match="C-contiguous"):
        kern(1, 4, (np.ones(8, np.float32)[::2], out, n))
    readonly = np.zeros(1, np.float32)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        kern(1, 4, (np.ones(4, np.float32), readonly, n))
    with pytest.raises(TypeError, match="needs a NumPy array, got list"):
        kern(1, 4, ([1.0] * 4, out, n))
    with pytest.raises(TypeError, match=r"takes 3 arguments \(const float\* x, float\* out, int n\)"
                                        r", got 2"):
        kern(1, 4, (np.ones(4, np.float32), out))


@pytest.mark.parametrize("grid,block,error", [
    (1, 1025, ValueError), (1, (32, 32, 2), ValueError), (1, (1, 1, 65), ValueError),
    (0, 32, ValueError), ((1, 65536), 32, ValueError), (1.0, 32, TypeError),
    ((1, 1, 1, 1), 32, TypeError), (1, True, TypeError)])
def test_bad_launch_configurations(grid, block, error):
    with pytest.raises(error):
        check_launch_config(grid, block)


def test_launch_configuration_is_normalized():
    assert check_launch_config(5, (32, 4)) == ((5, 1, 1), (32, 4, 1))
    assert check_launch_config((2**31 - 1, 65535, 65535), (1024, 1, 1))[0] == (2**31 - 1, 65535,
                                                                               65535)


def test_static_shared_memory_size(idx_mod, reduce_mod):
    # indices.cu: float sf[64] + int si[64]; block_reduce.cu: two kernels with float s[256]
    assert idx_mod.static_shared_bytes == 2 * 64 * 4
    assert reduce_mod.static_shared_bytes == 2 * 256 * 4


def test_dynamic_shared_memory_limit_like_a_gpu(reduce_mod):
    kern = reduce_mod.get_function("block_sum_extern_f32")
    x, out = np.ones(8, np.float32), np.zeros(1, np.float32)
    with pytest.raises(ValueError, match="max_dynamic_shared_size_bytes"):
        kern(1, 8, (x, out, np.int32(8)), shared_mem=48 * 1024 + 4)
    assert kern.attributes["max_dynamic_shared_size_bytes"] == 48 * 1024
    kern(1, 8, (x, out, np.int32(8)), shared_mem=32)
    assert out[0] == 8


def test_options_are_filtered():
    assert build.gxx_options(("-DA=1", "--define-macro=B", "-arch=sm_80", "--use_fast_math",
                              "-I/tmp")) == ["-DA=1", "-DB", "-I/tmp"]
    with pytest.raises(ValueError, match="not understood"):
        build.gxx_options(("-O3",))
    with pytest.raises(TypeError):
        build.gxx_options("-DA=1")


def test_unknown_kernel_name(reduce_mod):
    with pytest.raises(KeyError, match="no kernel named 'nope'.*block_sum_static"):
        reduce_mod.get_function("nope")


def test_max_dynamic_shared_size_can_be_raised_like_cupy(reduce_mod):
    kern = load("block_reduce.cu").get_function("block_sum_extern_f64")
    assert kern is not reduce_mod.get_function("block_sum_extern_f64")  # a fresh kernel object
    kern.max_dynamic_shared_size_bytes = 100 * 1024
    x, out = np.ones(1024), np.zeros(1)
    kern(1, 1024, (x, out, np.int32(1024)), shared_mem=100 * 1024)
    assert out[0] == 1024
    with pytest.raises(ValueError, match="227 KiB"):
        kern.max_dynamic_shared_size_bytes = 300 * 1024


# ---- the ucontext fallback, and the build cache ----------------------------------------------

def test_ucontext_fallback_gives_the_same_results_and_errors():
    mod = load("block_reduce.cu", options=("-DEMU_USE_UCONTEXT",))
    assert mod.runtime.startswith("ucontext")
    x = np.random.default_rng(5).standard_normal(300).astype(np.float32)
    out = np.zeros(3, np.float32)
    mod.get_function("block_sum_static")(3, 128, (x, out, np.int32(300)))
    np.testing.assert_allclose(out, block_sums(x, 128), rtol=1e-5, atol=1e-5)
    bugs = load("barrier_bugs.cu", options=("-DEMU_USE_UCONTEXT",))
    with pytest.raises(BarrierError, match="early return"):
        bugs.get_function("early_return")(1, 128, (x[:100], np.zeros(100, np.float32),
                                                   np.int32(100)))


def test_x86_64_uses_the_hand_written_switch(reduce_mod):
    import platform
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("the assembly switch exists for x86-64 only")
    assert reduce_mod.runtime.startswith("x86-64 asm")


SOURCE_WITH_HEADER = """#include "helper.cuh"
extern "C" __global__ void constant(int* y) { y[threadIdx.x] = HELPER_VALUE; }
"""


def test_disk_cache_hits_without_a_compiler_and_header_changes_rebuild(tmp_path, monkeypatch):
    monkeypatch.setenv("CONV3D_CACHE_DIR", str(tmp_path / "cache"))
    header = tmp_path / "helper.cuh"
    header.write_text("#define HELPER_VALUE 7\n")
    opts = [f"-I{tmp_path}"]
    sanitize = _default_sanitize()  # sanitized builds in the ASan run, like EmuModule below
    lib, info = build.build(SOURCE_WITH_HEADER, "kernels/const.cu", opts, sanitize)
    assert lib.parent == tmp_path / "cache" / "emu" and lib.exists()
    assert list(info.kernels) == ["constant"] and str(header) in info.deps

    def no_compiler(*args, **kwargs):
        raise AssertionError(f"compiler run on a cache hit: {args}")
    with monkeypatch.context() as m:
        m.setattr(build.subprocess, "run", no_compiler)
        assert build.build(SOURCE_WITH_HEADER, "kernels/const.cu", opts, sanitize) == (lib, info)

    results = []
    for value in (7, 9):  # the first is the cached build; the second must be a new one
        header.write_text(f"#define HELPER_VALUE {value}\n")
        mod = EmuModule(SOURCE_WITH_HEADER, options=tuple(opts), name="kernels/const.cu")
        y = np.zeros(2, np.int32)
        mod.get_function("constant")(1, 2, (y,))
        results.append(y.tolist())
    assert results == [[7, 7], [9, 9]]
    assert len(list((tmp_path / "cache" / "emu").glob("*.so"))) == 2


def test_unwritable_cache_dir_falls_back_to_a_temporary_one(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("CONV3D_CACHE_DIR", str(blocker))
    path = build.cache_dir()
    assert path.is_dir() and blocker not in path.parents


def test_same_source_shares_one_loaded_library(reduce_mod):
    again = load("block_reduce.cu")
    assert again._lib is reduce_mod._lib


def test_launches_from_several_python_threads(reduce_mod):
    from concurrent.futures import ThreadPoolExecutor
    kern = reduce_mod.get_function("block_sum_static")

    def work(seed):
        x = np.random.default_rng(seed).standard_normal(1000).astype(np.float32)
        out = np.zeros(8, np.float32)
        kern(8, 128, (x, out, np.int32(1000)))
        return np.allclose(out, block_sums(x, 128), rtol=1e-5, atol=1e-5)

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, range(40)))


def test_a_kernel_without_parameters():
    src = ('__device__ int counter;\n'
           'extern "C" __global__ void tick() { atomicAdd(&counter, 1); }\n'
           'extern "C" __global__ void read(int* out) { out[0] = counter; }\n')
    mod = EmuModule(src, name="kernels/tick.cu")
    out = np.zeros(1, np.int32)
    mod.get_function("read")(1, 1, (out,))
    before = int(out[0])
    mod.get_function("tick")((3, 2), (4, 2, 2), ())
    mod.get_function("read")(1, 1, (out,))
    assert out[0] - before == 3 * 2 * 4 * 2 * 2


def test_unsupported_parameter_types_are_named():
    src = ('struct Pair { float a, b; };\n'
           'extern "C" __global__ void k(Pair p, float* y) { y[0] = p.a + p.b; }\n')
    kern = EmuModule(src, name="kernels/pair.cu").get_function("k")
    assert repr(kern.params[0]) == "Pair p"
    with pytest.raises(TypeError, match=r"argument 0 'p' \(`Pair`\): the emulator cannot pass "
                                        r"this type"):
        kern(1, 1, (np.zeros(2, np.float32), np.zeros(1, np.float32)))
