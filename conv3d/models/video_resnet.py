"""The video ResNets of Tran et al. 2018 ("A Closer Look at Spatiotemporal Convolutions"), as
torchvision builds them: ``r3d_18``, ``mc3_18`` and ``r2plus1d_18``.

One generic ``VideoResNet``; the three networks differ only in the convolution used inside the
residual blocks of each of the four stages (``conv_makers``) and in the stem:

| network     | blocks of stages 1, 2, 3, 4 | stem                                 |
|-------------|-----------------------------|--------------------------------------|
| r3d_18      | 3x3x3, 3x3x3, 3x3x3, 3x3x3  | 3x7x7 conv (``BasicStem``)           |
| mc3_18      | 3x3x3, 1x3x3, 1x3x3, 1x3x3  | 3x7x7 conv (``BasicStem``)           |
| r2plus1d_18 | (2+1)D in all four          | 1x7x7 then 3x1x1 (``R2Plus1dStem``) |

Shapes for a clip (N, 3, D, H, W): the stem halves H and W (stride (1, 2, 2)); stages 2, 3 and
4 halve D, H and W (stride 2; 1x3x3 convs halve only H and W); a global average pool and a
Linear layer give (N, num_classes). Stage widths are ``base_width * (1, 2, 4, 8)`` channels
(64, 128, 256, 512 as published); a smaller ``base_width`` builds a narrow network for quick
experiments. Layer names and the state-dict layout are torchvision's, so its weights load as
they are (``weights=``, see ``conv3d.models._weights``).
"""
from __future__ import annotations

import numpy as np

from ..nn import (AdaptiveAvgPool3d, BatchNorm3d, Conv2Plus1d, Conv3d, Linear, Module, ReLU,
                  Sequential, init, mid_channels_rule)
from ._registry import register_model
from ._weights import load_weights

MID_CHANNEL_RULES = ("torchvision", "paper")


class Conv3DSimple(Conv3d):
    """The full 3x3x3 convolution of R3D (no bias: BatchNorm follows)."""

    def __init__(self, in_planes: int, out_planes: int, midplanes=None, stride: int = 1,
                 padding: int = 1, dtype=np.float32):
        super().__init__(in_planes, out_planes, (3, 3, 3), stride=stride, padding=padding,
                         bias=False, dtype=dtype)

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        return stride, stride, stride


class Conv3DNoTemporal(Conv3d):
    """A 1x3x3 convolution, i.e. a 2-D convolution applied to every frame (MC3's upper stages);
    it strides over H and W only."""

    def __init__(self, in_planes: int, out_planes: int, midplanes=None, stride: int = 1,
                 padding: int = 1, dtype=np.float32):
        super().__init__(in_planes, out_planes, (1, 3, 3), stride=(1, stride, stride),
                         padding=(0, padding, padding), bias=False, dtype=dtype)

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        return 1, stride, stride


class Conv2Plus1D(Conv2Plus1d):
    """torchvision's (2+1)D conv: 1x3x3 (stride (1, s, s)) -> BN -> ReLU -> 3x1x1 (stride
    (s, 1, 1)) with ``midplanes`` channels between; state-dict keys 0, 1, 3 as torchvision's
    ``nn.Sequential`` (see ``conv3d.interop.torch_layout``)."""

    def __init__(self, in_planes: int, out_planes: int, midplanes: int, stride: int = 1,
                 padding: int = 1, dtype=np.float32):
        super().__init__(in_planes, out_planes, 3, stride=stride, padding=padding,
                         mid_channels=midplanes, dtype=dtype)

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        return stride, stride, stride


def block_mid_channels(inplanes: int, planes: int, rule: str, first_in: int | None = None):
    """(M1, M2): the (2+1)D widths of a block's two 3x3x3 convs (C1 -> K and C2 -> K).

    'torchvision' computes one M from the block's input and output widths,
    ``M = (inplanes*planes*27) // (inplanes*9 + 3*planes)``, and gives it to *both* convs;
    'paper' applies the rule (``conv3d.nn.mid_channels_rule``) to each conv's own widths, so
    the second conv of a stage's first block (planes -> planes) gets its own M. They differ only
    where inplanes != planes (the first block of stages 2-4). ``first_in`` is the first conv's
    input width when it is not ``inplanes`` (Bottleneck: its 3x3x3 conv maps planes -> planes).
    """
    if rule not in MID_CHANNEL_RULES:
        raise ValueError(f"mid_channels must be one of {MID_CHANNEL_RULES}, got {rule!r}")
    shared = mid_channels_rule(inplanes, planes, 3)
    if rule == "torchvision":
        return shared, shared
    return mid_channels_rule(first_in or inplanes, planes, 3), mid_channels_rule(planes, planes, 3)


