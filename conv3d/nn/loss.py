"""Loss modules: ``CrossEntropyLoss`` (classification, or per voxel for segmentation),
``BCEWithLogitsLoss`` and ``DiceLoss``, the layer forms of the functional losses."""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..core.tensor import Tensor
from .module import Module


class CrossEntropyLoss(Module):
    """Softmax cross-entropy on logits (N, C) and integer labels (N,), as
    ``torch.nn.CrossEntropyLoss``: ``CrossEntropyLoss(...)(logits, labels)`` is
    ``F.cross_entropy(logits, labels, ...)`` with the settings given here.

    ``weight`` (C,), when given, is a buffer (saved in ``state_dict`` under ``weight``, as in
    torch) and must have the logits' dtype.
    """

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__()
        if weight is not None:
            weight = weight.numpy() if isinstance(weight, Tensor) else np.asarray(weight)
            if weight.ndim != 1 or weight.dtype.kind != "f":
                raise ValueError(f"CrossEntropyLoss: weight must be a 1-D float array, one value "
                                 f"per class, got dtype {weight.dtype} and shape {weight.shape}")
            weight = weight.copy()
        self.register_buffer("weight", weight)
        self.ignore_index, self.reduction = ignore_index, reduction
        self.label_smoothing = label_smoothing
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"CrossEntropyLoss: reduction must be 'mean', 'sum' or 'none', got "
                             f"{reduction!r}")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must lie in [0, 1], got "
                             f"{label_smoothing!r}")

    def forward(self, logits, labels):
        return F.cross_entropy(logits, labels, self.weight, self.ignore_index, self.reduction,
                               self.label_smoothing)

    def extra_repr(self):
        parts = [] if self.reduction == "mean" else [f"reduction={self.reduction!r}"]
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        if self.weight is not None:
            parts.append("weight=...")
        return ", ".join(parts)


class BCEWithLogitsLoss(Module):
    """Sigmoid + binary cross-entropy, as ``torch.nn.BCEWithLogitsLoss``:
    ``BCEWithLogitsLoss(...)(logits, target)`` is ``F.binary_cross_entropy_with_logits``.

    ``weight`` and ``pos_weight``, when given, are buffers (saved in ``state_dict`` under those
    names, as in torch) and must have the logits' dtype.
    """

    def __init__(self, weight=None, reduction: str = "mean", pos_weight=None):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"BCEWithLogitsLoss: reduction must be 'mean', 'sum' or 'none', "
                             f"got {reduction!r}")
        for name, value in (("weight", weight), ("pos_weight", pos_weight)):
            if value is not None:
                value = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
                if value.dtype.kind != "f":
                    raise TypeError(f"BCEWithLogitsLoss: {name} must be a float array, got "
                                    f"dtype {value.dtype}")
                value = value.copy()
            self.register_buffer(name, value)
        self.reduction = reduction

    def forward(self, logits, target):
        return F.binary_cross_entropy_with_logits(logits, target, self.weight, self.reduction,
                                                  self.pos_weight)

    def extra_repr(self):
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class DiceLoss(Module):
    """Soft Dice loss, ``DiceLoss(smooth, reduction)(probs, target)`` =
    ``F.dice_loss(probs, target, smooth, reduction)``: per sample and class
    ``1 - (2 sum p t + smooth) / (sum p + sum t + smooth)`` (torch has no Dice loss; this is the
    V-Net formula with a smoothing term). With ``softmax=True`` the input is logits, and a
    softmax over the class axis comes first."""

    def __init__(self, smooth: float = 1.0, reduction: str = "mean", softmax: bool = False):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"DiceLoss: reduction must be 'mean', 'sum' or 'none', got "
                             f"{reduction!r}")
        if smooth < 0:
            raise ValueError(f"DiceLoss: smooth must be >= 0, got {smooth!r}")
        self.smooth, self.reduction, self.softmax = float(smooth), reduction, bool(softmax)

    def forward(self, probs, target):
        if self.softmax:
            probs = F.softmax(probs, dim=1)
        return F.dice_loss(probs, target, self.smooth, self.reduction)

    def extra_repr(self):
        return f"smooth={self.smooth}" + ("" if self.reduction == "mean" else
                                          f", reduction={self.reduction!r}") + (
            ", softmax=True" if self.softmax else "")
