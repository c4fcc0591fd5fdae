"""conv3d.summary on the Keras article's model: every count is recomputed here from the layer
formulas ((k^3*Cin + 1)*Cout for a conv, (in + 1)*out for a dense layer, output sizes from
o = floor((i - k)/s) + 1), never copied from the code."""
import re

import numpy as np
import pytest

import conv3d
import conv3d.nn as nn
from conv3d.train.recipes import keras_3d_mnist_model


def conv_params(k, c_in, c_out):
    return (k ** 3 * c_in + 1) * c_out


def dense_params(n_in, n_out):
    return (n_in + 1) * n_out


def rows_of(text):
    """{row label: [trainable, non-trainable, MACs]} parsed from the table."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^(\d+ \(\w+\))\s+(\(None[^)]*\))\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)$", line)
        if m:
            rows[m.group(1)] = (m.group(2), *(int(g.replace(",", "")) for g in m.groups()[2:]))
    return rows


@pytest.mark.parametrize("c_in", [1, 3])
def test_article_model_parameter_counts(c_in):
    text = conv3d.summary(keras_3d_mnist_model(c_in), (c_in, 16, 16, 16), print_fn=None)
    rows = rows_of(text)
    size1 = (16 - 3) // 1 + 1          # conv 3: 14
    pool1 = (size1 - 2) // 2 + 1       # pool 2: 7
    size2 = (pool1 - 3) // 1 + 1       # conv 3: 5
    pool2 = (size2 - 2) // 2 + 1       # pool 2: 2
    flat = 64 * pool2 ** 3
    assert rows["0 (Conv3d)"][0] == f"(None, 32, {size1}, {size1}, {size1})"
    assert rows["0 (Conv3d)"][1] == conv_params(3, c_in, 32)
    assert rows["5 (Conv3d)"][1] == conv_params(3, 32, 64) == 55_360
    assert rows["11 (Linear)"][1] == dense_params(flat, 256) == 131_328
    assert rows["14 (Linear)"][1] == dense_params(256, 10) == 2_570
    if c_in == 3:
        assert rows["0 (Conv3d)"][1] == 2_624
        assert "2,624" in text
    assert "55,360" in text and "131,328" in text and "2,570" in text
    # BatchNorm: gamma and beta trainable, moving mean and variance not (as Keras counts them)
    assert rows["3 (BatchNorm3d)"][1:3] == (2 * 32, 2 * 32)
    assert rows["8 (BatchNorm3d)"][1:3] == (2 * 64, 2 * 64)
    trainable = (conv_params(3, c_in, 32) + conv_params(3, 32, 64) + dense_params(flat, 256)
                 + dense_params(256, 10) + 2 * 32 + 2 * 64)
    assert f"Trainable params: {trainable:,}" in text
    assert f"Non-trainable params: {2 * (32 + 64):,}" in text
    # MACs: every output voxel of a conv costs k^3*Cin multiply-accumulates per filter
    assert rows["0 (Conv3d)"][3] == size1 ** 3 * 32 * 27 * c_in
    assert rows["5 (Conv3d)"][3] == size2 ** 3 * 64 * 27 * 32
    assert rows["11 (Linear)"][3] == flat * 256


def test_activation_memory_estimate_for_a_batch():
    model = nn.Sequential(nn.Conv3d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 27, 5))
    text = conv3d.summary(model, (1, 5, 5, 5), batch_size=64, print_fn=None)
    per_sample = 4 * 27 + 4 * 27 + 4 * 27 + 5  # outputs of conv, relu, flatten, linear
    kib = per_sample * 64 * 4 / 1024
    assert f"batch of 64, float32): {kib:.1f} KiB" in text
    assert f"MACs per sample: {4 * 27 * 27 + 108 * 5:,}" in text


def test_summary_prints_restores_mode_and_shows_the_2plus1d_rule(capsys):
    model = nn.Sequential(nn.Conv2Plus1d(64, 64, 3, padding=1), nn.GlobalAvgPool3d())
    model.train()
    text = conv3d.summary(model, (64, 3, 4, 4))
    assert capsys.readouterr().out.strip() == text.strip()
    assert model.training and model[0].bn.training
    words = " ".join(text.split())  # footer lines wrap at 80 columns
    assert "mid_channels=144: conv weights 110,592 vs 110,592 for the full 3x3x3 Conv3d" in words
    assert "0.spatial (Conv3d)" in text and "0.temporal (Conv3d)" in text


def test_rich_style_has_the_same_numbers():
    text = conv3d.summary(keras_3d_mnist_model(3), (3, 16, 16, 16), print_fn=None, style="rich")
    for count in ("2,624", "55,360", "131,328", "2,570"):
        assert count in text


def test_summary_errors():
    with pytest.raises(ValueError, match=r"failed on an input of shape \(1, 2, 16, 16, 16\)"):
        conv3d.summary(keras_3d_mnist_model(1), (2, 16, 16, 16), print_fn=None)
    with pytest.raises(TypeError, match="expects a conv3d.nn.Module"):
        conv3d.summary(lambda x: x, (1, 2, 2, 2))
    with pytest.raises(ValueError, match="style must be 'plain' or 'rich'"):
        conv3d.summary(nn.ReLU(), (1,), style="html")
    np.testing.assert_equal(conv3d.summary(nn.ReLU(), (3,), print_fn=None).count("ReLU"), 2)
