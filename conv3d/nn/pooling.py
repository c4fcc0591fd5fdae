"""Adaptive pooling layers (the output size is fixed, the windows follow from the input size),
the unpooling layer ``MaxUnpool3d`` and the resizing layer ``Upsample``."""
from __future__ import annotations

from .. import functional as F
from ..core.shapes import to_triple
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


class MaxUnpool3d(Module):
    """The partial inverse of ``MaxPool3d``, as ``torch.nn.MaxUnpool3d``: called as
    ``unpool(y, indices, output_size=None)`` with the ``(y, indices)`` of a
    ``MaxPool3d(..., return_indices=True)``; see ``conv3d.functional.max_unpool3d``."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = to_triple(kernel_size, "kernel_size", minimum=1)
        self.stride = self.kernel_size if stride is None else to_triple(stride, "stride", 1)
        self.padding = to_triple(padding, "padding", minimum=0)

    def forward(self, x, indices, output_size=None):
        return F.max_unpool3d(x, indices, self.kernel_size, self.stride, self.padding,
                              output_size)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class Upsample(Module):
    """Resize (N, C, D, H, W) volumes, as ``torch.nn.Upsample``: ``size`` or ``scale_factor``,
    mode 'nearest' (default) or 'trilinear', ``align_corners`` (trilinear only); see
    ``conv3d.functional.interpolate`` for torch's index rules, which it follows exactly."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        if (size is None) == (scale_factor is None):
            raise ValueError(f"Upsample: give exactly one of size and scale_factor, got "
                             f"size={size!r}, scale_factor={scale_factor!r}")
        if mode not in ("nearest", "trilinear"):
            raise ValueError(f"Upsample: mode must be 'nearest' or 'trilinear', got {mode!r}")
        if mode == "nearest" and align_corners is not None:
            raise ValueError("Upsample: align_corners can only be set with mode='trilinear'")
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, x):
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                             self.recompute_scale_factor)

    def extra_repr(self):
        what = f"size={self.size!r}" if self.size is not None else \
            f"scale_factor={self.scale_factor!r}"
        return what + f", mode={self.mode!r}" + (
            "" if self.align_corners is None else f", align_corners={self.align_corners}")
