"""Layers, initializers and inflation, in the style of ``torch.nn``.

``Module`` and ``Parameter`` (module.py), the layers (layers.py, conv_transpose.py, norm.py,
pooling.py, loss.py), the factorized ``Conv2Plus1d`` block (conv2plus1d.py), ``init``
(initializers) and ``inflate`` (I3D). ``conv3d.summary`` is a tool built on top of this package
(conv3d/nn/summary.py), imported by ``conv3d`` itself, never by ``conv3d.nn``.
"""
from . import init
from .conv2plus1d import Conv2Plus1d, mid_channels_rule
from .conv_transpose import ConvTranspose3d
from .inflate import inflate
from .layers import (AvgPool3d, BatchNorm3d, Conv3d, Dropout, Flatten, GlobalAvgPool3d, Identity,
                     Linear, MaxPool3d, ReLU, Sequential)
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, DiceLoss
from .module import Module, Parameter
from .norm import GroupNorm, InstanceNorm3d, LayerNorm
from .pooling import AdaptiveAvgPool3d, AdaptiveMaxPool3d, MaxUnpool3d, Upsample

__all__ = ["Module", "Parameter", "Conv3d", "ConvTranspose3d", "MaxPool3d", "AvgPool3d",
           "MaxUnpool3d", "GlobalAvgPool3d", "AdaptiveAvgPool3d", "AdaptiveMaxPool3d", "Upsample",
           "Identity", "Linear", "BatchNorm3d", "GroupNorm", "InstanceNorm3d", "LayerNorm",
           "Dropout", "ReLU", "Flatten", "Sequential", "CrossEntropyLoss", "BCEWithLogitsLoss",
           "DiceLoss", "Conv2Plus1d", "mid_channels_rule", "inflate", "init"]
