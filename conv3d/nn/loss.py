"""Loss modules: ``CrossEntropyLoss``, the layer form of ``conv3d.functional.cross_entropy``."""
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
