"""Elementwise arithmetic, reductions and reshapes, each forward beside its backward.

Broadcasting: ``a + b`` may stretch ``b`` of shape (C, 1, 1, 1) over ``a`` of shape
(N, C, D, H, W). The gradient that comes back has the broadcast shape, so ``unbroadcast`` sums
it over the stretched axes to give each input a gradient of its own shape.
"""
from __future__ import annotations

import numpy as np

from .backend import get_array_module
from .tensor import Function, Tensor, check_float_dtypes


def unbroadcast(g, shape):
    """Sum ``g`` down to ``shape``: over leading axes broadcasting added, and axes that were 1."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


class _Binary(Function):
    def forward(self, a, b):
        check_float_dtypes(type(self).__name__, a=a, b=b)
        self.a, self.b = a, b
        return self.compute(a, b)


class Add(_Binary):
    def compute(self, a, b):
        return a + b

    def backward(self, gy):
        return unbroadcast(gy, self.a.shape), unbroadcast(gy, self.b.shape)


class Sub(_Binary):
    def compute(self, a, b):
        return a - b

    def backward(self, gy):
        return unbroadcast(gy, self.a.shape), unbroadcast(-gy, self.b.shape)


class Mul(_Binary):
    def compute(self, a, b):
        return a * b

    def backward(self, gy):
        return unbroadcast(gy * self.b, self.a.shape), unbroadcast(gy * self.a, self.b.shape)


class Div(_Binary):
    def compute(self, a, b):
        return a / b

    def backward(self, gy):
        ga = gy / self.b
        gb = -gy * self.a / (self.b * self.b)
        return unbroadcast(ga, self.a.shape), unbroadcast(gb, self.b.shape)


class Pow(_Binary):
    """``a ** b``: d/da = b * a**(b-1); d/db = a**b * log(a) (only needed when b requires grad)."""

    def compute(self, a, b):
        self.y = a ** b
        return self.y

    def backward(self, gy):
        xp = get_array_module(gy)
        ga = gy * self.b * self.a ** (self.b - 1)
        gb = None
        if self.inputs[1].requires_grad:
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = unbroadcast(gy * self.y * xp.log(self.a), self.b.shape)
        return unbroadcast(ga, self.a.shape), gb


class MatMul(_Binary):
    """``a @ b`` for operands of at least 2 dimensions (leading axes broadcast as in NumPy)."""

    def compute(self, a, b):
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"matmul needs operands of at least 2 dimensions, got shapes {a.shape} "
                             f"and {b.shape}; reshape a vector v to (1, n) or (n, 1) first")
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul: inner dimensions differ, {a.shape} @ {b.shape}; the last "
                             f"axis of the left operand must equal the second-last of the right")
        return a @ b

    def backward(self, gy):
        ga = gy @ self.b.swapaxes(-1, -2)
        gb = self.a.swapaxes(-1, -2) @ gy
        return unbroadcast(ga, self.a.shape), unbroadcast(gb, self.b.shape)


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Exp(Function):
    def forward(self, x):
        self.y = get_array_module(x).exp(x)
        return self.y

    def backward(self, gy):
        return gy * self.y


class Log(Function):
    def forward(self, x):
        self.x = x
        return get_array_module(x).log(x)

    def backward(self, gy):
        return gy / self.x


class Sum(Function):
    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.shape = x.shape
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        xp = get_array_module(gy)
        if self.axis is not None and not self.keepdims:  # put the summed axes back as size 1
            axes = (self.axis,) if isinstance(self.axis, int) else self.axis
            gy = xp.expand_dims(gy, tuple(a % len(self.shape) for a in axes))
        return xp.broadcast_to(gy, self.shape).copy()


class Reshape(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.in_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return gy.reshape(self.in_shape)


class Transpose(Function):
    def __init__(self, axes=None):
        self.axes = axes

    def forward(self, x):
        self.axes = self.axes or tuple(reversed(range(x.ndim)))
        return x.transpose(self.axes)

    def backward(self, gy):
        return gy.transpose(tuple(np.argsort(self.axes)))


def _is_basic(index) -> bool:
    """True for a NumPy *basic* index (ints, slices, Ellipsis, None): it selects each element
    at most once."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, np.integer, slice))
               and not isinstance(p, bool) for p in parts)


class GetItem(Function):
    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.shape = x.shape
        return x[self.index]

    def backward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        if _is_basic(self.index):  # each element picked at most once: a plain copy
            gx[self.index] = gy
        else:
            xp.add.at(gx, self.index, gy)  # add.at: repeated indices add up
        return gx


class AsType(Function):
    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    def forward(self, x):
        self.in_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return gy.astype(self.in_dtype)


# ---- functional wrappers (what the Tensor operators call) -------------------------------------
def add(a, b):
    return Add()(a, b)


def sub(a, b):
    return Sub()(a, b)


def mul(a, b):
    return Mul()(a, b)


def div(a, b):
    return Div()(a, b)


def pow(a, b):  # noqa: A001 - mirrors the operator's name
    return Pow()(a, b)


def matmul(a, b):
    return MatMul()(a, b)


def neg(x):
    return Neg()(x)


def exp(x):
    return Exp()(x)


def log(x):
    return Log()(x)


def sum(x, axis=None, keepdims=False):  # noqa: A001
    return Sum(axis, keepdims)(x)


def mean(x: Tensor, axis=None, keepdims=False):
    """Sum divided by the number of elements summed."""
    axes = range(x.ndim) if axis is None else ((axis,) if isinstance(axis, int) else axis)
    count = int(np.prod([x.shape[a] for a in axes]))
    return Sum(axis, keepdims)(x) / count


def reshape(x, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return Reshape(shape)(x)


def transpose(x, *axes):
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    return Transpose(axes or None)(x)


def flatten(x: Tensor, start_dim=0, end_dim=-1):
    """Merge axes ``start_dim..end_dim`` into one, as ``torch.flatten``."""
    start, end = start_dim % x.ndim, end_dim % x.ndim
    shape = x.shape[:start] + (-1,) + x.shape[end + 1:]
    return Reshape(shape)(x)


def getitem(x, index):
    return GetItem(index)(x)


def astype(x, dtype):
    return AsType(dtype)(x)


def setup_tensor() -> None:
    """Attach the operators to ``Tensor`` (called once, by ``conv3d.core``): ``tensor.py``
    defines Tensor and Function without them, so it never needs to import this module."""
    T = Tensor
    T.__neg__ = neg
    T.__add__, T.__radd__ = add, lambda self, other: add(other, self)
    T.__sub__, T.__rsub__ = sub, lambda self, other: sub(other, self)
    T.__mul__, T.__rmul__ = mul, lambda self, other: mul(other, self)
    T.__truediv__, T.__rtruediv__ = div, lambda self, other: div(other, self)
    T.__pow__, T.__rpow__ = pow, lambda self, other: pow(other, self)
    T.__matmul__, T.__rmatmul__ = matmul, lambda self, other: matmul(other, self)
    T.__getitem__ = getitem
    T.sum, T.mean = sum, mean
    T.reshape, T.transpose, T.flatten = reshape, transpose, flatten
    T.exp, T.log, T.astype = exp, log, astype
    T.T = property(lambda self: transpose(self))
