"""C3D (Tran et al. 2015, "Learning Spatiotemporal Features with 3D Convolutional Networks").

Eight 3x3x3 convolutions (stride 1, padding 1: they keep D, H and W) and five max pools do all
the downsampling; three fully connected layers classify. For the paper's 3 x 16 x 112 x 112 clip:

    layer            output (C, D, H, W)     kernel / stride
    conv1 + ReLU     64  x 16 x 112 x 112    3x3x3 / 1
    pool1            64  x 16 x  56 x  56    1x2x2 / 1x2x2   (no pooling in time yet)
    conv2 + ReLU     128 x 16 x  56 x  56
    pool2            128 x  8 x  28 x  28    2x2x2 / 2
    conv3a, conv3b   256 x  8 x  28 x  28
    pool3            256 x  4 x  14 x  14
    conv4a, conv4b   512 x  4 x  14 x  14
    pool4            512 x  2 x   7 x   7
    conv5a, conv5b   512 x  2 x   7 x   7
    pool5            512 x  1 x   4 x   4    2x2x2 / 2, padding (0, 1, 1)
    fc6, fc7         4096 (ReLU, Dropout)    fc6 takes 512*1*4*4 = 8192 features
    fc8              num_classes (487 Sports-1M classes) - logits, no softmax

The names are those of the widely used PyTorch port of the Sports-1M model (conv1, conv2,
conv3a ... fc8; its weight file is ``c3d.pickle``), so that file loads strictly with
``weights=``. That port ends in a softmax; this model returns the logits (losses such as
``F.cross_entropy`` take logits).
"""
from __future__ import annotations

import numbers

import numpy as np

from ..core.shapes import pool_output_size
from ..nn import Conv3d, Dropout, Flatten, Linear, MaxPool3d, Module, ReLU
from ._registry import register_model
from ._weights import load_weights

#: (name, out_channels) of the eight convolutions, in order; a pool follows conv1, conv2, conv3b,
#: conv4b and conv5b
C3D_CONVS = (("conv1", 64), ("conv2", 128), ("conv3a", 256), ("conv3b", 256), ("conv4a", 512),
             ("conv4b", 512), ("conv5a", 512), ("conv5b", 512))
#: pool name -> (kernel, stride, padding); pool1 keeps time so early layers see 16 frames
C3D_POOLS = {"pool1": ((1, 2, 2), (1, 2, 2), (0, 0, 0)), "pool2": ((2, 2, 2), (2, 2, 2), (0, 0, 0)),
             "pool3": ((2, 2, 2), (2, 2, 2), (0, 0, 0)), "pool4": ((2, 2, 2), (2, 2, 2), (0, 0, 0)),
             "pool5": ((2, 2, 2), (2, 2, 2), (0, 1, 1))}
POOL_AFTER = {"conv1": "pool1", "conv2": "pool2", "conv3b": "pool3", "conv4b": "pool4",
              "conv5b": "pool5"}


def c3d_feature_size(input_size) -> tuple[int, int, int]:
    """(D, H, W) after pool5 for a clip of ``input_size`` = (D, H, W); the convs keep the size,
    each pool maps ``o = floor((i + 2p - k) / s) + 1``. (16, 112, 112) -> (1, 4, 4)."""
    size = tuple(input_size)
    for kernel, stride, padding in C3D_POOLS.values():
        size = tuple(pool_output_size(i, k, s, p) for i, k, s, p in
                     zip(size, kernel, stride, padding))
    return size


class C3D(Module):
    """The C3D network; see the module docstring. Input (N, 3, D, H, W), output (N, num_classes).

    Args:
        num_classes: size of fc8 (487 for Sports-1M).
        dropout: probability of the Dropout after fc6 and after fc7.
        input_size: the clip's (D, H, W); it fixes fc6's input, 512 * prod(size after pool5).
            Smaller clips make small test models; D must be at least 16 (pool5 halves time the
            fourth time).
        in_channels: 3 for RGB.
    """

    def __init__(self, num_classes: int = 487, dropout: float = 0.5, input_size=(16, 112, 112),
                 in_channels: int = 3, dtype=np.float32):
        super().__init__()
        if len(tuple(input_size)) != 3 or not all(
                isinstance(s, numbers.Integral) and s >= 1 for s in input_size):
            raise ValueError(f"C3D: input_size must be the clip's (D, H, W) as three positive "
                             f"ints, got {input_size!r}")
        out = c3d_feature_size(input_size)
        if min(out) < 1:
            raise ValueError(f"C3D: input_size {tuple(input_size)} is too small: after the five "
                             f"pools it is {out}; use D >= 16 and H, W >= 16 (the paper: "
                             f"(16, 112, 112))")
        self.input_size = tuple(int(s) for s in input_size)
        channels = in_channels
        for name, width in C3D_CONVS:
            setattr(self, name, Conv3d(channels, width, 3, padding=1, dtype=dtype))
            channels = width
            if name in POOL_AFTER:
                kernel, stride, padding = C3D_POOLS[POOL_AFTER[name]]
                setattr(self, POOL_AFTER[name], MaxPool3d(kernel, stride, padding))
        self.flatten = Flatten()
        self.fc6 = Linear(channels * int(np.prod(out)), 4096, dtype=dtype)
        self.fc7 = Linear(4096, 4096, dtype=dtype)
        self.fc8 = Linear(4096, num_classes, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.relu = ReLU()

    def features(self, x):
        """The pool5 output, (N, 512, D', H', W'), before the classifier."""
        if x.ndim != 5 or tuple(x.shape[2:]) != self.input_size:
            raise ValueError(f"C3D expects (N, C, D, H, W) clips of size {self.input_size} (its "
                             f"input_size, which sets fc6), got shape {tuple(x.shape)}; resize "
                             f"the clip or build C3D(input_size=...)")
        for name, _ in C3D_CONVS:
            x = self.relu(getattr(self, name)(x))
            if name in POOL_AFTER:
                x = getattr(self, POOL_AFTER[name])(x)
        return x

    def forward(self, x):
        x = self.flatten(self.features(x))
        x = self.dropout(self.relu(self.fc6(x)))
        x = self.dropout(self.relu(self.fc7(x)))
        return self.fc8(x)


@register_model
def c3d(num_classes: int = 487, weights=None, dropout: float = 0.5, input_size=(16, 112, 112),
        dtype=np.float32) -> C3D:
    """C3D of Tran et al. 2015 for 3 x 16 x 112 x 112 clips (see ``conv3d.models.c3d``).

    ``weights``: None, a state dict or a .pth/.npz path with the PyTorch port's names; the
    Sports-1M ``c3d.pickle`` of that port loads with ``num_classes=487``.
    """
    return load_weights(C3D(num_classes, dropout, input_size, dtype=dtype), weights)
