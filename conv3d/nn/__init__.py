"""Layers, initializers and inflation, in the style of ``torch.nn``.

``Module`` and ``Parameter`` (module.py), the layers (layers.py, pooling.py, loss.py), the
factorized ``Conv2Plus1d`` block (conv2plus1d.py), ``init`` (initializers) and ``inflate`` (I3D).
``conv3d.summary`` is a tool built on top of this package (conv3d/nn/summary.py), imported by
``conv3d`` itself, never by ``conv3d.nn``.
"""
from . import init
from .conv2plus1d import Conv2Plus1d, mid_channels_rule
from .inflate import inflate
from .layers import (AvgPool3d, BatchNorm3d, Conv3d, Dropout, Flatten, GlobalAvgPool3d, Identity,
                     Linear, MaxPool3d, ReLU, Sequential)
from .loss import CrossEntropyLoss
from .module import Module, Parameter
from .pooling import AdaptiveAvgPool3d, AdaptiveMaxPool3d

__all__ = ["Module", "Parameter", "Conv3d", "MaxPool3d", "AvgPool3d", "GlobalAvgPool3d",
           "AdaptiveAvgPool3d", "AdaptiveMaxPool3d", "Identity", "Linear", "BatchNorm3d",
           "Dropout", "ReLU", "Flatten", "Sequential", "CrossEntropyLoss", "Conv2Plus1d",
           "mid_channels_rule", "inflate", "init"]
