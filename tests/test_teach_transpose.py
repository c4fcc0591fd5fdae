"""conv3d explain --op conv_transpose3d and the checkerboard demonstration: the printed numbers are
parsed back and checked against an independent naive scatter loop written here and against
F.conv_transpose3d (and, for the demonstration, against counts worked out by hand)."""
from __future__ import annotations

import itertools
import shlex
import re
from pathlib import Path

import numpy as np
import pytest

import conv3d.functional as F
from conv3d import Tensor
from conv3d.cli import main
from conv3d.teach.transpose_view import checkerboard_demo, make_transpose_problem

NUM = r"-?\d+(?:\.\d+)?"
ROW = re.compile(rf"(y|x)\[([\d, ]+)\]\s+│?\s*w\[([\d, ]+)\]\s+│?\s*"
                 rf"({NUM}) × ({NUM}) = ({NUM})")
FINAL = re.compile(rf"^OUTPUT y\[([\d, ]+)\] = ({NUM})\s*$", re.M)


def naive_transpose(x, w, s, p, op, d):
    """y[k, o] += x[c, i] * w[c, k, t] at o = i*s - p + t*d: the definition, one loop per index."""
    N, C = x.shape[:2]
    K = w.shape[1]
    out = [(i - 1) * s_ - 2 * p_ + d_ * (k - 1) + op_ + 1
           for i, k, s_, p_, op_, d_ in zip(x.shape[2:], w.shape[2:], s, p, op, d)]
    y = np.zeros((N, K, *out))
    hits = {}
    for n, c, *i in itertools.product(*(range(v) for v in x.shape[:2] + x.shape[2:])):
        for k, *t in itertools.product(range(K), *(range(v) for v in w.shape[2:])):
            o = tuple(i[a] * s[a] - p[a] + t[a] * d[a] for a in range(3))
            if all(0 <= o[a] < out[a] for a in range(3)):
                product = x[(n, c, *i)] * w[(c, k, *t)]
                y[(n, k, *o)] += product
                hits.setdefault(("in", n, c, *i), []).append(((n, k, *o), (c, k, *t), product))
                hits.setdefault(("out", n, k, *o), []).append(((n, c, *i), (c, k, *t), product))
    return y, hits


def run_cli(capsys, *argv) -> str:
    code = main(["explain", "--width", "250", "--op", "conv_transpose3d", *argv])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def _triple(text):
    """'2' -> (2, 2, 2); '2x1x2' -> (2, 1, 2)."""
    values = tuple(int(v) for v in text.split("x"))
    return values * 3 if len(values) == 1 else values


def _ints(text):
    return tuple(int(v) for v in text.split(","))


@pytest.mark.parametrize("argv,at,output_at", [
    (["--input", "2x2x2", "--stride", "2"], (1, 0, 1), (2, 2, 2)),
    (["--input", "3x2x3", "--kernel", "3x2x3", "--stride", "2x1x2", "--padding", "1x0x1",
      "--output-padding", "1x0x0", "--in-channels", "2", "--out-channels", "2", "--random", "5"],
     (0, 1, 2), (3, 1, 2)),
])
def test_scatter_and_gather_match_a_naive_loop_and_the_engine(capsys, argv, at, output_at):
    out = run_cli(capsys, *argv, "--at", ",".join(map(str, at)),
                  "--output-at", ",".join(map(str, output_at)))
    opts = dict(zip(argv[::2], argv[1::2]))
    tp = make_transpose_problem(opts["--input"], opts.get("--kernel", "3x3x3"),
                                opts["--stride"], opts.get("--padding", "0"),
                                opts.get("--output-padding", "0"), "1",
                                int(opts["--random"]) if "--random" in opts else None,
                                int(opts.get("--in-channels", 1)),
                                int(opts.get("--out-channels", 1)))
    s, p, op = (_triple(opts.get(key, "0"))
                 for key in ("--stride", "--padding", "--output-padding"))
    y, hits = naive_transpose(tp.x, tp.w, s, p, op, (1, 1, 1))
    engine = F.conv_transpose3d(Tensor(tp.x), Tensor(tp.w), stride=s, padding=p,
                                output_padding=op).numpy()
    np.testing.assert_allclose(engine, y, atol=1e-12)

    rows = ROW.findall(out)
    scatter = [r for r in rows if r[0] == "y"]
    gather = [r for r in rows if r[0] == "x"]
    expected_scatter = hits[("in", 0, 0, *at)]
    assert sorted((_ints(o), _ints(t), float(pr)) for _, o, t, _, _, pr in scatter) == \
        sorted(expected_scatter)
    for _, _, _, xs, ws, pr in scatter:
        assert float(xs) == tp.x[(0, 0, *at)] and float(xs) * float(ws) == float(pr)
    expected_gather = hits.get(("out", 0, 0, *output_at), [])
    assert sorted((_ints(i), _ints(t), float(pr)) for _, i, t, _, _, pr in gather) == \
        sorted(expected_gather)
    [(where, value)] = FINAL.findall(out)
    assert _ints(where) == (0, 0, *output_at)
    assert float(value) == y[(0, 0, *output_at)] == pytest.approx(engine[(0, 0, *output_at)])


