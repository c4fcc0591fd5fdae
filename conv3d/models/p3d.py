"""P3D ResNet (Qiu, Yao & Mei 2017, "Learning Spatio-Temporal Representation with Pseudo-3D
Residual Networks").

A 3x3x3 convolution is replaced by a spatial one, S = 1x3x3, and a temporal one, T = 3x1x1,
combined in one of three ways inside a ResNet bottleneck (1x1x1 convs reduce to ``planes``
channels before and expand to ``4 * planes`` after; every conv is followed by BatchNorm, and a
ReLU except the last, whose ReLU comes after the residual sum):

    P3D-A (serial):    y = T(S(x))            T sees S's output only
    P3D-B (parallel):  y = S(x) + T(x)        S and T both see the input, their outputs add up
    P3D-C (shortcut):  y = S(x) + T(S(x))     serial, and S's output also goes straight through

    block(x) = ReLU(BN4(conv4(y(ReLU(BN1(conv1(x)))))) + shortcut(x))

with S(z) = ReLU(BN2(conv2(z))) and T(z) = ReLU(BN3(conv3(z))). As in the paper, the blocks of
the whole network cycle A, B, C, A, B, C, ... (counted across stages, not restarted per stage).

The layout and the names follow the public PyTorch port of the paper's models (conv1..conv4,
bn1..bn4 and downsample.0/.1 inside a block; layer1..layer4, fc): the stem is a 1x7x7 conv,
stride (1, 2, 2), and a 2x3x3 max pool, stride 2; the first block of layers 2-4 strides (1, 2, 2)
in its first 1x1x1 conv and its shortcut; a 2x1x1 max pool (stride 2 in time) follows layers 1-3.
Unlike that port, layer4 is 3-D too (the port's layer4 is 2-D), so its checkpoints do not load.
``layers=(3, 4, 6, 3)`` is the port's P3D63, ``(3, 8, 36, 3)`` the paper's P3D-199.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..nn import (BatchNorm3d, Conv3d, Dropout, GlobalAvgPool3d, Linear, MaxPool3d, Module, ReLU,
                  Sequential)
from ._registry import register_model
from ._weights import load_weights

#: the order in which the blocks cycle through the three P3D variants
P3D_CYCLE = ("A", "B", "C")


class P3DBottleneck(Module):
    """One P3D bottleneck block of ``kind`` 'A', 'B' or 'C'; see the module docstring.

    Shapes: (N, C, D, H, W) -> (N, 4*planes, D, OH, OW), ``o = floor((i - 1)/s) + 1`` for the
    spatial ``stride`` s (1x1x1 convs and padded S/T convs keep every other size).
    """
    expansion = 4

    def __init__(self, in_channels: int, planes: int, kind: str = "A", stride: int = 1,
                 dtype=np.float32):
        super().__init__()
        if kind not in P3D_CYCLE:
            raise ValueError(f"P3DBottleneck: kind must be one of {P3D_CYCLE}, got {kind!r}")
        self.kind = kind
        out_channels = planes * self.expansion
        s = (1, stride, stride)
        self.conv1 = Conv3d(in_channels, planes, 1, stride=s, bias=False, dtype=dtype)
        self.bn1 = BatchNorm3d(planes, dtype=dtype)
        self.conv2 = Conv3d(planes, planes, (1, 3, 3), padding=(0, 1, 1), bias=False, dtype=dtype)
        self.bn2 = BatchNorm3d(planes, dtype=dtype)
        self.conv3 = Conv3d(planes, planes, (3, 1, 1), padding=(1, 0, 0), bias=False, dtype=dtype)
        self.bn3 = BatchNorm3d(planes, dtype=dtype)
        self.conv4 = Conv3d(planes, out_channels, 1, bias=False, dtype=dtype)
        self.bn4 = BatchNorm3d(out_channels, dtype=dtype)
        self.relu = ReLU()
        # the shortcut needs a projection when the block changes the channels or the size
        if stride != 1 or in_channels != out_channels:
            self.downsample = Sequential(
                Conv3d(in_channels, out_channels, 1, stride=s, bias=False, dtype=dtype),
                BatchNorm3d(out_channels, dtype=dtype))
        else:
            self.downsample = None

    def spatial(self, x):
        """S: the 1x3x3 conv, BatchNorm, ReLU."""
        return self.relu(self.bn2(self.conv2(x)))

    def temporal(self, x):
        """T: the 3x1x1 conv, BatchNorm, ReLU."""
        return self.relu(self.bn3(self.conv3(x)))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        if self.kind == "A":
            out = self.temporal(self.spatial(out))
        elif self.kind == "B":
            out = self.spatial(out) + self.temporal(out)
        else:
            s = self.spatial(out)
            out = s + self.temporal(s)
        out = self.bn4(self.conv4(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)

    def extra_repr(self):
        return f"P3D-{self.kind}"


class P3D(Module):
    """P3D ResNet; see the module docstring. Input (N, 3, D, H, W), output (N, num_classes).

    Args:
        layers: blocks per stage, e.g. (3, 4, 6, 3).
        num_classes: size of ``fc``.
        width: channels of the stem; the stages have ``width * (1, 2, 4, 8)`` bottleneck planes
            and 4 times that many output channels (64: the paper's widths).
        dropout: before ``fc``.
        time_pools: after how many of layer1, layer2, layer3 time is halved by a 2x1x1 max pool
            (3 as in the port; fewer for short clips). With the stem's pool, time is divided by
            2 ** (1 + time_pools).
    """

    def __init__(self, layers=(3, 4, 6, 3), num_classes: int = 400, width: int = 64,
                 dropout: float = 0.5, time_pools: int = 3, in_channels: int = 3,
                 dtype=np.float32):
        super().__init__()
        layers = tuple(layers)
        if len(layers) != 4 or not all(isinstance(n, numbers.Integral) and n >= 1 for n in layers):
            raise ValueError(f"P3D: layers must be four block counts >= 1 (one per stage), got "
                             f"{layers!r}")
        if time_pools not in (0, 1, 2, 3):
            raise ValueError(f"P3D: time_pools must be 0, 1, 2 or 3 (time max pools after "
                             f"layer1..layer3), got {time_pools!r}")
        self.layers, self.time_pools = layers, time_pools
        self.conv1 = Conv3d(in_channels, width, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3),
                            bias=False, dtype=dtype)
        self.bn1 = BatchNorm3d(width, dtype=dtype)
        self.relu = ReLU()
        self.maxpool = MaxPool3d((2, 3, 3), stride=2, padding=(0, 1, 1))
        self.time_pool = MaxPool3d((2, 1, 1), stride=(2, 1, 1))
        channels, count = width, 0
        for stage, blocks in enumerate(layers):
            planes = width * 2 ** stage
            stage_layers = Sequential()
            for b in range(blocks):
                stride = 2 if stage > 0 and b == 0 else 1
                stage_layers.append(P3DBottleneck(channels, planes, P3D_CYCLE[count % 3], stride,
                                                  dtype=dtype))
                channels, count = planes * P3DBottleneck.expansion, count + 1
            setattr(self, f"layer{stage + 1}", stage_layers)
        self.avgpool = GlobalAvgPool3d()
        self.dropout = Dropout(dropout)
        self.fc = Linear(channels, num_classes, dtype=dtype)

    def features(self, x):
        """The layer4 output, (N, 32*width, D', H', W'), before pooling."""
        if x.ndim != 5:
            raise ValueError(f"P3D expects clips (N, C, D, H, W), got shape {tuple(x.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in range(4):
            x = getattr(self, f"layer{stage + 1}")(x)
            if stage < self.time_pools:
                x = self.time_pool(x)
        return x

    def forward(self, x):
        return self.fc(self.dropout(self.avgpool(self.features(x))))


@register_model
def p3d(num_classes: int = 400, weights=None, layers=(3, 4, 6, 3), width: int = 64,
        dropout: float = 0.5, time_pools: int = 3, dtype=np.float32) -> P3D:
    """P3D ResNet with bottlenecks cycling P3D-A, -B, -C; default layers (3, 4, 6, 3) (the port's
    P3D63). Clips of 16 frames suit ``time_pools=3``; see ``conv3d.models.p3d``.

    ``weights``: None, a state dict or a .pth/.npz path saved from this model (strict).
    """
    model = P3D(layers, num_classes, width, dropout, time_pools, dtype=dtype)
    return load_weights(model, weights)


@register_model
def p3d199(num_classes: int = 400, weights=None, width: int = 64, dropout: float = 0.5,
           time_pools: int = 3, dtype=np.float32) -> P3D:
    """The paper's P3D-199: layers (3, 8, 36, 3), ResNet-152's stages with P3D blocks."""
    return p3d(num_classes, weights, (3, 8, 36, 3), width, dropout, time_pools, dtype)
