"""Softmax cross-entropy for classification, fused for stability and speed.

With class weights ``w`` (default ones), label smoothing ``eps`` and C classes, sample i with
label ``y_i`` pays (PyTorch's definition)::

    loss_i = (1 - eps) * w[y_i] * (-log p[i, y_i])  +  eps / C * sum_c w[c] * (-log p[i, c])

where ``p = softmax(logits)``; a sample whose label is ``ignore_index`` pays 0. ``'mean'``
divides the sum by the total weight of the samples not ignored, ``sum_i w[y_i]`` (N without
weights), both terms by the same number.

Both terms are one sum ``loss_i = -sum_c A[i, c] * log p[i, c]`` with a target matrix
``A[i, c] = (1 - eps) * w[y_i] * [c == y_i] + eps / C * w[c]`` (a zero row for an ignored
sample), so forward and backward share one formula.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..core.backend import get_array_module, move_array
from ..core.tensor import Function, Tensor, as_tensor, check_float_dtypes


class CrossEntropyFunction(Function):
    """loss_i = -sum_c A[i, c] * log softmax(logits)[i, c], reduced over the batch.

    Backward: d loss_i / d logits[i] = softmax(logits)[i] * sum_c A[i, c] - A[i]
    (times the upstream gradient of loss_i: gy[i], gy, or gy / total weight for the mean).
    """

    def __init__(self, targets, reduction, total_weight=None):
        self.targets, self.reduction, self.total_weight = targets, reduction, total_weight

    def forward(self, logits):
        check_float_dtypes("cross_entropy", logits=logits, weight=self.targets)
        xp = get_array_module(logits)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        self.p = xp.exp(log_p)
        per_sample = -(self.targets * log_p).sum(axis=1)
        if self.reduction == "none":
            return per_sample
        total = per_sample.sum()
        if self.reduction == "sum":
            return total
        # nothing counted (every label ignored): a NaN loss whose gradient is zero, as torch
        return total / self.total_weight if self.total_weight else xp.asarray(np.nan, total.dtype)

    def backward(self, gy):
        A = self.targets
        g = self.p * A.sum(axis=1, keepdims=True) - A
        if self.reduction == "none":
            return g * gy[:, None]
        if self.reduction == "sum":
            return g * gy
        return g * (gy / self.total_weight) if self.total_weight else g * 0


def _host(value) -> np.ndarray:
    raw = value.data if isinstance(value, Tensor) else value
    return raw.get() if hasattr(raw, "get") else np.asarray(raw)


def cross_entropy(logits, labels, weight=None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy of ``logits`` (N, C) against integer class ``labels`` (N,).

    As ``torch.nn.functional.cross_entropy`` with class-index targets (see the module docstring
    for the formula).

    Args:
        weight: (C,) per-class weights (a rescaling of each class's loss), or None.
        ignore_index: samples with this label contribute neither loss nor gradient.
        reduction: 'mean' (weighted mean over the samples not ignored; if all are, the loss is
            NaN and its gradient zero, as in torch),
            'sum', or 'none' (the (N,) per-sample losses).
        label_smoothing: eps in [0, 1]: the target is (1 - eps) on the label plus eps/C on
            every class.

    Not supported (torch has them): class-probability targets and (N, C, d1, ...) logits.

    >>> import numpy as np, conv3d.functional as F
    >>> z = np.log(np.array([[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]]))   # softmax(z) = those rows
    >>> F.cross_entropy(z, [0, 2], reduction="none").numpy().round(4)  # -log 0.5, -log 0.6
    array([0.6931, 0.5108])
    >>> float(F.cross_entropy(z, [0, -100]).numpy())   # the second sample is ignored
    0.6931471805599453
    """
    logits = as_tensor(logits)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must be 2-D (N, classes), got shape "
                         f"{logits.shape}; flatten the model output first")
    raw = _host(labels)
    if raw.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: labels must be integer class indices, got dtype "
                        f"{raw.dtype}; convert with labels.astype(np.int64) (probability targets "
                        f"are not supported)")
    N, C = logits.shape
    if raw.shape != (N,):
        raise ValueError(f"cross_entropy: labels must have shape ({N},) to match logits "
                         f"{logits.shape}, got {raw.shape}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"cross_entropy: ignore_index must be an int, got {ignore_index!r}")
    kept = raw != ignore_index
    bad = raw[kept & ((raw < 0) | (raw >= C))]
    if bad.size:
        raise ValueError(f"cross_entropy: labels must lie in [0, {C - 1}] for {C} classes (or "
                         f"equal ignore_index={ignore_index}), found {bad[:5].tolist()}; check the "
                         f"number of output units or the label encoding")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got "
                         f"{reduction!r}")
    if not isinstance(label_smoothing, numbers.Real) or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must lie in [0, 1], got "
                         f"{label_smoothing!r}")
    dtype = logits.dtype
    if weight is None:
        w = np.ones(C, dtype=dtype)
    else:
        w = _host(weight)
        if w.dtype.kind != "f" and not isinstance(weight, (list, tuple)):
            raise TypeError(f"cross_entropy: weight must be a float array, got dtype {w.dtype}")
        w = w.astype(dtype) if isinstance(weight, (list, tuple)) else w
        if w.shape != (C,):
            raise ValueError(f"cross_entropy: weight must have shape ({C},), one value per "
                             f"class, got {w.shape}")
    # the target matrix A of the module docstring, built on the host, then moved
    eps = float(label_smoothing)
    A = np.zeros((N, C), dtype=w.dtype)
    rows = np.flatnonzero(kept)
    A[rows] = (eps / C) * w
    A[rows, raw[rows]] += (1 - eps) * w[raw[rows]]
    total_weight = float(w[raw[rows]].sum())
    return CrossEntropyFunction(move_array(A, logits.device), reduction, total_weight)(logits)
