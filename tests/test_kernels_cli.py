"""``conv3d kernels``: list, show, launch and check."""
from __future__ import annotations

import re
import shutil

import pytest

from conv3d.cli import main
from conv3d.cuda import KERNELS, kernel_source
from conv3d.cuda.sources import kernel_dir


def test_list_names_every_kernel_file(capsys):
    assert main(["kernels", "list"]) == 0
    out = capsys.readouterr().out
    assert "the source of NAME is kernels/NAME.cu" in " ".join(out.split())
    for name in KERNELS:
        assert re.search(rf"^\s+{name}\s", out, re.M) and (kernel_dir() / f"{name}.cu").is_file()


def test_show_prints_the_source(capsys):
    assert main(["kernels", "show", "conv3d_direct"]) == 0
    out = capsys.readouterr().out
    assert 'extern "C" __global__ void conv3d_direct_f32' in out
    assert kernel_source("conv3d_direct") in out


def test_show_prints_the_shared_header_that_every_kernel_includes(capsys):
    from conv3d.cuda.sources import kernel_dir

    header = (kernel_dir() / "indexing.cuh").read_text()
    assert main(["kernels", "show", "indexing.cuh"]) == 0
    out = capsys.readouterr().out
    assert "// kernels/indexing.cuh" in out and header in out
    for name in KERNELS:  # each kernel relies on it, so it must ship next to them
        assert '#include "indexing.cuh"' in kernel_source(name)


def test_show_unknown_kernel_is_an_error(capsys):
    with pytest.raises(SystemExit):
        main(["kernels", "show", "no_such_kernel"])
    assert "invalid choice" in capsys.readouterr().err


def test_launch_prints_grid_block_shared_memory_and_mapping(capsys):
    code = main(["kernels", "launch", "conv3d_tiled", "--shape", "2,16,9,17,33",
                 "--weight", "20,16,3,3,3", "--padding", "1"])
    out = capsys.readouterr().out
    assert code == 0
    # output 9x17x33 with the largest 8x8x4 tile: ceil(33/8)*ceil(17/8)*ceil(9/4) = 5*3*3 tiles,
    # ceil(20/8) = 3 output-channel chunks, N = 2.
    assert re.search(r"grid\s+\(45, 3, 2\)", out)
    assert re.search(r"block\s+\(8, 8, 4\)", out)
    assert re.search(r"shared mem\s+\d+ bytes", out)
    assert "computes y[n" in out


def test_launch_direct_with_same_padding_and_stride(capsys):
    code = main(["kernels", "launch", "conv3d_direct", "--shape", "1,2,5,5,5", "--weight",
                 "3,2,3,3,3", "--padding", "same", "--stride", "2"])
    out = capsys.readouterr().out
    assert code == 0
    # same with stride 2: output ceil(5/2) = 3 per axis -> 1*3*27 = 81 threads in one block
    assert re.search(r"grid\s+\(1, 1, 1\)", out) and "((n*3 + k)*3 + od)" in out


def test_launch_pool_and_clear_errors(capsys):
    assert main(["kernels", "launch", "max_pool3d_forward", "--shape", "2,3,16,16,16",
                 "--kernel-size", "2"]) == 0
    # 2*3*8*8*8 = 3072 outputs, one thread each, 256 per block
    assert re.search(r"grid\s+\(12, 1, 1\)", capsys.readouterr().out)
    assert main(["kernels", "launch", "conv3d_direct", "--shape", "1,2,5,5,5"]) == 2
    assert "--weight" in capsys.readouterr().out
    assert main(["kernels", "launch", "conv3d_direct", "--shape", "1,4,5,5,5",
                 "--weight", "2,3,1,1,1"]) == 2
    assert "C/groups" in capsys.readouterr().out


def _nvrtc_or_skip():
    try:
        from conv3d.cuda.nvrtc import compile_cubin  # noqa: F401
        compile_cubin('extern "C" __global__ void k(int* a) { a[0] = 1; }', "probe.cu")
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"NVRTC unavailable: {exc}")


@pytest.mark.skipif(shutil.which("g++") is None, reason="the emulator needs g++")
def test_check_compiles_for_each_arch_and_runs_in_emulation(capsys):
    _nvrtc_or_skip()
    code = main(["kernels", "check", "--kernel", "bias_add", "--kernel", "max_pool3d_backward"])
    out = capsys.readouterr().out
    assert code == 0, out
    for arch in ("sm_75", "sm_80", "sm_90"):
        assert len(re.findall(rf"(bias_add|max_pool3d_backward)\s+│\s+{arch}", out)) == 2
    assert "CUBIN" in out and "err" in out


@pytest.mark.skipif(shutil.which("g++") is None, reason="the emulator needs g++")
def test_check_fails_with_nonzero_exit_when_a_kernel_is_wrong(capsys, monkeypatch):
    from conv3d.cli import _kernel_check

    def broken_case(dtype):  # a "kernel" whose result is off by one everywhere
        got, expected = original(dtype)
        return got + 1, expected

    original = _kernel_check.CASES["bias_add"]
    monkeypatch.setitem(_kernel_check.CASES, "bias_add", broken_case)
    code = main(["kernels", "check", "--kernel", "bias_add", "--arch", "sm_80",
                 "--dtype", "float32", "--width", "250"])  # wide: the message on one line
    out = capsys.readouterr().out
    assert code != 0 and "FAIL" in out and "max relative error" in out


def test_launch_tensor_core_kernel_prints_its_tiles(capsys):
    code = main(["kernels", "launch", "conv3d_implicit_gemm_tc", "--shape", "2,16,9,17,33",
                 "--weight", "40,16,3,3,3", "--padding", "1"])
    out = capsys.readouterr().out
    assert code == 0
    # positions 2*9*17*33 = 10098 in tiles of 32: 316; Kg = 40 channels in tiles of 32: 2
    assert re.search(r"grid\s+\(316, 2, 1\)", out) and re.search(r"block\s+\(128, 1, 1\)", out)
    assert "conv3d_implicit_gemm_tc_tf32" in out and "warp w of the block owns" in out


@pytest.mark.skipif(shutil.which("g++") is None, reason="the emulator needs g++")
def test_check_runs_the_tensor_core_kernel_and_says_why_float64_is_skipped(capsys):
    _nvrtc_or_skip()
    code = main(["kernels", "check", "--kernel", "conv3d_implicit_gemm_tc", "--width", "250"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert len(re.findall(r"conv3d_implicit_gemm_tc\s+│\s+sm_(75|80|90)\s+│\s+OK CUBIN", out)) == 3
    assert "float32: err" in out and "float64: skipped (no float64 entry" in out
