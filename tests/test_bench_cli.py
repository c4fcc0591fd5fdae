"""``conv3d bench --quick`` writes the Markdown table and the PNG chart (numbers not asserted:
speed is measured in benchmarks/, never asserted in tests)."""
import json
import subprocess
import sys

import pytest


@pytest.mark.slow  # the whole benchmark harness, end to end: about a minute
def test_bench_quick_writes_table_and_chart(tmp_path):
    pytest.importorskip("matplotlib")
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
    for name in ("conv3d auto (fast path)", "conv3d reference (readable im2col)",
                 "conv3d im2col", "conv3d per-offset", "conv3d numba",
                 "naive loops (float64, tests/reference.py)"):
        assert name in impls
        assert f"| {name} |" in md
    # every row ran and agreed with the reference, or says why it did not run
    for r in rows:
        assert r["status"] == "ok" or r["status"].startswith("skipped: "), r
        assert (r["ms"] is not None) == (r["status"] == "ok")
    gpu_rows = [r for r in rows if "GPU" in r["impl"]]
    assert gpu_rows  # present as rows, run or skipped with the reason


def test_bench_rejects_unknown_shapes(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "conv3d", "bench", "--quick", "--shapes", "zz",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "unknown shape" in proc.stderr


@pytest.mark.slow  # times three rounds of first calls in fresh processes
def test_first_call_script_times_three_ways(tmp_path):
    """benchmarks/first_call.py (the numbers behind the harness's untimed call) runs and prints
    one line per way of timing, each with a ratio (times not asserted)."""
    pytest.importorskip("torch")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.first_call", "--shape", "cube",
                           "--rounds", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["pause", "pause+warm", "back-to-back"]
    assert all("ratio" in line for line in lines)
