"""The backward, im2col, pooling and (2+1)D views: numbers parsed from the text, checked against
the engine (autograd through F.conv3d / F.max_pool3d / F.avg_pool3d, conv3d.ops.im2col.vol2col).
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

import conv3d.functional as F
from conv3d import Tensor
from conv3d.cli import main

NUM = r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?"
TERM = re.compile(rf"({NUM}) × ({NUM}) = ({NUM})")


def run_cli(capsys, *argv) -> str:
    # wide enough that every table row and sentence is one line, which the regexes below read
    code = main(["explain", "--width", "250", *argv])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def problem_file(tmp_path, x, w) -> str:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"input": x.tolist(), "filter": w.tolist()}))
    return str(path)


CASES = [  # shape, kernel, stride, padding, dilation
    ((4, 4, 4), (3, 3, 3), 1, 0, 1),
    ((5, 5, 4), (3, 3, 2), 2, 1, 1),
    ((6, 5, 5), (2, 3, 3), 1, (1, 0, 1), 2),
]


def _arg(v):
    return "x".join(map(str, v)) if isinstance(v, tuple) else str(v)


@pytest.mark.parametrize("shape,kernel,stride,padding,dilation", CASES)
def test_input_gradient_matches_autograd(capsys, tmp_path, shape, kernel, stride, padding, dilation):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 10, size=shape).astype(np.float64)
    w = rng.integers(-3, 4, size=kernel).astype(np.float64)
    xt = Tensor(x[None, None], requires_grad=True)
    y = F.conv3d(xt, Tensor(w[None, None]), stride=stride, padding=padding, dilation=dilation)
    y.sum().backward()  # dL/dy = ones
    path = problem_file(tmp_path, x, w)
    for at in [(0, 0, 0), tuple(s // 2 for s in shape), tuple(s - 1 for s in shape)]:
        out = run_cli(capsys, "--input-file", path, "--grad", "input", "--at", ",".join(map(str, at)),
                      "--stride", _arg(stride), "--padding", _arg(padding), "--dilation", _arg(dilation))
        m = re.search(rf"^INPUT GRADIENT ∂L/∂x\[0, 0, {', '.join(map(str, at))}\] = ({NUM})$", out, re.M)
        assert m, out
        assert float(m.group(1)) == pytest.approx(xt.grad[(0, 0) + at])
        terms = TERM.findall(out)
        assert sum(float(t[2]) for t in terms) == pytest.approx(float(m.group(1)))
        assert all(float(t[0]) == 1.0 for t in terms)  # dL/dy = 1 everywhere
        assert all(float(t[1]) in w for t in terms)


def test_weight_gradient_with_random_upstream_matches_autograd(capsys, tmp_path):
    from conv3d.teach.grad import upstream_gradient
    from conv3d.teach.problem import make_problem
    rng = np.random.default_rng(2)
    x = rng.integers(0, 10, size=(5, 4, 5)).astype(np.float64)
    w = rng.integers(-2, 3, size=(3, 2, 3)).astype(np.float64)
    path = problem_file(tmp_path, x, w)
    pr = make_problem(input_file=path, stride="2x1x2", padding="1")
    gy = upstream_gradient(pr, "random", 0)  # the upstream gradient is data: take it as given
    wt = Tensor(w[None, None], requires_grad=True)
    y = F.conv3d(Tensor(x[None, None]), wt, stride=(2, 1, 2), padding=1)
    assert y.shape == gy.shape
    y.backward(gy)
    for at in [(0, 0, 0), (2, 1, 2), (1, 0, 1)]:
        out = run_cli(capsys, "--input-file", path, "--grad", "weight", "--grad-output", "random",
                      "--stride", "2x1x2", "--padding", "1", "--at", ",".join(map(str, at)))
        m = re.search(rf"^WEIGHT GRADIENT ∂L/∂w\[0, 0, {', '.join(map(str, at))}\] = ({NUM})$",
                      out, re.M)
        assert float(m.group(1)) == pytest.approx(wt.grad[(0, 0) + at])
        assert len(TERM.findall(out)) == int(np.prod(y.shape))  # one term per output voxel


def test_grad_step_walks_every_input_voxel(capsys):
    out = run_cli(capsys, "--example", "cube", "--grad", "input", "--step")
    from conv3d.teach.problem import make_problem
    pr = make_problem(example="cube")
    xt = Tensor(pr.x, requires_grad=True)
    F.conv3d(xt, Tensor(pr.w)).sum().backward()
    values = [float(v) for v in re.findall(rf"^INPUT GRADIENT ∂L/∂x\[[^\]]*\] = ({NUM})$", out, re.M)]
    assert values == list(xt.grad.ravel())


def test_im2col_matrix_and_gemm_match_vol2col_and_conv(capsys):
    from conv3d.ops.im2col import vol2col
    out = run_cli(capsys, "--input", "3x4x4", "--kernel", "2x2x2", "--in-channels", "2",
                  "--out-channels", "2", "--batch", "2", "--random", "3", "--stride", "1x2x1",
                  "--padding", "1", "--im2col")
    from conv3d.teach.problem import make_problem
    pr = make_problem(input_size="3x4x4", kernel="2x2x2", in_channels=2, out_channels=2, batch=2,
                      seed=3, stride="1x2x1", padding="1")
    col = vol2col(pr.x, (2, 2, 2), (1, 2, 1), ((1, 1),) * 3, (1, 1, 1))
    N, C, kD, kH, kW, OD, OH, OW = col.shape
    ref = col.transpose(1, 2, 3, 4, 0, 5, 6, 7).reshape(C * kD * kH * kW, N * OD * OH * OW)
    rows = re.findall(r"^\s*\((\d), (\d), (\d), (\d)\)\s+(.*)$", out, re.M)
    assert len(rows) == C * kD * kH * kW
    header = re.search(r"row \(c,kd,kh,kw\)\s+W\[0\]\s+W\[1\]\s+(.*)$", out, re.M).group(1).split()
    ncols = len(header)
    assert ncols == min(16, N * OD * OH * OW)
    for r, (c, kd, kh, kw, rest) in enumerate(rows):
        assert r == ((int(c) * kD + int(kd)) * kH + int(kh)) * kW + int(kw)
        vals = [float(v) for v in rest.split()]
        assert vals[:2] == [pr.w[0].ravel()[r], pr.w[1].ravel()[r]]
        assert vals[2:] == list(ref[r, :ncols])
    y = F.conv3d(Tensor(pr.x), Tensor(pr.w), stride=(1, 2, 1), padding=1).numpy()
    Y = y.transpose(1, 0, 2, 3, 4).reshape(2, -1)
    for k in range(2):
        got = [float(v) for v in re.search(rf"^\s*Y\[{k}\]\s+(.*)$", out, re.M).group(1).split()]
        assert got == list(Y[k, :ncols])
    m = re.search(r"cols (\d+) × (\d+) = (\d+) values = (\d+) bytes", out)
    assert tuple(map(int, m.groups())) == (ref.shape[0], ref.shape[1], ref.size, ref.size * 4)


def _parse_grad_tables(out, shape):
    D, H, W = shape
    g = np.full(shape, np.nan)
    for d in range(D):
        block = out.split(f"∂L/∂x, INPUT depth slice d={d}")[1]
        for h in range(H):
            vals = re.search(rf"^\s*h={h}\s+(.*)$", block, re.M).group(1).split()
            g[d, h] = [float(v) for v in vals[:W]]
    return g


@pytest.mark.parametrize("kernel,stride,padding,dilation", [
    ("2", None, "0", "1"), ("3", "2", "1", "1"), ("2", "1", "0", "2")])
def test_max_pool_winner_value_and_gradient(capsys, tmp_path, kernel, stride, padding, dilation):
    rng = np.random.default_rng(4)
    x = rng.integers(0, 6, size=(4, 5, 5)).astype(np.float64)  # small range: ties happen
    path = problem_file(tmp_path, x, np.ones((1, 1, 1)))
    k = int(kernel)
    s = int(stride) if stride else k
    kw = dict(kernel_size=k, stride=s, padding=int(padding), dilation=int(dilation))
    xt = Tensor(x[None, None], requires_grad=True)
    y = F.max_pool3d(xt, **kw)
    y.sum().backward()
    extra = ["--stride", stride] if stride else []
    at = (1, 1, 0)
    out = run_cli(capsys, "--input-file", path, "--kernel", kernel, "--padding", padding,
                  "--dilation", dilation, "--pool", "max", "--at", "1,1,0", *extra)
    value = float(re.search(rf"^OUTPUT y\[1, 1, 0\] = ({NUM})$", out, re.M).group(1))
    assert value == y.numpy()[(0, 0) + at]
    win = re.search(r"is x\[(\d+), (\d+), (\d+)\] = .* \(flat index d\*H\*W \+ h\*W \+ w = (\d+)", out)
    d, h, w_, flat = map(int, win.groups())
    assert flat == d * 25 + h * 5 + w_
    # the winner is where this window's gradient lands: autograd of y[at] alone
    xt2 = Tensor(x[None, None], requires_grad=True)
    y2 = F.max_pool3d(xt2, **kw)
    onehot = np.zeros(y2.shape)
    onehot[(0, 0) + at] = 1
    y2.backward(onehot)
    assert list(zip(*np.nonzero(xt2.grad[0, 0]))) == [(d, h, w_)]
    np.testing.assert_array_equal(_parse_grad_tables(out, x.shape), xt.grad[0, 0])


@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_value_divisor_and_gradient(capsys, tmp_path, count_include_pad):
    rng = np.random.default_rng(6)
    x = rng.integers(0, 10, size=(5, 5, 5)).astype(np.float64)
    path = problem_file(tmp_path, x, np.ones((1, 1, 1)))
    kw = dict(kernel_size=3, stride=2, padding=1, count_include_pad=count_include_pad)
    xt = Tensor(x[None, None], requires_grad=True)
    y = F.avg_pool3d(xt, **kw)
    y.sum().backward()
    flag = [] if count_include_pad else ["--no-count-include-pad"]
    for at in [(0, 0, 0), (1, 2, 1)]:
        out = run_cli(capsys, "--input-file", path, "--kernel", "3", "--stride", "2", "--padding",
                      "1", "--pool", "avg", "--at", ",".join(map(str, at)), *flag)
        value = float(re.search(rf"^OUTPUT y\[{', '.join(map(str, at))}\] = ({NUM})$", out,
                                re.M).group(1))
        assert value == pytest.approx(y.numpy()[(0, 0) + at], rel=1e-5)
        div = int(re.search(r"^divisor = (\d+)", out, re.M).group(1))
        lo = [max(a * 2 - 1, 0) for a in at]
        hi = [min(a * 2 - 1 + 3, 5) for a in at]
        real = int(np.prod([h - lw for lw, h in zip(lo, hi)]))
        window = int(np.prod([min(a * 2 - 1 + 3, 6) - (a * 2 - 1) for a in at]))
        assert div == (window if count_include_pad else real)
        np.testing.assert_allclose(_parse_grad_tables(out, x.shape), xt.grad[0, 0], atol=1e-5)


def test_factorized_view_rule_params_and_value(capsys):
    out = run_cli(capsys, "--input", "4x5x5", "--kernel", "3x3x3", "--in-channels", "2",
                  "--out-channels", "3", "--padding", "1", "--factorized", "--at", "2,1,3,4")
    t, d, cin, cout = 3, 3, 2, 3
    mid = int(re.search(r"^Mid-channel rule: M = .* = (\d+)$", out, re.M).group(1))
    assert mid == (t * d * d * cin * cout) // (d * d * cin + t * cout)
    params = {name: int(v) for name, v in re.findall(
        r"^\s*(full 3D conv|\(2\+1\)D spatial pass|\(2\+1\)D temporal pass|\(2\+1\)D total)\s+.*?(\d+)\s*$",
        out, re.M)}
    assert params["full 3D conv"] == t * d * d * cin * cout
    assert params["(2+1)D spatial pass"] == mid * cin * d * d
    assert params["(2+1)D temporal pass"] == cout * mid * t
    nn = pytest.importorskip("conv3d.nn.conv2plus1d")
    block = nn.Conv2Plus1d(cin, cout, 3, padding=1)
    assert block.mid_channels == mid
    assert block.conv_weight_count() == params["(2+1)D total"]
    assert block.full_conv_weight_count() == params["full 3D conv"]
    # the worked voxel: two engine convolutions with the view's (data) weights
    from conv3d.teach.factorized_view import build_factorized
    from conv3d.teach.problem import make_problem
    pr = make_problem(input_size="4x5x5", in_channels=2)
    fp = build_factorized(pr.x[0], 3, 3, 3, padding=(1, 1, 1), seed=0)
    mid_vol = F.conv3d(Tensor(pr.x), Tensor(fp.w1), padding=(0, 1, 1))
    y = F.conv3d(mid_vol, Tensor(fp.w2), padding=(1, 0, 0)).numpy()
    value = float(re.search(rf"^OUTPUT y\[2, 1, 3, 4\] = ({NUM})$", out, re.M).group(1))
    assert value == y[0, 2, 1, 3, 4]
    terms = TERM.findall(out.split("Temporal pass")[1].split("Each middle value")[0])
    assert len(terms) == mid * t