class BasicBlock(Module):
    """Two 3x3x3 convs (conv_builder) with BatchNorm and ReLU, plus the shortcut:

        y = relu(bn2(conv2(relu(bn1(conv1(x))))) + downsample(x))

    ``downsample`` (a strided 1x1x1 conv and BatchNorm) matches the shortcut's shape to the
    residual's when the block strides or changes width; otherwise the shortcut is x itself.
    """

    expansion = 1

    def __init__(self, inplanes: int, planes: int, conv_builder, stride: int = 1,
                 downsample: Module | None = None, mid_channels: str = "torchvision",
                 dtype=np.float32):
        super().__init__()
        mid1, mid2 = block_mid_channels(inplanes, planes, mid_channels)
        self.conv1 = Sequential(conv_builder(inplanes, planes, mid1, stride, dtype=dtype),
                                BatchNorm3d(planes, dtype=dtype), ReLU())
        self.conv2 = Sequential(conv_builder(planes, planes, mid2, dtype=dtype),
                                BatchNorm3d(planes, dtype=dtype))
        self.relu = ReLU()
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        out = self.conv2(self.conv1(x))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(out + residual)


class Bottleneck(Module):
    """1x1x1 (reduce to ``planes``) -> 3x3x3 (conv_builder, strided) -> 1x1x1 (expand to
    4*planes), each with BatchNorm, ReLU after the first two and after the sum with the
    shortcut (as torchvision's; no torchvision builder uses it for video, ``VideoResNet`` does)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, conv_builder, stride: int = 1,
                 downsample: Module | None = None, mid_channels: str = "torchvision",
                 dtype=np.float32):
        super().__init__()
        mid, _ = block_mid_channels(inplanes, planes, mid_channels, first_in=planes)
        wide = planes * self.expansion
        self.conv1 = Sequential(Conv3d(inplanes, planes, 1, bias=False, dtype=dtype),
                                BatchNorm3d(planes, dtype=dtype), ReLU())
        self.conv2 = Sequential(conv_builder(planes, planes, mid, stride, dtype=dtype),
                                BatchNorm3d(planes, dtype=dtype), ReLU())
        self.conv3 = Sequential(Conv3d(planes, wide, 1, bias=False, dtype=dtype),
                                BatchNorm3d(wide, dtype=dtype))
        self.relu = ReLU()
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        out = self.conv3(self.conv2(self.conv1(x)))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(out + residual)


class BasicStem(Sequential):
    """3x7x7 conv, stride (1, 2, 2), padding (1, 3, 3) -> BN -> ReLU: (N, 3, D, H, W) ->
    (N, width, D, H/2, W/2)."""

    def __init__(self, width: int = 64, dtype=np.float32):
        super().__init__(Conv3d(3, width, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3),
                                bias=False, dtype=dtype),
                         BatchNorm3d(width, dtype=dtype), ReLU())


class R2Plus1dStem(Sequential):
    """The stem's 3x7x7 conv factorized: 1x7x7 (stride (1, 2, 2)) to 45 channels -> BN -> ReLU
    -> 3x1x1 to ``width`` -> BN -> ReLU. 45 is torchvision's fixed value, not the mid-channel
    rule (which would give 83 for 3 -> 64 channels); a narrower network scales it with
    ``width``: ``45 * width // 64``."""

    def __init__(self, width: int = 64, dtype=np.float32):
        mid = max(1, 45 * width // 64)
        super().__init__(Conv3d(3, mid, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3),
                                bias=False, dtype=dtype),
                         BatchNorm3d(mid, dtype=dtype), ReLU(),
                         Conv3d(mid, width, (3, 1, 1), stride=1, padding=(1, 0, 0), bias=False,
                                dtype=dtype),
                         BatchNorm3d(width, dtype=dtype), ReLU())


