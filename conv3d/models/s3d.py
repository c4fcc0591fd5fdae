"""S3D (Xie et al. 2018, "Rethinking Spatiotemporal Feature Learning"), as torchvision builds it.

S3D is Inception-v1 (GoogLeNet) made 3-D, with every k x k x k convolution *separated* into a
1 x k x k spatial conv and a k x 1 x 1 temporal conv, each followed by BatchNorm and ReLU
(``TemporalSeparableConv``). torchvision's S3D is the plain separable network: it has no
feature gating (the paper's S3D-G adds a sigmoid gate per channel; torchvision does not).

    (N, 3, D, H, W)
      features: sep-conv 7 (stride 2) -> maxpool 1x3x3/2 -> 1x1x1 conv -> sep-conv 3 -> maxpool
                -> 2 Inception blocks -> maxpool 3x3x3/2 -> 5 blocks -> maxpool 2x2x2/2 -> 2 blocks
      (N, 1024, D/8, H/32, W/32)
      avgpool AvgPool3d((2, 7, 7), stride 1) -> dropout -> 1x1x1 conv to num_classes (with bias)
      -> mean over the remaining (D/8 - 1, H/32 - 6, W/32 - 6) positions -> (N, num_classes)

So the features need D/8 >= 2 and H/32, W/32 >= 7 (rounding up; ``feature_size``): the
smallest clip is 13 x 209 x 209, and torchvision documents 14 x 224 x 224. Every BatchNorm is
torchvision's ``BatchNorm3d(eps=0.001, momentum=0.001)``. Layer names and the state-dict layout
are torchvision's, so its weights load as they are.
"""
from __future__ import annotations

import numpy as np

from ..nn import AvgPool3d, BatchNorm3d, Conv3d, Dropout, MaxPool3d, Module, ReLU, Sequential
from ..ops.shape import cat
from ._registry import register_model
from ._weights import load_weights

BN_EPS, BN_MOMENTUM = 0.001, 0.001

#: the Inception blocks in order: (b0_out, b1_mid, b1_out, b2_mid, b2_out, b3_out); "pool"
#: marks the max-pools between groups. Each block's input width is the previous block's output
#: (b0_out + b1_out + b2_out + b3_out), starting from 192.
INCEPTION = [(64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), "pool3",
             (192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),
             (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128), "pool2",
             (256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)]


class Conv3dNormActivation(Sequential):
    """Conv3d (no bias; 'same' padding (k-1)//2 unless given) -> BatchNorm3d -> ReLU, as
    torchvision.ops.Conv3dNormActivation with S3D's BatchNorm settings."""

    def __init__(self, in_planes: int, out_planes: int, kernel_size=1, stride=1, padding=None,
                 dtype=np.float32):
        if padding is None:
            padding = tuple((k - 1) // 2 for k in np.broadcast_to(kernel_size, 3).tolist())
        super().__init__(Conv3d(in_planes, out_planes, kernel_size, stride=stride,
                                padding=padding, bias=False, dtype=dtype),
                         BatchNorm3d(out_planes, eps=BN_EPS, momentum=BN_MOMENTUM, dtype=dtype),
                         ReLU())


class TemporalSeparableConv(Sequential):
    """A k x k x k conv separated: 1 x k x k (stride (1, s, s)) then k x 1 x 1 (stride
    (s, 1, 1)), each with BatchNorm and ReLU. Weights: k*k*C*K + k*K*K instead of k^3*C*K."""

    def __init__(self, in_planes: int, out_planes: int, kernel_size: int, stride: int,
                 padding: int, dtype=np.float32):
        k, s, p = kernel_size, stride, padding
        super().__init__(
            Conv3dNormActivation(in_planes, out_planes, (1, k, k), (1, s, s), (0, p, p), dtype),
            Conv3dNormActivation(out_planes, out_planes, (k, 1, 1), (s, 1, 1), (p, 0, 0), dtype))


class SepInceptionBlock3D(Module):
    """Four branches on the same input, joined along the channels:

    * branch0: 1x1x1 conv to b0_out;
    * branch1: 1x1x1 conv to b1_mid -> separable 3x3x3 to b1_out;
    * branch2: 1x1x1 conv to b2_mid -> separable 3x3x3 to b2_out;
    * branch3: 3x3x3 max-pool (stride 1, padding 1) -> 1x1x1 conv to b3_out.

    (N, C, D, H, W) -> (N, b0_out + b1_out + b2_out + b3_out, D, H, W).
    """

    def __init__(self, in_planes: int, b0_out: int, b1_mid: int, b1_out: int, b2_mid: int,
                 b2_out: int, b3_out: int, dtype=np.float32):
        super().__init__()
        self.out_planes = b0_out + b1_out + b2_out + b3_out
        self.branch0 = Conv3dNormActivation(in_planes, b0_out, dtype=dtype)
        self.branch1 = Sequential(Conv3dNormActivation(in_planes, b1_mid, dtype=dtype),
                                  TemporalSeparableConv(b1_mid, b1_out, 3, 1, 1, dtype))
        self.branch2 = Sequential(Conv3dNormActivation(in_planes, b2_mid, dtype=dtype),
                                  TemporalSeparableConv(b2_mid, b2_out, 3, 1, 1, dtype))
        self.branch3 = Sequential(MaxPool3d(3, stride=1, padding=1),
                                  Conv3dNormActivation(in_planes, b3_out, dtype=dtype))

    def forward(self, x):
        return cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], axis=1)


