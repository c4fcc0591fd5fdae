"""Conv2Plus1d: the R(2+1)D parameter-matching rule, the split of stride and padding, the
forward pass against a composition written here from naive loops, and gradients."""
import math

import numpy as np
import pytest

import conv3d.nn as nn
from conv3d import Tensor, gradcheck
from reference import naive_conv3d

rng = np.random.default_rng(0)


def rule(t, d, c_in, c_out):
    return math.floor(t * d * d * c_in * c_out / (d * d * c_in + t * c_out))


def test_64_to_64_has_144_mid_channels_and_the_weights_of_a_full_conv():
    block = nn.Conv2Plus1d(64, 64, 3)
    assert block.mid_channels == rule(3, 3, 64, 64) == 144
    weights = block.spatial.weight.size + block.temporal.weight.size
    assert weights == 3 * 3 * 3 * 64 * 64 == 110_592
    assert block.conv_weight_count() == weights
    assert block.full_conv_weight_count() == nn.Conv3d(64, 64, 3, bias=False).weight.size
    text = repr(block)
    assert "mid_channels=144" in text and text.count("110,592") == 2


@pytest.mark.parametrize("c_in, c_out, t, d", [(3, 8, 3, 3), (16, 32, 3, 3), (8, 8, 5, 3),
                                               (1, 16, 3, 7)])
def test_mid_channel_rule(c_in, c_out, t, d):
    block = nn.Conv2Plus1d(c_in, c_out, (t, d, d))
    M = rule(t, d, c_in, c_out)
    assert block.mid_channels == M
    assert block.spatial.weight.shape == (M, c_in, 1, d, d)
    assert block.temporal.weight.shape == (c_out, M, t, 1, 1)
    # the rule keeps the weights at most those of the full conv, and within one mid channel
    full = t * d * d * c_in * c_out
    assert M * (d * d * c_in + t * c_out) <= full < (M + 1) * (d * d * c_in + t * c_out)


def test_stride_and_padding_are_split_and_sizes_match_the_full_conv():
    block = nn.Conv2Plus1d(4, 6, (3, 3, 3), stride=(2, 1, 2), padding=(1, 1, 0))
    assert block.spatial.stride == (1, 1, 2) and block.temporal.stride == (2, 1, 1)
    assert block.spatial.padding == (0, 1, 0) and block.temporal.padding == (1, 0, 0)
    full = nn.Conv3d(4, 6, 3, stride=(2, 1, 2), padding=(1, 1, 0))
    x = Tensor(rng.standard_normal((2, 4, 7, 6, 9)).astype(np.float32))
    assert block(x).shape == full(x).shape
    same = nn.Conv2Plus1d(2, 3, 3, padding="same")
    assert same(Tensor(np.zeros((1, 2, 5, 4, 6), np.float32))).shape == (1, 3, 5, 4, 6)


def test_forward_is_spatial_conv_batchnorm_relu_temporal_conv():
    block = nn.Conv2Plus1d(2, 3, (3, 3, 3), stride=(1, 2, 1), padding=1, mid_channels=4,
                           bias=True, dtype=np.float64)
    block.bn.weight.data[:] = rng.uniform(0.5, 2, 4)
    block.bn.bias.data[:] = rng.standard_normal(4)
    x = rng.standard_normal((2, 2, 4, 5, 5))
    h = naive_conv3d(x, block.spatial.weight.numpy(), None, (1, 2, 1), ((0, 0), (1, 1), (1, 1)),
                     (1, 1, 1), 1)
    mean = h.mean(axis=(0, 2, 3, 4)).reshape(1, -1, 1, 1, 1)
    var = h.var(axis=(0, 2, 3, 4)).reshape(1, -1, 1, 1, 1)
    h = (h - mean) / np.sqrt(var + 1e-5) * block.bn.weight.numpy().reshape(1, -1, 1, 1, 1) \
        + block.bn.bias.numpy().reshape(1, -1, 1, 1, 1)
    h = np.maximum(h, 0)
    expected = naive_conv3d(h, block.temporal.weight.numpy(), block.temporal.bias.numpy(),
                            (1, 1, 1), ((1, 1), (0, 0), (0, 0)), (1, 1, 1), 1)
    np.testing.assert_allclose(block(Tensor(x)).numpy(), expected, rtol=1e-9, atol=1e-12)


def test_gradcheck_block():
    block = nn.Conv2Plus1d(2, 2, 3, padding=(1, 0, 1), mid_channels=3, bias=True,
                           dtype=np.float64)
    x = Tensor(rng.standard_normal((2, 2, 3, 3, 3)), requires_grad=True)
    assert gradcheck(lambda x, *ps: block(x), [x, *block.parameters()])


def test_bad_mid_channels():
    with pytest.raises(ValueError, match="mid_channels must be an int >= 1"):
        nn.Conv2Plus1d(4, 4, 3, mid_channels=0)
