"""Activations: ReLU, softmax and the numerically stable log-softmax."""
from __future__ import annotations

import numpy as np

from ..core.backend import get_array_module
from ..core.tensor import Function, Tensor, check_float_dtypes
from .fast.sample_threads import run_rows


class ReLUFunction(Function):
    """y = max(x, 0); dy/dx = 1 where x > 0, else 0."""

    def forward(self, x):
        check_float_dtypes("relu", input=x)
        if not self.recording:  # no backward: one pass, no mask kept (NaN stays NaN either way)
            return _relu(x)
        self.mask = x > 0
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask


def _relu(x):
    """max(x, 0) in one pass (a large NumPy array's rows on the CPU threads at once)."""
    y = run_rows(_relu_rows, x)
    return get_array_module(x).maximum(x, 0) if y is None else y


def _relu_rows(x, y, lo, hi):
    np.maximum(x[lo:hi], 0, out=y[lo:hi])


class SoftmaxFunction(Function):
    """y_i = exp(x_i - max x) / sum_j exp(x_j - max x) along ``axis``.

    Backward: dx = y * (gy - sum(gy * y)).
    """

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        check_float_dtypes("softmax", input=x)
        xp = get_array_module(x)
        e = xp.exp(x - x.max(axis=self.axis, keepdims=True))
        self.y = e / e.sum(axis=self.axis, keepdims=True)
        return self.y

    def backward(self, gy):
        return self.y * (gy - (gy * self.y).sum(axis=self.axis, keepdims=True))


class LogSoftmaxFunction(Function):
    """y = x - max - log(sum(exp(x - max))): subtracting the max keeps exp from overflowing.

    Backward: dx = gy - softmax(x) * sum(gy).
    """

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        check_float_dtypes("log_softmax", input=x)
        xp = get_array_module(x)
        shifted = x - x.max(axis=self.axis, keepdims=True)
        self.y = shifted - xp.log(xp.exp(shifted).sum(axis=self.axis, keepdims=True))
        return self.y

    def backward(self, gy):
        xp = get_array_module(gy)
        return gy - xp.exp(self.y) * gy.sum(axis=self.axis, keepdims=True)


def _axis(dim, axis, x) -> int:
    a = dim if axis is None else axis
    if not -x.ndim <= a < x.ndim:
        raise ValueError(f"dim={a} is out of range for an input with {x.ndim} dimensions "
                         f"(shape {x.shape}); use a value in [{-x.ndim}, {x.ndim - 1}]")
    return a


def relu(x) -> Tensor:
    """Rectified linear unit, ``max(x, 0)`` elementwise."""
    return ReLUFunction()(x)


def softmax(x, dim: int = -1, *, axis: int | None = None) -> Tensor:
    """Softmax along ``dim`` (``axis`` is accepted as a NumPy-style alias)."""
    return SoftmaxFunction(_axis(dim, axis, x))(x)


def log_softmax(x, dim: int = -1, *, axis: int | None = None) -> Tensor:
    """log(softmax(x)) along ``dim``, computed stably (no overflow for large logits)."""
    return LogSoftmaxFunction(_axis(dim, axis, x))(x)
