"""conv3d.summary on residual and branching models: the parameter totals against the models' own
counts, a conv row's MACs against K * C/groups * kD*kH*kW * OD*OH*OW computed here from the
output-size formula, ``depth=`` rows against the leaf rows, and the 80-column width."""
import re

import pytest

import conv3d
import conv3d.models as models
from conv3d import nn
from conv3d.models.s3d import SepInceptionBlock3D

ROW = re.compile(r"^(\S.*?)?\s*(\(None[^)]*\))\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)$")


def rows_of(text):
    """{label: (output shape, trainable, non-trainable, MACs)}; a label too long for its column
    stands on the line above its numbers."""
    rows, pending = {}, None
    for line in text.splitlines():
        m = ROW.match(line)
        if m:
            label = m.group(1) or pending
            rows[label] = (m.group(2), *(int(g.replace(",", "")) for g in m.groups()[2:]))
            pending = None
        else:
            pending = line.strip()
    return rows


def total(text, what):
    return int(re.search(rf"{what} params: ([\d,]+)", text).group(1).replace(",", ""))


def out_size(i, k, s, p):
    return (i + 2 * p - k) // s + 1


@pytest.mark.parametrize("build, shape", [
    (lambda: models.r3d_18(base_width=4, num_classes=3), (3, 4, 32, 32)),
    (lambda: models.r2plus1d_18(base_width=4, num_classes=3, mid_channels="paper"),
     (3, 4, 32, 32)),
    (lambda: SepInceptionBlock3D(6, 2, 3, 4, 2, 3, 2), (6, 2, 5, 5)),
])
def test_totals_equal_the_models_own_counts(build, shape):
    model = build()
    text = conv3d.summary(model, shape, print_fn=None)
    assert total(text, "Trainable") == model.num_parameters(trainable_only=True)
    assert total(text, "Total") == model.num_parameters()
    rows = rows_of(text)
    assert sum(r[1] for r in rows.values()) == model.num_parameters(trainable_only=True)
    assert max(len(line) for line in text.splitlines()) <= 80


def test_conv_macs_follow_the_formula_in_a_residual_network():
    model = models.mc3_18(base_width=4, num_classes=3)
    D, H, W = 4, 32, 32
    text = conv3d.summary(model, (3, D, H, W), print_fn=None)
    rows = rows_of(text)
    # stem: 3 -> 4 channels, kernel (3, 7, 7), stride (1, 2, 2), padding (1, 3, 3)
    OD, OH, OW = out_size(D, 3, 1, 1), out_size(H, 7, 2, 3), out_size(W, 7, 2, 3)
    assert rows["stem.0 (Conv3d)"][0] == f"(None, 4, {OD}, {OH}, {OW})"
    assert rows["stem.0 (Conv3d)"][3] == 4 * 3 * 3 * 7 * 7 * OD * OH * OW
    # layer2.0.conv1.0: 1x3x3 (MC3 above stage 1), 4 -> 8 channels, stride (1, 2, 2)
    OD2, OH2, OW2 = OD, out_size(OH, 3, 2, 1), out_size(OW, 3, 2, 1)
    assert rows["layer2.0.conv1.0 (Conv3DNoTemporal)"][3] == 8 * 4 * 1 * 3 * 3 * OD2 * OH2 * OW2
    # its shortcut: a 1x1x1 conv with the same stride
    assert rows["layer2.0.downsample.0 (Conv3d)"][3] == 8 * 4 * OD2 * OH2 * OW2


def test_grouped_conv_macs_follow_the_formula():
    model = nn.Sequential(nn.Conv3d(4, 6, (3, 2, 3), stride=(1, 2, 1), padding=(1, 0, 1),
                                    groups=2))
    text = conv3d.summary(model, (4, 5, 7, 6), print_fn=None)
    OD, OH, OW = out_size(5, 3, 1, 1), out_size(7, 2, 2, 0), out_size(6, 3, 1, 1)
    assert rows_of(text)["0 (Conv3d)"][3] == 6 * (4 // 2) * 3 * 2 * 3 * OD * OH * OW


def test_branching_block_rows_and_depth():
    block = SepInceptionBlock3D(6, 2, 3, 4, 2, 3, 2)
    leaf_rows = rows_of(conv3d.summary(block, (6, 2, 5, 5), print_fn=None))
    assert leaf_rows["branch3.0 (MaxPool3d)"][0] == "(None, 6, 2, 5, 5)"
    assert leaf_rows["branch0.0 (Conv3d)"][3] == 2 * 6 * 2 * 5 * 5
    text = conv3d.summary(block, (6, 2, 5, 5), print_fn=None, depth=1)
    rows = rows_of(text)
    assert list(rows) == [f"branch{i} ({kind})" for i, kind in
                          enumerate(["Conv3dNormActivation", "Sequential", "Sequential",
                                     "Sequential"])]
    assert rows["branch1 (Sequential)"][0] == "(None, 4, 2, 5, 5)"
    for name, row in rows.items():
        prefix = name.split(" ")[0] + "."
        inside = [r for label, r in leaf_rows.items() if label.startswith(prefix)]
        assert row[1:] == tuple(sum(r[i] for r in inside) for i in (1, 2, 3))


def test_depth_rows_of_a_resnet_add_up():
    model = models.r3d_18(base_width=4, num_classes=3)
    text = conv3d.summary(model, (3, 4, 32, 32), print_fn=None, depth=2)
    rows = rows_of(text)
    assert "layer3.1 (BasicBlock)" in rows and "fc (Linear)" in rows
    assert rows["layer4.1 (BasicBlock)"][0] == "(None, 32, 1, 2, 2)"
    macs = int(re.search(r"MACs per sample: ([\d,]+)", text).group(1).replace(",", ""))
    assert sum(r[3] for r in rows.values()) == macs
    assert sum(r[1] for r in rows.values()) == model.num_parameters(trainable_only=True)


def test_bad_depth():
    with pytest.raises(ValueError, match="depth must be None"):
        conv3d.summary(nn.ReLU(), (1,), depth=0)


@pytest.mark.slow
def test_s3d_summary_at_reduced_width():
    model = models.s3d(width_mult=0.0625, num_classes=5)
    text = conv3d.summary(model, (3, 14, 224, 224), print_fn=None, depth=2)
    rows = rows_of(text)
    assert total(text, "Trainable") == model.num_parameters(trainable_only=True)
    assert sum(r[1] for r in rows.values()) == model.num_parameters(trainable_only=True)
    assert rows["features.15 (SepInceptionBlock3D)"][0] == "(None, 64, 2, 7, 7)"
    assert max(len(line) for line in text.splitlines()) <= 80
