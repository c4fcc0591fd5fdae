"""3D U-Net (Cicek et al. 2016, "3D U-Net: Learning Dense Volumetric Segmentation from Sparse
Annotation"): an encoder that halves the resolution ``depth`` times, a decoder that doubles it
back, and skip connections that concatenate each encoder level's features to the decoder's.

For ``depth=2``, ``base_channels=B`` and a (N, C_in, D, H, W) input (D, H, W divisible by 4)::

    layer          output (C, D, H, W)       what
    encoder1       B   x D   x H   x W       conv3-norm-ReLU, conv3-norm-ReLU
    pool1          B   x D/2 x H/2 x W/2     max pool 2, stride 2
    encoder2       2B  x D/2 x H/2 x W/2
    pool2          2B  x D/4 x H/4 x W/4
    bottleneck     4B  x D/4 x H/4 x W/4
    upconv2        2B  x D/2 x H/2 x W/2     up by 2 (see below), 4B -> 2B channels
    cat            4B  x D/2 x ...           [upconv2 output, encoder2 output] on the channels
    decoder2       2B  x D/2 x H/2 x W/2
    upconv1        B   x D   x H   x W
    cat            2B  x D   x ...           [upconv1 output, encoder1 output]
    decoder1       B   x D   x H   x W
    conv           C_out x D x H x W         1x1x1 convolution: the per-voxel class logits

Level i (1-based) has ``B * 2**(i-1)`` channels, the bottleneck ``B * 2**depth``. Every 3x3x3
convolution has padding 1, so only the pools change the size: D, H and W must be divisible by
``2**depth`` (the decoder's copy of a size must equal the encoder's for the concatenation).

Upsampling (``upsample=``):

* ``"transpose"``: ``ConvTranspose3d(c, c/2, kernel_size=2, stride=2)``; kernel = stride, so
  every output voxel receives exactly one tap (no checkerboard overlap);
* ``"trilinear"``: ``Upsample(scale_factor=2, mode="trilinear")`` then a 1x1x1 ``Conv3d``
  from c to c/2 channels (a fixed interpolation, then a learned channel mix).

Normalization (``norm=``): ``"group"`` (``GroupNorm(min(num_groups, C), C)``; it does not depend
on the batch, so batch 1 trains as well as batch 8) or ``"batch"`` (``BatchNorm3d``).

The names follow the widely used PyTorch U-Net layout (encoder1, pool1, ..., bottleneck,
upconv{i}, decoder{i}, conv), each block a Sequential named conv1, norm1, relu1, conv2, norm2,
relu2, so a torch model written with those names loads with ``weights=``.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import functional as F
from ..nn import (BatchNorm3d, Conv3d, ConvTranspose3d, GroupNorm, MaxPool3d, Module, ReLU,
                  Sequential, Upsample)
from ..nn.layers import _positive_int
from ._registry import register_model
from ._weights import load_weights

UPSAMPLE_MODES = ("transpose", "trilinear")
NORMS = ("group", "batch")


def _norm(kind: str, channels: int, num_groups: int, dtype) -> Module:
    if kind == "batch":
        return BatchNorm3d(channels, dtype=dtype)
    # min(): a level narrower than num_groups gets one channel per group
    groups = min(num_groups, channels)
    while channels % groups:  # the largest group count <= num_groups that divides channels
        groups -= 1
    return GroupNorm(groups, channels, dtype=dtype)


def double_conv(in_channels: int, out_channels: int, norm: str = "group", num_groups: int = 8,
                dtype=np.float32) -> Sequential:
    """conv3x3x3-norm-ReLU twice, the block of every U-Net level (the size is kept: padding 1).
    The convolutions have no bias: the normalization's shift replaces it."""
    layers = OrderedDict()
    for i, (c_in, c_out) in enumerate(((in_channels, out_channels),
                                       (out_channels, out_channels)), start=1):
        layers[f"conv{i}"] = Conv3d(c_in, c_out, 3, padding=1, bias=False, dtype=dtype)
        layers[f"norm{i}"] = _norm(norm, c_out, num_groups, dtype)
        layers[f"relu{i}"] = ReLU()
    return Sequential(layers)