class S3D(Module):
    """torchvision's S3D (see the module docstring).

    Args:
        num_classes: outputs of the classifier.
        dropout: the classifier's dropout probability (0.2 as torchvision).
        width_mult: scales every channel count (``int(c * width_mult)``, at least 1); 1.0 is the
            published network, a smaller value a narrow one for quick experiments.
        dtype: float32 or float64.
    """

    def __init__(self, num_classes: int = 400, dropout: float = 0.2, width_mult: float = 1.0,
                 dtype=np.float32):
        super().__init__()
        if not width_mult > 0:
            raise ValueError(f"S3D: width_mult must be > 0, got {width_mult!r}")

        def w(c):
            return max(1, int(c * width_mult))

        layers = [TemporalSeparableConv(3, w(64), 7, 2, 3, dtype),
                  MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
                  Conv3dNormActivation(w(64), w(64), dtype=dtype),
                  TemporalSeparableConv(w(64), w(192), 3, 1, 1, dtype),
                  MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))]
        planes = w(192)
        for spec in INCEPTION:
            if spec == "pool3":
                layers.append(MaxPool3d(3, stride=2, padding=1))
            elif spec == "pool2":
                layers.append(MaxPool3d(2, stride=2, padding=0))
            else:
                block = SepInceptionBlock3D(planes, *(w(c) for c in spec), dtype=dtype)
                layers.append(block)
                planes = block.out_planes
        self.features = Sequential(*layers)
        self.avgpool = AvgPool3d((2, 7, 7), stride=1)
        self.classifier = Sequential(Dropout(dropout),
                                     Conv3d(planes, num_classes, 1, bias=True, dtype=dtype))

    def forward(self, x):
        if x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(f"S3D expects clips (N, 3, D, H, W), got shape {tuple(x.shape)}")
        size = feature_size(*x.shape[2:])
        if size[0] < 2 or min(size[1:]) < 7:
            raise ValueError(f"S3D: a clip of shape {tuple(x.shape)} gives features of size "
                             f"{size}, smaller than the final AvgPool3d((2, 7, 7)): use clips of "
                             f"at least 14 x 224 x 224 (D x H x W)")
        x = self.classifier(self.avgpool(self.features(x)))
        return x.mean(axis=(2, 3, 4))


def feature_size(D: int, H: int, W: int) -> tuple[int, int, int]:
    """(D, H, W) of the features for a D x H x W clip, from o = floor((i + 2p - k)/s) + 1 for
    the strided layers: the 7-conv (s 2, p 3), the two 1x3x3 pools (s 2, p 1, space only), the
    3x3x3 pool (s 2, p 1) and the 2x2x2 pool (s 2)."""
    def out(i, k, s, p):
        return (i + 2 * p - k) // s + 1 if i + 2 * p >= k else 0

    D = out(out(out(D, 7, 2, 3), 3, 2, 1), 2, 2, 0)
    H, W = (out(out(out(out(out(i, 7, 2, 3), 3, 2, 1), 3, 2, 1), 3, 2, 1), 2, 2, 0)
            for i in (H, W))
    return D, H, W


@register_model
def s3d(*, num_classes: int = 400, weights=None, dropout: float = 0.2, width_mult: float = 1.0,
        dtype=np.float32) -> S3D:
    """S3D (8.3 M parameters at the published width); clips of at least 14 x 224 x 224.

    ``weights``: None, a dict, or a .pth/.npz path in torchvision's layout (see
    ``conv3d.models``).
    """
    return load_weights(S3D(num_classes=num_classes, dropout=dropout, width_mult=width_mult,
                            dtype=dtype), weights)