def test_gather_counts_taps_by_parity(capsys):
    """Kernel 3, stride 2, no padding: output o gets taps t with o - t even, i.e. 2 taps per axis
    at an even o inside (t = 0 and 2), 1 at an odd o (t = 1)."""
    out = run_cli(capsys, "--input", "3x3x3", "--stride", "2", "--output-at", "2,3,4")
    assert re.search(r"^depth o=2: 2 tap\(s\)", out, re.M)
    assert re.search(r"^height o=3: 1 tap\(s\)", out, re.M)
    assert re.search(r"^width o=4: 2 tap\(s\)", out, re.M)
    assert "4 products add into this output voxel" in out


def test_bad_options_are_named(capsys):
    code = main(["explain", "--op", "conv_transpose3d", "--grad", "input"])
    assert code == 2 and "--grad cannot be combined with --op conv_transpose3d" in \
        capsys.readouterr().err
    code = main(["explain", "--op", "conv_transpose3d", "--stride", "2", "--output-padding", "2"])
    assert code == 2 and "--output-padding 2 on the depth axis" in capsys.readouterr().err
    code = main(["explain", "--op", "conv_transpose3d", "--at", "5,0,0"])
    assert code == 2 and "--at (the input voxel)" in capsys.readouterr().err
    code = main(["explain", "--output-at", "1,1,1"])
    assert code == 2 and "belong to --op conv_transpose3d" in capsys.readouterr().err


def test_checkerboard_demo_measures_8_4_2_1_against_a_flat_resize_then_convolve():
    demo = checkerboard_demo(size=4)
    # transposed, kernel 3, stride 2, padding 1: per axis an odd o gets taps t = 0, 2 (2 taps),
    # an even o gets t = 1 (1 tap); ones everywhere, so a voxel is the product of its counts
    means = demo["transposed"]["means"]
    for cls, value in means.items():
        assert value == np.prod([2 if c == 1 else 1 for c in cls])
    assert demo["transposed"]["ratio"] == 8.0
    # nearest resize then a 3x3x3 box: every interior voxel sums 27 ones
    assert demo["resize_conv"]["ratio"] == 1.0 and demo["resize_conv"]["max"] == 27.0
    assert demo["transposed"]["y"].shape == demo["resize_conv"]["y"].shape == (8, 8, 8)


DOC = Path(__file__).resolve().parents[1] / "docs" / "teach" / "conv_transpose.md"


def test_the_commands_on_the_docs_page_print_what_it_shows(capsys):
    """Each ```console block of docs/teach/conv_transpose.md: `$ conv3d ...` and an excerpt of its
    output, every line of which must appear in what the command prints."""
    blocks = re.findall(r"```console\n(.*?)```", DOC.read_text(), re.S)
    assert blocks, "the page shows no command"
    for block in blocks:
        command, *excerpt = block.strip().splitlines()
        argv = shlex.split(command.removeprefix("$ "))
        assert argv[0] == "conv3d"
        code = main([*argv[1:], "--width", "250"])
        out = capsys.readouterr()
        assert code == 0, out.err
        printed = {line.strip() for line in out.out.splitlines()}
        for line in excerpt:
            assert line.strip() in printed, f"{command}: {line!r} not in its output"
