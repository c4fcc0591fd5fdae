"""``conv3d bench``: the command line, where it writes, and the issue 6 suite end to end (numbers
not asserted: speed is measured by the suite, never asserted in tests)."""
import json
import os
import subprocess
import sys

import pytest

from conv3d.bench import run as bench_run
from conv3d.cli import main as cli_main

SMALL_CONV = "s3d features.14.branch2.0.0"   # a 1x1x1 conv on 832x2x3x3: milliseconds
SMALL_POOL = "s3d features.14.branch3.0"     # a 3x3x3 max pool on 832x2x3x3


@pytest.mark.parametrize("option, value", [("--repeats", "0"), ("--repeats", "-3"),
                                           ("--threads", "0"), ("--max-layers", "0"),
                                           ("--budget", "-1"), ("--repeats", "two")])
def test_non_positive_counts_are_usage_errors(option, value, capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["bench", option, value])
    assert exc.value.code == 2
    assert option in capsys.readouterr().err


def test_default_out_is_a_new_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = bench_run.default_out()
    assert first.startswith("conv3d-bench-") and not os.path.exists(first)
    os.mkdir(first)                       # a run made it: the next name differs
    second = bench_run.default_out()
    assert second != first and not os.path.exists(second)
    assert bench_run.build_parser().parse_args([]).out is None   # never docs/benchmarks


@pytest.mark.slow  # a real `conv3d bench --quick` in a subprocess: about 6-10 s
def test_bench_runs_outside_the_repository(tmp_path):
    """From a directory outside the checkout, without --out: a new conv3d-bench-* folder there
    holds the report, whose one layer row has a ratio and was checked against PyTorch."""
    pytest.importorskip("torch")
    proc = subprocess.run([sys.executable, "-m", "conv3d", "bench", "--suite", "layers",
                           "--quick", "--filter", SMALL_CONV], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    made = [p for p in tmp_path.iterdir() if p.name.startswith("conv3d-bench-")]
    assert len(made) == 1, list(tmp_path.iterdir())
    md = (made[0] / "quick.md").read_text()
    assert f"| {SMALL_CONV} N=1 |" in md and "geometric mean" in md
    rows = json.loads((made[0] / "quick.json").read_text())["rows"]
    ours = [r for r in rows if r["impl"] == "conv3d auto"]
    assert len(ours) == 2 and all(r["checked"] and r["best_ratio"] > 0 for r in ours), ours


def test_bench_without_torch_says_how_to_get_the_rows(tmp_path, monkeypatch, capsys):
    """With torch unimportable the PyTorch rows are skipped, conv3d's rows are checked against
    conv3d's readable reference, and both the output and the report name the extra to install."""
    monkeypatch.setitem(sys.modules, "torch", None)   # `import torch` now raises ImportError
    code = bench_run.main(["--suite", "layers", "--quick", "--filter", SMALL_POOL,
                           "--out", str(tmp_path)])
    assert code == 0
    hint = "pip install 'conv3d[torch]'"
    assert hint in capsys.readouterr().out
    assert hint in (tmp_path / "quick.md").read_text()
    rows = json.loads((tmp_path / "quick.json").read_text())["rows"]
    assert {r["status"] for r in rows if r["impl"] == "PyTorch (peer)"} == {
        "skipped: torch not installed"}
    ours = [r for r in rows if r["impl"] == "conv3d auto"]
    assert len(ours) == 2 and all(r["checked"] and r["status"] == "ok" for r in ours)


@pytest.mark.slow  # the whole benchmark harness, end to end: about a minute
def test_bench_quick_writes_table_and_chart(tmp_path):
    """The issue 6 suite at --quick (about a minute on 2 cores)."""
    pytest.importorskip("matplotlib")
    from conv3d.ops.fast import STRATEGIES
    out = tmp_path / "bench"
    proc = subprocess.run([sys.executable, "-m", "conv3d", "bench", "--quick", "--out", str(out),
                           "--only", "conv,pool", "--repeats", "1"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = (out / "quick.md").read_text()
    png = (out / "quick.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    assert "conv3d bench --quick" in md            # the command that made it
    assert "BLAS threads" in md and "cores" in md  # machine and threads
    rows = json.loads((out / "quick.json").read_text())["rows"]
    impls = {r["impl"] for r in rows}
    names = ["conv3d auto (fast path)", "conv3d reference (readable im2col)",
             "naive loops (float64, tests/reference.py)"]
    names += [f"conv3d {s}" for s in STRATEGIES if s not in ("auto", "reference")]
    for name in names:
        assert name in impls
        assert f"| {name} |" in md
    # every row ran and agreed with the reference, or says why it did not run
    for r in rows:
        assert r["status"] == "ok" or r["status"].startswith("skipped: "), r
        assert (r["ms"] is not None) == (r["status"] == "ok")
    gpu_rows = [r for r in rows if "GPU" in r["impl"]]
    assert gpu_rows  # present as rows, run or skipped with the reason


def test_bench_rejects_unknown_shapes(tmp_path, capsys):
    code = bench_run.main(["--quick", "--shapes", "zz", "--out", str(tmp_path)])
    assert code == 2 and "unknown shape" in capsys.readouterr().err


@pytest.mark.slow  # times three rounds of first calls in fresh processes
def test_first_call_script_times_three_ways(tmp_path):
    """benchmarks/first_call.py (the numbers behind the harness's untimed call) runs and prints
    one line per way of timing, each with a ratio (times not asserted)."""
    pytest.importorskip("torch")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-m", "benchmarks.first_call", "--shape", "cube",
                           "--rounds", "1"], capture_output=True, text=True, timeout=300,
                          cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["pause", "pause+warm", "back-to-back"]
    assert all("ratio" in line for line in lines)