def up_block(in_channels: int, out_channels: int, mode: str, dtype=np.float32) -> Module:
    """Double D, H and W and map ``in_channels`` to ``out_channels`` (see the module docstring)."""
    if mode == "transpose":
        return ConvTranspose3d(in_channels, out_channels, 2, stride=2, dtype=dtype)
    return Sequential(OrderedDict(
        upsample=Upsample(scale_factor=2, mode="trilinear", align_corners=False),
        conv=Conv3d(in_channels, out_channels, 1, dtype=dtype)))


class UNet3D(Module):
    """The 3D U-Net; see the module docstring. Input (N, in_channels, D, H, W) with D, H, W
    divisible by ``2**depth``; output (N, out_channels, D, H, W) logits.

    Args:
        in_channels: channels of the input volume (1 for a scan).
        out_channels: classes, background included (the logits go to ``F.cross_entropy``).
        base_channels: B, the width of the first level; level i has B * 2**(i-1).
        depth: the number of poolings (>= 1).
        upsample: 'transpose' or 'trilinear'.
        norm: 'group' or 'batch'.
        num_groups: GroupNorm's group count (capped by the channels of each level).
        dtype: float32 (default) or float64.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 2, base_channels: int = 16,
                 depth: int = 3, upsample: str = "transpose", norm: str = "group",
                 num_groups: int = 8, dtype=np.float32):
        super().__init__()
        name = "UNet3D"
        self.in_channels = _positive_int(in_channels, "in_channels", name)
        self.out_channels = _positive_int(out_channels, "out_channels", name)
        self.base_channels = _positive_int(base_channels, "base_channels", name)
        self.depth = _positive_int(depth, "depth", name)
        _positive_int(num_groups, "num_groups", name)
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"{name}: upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}")
        if norm not in NORMS:
            raise ValueError(f"{name}: norm must be one of {NORMS}, got {norm!r}")
        self.upsample, self.norm = upsample, norm
        widths = [base_channels * 2 ** i for i in range(depth + 1)]  # levels, then bottleneck
        channels = in_channels
        for i in range(1, depth + 1):
            setattr(self, f"encoder{i}", double_conv(channels, widths[i - 1], norm, num_groups,
                                                     dtype))
            setattr(self, f"pool{i}", MaxPool3d(2, stride=2))
            channels = widths[i - 1]
        self.bottleneck = double_conv(channels, widths[depth], norm, num_groups, dtype)
        for i in range(depth, 0, -1):
            setattr(self, f"upconv{i}", up_block(widths[i], widths[i - 1], upsample, dtype))
            # the concatenation doubles the channels: upconv's output and encoder i's
            setattr(self, f"decoder{i}", double_conv(2 * widths[i - 1], widths[i - 1], norm,
                                                     num_groups, dtype))
        self.conv = Conv3d(widths[0], out_channels, 1, dtype=dtype)

    def forward(self, x):
        multiple = 2 ** self.depth
        if x.ndim != 5 or x.shape[1] != self.in_channels or any(s % multiple
                                                                 for s in x.shape[2:]):
            raise ValueError(f"UNet3D(depth={self.depth}) expects (N, {self.in_channels}, D, H, "
                             f"W) with D, H, W divisible by 2**depth = {multiple}, got shape "
                             f"{tuple(x.shape)}; pad or crop the volume (F.pad) first")
        skips = []
        for i in range(1, self.depth + 1):
            x = getattr(self, f"encoder{i}")(x)
            skips.append(x)
            x = getattr(self, f"pool{i}")(x)
        x = self.bottleneck(x)
        for i in range(self.depth, 0, -1):
            x = getattr(self, f"upconv{i}")(x)
            x = getattr(self, f"decoder{i}")(F.cat([x, skips[i - 1]], axis=1))
        return self.conv(x)

    def extra_repr(self):
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"base_channels={self.base_channels}, depth={self.depth}, "
                f"upsample={self.upsample!r}, norm={self.norm!r}")


@register_model
def unet3d(num_classes: int = 2, weights=None, in_channels: int = 1, base_channels: int = 16,
           depth: int = 3, upsample: str = "transpose", norm: str = "group", num_groups: int = 8,
           dtype=np.float32) -> UNet3D:
    """A 3D U-Net for per-voxel segmentation (see ``conv3d.models.unet3d``): ``num_classes``
    output channels (background included), the other arguments as ``UNet3D``.

    ``weights``: None, a state dict or a .pth/.npz path with this model's names.
    """
    return load_weights(UNet3D(in_channels, num_classes, base_channels, depth, upsample, norm,
                               num_groups, dtype=dtype), weights)
