"""Softmax cross-entropy for classification, fused for stability and speed."""
from __future__ import annotations

import numpy as np

from ..core.backend import get_array_module
from ..core.tensor import Function, Tensor, as_tensor, check_float_dtypes


class CrossEntropyFunction(Function):
    """loss = -log softmax(logits)[label], averaged (or summed) over the batch.

    Backward: d loss / d logits = (softmax(logits) - onehot(label)) / N (for the mean).
    """

    def __init__(self, labels, reduction):
        self.labels, self.reduction = labels, reduction

    def forward(self, logits):
        check_float_dtypes("cross_entropy", logits=logits)
        xp = get_array_module(logits)
        N = logits.shape[0]
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        self.p = xp.exp(log_p)
        picked = -log_p[xp.arange(N), self.labels]
        return picked.mean() if self.reduction == "mean" else picked.sum()

    def backward(self, gy):
        xp = get_array_module(gy)
        N = self.p.shape[0]
        g = self.p.copy()
        g[xp.arange(N), self.labels] -= 1
        if self.reduction == "mean":
            g /= N
        return g * gy


def cross_entropy(logits, labels, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy of ``logits`` (N, C) against integer class ``labels`` (N,).

    As ``torch.nn.functional.cross_entropy`` with class indices; ``reduction`` is 'mean' or 'sum'.
    """
    logits = as_tensor(logits)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must be 2-D (N, classes), got shape {logits.shape}; "
                         f"flatten the model output first")
    xp = get_array_module(logits.data)
    raw = labels.data if isinstance(labels, Tensor) else labels
    raw = raw.get() if hasattr(raw, "get") else np.asarray(raw)
    if raw.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: labels must be integer class indices, got dtype {raw.dtype}; "
                        f"convert with labels.astype(np.int64) (one-hot targets are not supported)")
    N, C = logits.shape
    if raw.shape != (N,):
        raise ValueError(f"cross_entropy: labels must have shape ({N},) to match logits "
                         f"{logits.shape}, got {raw.shape}")
    if N and (raw.min() < 0 or raw.max() >= C):
        bad = raw[(raw < 0) | (raw >= C)]
        raise ValueError(f"cross_entropy: labels must lie in [0, {C - 1}] for {C} classes, found "
                         f"{bad[:5].tolist()}; check the number of output units or the label encoding")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"cross_entropy: reduction must be 'mean' or 'sum', got {reduction!r}")
    return CrossEntropyFunction(xp.asarray(raw.astype(np.int64)), reduction)(logits)
