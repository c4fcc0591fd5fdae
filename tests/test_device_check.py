"""``conv3d kernels check --device cuda|cuda-emu --report DIR`` and ``conv3d bench --device cuda``.

The emulation run is checked end to end on the report it writes: every algorithm x case x
dtype row is there and within tolerance, the GPU sections say why they were skipped, every
kernel has resource rows. A sabotaged kernel result must turn its rows into failures (so the
error column can fail). Without a GPU, ``--device cuda`` exits with status 2 and a message and
writes no report (a report of skipped rows would look like a check that ran).
"""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

import conv3d
from conv3d.cli import _device_cases, main
from conv3d.cuda import nvrtc
from conv3d.cuda.provider import CONV_ALGORITHMS, CudaKernels
from conv3d.cuda.sources import KERNELS

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="the emulator needs g++")
HAS_COMPILER = nvrtc.nvrtc_available() or nvrtc.nvcc_path() is not None


def _load(folder):
    md = (folder / "device-check.md").read_text()
    data = json.loads((folder / "device-check.json").read_text())
    return md, data


# slow: every kernel and case (30 s with a cold emulator cache); the default run keeps the
# one-case end-to-end run of test_a_wrong_kernel_result_fails_its_rows_and_the_exit_status
@pytest.mark.slow
@needs_gxx
def test_emulation_check_writes_the_report_with_gpu_rows_skipped(tmp_path, capsys):
    code = main(["kernels", "check", "--device", "cuda-emu", "--report", str(tmp_path),
                 "--arch", "sm_90"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "[2/4]" in out and "[4/4]" in out  # progress lines
    md, data = _load(tmp_path)
    assert md.startswith("# conv3d device check: EMULATION")
    assert "Nothing here is a GPU measurement" in md
    sections = data["sections"]
    reason = "skipped: --device cuda-emu runs no GPU"
    assert sections["gpu_tests"]["status"].startswith(reason)
    assert sections["timings"].startswith(reason)
    assert sections["cupy_attributes"].startswith(reason)
    assert md.count(reason) == 3  # each GPU section says so in the page too
    assert "cuda-emu" in data["command"] and data["info"]["device"] == "cuda-emu"
    for key in ("date", "python", "numpy", "conv3d", "gpu"):
        assert data["info"][key]

    rows = [r for r in sections["comparisons"] if r["section"] == "conv"]
    labels = [c[0] for c in _device_cases.conv_cases()]
    assert any("N=0" in label for label in labels) and any("depthwise" in la for la in labels)
    assert any("grid z > 65,535" in la for la in labels)
    tolerance = {"float32": 1e-4, "float64": 1e-10}
    variants = [v[0] for v in _device_cases.algorithm_variants()]
    assert {"tensor-core tf32", "tensor-core bf16", "tensor-core fp16"} <= set(variants)
    assert set(CONV_ALGORITHMS) - {"tensor-core"} <= set(variants)
    unit = {"tf32": 2.0 ** -11, "bf16": 2.0 ** -8, "fp16": 2.0 ** -11}  # the formats' roundoff
    for algorithm in variants:
        for label in labels:
            for dtype in ("float32", "float64"):
                got = [r for r in rows if (r["algorithm"], r["case"], r["dtype"]) ==
                       (algorithm, label, dtype)]
                assert [r["op"] for r in got] == ["forward (+ bias)", "input gradient",
                                                  "weight gradient"], (algorithm, label, dtype)
                for r in got:
                    tol = tolerance[dtype]
                    tc = algorithm.startswith("tensor-core")
                    if tc and (dtype, r["op"]) == ("float32", "forward (+ bias)"):
                        # inputs rounded to the format: the rounding must show (an exact result
                        # would mean the format never ran), within 8 unit roundoffs
                        tol = 8 * unit[algorithm.split()[1]]
                        assert r["error"] > 1e-5 or label.startswith("empty"), r
                    assert r["status"] == "pass" and r["error"] <= tol, r
                    assert f"| {label} | {algorithm} | {dtype} | {r['op']} |" in md
    others = {r["case"] for r in sections["comparisons"] if r["section"] in ("pool", "resize")}
    assert {"max_pool3d forward", "max_pool3d backward", "avg_pool3d forward",
            "avg_pool3d backward", "resize forward", "resize backward"} <= others
    assert all(r["status"] == "pass" for r in sections["comparisons"])

    resources = sections["resources"]
    for kernel in KERNELS:
        mine = [r for r in resources if r["kernel"] == kernel and r["arch"] == "sm_90"]
        assert mine, kernel
        if not HAS_COMPILER:
            assert all(r["status"].startswith("skipped: no NVRTC") for r in mine)
            continue
        # one entry per dtype; the tensor-core kernel has one per input precision, float32 only
        want = ({f"{kernel}_{p}_f32" for p in ("tf32", "bf16", "fp16")}
                if kernel == "conv3d_implicit_gemm_tc" else {f"{kernel}_f32", f"{kernel}_f64"})
        assert {r["entry"] for r in mine} >= want
        for r in mine:
            assert r["status"] == "ok" and 1 <= r["registers"] <= 255
            assert r["spill_stores"] >= 0 and r["spill_loads"] >= 0
            assert 0 < r["occupancy"] <= 1 and r["threads"] >= 1
    if HAS_COMPILER:
        # the largest tiled launch is a full 8x8x4 tile (the C=12 case's 4x8x8 output)
        tiled = next(r for r in resources if r["entry"] == "conv3d_tiled_f32")
        assert tiled["threads"] == 256 and tiled["dynamic_shared"] > 0


@needs_gxx
def test_a_wrong_kernel_result_fails_its_rows_and_the_exit_status(tmp_path, capsys,
                                                                  monkeypatch):
    original = CudaKernels.conv3d_forward

    def off_by_a_little(self, *args):  # 5% relative: above every tolerance, bf16's 8u included
        y = original(self, *args)
        return y + np.asarray(0.05, y.dtype) * max(1.0, float(np.max(np.abs(y)))) \
            if y.size else y

    monkeypatch.setattr(CudaKernels, "conv3d_forward", off_by_a_little)
    first = _device_cases.conv_cases()[:1]
    monkeypatch.setattr(_device_cases, "conv_cases", lambda: first)
    code = main(["kernels", "check", "--device", "cuda-emu", "--report", str(tmp_path),
                 "--arch", "sm_90", "--dtype", "float32"])
    capsys.readouterr()
    assert code == 1
    _, data = _load(tmp_path)
    rows = [r for r in data["sections"]["comparisons"] if r["section"] == "conv"]
    forward = [r for r in rows if r["op"] == "forward (+ bias)"]
    assert len(forward) == len(_device_cases.algorithm_variants())
    assert all(r["status"].startswith("FAIL: error") for r in forward)
    assert all(r["status"] == "pass" for r in rows if r["op"] != "forward (+ bias)")


@pytest.mark.skipif(conv3d.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_device_without_a_gpu_exits_with_a_clear_message(tmp_path, capsys):
    code = main(["kernels", "check", "--device", "cuda", "--report", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert "cannot run: no CUDA device" in err and "--device cuda-emu" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(conv3d.cuda.is_available(), reason="this machine has a GPU")
def test_bench_on_cuda_without_a_gpu_exits_with_a_clear_message(tmp_path, capsys):
    code = main(["bench", "--device", "cuda", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot run: no CUDA device" in err
    assert not (tmp_path / "b").exists()


def test_report_without_device_is_refused(capsys):
    assert main(["kernels", "check", "--report", "somewhere"]) == 2
    assert "--report goes with --device" in capsys.readouterr().out


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not conv3d.cuda.is_available(),
                    reason="needs CuPy and an NVIDIA GPU (pip install conv3d[gpu])")
@pytest.mark.skipif(os.environ.get("CONV3D_IN_DEVICE_CHECK") == "1",
                    reason="already inside a device check (it runs the GPU tests)")
def test_the_device_check_on_a_gpu(tmp_path, capsys):
    code = main(["kernels", "check", "--device", "cuda", "--report", str(tmp_path)])
    capsys.readouterr()
    md, data = _load(tmp_path)
    assert code == 0, md
    assert md.startswith("# conv3d device check on an NVIDIA GPU")
    assert data["info"]["seconds"] < 240
    timings = data["sections"]["timings"]
    assert any(r["ms"] for r in timings)
    assert all(r["status"] == "pass" for r in data["sections"]["comparisons"])
