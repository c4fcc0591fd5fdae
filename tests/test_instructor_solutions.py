"""The instructor guide's exercise solutions (docs/instructor-guide.md, "### Solution N") are run,
and each ``answer`` is compared with an independent computation made here: the engine's own
output shapes, autograd, layer parameter counts or plain loops, never the guide's arithmetic."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import conv3d
import conv3d.functional as F
from conv3d import nn
from conv3d.teach.cube import load_cube

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "instructor-guide.md"


@pytest.fixture(scope="module")
def answers():
    text = GUIDE.read_text()
    sections = re.split(r"^### Solution (\d+)\s*$", text, flags=re.MULTILINE)
    namespace, found = {"__name__": "__guide__"}, {}
    for number, body in zip(sections[1::2], sections[2::2]):
        blocks = re.findall(r"^```python\n(.*?)^```", body, flags=re.MULTILINE | re.DOTALL)
        assert blocks, f"Solution {number} has no python block"
        namespace.pop("answer", None)
        for code in blocks:
            exec(compile(code, f"instructor-guide Solution {number}", "exec"), namespace)
        assert "answer" in namespace, f"Solution {number} does not set `answer`"
        found[int(number)] = namespace["answer"]
    exercises = re.findall(r"^(\d+)\. \*\*", text.split("## Solutions")[0], flags=re.MULTILINE)
    assert sorted(found) == [int(n) for n in exercises], "every exercise needs its solution"
    return found


def test_1_output_size_from_the_engine(answers):
    x = conv3d.Tensor(np.zeros((1, 1, 16, 112, 112), dtype=np.float32))
    w = conv3d.Tensor(np.zeros((1, 1, 3, 3, 3), dtype=np.float32))
    assert tuple(answers[1]) == F.conv3d(x, w, stride=(1, 2, 2), padding=1).shape[2:]


def test_2_conv2plus1d_budget_from_the_layers(answers):
    block = nn.Conv2Plus1d(64, 128, 3)
    full = nn.Conv3d(64, 128, 3, bias=False)
    weights = block.spatial.weight.size + block.temporal.weight.size
    assert tuple(answers[2]) == (block.mid_channels, weights, full.weight.size)


def test_3_cube_voxel_by_plain_loops(answers):
    cube = load_cube()
    x, f = cube["input"], cube["filter"]
    total = 0.0
    for kd in range(3):
        for kh in range(3):
            for kw in range(3):
                total += x[1 + kd, 1 + kh, 0 + kw] * f[kd, kh, kw]
    assert answers[3] == total
    assert total != cube["published_output"][1, 1, 0]  # the figure is wrong there


def test_4_input_gradients_by_autograd(answers):
    cube = load_cube()
    x = conv3d.Tensor(cube["input"][None, None], requires_grad=True)
    F.conv3d(x, conv3d.Tensor(cube["filter"][None, None])).sum().backward()
    assert tuple(answers[4]) == (x.grad[0, 0, 0, 0, 0], x.grad[0, 0, 1, 1, 1])


def test_5_im2col_bytes_from_vol2col_and_the_engine(answers):
    from conv3d.ops.im2col import vol2col
    # the rows x columns model of the column matrix, checked on a small layer ...
    small = np.zeros((2, 3, 4, 6, 6), dtype=np.float32)
    cols = vol2col(small, (3, 3, 3), (1, 1, 1), ((1, 1),) * 3, (1, 1, 1))
    assert cols.nbytes == (3 * 27) * (2 * 4 * 6 * 6) * 4
    # ... then applied to the C3D layer, with its output size taken from the engine
    out = F.conv3d(conv3d.Tensor(np.zeros((1, 1, 16, 56, 56), dtype=np.float32)),
                   conv3d.Tensor(np.zeros((1, 1, 3, 3, 3), dtype=np.float32)), padding=1)
    assert answers[5] == (64 * 27) * (4 * int(np.prod(out.shape[2:]))) * 4


def test_6_receptive_field_by_autograd(answers):
    # conv 3 / pool 2 / conv 3 / pool 2 with positive weights: the gradient of one output voxel
    # is nonzero exactly on its receptive field (average pooling: same windows as max pooling,
    # but every voxel of a window gets gradient)
    stack = nn.Sequential(nn.Conv3d(1, 1, 3, bias=False), nn.AvgPool3d(2),
                          nn.Conv3d(1, 1, 3, bias=False), nn.AvgPool3d(2))
    for m in (stack[0], stack[2]):
        m.weight.data[...] = 1.0
    x = conv3d.Tensor(np.ones((1, 1, 24, 24, 24), dtype=np.float64), requires_grad=True)
    stack.astype(np.float64)
    y = stack(x)
    grad = np.zeros(y.shape)
    grad[0, 0, 1, 1, 1] = 1.0
    y.backward(grad)
    touched = np.nonzero(x.grad[0, 0].sum(axis=(1, 2)))[0]
    assert answers[6] == touched.max() - touched.min() + 1


def test_7_tie_goes_to_the_first_maximum(answers):
    window = np.array([[5.0, 7.0], [7.0, 1.0]])
    assert answers[7] == int(np.argmax(window))  # NumPy's argmax: the first occurrence


def test_7_tie_rule_is_pytorchs(answers):
    window = np.array([[5.0, 7.0], [7.0, 1.0]])
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (peer check only)")
    _, idx = torch.nn.functional.max_pool2d(torch.tensor(window)[None, None], 2,
                                            return_indices=True)
    assert answers[7] == int(idx)
