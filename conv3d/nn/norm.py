"""Normalization that does not depend on the batch: ``GroupNorm``, ``InstanceNorm3d``,
``LayerNorm``, as torch's (volumetric networks often train with batch 1, where BatchNorm fails)."""
from __future__ import annotations

import numbers

import numpy as np

from .. import functional as F
from .layers import _add_norm_state, _float_dtype, _positive_int
from .module import Module, Parameter


class GroupNorm(Module):
    """Group normalization, as ``torch.nn.GroupNorm``: the channels split into ``num_groups``
    groups, each normalized per sample over its channels and voxels, then a per-channel affine.

    Parameters (with ``affine``): weight (C,) ones and bias (C,) zeros.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, dtype=np.float32):
        super().__init__()
        self.num_groups = _positive_int(num_groups, "num_groups", "GroupNorm")
        self.num_channels = _positive_int(num_channels, "num_channels", "GroupNorm")
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_groups={num_groups} must divide "
                             f"num_channels={num_channels}")
        self.eps, self.affine = float(eps), bool(affine)
        dtype = _float_dtype(dtype, "GroupNorm")
        self.weight = Parameter(np.ones(num_channels, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_channels, dtype=dtype)) if affine else None

    def forward(self, x):
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm({self.num_groups}, {self.num_channels}) expects "
                             f"(N, {self.num_channels}, ...), got shape {tuple(x.shape)}")
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}"
                + ("" if self.affine else ", affine=False"))


class InstanceNorm3d(Module):
    """Instance normalization of (N, C, D, H, W), as ``torch.nn.InstanceNorm3d``: each sample's
    channel normalized over its own voxels.

    torch's defaults: ``affine=False`` and ``track_running_stats=False`` (both modes then use
    the instance's statistics). With ``track_running_stats`` training updates running_mean and
    running_var (``new = (1 - momentum) * old + momentum * batch average of the instance
    statistics``, the variance unbiased) and eval mode normalizes with them; as in torch,
    ``momentum=None`` leaves them where they are, and the buffer ``num_batches_tracked`` is kept
    (for the state-dict layout) but not counted.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, dtype=np.float32):
        super().__init__()
        self.num_features = _positive_int(num_features, "num_features", "InstanceNorm3d")
        if momentum is not None and (not isinstance(momentum, numbers.Real)
                                     or not 0.0 <= momentum <= 1.0):
            raise ValueError(f"InstanceNorm3d: momentum must lie in [0, 1] or be None, got "
                             f"{momentum!r}")
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        _add_norm_state(self, self.num_features, self.affine, self.track_running_stats,
                        _float_dtype(dtype, "InstanceNorm3d"))

    def forward(self, x):
        if x.ndim != 5 or x.shape[1] != self.num_features:
            raise ValueError(f"InstanceNorm3d({self.num_features}) expects (N, "
                             f"{self.num_features}, D, H, W), got shape {tuple(x.shape)}")
        use_input_stats = self.training or not self.track_running_stats
        # torch's rules: momentum=None means 0 (the running statistics stay), and
        # num_batches_tracked exists for BatchNorm's state-dict layout but is never counted
        momentum = 0.0 if self.momentum is None else self.momentum
        return F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                               use_input_stats=use_input_stats, momentum=momentum,
                               eps=self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class LayerNorm(Module):
    """Layer normalization, as ``torch.nn.LayerNorm``: normalize over the last axes, which must
    equal ``normalized_shape``; with ``elementwise_affine`` a weight (ones) and, with ``bias``,
    a bias (zeros) of that shape."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, dtype=np.float32):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) \
            else tuple(normalized_shape)
        if not shape or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1
                            for s in shape):
            raise ValueError(f"LayerNorm: normalized_shape must be an int or a tuple of ints "
                             f">= 1, got {normalized_shape!r}")
        self.normalized_shape = tuple(int(s) for s in shape)
        self.eps, self.elementwise_affine = float(eps), bool(elementwise_affine)
        dtype = _float_dtype(dtype, "LayerNorm")
        affine = self.elementwise_affine
        self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype)) \
            if affine and bias else None

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}"
                + ("" if self.elementwise_affine else ", elementwise_affine=False"))
