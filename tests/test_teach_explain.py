"""conv3d explain: the numbers printed are parsed back and checked against the engine.

References: F.conv3d (the engine), the cube's JSON read directly, and index arithmetic written
here. Nothing is compared with the explain code's own helpers.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

import conv3d.functional as F
from conv3d import Tensor
from conv3d.cli import main

CUBE = Path(__file__).resolve().parent.parent / "conv3d" / "data" / "cube4x4x4.json"
NUM = r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?"
PRODUCT = re.compile(rf"(pad )?({NUM}) × ({NUM}) = ({NUM})")
FINAL = re.compile(rf"^OUTPUT y\[(\d+), (\d+), (\d+), (\d+), (\d+)\] = ({NUM})\s*$", re.M)


def run_cli(capsys, *argv) -> str:
    # wide enough that every table row and sentence is one line, which the regexes below read
    code = main(["explain", "--width", "250", *argv])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def engine(x, w, **kw) -> np.ndarray:
    return F.conv3d(Tensor(x), Tensor(w), **kw).numpy()


def load_cube():
    raw = json.loads(CUBE.read_text())
    return (np.array(raw["input"], dtype=np.float64), np.array(raw["filter"], dtype=np.float64),
            np.array(raw["published_output"], dtype=np.float64))


def test_cube_voxel_001_is_minus_36_with_27_products_and_subtotals(capsys):
    out = run_cli(capsys, "--example", "cube", "--at", "0,0,1")
    x, w, published = load_cube()
    products = PRODUCT.findall(out)
    assert len(products) == 27
    # the products are the receptive field x[0:3, 0:3, 1:4] times the filter, in scan order
    expected_x = x[0:3, 0:3, 1:4].ravel()
    for (pad, xs, ws, ps), xv, wv in zip(products, expected_x, w.ravel()):
        assert pad == ""
        assert float(xs) == xv and float(ws) == wv and float(ps) == xv * wv
    subtotals = [float(v) for v in re.findall(rf"^subtotal kd=(?:\d): .* = ({NUM})$", out, re.M)]
    assert subtotals == [float((x[kd, 0:3, 1:4] * w[kd]).sum()) for kd in range(3)]
    [(n, k, d, h, wi, value)] = FINAL.findall(out)
    y = engine(x[None, None].astype(np.float32), w[None, None].astype(np.float32))
    assert (int(d), int(h), int(wi)) == (0, 0, 1)
    assert float(value) == y[0, 0, 0, 0, 1] == -36
    assert sum(subtotals) == -36
    # the published figure is checked voxel by voxel: every differing voxel is called out
    wrong = {tuple(int(v) for v in i) for i in np.argwhere(np.abs(published - y[0, 0]) > 0)}
    assert wrong == {(0, 0, 1), (1, 1, 0)}
    for idx in wrong:
        pub = int(published[idx])
        assert f"The published figure's {pub} at output {idx} is wrong" in out
        assert f"sum to {int(y[(0, 0) + idx])}" in out
    assert out.count("WRONG") == 2 and out.count("agrees") == 6
    # input and output are labelled; [..] text survives rich's markup parser
    assert "INPUT   x" in out and "OUTPUT  y" in out
    assert "y[0, 0, 0, 0, 1] = (x[0, :, 0:3, 0:3, 1:4] * w[0]).sum() + b[0]" in out


def _write_problem(tmp_path, x, w) -> str:
    path = tmp_path / "problem.json"
    path.write_text(json.dumps({"input": x.tolist(), "filter": w.tolist()}))
    return str(path)


@pytest.mark.parametrize("shape,kernel,stride,padding,dilation,at", [
    ((5, 5, 5), (3, 3, 3), 1, 1, 1, (0, 0, 0)),          # a corner: padding on three faces
    ((5, 6, 4), (3, 2, 3), (2, 1, 2), (1, 0, 1), 1, (2, 3, 1)),
    ((7, 7, 7), (3, 3, 3), 1, 2, 2, (1, 4, 6)),           # dilation
    ((5, 5, 5), (3, 3, 3), 2, "same", 1, (2, 2, 2)),     # 'same' with stride 2: asymmetric
])
def test_any_voxel_matches_the_engine(capsys, tmp_path, shape, kernel, stride, padding,
                                      dilation, at):
    rng = np.random.default_rng(sum(shape))
    x = rng.integers(0, 10, size=shape).astype(np.float64)
    w = rng.integers(-2, 3, size=kernel).astype(np.float64)
    fmt = lambda v: v if isinstance(v, str) else "x".join(map(str, v)) if isinstance(v, tuple) else str(v)  # noqa: E731
    out = run_cli(capsys, "--input-file", _write_problem(tmp_path, x, w), "--stride", fmt(stride),
                  "--padding", fmt(padding), "--dilation", fmt(dilation), "--bias", "0.5",
                  "--at", ",".join(map(str, at)))
    y = F.conv3d(Tensor(x[None, None]), Tensor(w[None, None]), Tensor(np.array([0.5])),
                 stride=stride, padding=padding, dilation=dilation).numpy()
    [(*_, value)] = FINAL.findall(out)
    assert float(value) == pytest.approx(y[(0, 0) + at])
    products = PRODUCT.findall(out)
    assert len(products) == int(np.prod(kernel))
    # padding cells: count the taps whose input index falls outside, with the formula here
    s = (stride,) * 3 if isinstance(stride, int) else stride
    dl = (dilation,) * 3
    if padding == "same":
        lo = []
        for i, k, st in zip(shape, kernel, s):
            o = -(-i // st)
            lo.append(max((o - 1) * st + (k - 1) + 1 - i, 0) // 2)
    else:
        lo = [padding] * 3 if isinstance(padding, int) else list(padding)
    idx = [[o * st - p + t * d for t in range(k)] for o, st, p, d, k in zip(at, s, lo, dl, kernel)]
    n_pad = sum(not all(0 <= i < n for i, n in zip(c, shape))
                for c in np.stack(np.meshgrid(*idx, indexing="ij"), -1).reshape(-1, 3))
    assert sum(1 for p in products if p[0]) == n_pad
    assert sum(float(p[3]) for p in products) + 0.5 == pytest.approx(float(value))


def test_multichannel_voxel_matches_the_engine(capsys, tmp_path):
    rng = np.random.default_rng(5)
    x = rng.integers(0, 10, size=(2, 3, 4, 4, 4)).astype(np.float64)
    np.save(tmp_path / "x.npy", x)
    out = run_cli(capsys, "--input-file", str(tmp_path / "x.npy"), "--kernel", "2x2x2",
                  "--out-channels", "2", "--random", "9", "--at", "1,1,2,0,2")
    # the weights are random: read them back from the products (x values are known here)
    products = PRODUCT.findall(out)
    assert len(products) == 3 * 8
    xs = np.array([float(p[1]) for p in products]).reshape(3, 2, 2, 2)
    np.testing.assert_array_equal(xs, x[1, :, 2:4, 0:2, 2:4])
    w1 = np.array([float(p[2]) for p in products]).reshape(1, 3, 2, 2, 2)
    [(*_, value)] = FINAL.findall(out)
    assert float(value) == engine(x[1:2, :, 2:4, 0:2, 2:4], w1)[0, 0, 0, 0, 0]


def test_step_walks_every_voxel_in_order_non_interactive(capsys):
    out = run_cli(capsys, "--example", "cube", "--step")
    x, w, _ = load_cube()
    y = engine(x[None, None], w[None, None])[0, 0]
    found = FINAL.findall(out)
    assert [tuple(map(int, f[2:5])) for f in found] == [tuple(i) for i in np.ndindex(2, 2, 2)]
    assert [float(f[5]) for f in found] == list(y.ravel())
    assert re.findall(r"step (\d)/8", out) == [str(i) for i in range(1, 9)]


def test_step_interactive_keys_next_previous_quit():
    from conv3d.teach.explain import all_positions, explain_voxel, step_through
    from conv3d.teach.problem import make_problem
    pr = make_problem(example="cube")
    buf = io.StringIO()
    shown = step_through(all_positions(pr), lambda at: explain_voxel(pr, at, False), "markdown",
                         buf, io.StringIO("n\nn\np\nq\n"), interactive=True)
    out = buf.getvalue()
    assert shown == 4
    assert re.findall(r"step (\d)/8", out) == ["1", "2", "3", "2"]
    values = [float(v) for v in re.findall(rf"^OUTPUT y\[[^\]]*\] = ({NUM})", out, re.M)]
    y = engine(pr.x, pr.w).ravel()
    assert values == [y[0], y[1], y[2], y[1]]


def test_markdown_and_latex_handouts_carry_the_numbers(capsys):
    md = run_cli(capsys, "--example", "cube", "--at", "1,1,0", "--markdown")
    assert md.count("| kh=") == 9 and "OUTPUT y\\[0, 0, 1, 1, 0\\] = -18" not in md
    assert re.search(r"^OUTPUT y\[0, 0, 1, 1, 0\] = -18$", md, re.M)
    assert "published figure's -22 at output (1, 1, 0) is wrong" in md
    tex = run_cli(capsys, "--example", "cube", "--at", "1,1,0", "--latex")
    assert tex.count("\\begin{tabular}") == 1 + 3 + 1  # sizes, 3 kernel slices, published check
    assert "$\\times$" in tex and "OUTPUT y[0, 0, 1, 1, 0] = -18" in tex
    assert len(PRODUCT.findall(tex.replace("$\\times$", "×"))) == 27


def test_bad_arguments_give_clear_errors(capsys):
    assert main(["explain", "--example", "cube", "--at", "2,0,0"]) == 2
    err = capsys.readouterr().err
    assert "od=2" in err and "(1, 1, 2, 2, 2)" in err
    assert main(["explain", "--input", "2x2x2", "--kernel", "3x3x3"]) == 2
    assert "kernel is larger than the padded input" in capsys.readouterr().err
    assert main(["explain", "--input", "4x4", "--kernel", "3"]) == 2
    assert "3 values" in capsys.readouterr().err
    assert main(["explain", "--example", "cube", "--kernel", "2"]) == 2
    assert "conflicts with the 3x3x3 filter" in capsys.readouterr().err


hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(data=st.data())
def test_random_geometries_parse_back_to_the_engine(data):
    """Any size/kernel/stride/padding/dilation: the printed voxel equals F.conv3d's."""
    from conv3d.teach.explain import explain_voxel
    from conv3d.teach.problem import make_problem
    from conv3d.teach.report import render_to_string
    k = tuple(data.draw(st.integers(1, 3)) for _ in range(3))
    d = tuple(data.draw(st.integers(1, 2)) for _ in range(3))
    s = tuple(data.draw(st.integers(1, 3)) for _ in range(3))
    p = tuple(data.draw(st.integers(0, 2)) for _ in range(3))
    size = tuple(max(data.draw(st.integers(1, 6)), dd * (kk - 1) + 1 - 2 * pp)
                 for kk, dd, pp in zip(k, d, p))
    c = data.draw(st.integers(1, 2))
    pr = make_problem(input_size="x".join(map(str, size)), kernel="x".join(map(str, k)),
                      stride="x".join(map(str, s)), padding="x".join(map(str, p)),
                      dilation="x".join(map(str, d)), in_channels=c, out_channels=2,
                      seed=data.draw(st.integers(0, 99)), bias=1.5)
    y = F.conv3d(Tensor(pr.x), Tensor(pr.w), Tensor(pr.b), stride=s, padding=p, dilation=d).numpy()
    at = (0, data.draw(st.integers(0, 1))) + tuple(data.draw(st.integers(0, o - 1)) for o in y.shape[2:])
    text = render_to_string(explain_voxel(pr, at), "markdown")
    [(*_, value)] = FINAL.findall(text)
    assert float(value) == pytest.approx(y[at])
    assert len(PRODUCT.findall(text)) == c * k[0] * k[1] * k[2]
