"""Adaptive pooling layers: the output size is fixed, the windows follow from the input size."""
from __future__ import annotations

from .. import functional as F
from ..ops.adaptive_pool import parse_output_size
from .module import Module


class _AdaptivePool3d(Module):
    def __init__(self, output_size):
        super().__init__()
        parse_output_size(type(self).__name__, output_size, (1, 1, 1))  # fail here, not later
        self.output_size = output_size

    def extra_repr(self):
        return f"output_size={self.output_size!r}"


class AdaptiveAvgPool3d(_AdaptivePool3d):
    """Average pooling to ``output_size``, as ``torch.nn.AdaptiveAvgPool3d``.

    ``output_size``: an int, or (OD, OH, OW) whose entries may be None (keep that input size).
    (N, C, D, H, W) -> (N, C, OD, OH, OW); see ``conv3d.functional.adaptive_avg_pool3d`` for the
    bins. ``AdaptiveAvgPool3d(1)`` is the global average of video classifiers' heads.
    """

    def forward(self, x):
        return F.adaptive_avg_pool3d(x, self.output_size)


class AdaptiveMaxPool3d(_AdaptivePool3d):
    """Max pooling to ``output_size``, as ``torch.nn.AdaptiveMaxPool3d`` (without
    ``return_indices``; the functional ``adaptive_max_pool3d`` offers it)."""

    def forward(self, x):
        return F.adaptive_max_pool3d(x, self.output_size)
