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

    Volumes (segmentation): logits (N, C, d1, d2, ...) with labels (N, d1, d2, ...) are every
    voxel as one sample, as torch: the mean is over all the voxels not ignored, and ``'none'``
    returns the (N, d1, d2, ...) per-voxel losses.

    Not supported (torch has them): class-probability targets.

    >>> import numpy as np, conv3d.functional as F
    >>> z = np.log(np.array([[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]]))   # softmax(z) = those rows
    >>> F.cross_entropy(z, [0, 2], reduction="none").numpy().round(4)  # -log 0.5, -log 0.6
    array([0.6931, 0.5108])
    >>> float(F.cross_entropy(z, [0, -100]).numpy())   # the second sample is ignored
    0.6931471805599453
    """
    logits = as_tensor(logits)
    if logits.ndim > 2:  # (N, C, d1, ...): the classes move last, every voxel is a sample
        raw = _host(labels)
        N, C, *spatial = logits.shape
        if tuple(raw.shape) != (N, *spatial):
            raise ValueError(f"cross_entropy: for logits of shape {logits.shape} the labels must "
                             f"have shape {(N, *spatial)} (one class per voxel), got "
                             f"{tuple(raw.shape)}")
        order = (0,) + tuple(range(2, logits.ndim)) + (1,)
        flat = logits.transpose(order).reshape(-1, C)
        loss = cross_entropy(flat, raw.reshape(-1), weight, ignore_index, reduction,
                             label_smoothing)
        return loss.reshape(raw.shape) if reduction == "none" else loss
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must be (N, classes) or (N, classes, d1, ...), "
                         f"got shape {logits.shape}")
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


# ---- segmentation losses: binary cross-entropy on logits, soft Dice ---------------------------

def _softplus(xp, z):
    """log(1 + exp(z)) without overflow: max(z, 0) + log1p(exp(-|z|))."""
    return xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))


class BCEWithLogitsFunction(Function):
    """Elementwise ``loss = w * ((1 - t) * x + l * softplus(-x))``, ``l = 1 + (pos_weight - 1) t``.

    This is ``-w * (pos_weight * t * log sigmoid(x) + (1 - t) * log(1 - sigmoid(x)))`` written
    with softplus, so large logits never overflow (torch's formula). Its derivatives::

        d/dx = w * ((1 - t) - l * sigmoid(-x))
        d/dt = w * (-x + (pos_weight - 1) * softplus(-x))
    """

    def __init__(self, weight, pos_weight, reduction):
        self.weight, self.pos_weight, self.reduction = weight, pos_weight, reduction

    def forward(self, x, t):
        check_float_dtypes("binary_cross_entropy_with_logits", input=x, target=t)
        xp = get_array_module(x)
        self.x, self.t = x, t
        self.sp = _softplus(xp, -x)
        pw = 1 if self.pos_weight is None else self.pos_weight
        loss = (1 - t) * x + (1 + (pw - 1) * t) * self.sp
        if self.weight is not None:
            loss = loss * self.weight
        if self.reduction == "none":
            return loss
        return loss.sum() if self.reduction == "sum" else loss.mean()

    def backward(self, gy):
        xp = get_array_module(gy)
        x, t = self.x, self.t
        pw = 1 if self.pos_weight is None else self.pos_weight
        scale = gy if self.reduction != "mean" else gy / x.size
        if self.weight is not None:
            scale = scale * self.weight
        e = xp.exp(-xp.abs(x))
        sigmoid_neg = xp.where(x >= 0, e / (1 + e), 1 / (1 + e))  # sigmoid(-x), no overflow
        gx = ((1 - t) - (1 + (pw - 1) * t) * sigmoid_neg) * scale
        gt = None
        if self.inputs[1].requires_grad:
            gt = (-x + (pw - 1) * self.sp) * scale
        return (xp.broadcast_to(gx, x.shape).astype(x.dtype, copy=False),
                None if gt is None else xp.broadcast_to(gt, t.shape).astype(t.dtype, copy=False))


def _constant(op: str, name: str, value, like: Tensor):
    """An optional array argument on ``like``'s device with its dtype (lists become arrays)."""
    if value is None:
        return None
    arr = _host(value)
    if arr.dtype.kind != "f" and not isinstance(value, (list, tuple)):
        raise TypeError(f"{op}: {name} must be a float array, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and arr.dtype != like.dtype and not isinstance(value, (list, tuple)):
        raise TypeError(f"{op}: {name} has dtype {arr.dtype} but the input {like.dtype}; convert "
                        f"one of them (nothing is upcast silently)")
    try:
        fits = np.broadcast_shapes(arr.shape, like.shape) == tuple(like.shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{op}: {name} of shape {arr.shape} does not broadcast to the input's "
                         f"shape {like.shape}")
    return move_array(arr.astype(like.dtype), like.device)


def binary_cross_entropy_with_logits(x, target, weight=None, reduction: str = "mean",
                                     pos_weight=None) -> Tensor:
    """Sigmoid + binary cross-entropy in one stable step, as torch's
    ``binary_cross_entropy_with_logits``.

    Args:
        x: logits of any shape; target: probabilities in [0, 1] of the same shape (float).
        weight: rescales each element's loss (broadcast to x's shape), or None.
        reduction: 'mean' (over every element), 'sum' or 'none'.
        pos_weight: weight of the positive term, broadcast along the last axes as torch
            (e.g. one value per class for (N, C) logits); > 1 raises recall.

    Per element (see ``BCEWithLogitsFunction``)::

        loss = -weight * (pos_weight * t * log sigmoid(x) + (1 - t) * log(1 - sigmoid(x)))

    >>> import numpy as np, conv3d.functional as F
    >>> F.binary_cross_entropy_with_logits(np.array([0.0, 100.0]), np.array([1.0, 1.0]),
    ...                                    reduction="none").numpy().round(4)  # log 2, ~0
    array([0.6931, 0.    ])
    """
    op = "binary_cross_entropy_with_logits"
    x = as_tensor(x)
    target = as_tensor(target, like=x)
    if tuple(target.shape) != tuple(x.shape):
        raise ValueError(f"{op}: target must have the input's shape {x.shape}, got "
                         f"{tuple(target.shape)}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    w = _constant(op, "weight", weight, x)
    pw = _constant(op, "pos_weight", pos_weight, x)
    return BCEWithLogitsFunction(w, pw, reduction)(x, target)


def dice_loss(probs, target, smooth: float = 1.0, reduction: str = "mean") -> Tensor:
    """Soft Dice loss per sample and class, for segmentation.

    Args:
        probs: (N, C, D, H, W) (any number of spatial axes) class probabilities, e.g.
            ``F.softmax(logits, dim=1)`` (or a sigmoid for independent binary masks).
        target: integer labels (N, D, H, W) in [0, C) (made one-hot), or a float array of
            ``probs``'s shape (soft or one-hot masks).
        smooth: s >= 0, added to the numerator and the denominator: an empty class predicted
            empty scores 1, and the gradient stays finite.
        reduction: 'mean' (over N and C), 'sum', or 'none' (the (N, C) losses).

    For sample n and class c, the sums running over the voxels v::

        dice[n, c] = (2 * sum_v p[n,c,v] t[n,c,v] + s) / (sum_v p[n,c,v] + sum_v t[n,c,v] + s)
        loss[n, c] = 1 - dice[n, c]

    >>> import numpy as np, conv3d.functional as F
    >>> p = np.array([[0.9, 0.1], [0.2, 0.8]]).T.reshape(1, 2, 1, 1, 2)  # 2 classes, 2 voxels
    >>> F.dice_loss(p, np.array([0, 1]).reshape(1, 1, 1, 2), smooth=0.0,
    ...             reduction="none").numpy().round(4)   # 1 - 2*0.9/(1.1 + 1), 1 - 2*0.8/(0.9 + 1)
    array([[0.1429, 0.1579]])
    """
    op = "dice_loss"
    probs = as_tensor(probs)
    if probs.ndim < 3:
        raise ValueError(f"{op}: probs must be (N, C, D, H, W) (or (N, C, L...)), got shape "
                         f"{probs.shape}")
    if probs.dtype.kind != "f":
        raise TypeError(f"{op}: probs must be float32 or float64, got {probs.dtype}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not isinstance(smooth, numbers.Real) or smooth < 0:
        raise ValueError(f"{op}: smooth must be a number >= 0, got {smooth!r}")
    N, C = probs.shape[:2]
    raw = _host(target)
    if raw.dtype.kind in "iu":
        if tuple(raw.shape) != (N,) + tuple(probs.shape[2:]):
            raise ValueError(f"{op}: integer labels must have shape {(N,) + probs.shape[2:]} "
                             f"for probs of shape {probs.shape}, got {tuple(raw.shape)}")
        if raw.size and (raw.min() < 0 or raw.max() >= C):
            raise ValueError(f"{op}: labels must lie in [0, {C - 1}] for {C} classes, found "
                             f"values in [{raw.min()}, {raw.max()}]")
        onehot = (raw[:, None] == np.arange(C).reshape((1, C) + (1,) * (raw.ndim - 1)))
        t = Tensor(move_array(onehot.astype(probs.dtype), probs.device), device=probs.device)
    else:
        t = as_tensor(target, like=probs)
        if tuple(t.shape) != tuple(probs.shape):
            raise ValueError(f"{op}: a float target must have probs's shape {probs.shape}, got "
                             f"{tuple(t.shape)}")
    axes = tuple(range(2, probs.ndim))
    s = float(smooth)
    dice = (2 * (probs * t).sum(axis=axes) + s) / (probs.sum(axis=axes) + t.sum(axis=axes) + s)
    loss = 1 - dice
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()
