"""Terminal output fits the width it is given: COLUMNS, ``--width N``, or 80 when piped.

The commands run in-process (``conv3d.cli.main``; capsys makes stdout a pipe, not a terminal),
and one runs as a real subprocess piped into this test. Besides the width, each test checks that
the numbers are still all there, against values worked out here independently of the engine.
"""
import json
import os
import re
import subprocess
import sys
from importlib import resources

import numpy as np
import pytest

from conv3d.cli import main


def run(capsys, argv):
    assert main(argv) in (0, 1)  # shapes exits 1 only when a layer has no output voxel
    return capsys.readouterr().out


def widest(text):
    return max(len(line) for line in text.splitlines())


def words(text):
    """The text with line breaks and runs of spaces as single spaces: a wrapped line of text (not
    a wrapped table cell: its neighbours' lines interleave) reads the same as an unwrapped one."""
    return " ".join(text.split())


def naive_cube_voxel(d, h, w):
    """float64 loop over the shipped cube json: the true value of one output voxel."""
    cube = json.loads(resources.files("conv3d").joinpath("data/cube4x4x4.json").read_text())
    x, k = np.asarray(cube["input"], float), np.asarray(cube["filter"], float)
    subtotals = [sum(x[d + i, h + j, w + m] * k[i, j, m] for j in range(3) for m in range(3))
                 for i in range(3)]
    return int(sum(subtotals)), [int(s) for s in subtotals]


COMMANDS = {
    "explain": ["explain", "--example", "cube", "--at", "0,0,1"],
    "shapes": ["shapes", "keras-3d-mnist"],
    "kernels": ["kernels", "list"],
    "demo": ["demo"],
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
@pytest.mark.parametrize("columns, width", [("80", None), (None, None), ("200", 80),
                                            ("80", 120)])
def test_lines_fit_the_width(capsys, monkeypatch, name, columns, width):
    """COLUMNS=80 -> 80; piped with no COLUMNS -> 80; --width wins over COLUMNS."""
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    argv = COMMANDS[name] + ([] if width is None else ["--width", str(width)])
    out = run(capsys, argv)
    limit = width or int(columns or 80)
    assert widest(out) <= limit, f"a line of {limit}-column output is {widest(out)} wide"
    if width == 120:  # wider is really used, not a fixed 80
        assert widest(out) > 80


@pytest.mark.parametrize("width", ["80", "120"])
def test_explain_cube_keeps_every_number(capsys, monkeypatch, width):
    monkeypatch.setenv("COLUMNS", width)
    out = words(run(capsys, COMMANDS["explain"]))
    value, subtotals = naive_cube_voxel(0, 0, 1)
    assert value == -36  # the worked example's true value (the published figure says -38)
    assert f"OUTPUT y[0, 0, 0, 0, 1] = {value}" in out
    for kd, s in enumerate(subtotals):
        assert f"subtotal kd={kd}:" in out and f"= {s}" in out
    assert f"sum of slice subtotals = {' + '.join(f'({s})' for s in subtotals)} = {value}" in out


@pytest.mark.parametrize("width", ["80", "120"])
def test_shapes_keeps_every_number(capsys, monkeypatch, width):
    monkeypatch.setenv("COLUMNS", width)
    out = words(run(capsys, COMMANDS["shapes"]))
    # keras-3d-mnist: input 1x16^3; conv k=3 c=32; maxpool 2; conv k=3 c=64; maxpool 2
    sizes = [16 - 3 + 1]                 # 14
    sizes.append(sizes[-1] // 2)         # 7
    sizes.append(sizes[-1] - 3 + 1)      # 5
    sizes.append(sizes[-1] // 2)         # 2
    for c, o in zip((32, 32, 64, 64), sizes):
        assert f"{c}x{o}x{o}x{o}" in out
    assert str(32 * 1 * 27 + 32) in out and str(64 * 32 * 27 + 64) in out  # parameters
    assert "10x10x10" in out                                             # the last receptive field
    assert "3/2" in out and "never visited" in out  # the last pool: (5 - 2) / 2 is not whole


def test_kernels_list_names_every_kernel(capsys, monkeypatch):
    from conv3d.cuda.sources import KERNELS
    monkeypatch.setenv("COLUMNS", "80")
    out = run(capsys, COMMANDS["kernels"])
    assert "the source of NAME is kernels/NAME.cu" in words(out)
    for name, description in KERNELS.items():
        assert re.search(rf"^\s+{name}\s", out, re.M)  # a whole name at the start of a line
        assert description.split()[0] in out


def test_demo_wraps_its_sums_without_losing_a_term(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out = words(run(capsys, COMMANDS["demo"]))
    value, subtotals = naive_cube_voxel(0, 0, 1)
    assert f"total = {' + '.join(f'({s})' for s in subtotals)} = {value}" in out
    cube = json.loads(resources.files("conv3d").joinpath("data/cube4x4x4.json").read_text())
    x, k = np.asarray(cube["input"]), np.asarray(cube["filter"])
    products = " + ".join(f"{x[0, j, 1 + m]}*{k[0, j, m]}" if k[0, j, m] >= 0 else
                          f"{x[0, j, 1 + m]}*({k[0, j, m]})" for j in range(3) for m in range(3))
    assert f"{products} = {subtotals[0]}" in out  # slice kd=0 of voxel (0,0,1), all 9 terms


def test_width_too_small_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["shapes", "keras-3d-mnist", "--width", "5"])
    assert exc.value.code == 2
    assert "--width" in capsys.readouterr().err


def test_piped_subprocess_uses_80_columns():
    """A real pipe, with COLUMNS unset: 80 columns, whatever terminal the test runs in."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.run([sys.executable, "-m", "conv3d", *COMMANDS["shapes"]], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 60 < widest(proc.stdout) <= 80