class VideoResNet(Module):
    """Generic video ResNet: stem -> layer1..layer4 -> avgpool -> fc, as torchvision's.

    Args:
        block: ``BasicBlock`` or ``Bottleneck``.
        conv_makers: four conv classes, one per stage (``Conv3DSimple``, ``Conv3DNoTemporal``,
            ``Conv2Plus1D``).
        layers: blocks per stage, e.g. [2, 2, 2, 2] for the 18-layer networks.
        stem: ``BasicStem`` or ``R2Plus1dStem`` (called with the width and dtype).
        num_classes: outputs of the final Linear layer.
        zero_init_residual: start each Bottleneck's last BatchNorm (``conv3[1]``) at weight 0,
            so each residual branch starts as zero. torchvision's option, which in its 0.29
            code fails (it refers to a ``bn3`` its Bottleneck does not have); BasicBlocks are
            left as they are, as torchvision does.
        base_width: channels of the stem and of stage 1; stages 2-4 double it each time.
        mid_channels: 'torchvision' or 'paper', the (2+1)D width rule (``block_mid_channels``).
        dtype: float32 or float64.

    Initialization is torchvision's: convs kaiming_normal (fan_out, ReLU gain), BatchNorm
    weight 1 and bias 0, Linear N(0, 0.01) with bias 0.
    """

    def __init__(self, block, conv_makers, layers, stem, num_classes: int = 400,
                 zero_init_residual: bool = False, base_width: int = 64,
                 mid_channels: str = "torchvision", dtype=np.float32):
        super().__init__()
        if len(conv_makers) != 4 or len(layers) != 4:
            raise ValueError(f"VideoResNet: conv_makers and layers need one entry per stage (4), "
                             f"got {len(conv_makers)} and {len(layers)}")
        if isinstance(base_width, bool) or not isinstance(base_width, int) or base_width < 1:
            raise ValueError(f"VideoResNet: base_width must be an int >= 1, got {base_width!r}")
        if mid_channels not in MID_CHANNEL_RULES:
            raise ValueError(f"VideoResNet: mid_channels must be one of {MID_CHANNEL_RULES}, got "
                             f"{mid_channels!r}")
        self.inplanes = base_width
        self.stem = stem(base_width, dtype=dtype)
        for i, (maker, blocks) in enumerate(zip(conv_makers, layers)):
            planes, stride = base_width * 2 ** i, 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", self._make_layer(block, maker, planes, blocks, stride,
                                                            mid_channels, dtype))
        self.avgpool = AdaptiveAvgPool3d((1, 1, 1))  # as torchvision: (N, C, 1, 1, 1)
        self.fc = Linear(8 * base_width * block.expansion, num_classes, dtype=dtype)
        for m in self.modules():
            if isinstance(m, Conv3d):
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, BatchNorm3d):
                init.ones_(m.weight)
                init.zeros_(m.bias)
            elif isinstance(m, Linear):
                init.normal_(m.weight, 0.0, 0.01)
                init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    init.zeros_(m.conv3[1].weight)

    def _make_layer(self, block, conv_builder, planes, blocks, stride, mid_channels, dtype):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = Sequential(
                Conv3d(self.inplanes, planes * block.expansion, 1,
                       stride=conv_builder.get_downsample_stride(stride), bias=False, dtype=dtype),
                BatchNorm3d(planes * block.expansion, dtype=dtype))
        layers = [block(self.inplanes, planes, conv_builder, stride, downsample, mid_channels,
                        dtype)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, conv_builder, mid_channels=mid_channels,
                         dtype=dtype) for _ in range(1, blocks)]
        return Sequential(*layers)

    def forward(self, x):
        if x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(f"{type(self).__name__} expects clips (N, 3, D, H, W), got shape "
                             f"{tuple(x.shape)}")
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.avgpool(x).flatten(1)
        return self.fc(x)


def _video_resnet(block, conv_makers, layers, stem, weights, **kwargs) -> VideoResNet:
    return load_weights(VideoResNet(block, conv_makers, layers, stem, **kwargs), weights)


@register_model
def r3d_18(*, num_classes: int = 400, weights=None, base_width: int = 64,
           dtype=np.float32, **kwargs) -> VideoResNet:
    """R3D-18: 3x3x3 convolutions in every block (33.4 M parameters at the published width).

    ``weights``: None, a dict, or a .pth/.npz path in torchvision's layout (see
    ``conv3d.models``); ``base_width``: stage-1 width (64 as published); other keywords go to
    ``VideoResNet`` (``zero_init_residual``).
    """
    return _video_resnet(BasicBlock, [Conv3DSimple] * 4, [2, 2, 2, 2], BasicStem, weights,
                         num_classes=num_classes, base_width=base_width, dtype=dtype, **kwargs)


@register_model
def mc3_18(*, num_classes: int = 400, weights=None, base_width: int = 64,
           dtype=np.float32, **kwargs) -> VideoResNet:
    """MC3-18 (mixed convolutions): 3x3x3 in the stem and stage 1, 1x3x3 (per-frame 2-D) in
    stages 2-4 (11.7 M parameters at the published width). Arguments as ``r3d_18``."""
    return _video_resnet(BasicBlock, [Conv3DSimple] + [Conv3DNoTemporal] * 3, [2, 2, 2, 2],
                         BasicStem, weights, num_classes=num_classes, base_width=base_width,
                         dtype=dtype, **kwargs)


@register_model
def r2plus1d_18(*, num_classes: int = 400, weights=None, base_width: int = 64,
                mid_channels: str = "torchvision", dtype=np.float32,
                **kwargs) -> VideoResNet:
    """R(2+1)D-18: every 3x3x3 conv factorized into 1x3x3 then 3x1x1 with a BN and ReLU
    between (31.5 M parameters at the published width). ``mid_channels``: 'torchvision' (its
    weights need this) or 'paper' (see ``block_mid_channels``). Other arguments as ``r3d_18``."""
    return _video_resnet(BasicBlock, [Conv2Plus1D] * 4, [2, 2, 2, 2], R2Plus1dStem, weights,
                         num_classes=num_classes, base_width=base_width,
                         mid_channels=mid_channels, dtype=dtype, **kwargs)
