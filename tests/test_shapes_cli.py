"""conv3d shapes: sizes checked by running the engine, receptive fields and jumps measured with
autograd (which input voxels reach one output voxel), flags for bad layers."""
from __future__ import annotations

import re

import numpy as np
import pytest

import conv3d.functional as F
from conv3d import Tensor
from conv3d.cli import main


def run(capsys, spec, expect=0) -> str:
    code = main(["shapes", spec, "--width", "250"])  # wide enough for one table line per layer
    out = capsys.readouterr()
    assert code == expect, out.err
    return out.out


def parse_rows(out):
    """{layer name: (output dims, RF, jump, ok?, params or None)} from the table."""
    rows = {}
    for m in re.finditer(r"^\s*(input|\d+: (?:conv|pool))\s+(.*)$", out, re.M):
        line = m.group(2)
        dims = re.findall(r"(?<![\d(=])((?:\d+x){2,3}\d+)(?![\d)])", line)
        size, rf, jump = dims[0], dims[-2], dims[-1]
        cols = re.split(r"\s{2,}", line.strip())
        after = cols[cols.index(jump) + 1] if cols.index(jump) + 1 < len(cols) else ""
        rows[m.group(1)] = (tuple(int(v) for v in size.split("x")),
                            tuple(int(v) for v in rf.split("x")),
                            tuple(int(v) for v in jump.split("x")), line.rstrip().endswith("ok"),
                            int(after) if after.isdigit() else None)
    return rows


def engine_stack(spec_layers, size):
    """Run the stack through F with all-positive weights (pools as avg pools); returns per-layer
    output sizes and the input gradient of the centre output voxel of the last layer."""
    x = Tensor(np.ones((1, 1) + size), requires_grad=True)
    h, sizes = x, []
    for kind, k, s, p, d in spec_layers:
        if kind == "conv":
            h = F.conv3d(h, Tensor(np.ones((1, 1) + k)), stride=s, padding=p, dilation=d)
        else:  # avg pooling: same geometry as max, and its gradient reaches every window cell
            h = F.avg_pool3d(h, k, stride=s, padding=p)
        sizes.append(h.shape[2:])
    g = np.zeros(h.shape)
    g[(0, 0) + tuple((n - 1) // 2 for n in h.shape[2:])] = 1.0
    h.backward(g)
    return sizes, x.grad[0, 0]


@pytest.mark.parametrize("name,input_shape", [("keras-3d-mnist", (1, 1, 16, 16, 16)),
                                              ("motion-2plus1d", (1, 1, 8, 16, 16)),
                                              ("motion-3d", (1, 1, 8, 16, 16))])
def test_named_models_match_the_models_themselves(capsys, name, input_shape):
    from conv3d import nn, no_grad
    from conv3d.train import recipes
    out = run(capsys, name)
    rows = parse_rows(out)
    model = (recipes.keras_3d_mnist_model() if name == "keras-3d-mnist" else
             recipes.motion_models()[{"motion-2plus1d": "(2+1)d", "motion-3d": "3d"}[name]])
    # run the model's own layers on a zero clip, recording each conv/pool output shape and the
    # parameter count of each convolution (a (2+1)D block counts as its two convolutions)
    shapes, params = [], []
    h = Tensor(np.zeros(input_shape, np.float32))
    with no_grad():
        for m in model:
            if isinstance(m, (nn.Flatten, nn.GlobalAvgPool3d)):
                break
            if isinstance(m, nn.Conv2Plus1d):
                for conv in (m.spatial, m.temporal):
                    h = conv(h)
                    shapes.append(h.shape[1:])
                    params.append(sum(int(p.size) for p in conv.parameters()))
                continue
            h = m(h)
            if isinstance(m, (nn.Conv3d, nn.MaxPool3d, nn.AvgPool3d)):
                shapes.append(h.shape[1:])
                params.append(sum(int(p.size) for p in m.parameters()) if isinstance(m, nn.Conv3d)
                              else None)
    names = [n for n in rows if n != "input"]
    assert [rows[n][0] for n in names] == [tuple(s) for s in shapes]
    assert [rows[n][4] for n in names] == params


@pytest.mark.parametrize("spec,layers,size", [
    ("input=21x21x21; conv k=3; pool k=2; conv k=3 d=2; conv k=3 s=2",
     [("conv", (3, 3, 3), 1, 0, 1), ("pool", (2, 2, 2), 2, 0, 1), ("conv", (3, 3, 3), 1, 0, 2),
      ("conv", (3, 3, 3), 2, 0, 1)], (21, 21, 21)),
    ("input=9x20x20; conv k=1x3x3 p=0x1x1; pool k=1x2x2; conv k=3x1x1 s=2x1x1",
     [("conv", (1, 3, 3), 1, (0, 1, 1), 1), ("pool", (1, 2, 2), (1, 2, 2), 0, 1),
      ("conv", (3, 1, 1), (2, 1, 1), 0, 1)], (9, 20, 20)),
])
def test_sizes_receptive_field_and_jump_are_measured(capsys, spec, layers, size):
    rows = parse_rows(run(capsys, spec))
    sizes, grad = engine_stack(layers, size)
    last = rows[f"{len(layers)}: {layers[-1][0]}"]
    assert last[0] == tuple(sizes[-1])
    # receptive field: the extent of the input voxels that reach one output voxel
    nz = np.argwhere(grad != 0)
    extent = tuple(int(v) for v in nz.max(0) - nz.min(0) + 1)
    assert last[1] == extent
    # jump: moving the output voxel by one moves that receptive field by `jump` input voxels
    x = Tensor(np.ones((1, 1) + size), requires_grad=True)
    h = x
    for kind, k, s, p, d in layers:
        h = (F.conv3d(h, Tensor(np.ones((1, 1) + k)), stride=s, padding=p, dilation=d)
             if kind == "conv" else F.avg_pool3d(h, k, stride=s, padding=p))
    g = np.zeros(h.shape)
    g[(0, 0) + tuple((n - 1) // 2 + 1 if n > 1 else 0 for n in h.shape[2:])] = 1.0
    h.backward(g)
    shift = np.argwhere(x.grad[0, 0] != 0).min(0) - nz.min(0)
    moved = [n > 1 for n in h.shape[2:]]
    assert [int(v) for v, m in zip(shift, moved) if m] == [j for j, m in zip(last[2], moved) if m]


def test_flags_non_integer_and_too_small(capsys):
    out = run(capsys, "input=16x16x16; conv k=3 s=2; pool k=2", expect=0)
    rows = parse_rows(out)
    assert rows["1: conv"][0] == (7, 7, 7) and not rows["1: conv"][3]
    assert "13/2 is not a whole number" in out and "WARNING" in out
    out = run(capsys, "input=8x8x8; conv k=5; conv k=5", expect=1)
    assert "output 0 < 1" in out and "ERROR" in out
    assert "floor((4 + 2*0 - 1*(5-1) - 1) / 1) + 1 = floor(-1/1) + 1 = 0" in out


def test_bad_specs_are_explained(capsys):
    assert main(["shapes", "conv k=3"]) == 2
    assert "starts with input=" in capsys.readouterr().err
    assert main(["shapes", "input=8; dense k=3"]) == 2
    assert "conv, pool" in capsys.readouterr().err
    assert main(["shapes", "input=8; conv s=2"]) == 2
    assert "needs k=" in capsys.readouterr().err


def test_markdown_output(capsys):
    out = main(["shapes", "c3d", "--markdown"])
    text = capsys.readouterr().out
    assert out == 0
    assert re.search(r"\| 13: pool \| pool k=2 p=0x1x1 \| 512x1x4x4 \|", text)
