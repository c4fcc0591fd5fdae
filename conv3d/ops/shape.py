"""Shape ops in functional form."""
from __future__ import annotations

import numpy as np

from ..core import arith
from ..core.backend import get_array_module
from ..core.tensor import Function, Tensor, as_tensor


def flatten(x, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    """Merge axes ``start_dim..end_dim``; the default keeps the batch axis, as ``nn.Flatten``."""
    x = as_tensor(x)
    return arith.flatten(x, start_dim, end_dim)


class Concatenate(Function):
    """Join arrays along ``axis``; the gradient is cut back into the same pieces.

    Inputs (N, C_i, D, H, W) with ``axis=1`` -> output (N, sum C_i, D, H, W); input i's gradient
    is the output gradient's slice ``[offset_i, offset_i + C_i)`` along ``axis``.
    """

    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, *xs):
        xp = get_array_module(xs[0])
        self.sizes = [x.shape[self.axis] for x in xs]
        return xp.concatenate(xs, axis=self.axis)

    def backward(self, gy):
        xp = get_array_module(gy)
        bounds = np.cumsum(self.sizes)[:-1]
        # contiguous copies: the convolutions that consume them are faster on contiguous arrays
        return tuple(xp.ascontiguousarray(g) for g in xp.split(gy, bounds, axis=self.axis))


def cat(tensors, axis: int = 1) -> Tensor:
    """``torch.cat``: concatenate tensors that agree in every axis but ``axis`` (default 1,
    the channels of NCDHW, as an Inception block joins its branches)."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat: expected at least one tensor, got an empty sequence")
    ndim = tensors[0].ndim
    if not -ndim <= axis < ndim:
        raise ValueError(f"cat: axis {axis} is out of range for {ndim}-d tensors")
    axis %= ndim
    shapes = [tuple(t.shape) for t in tensors]
    rest = {s[:axis] + s[axis + 1:] for s in shapes}
    if any(len(s) != ndim for s in shapes) or len(rest) > 1:
        raise ValueError(f"cat: the tensors must agree in every axis except {axis}, got shapes "
                         f"{shapes}")
    dtypes = {str(t.dtype) for t in tensors}
    if len(dtypes) > 1:
        raise TypeError(f"cat: the tensors have dtypes {sorted(dtypes)}; convert them to one "
                        f"dtype first (nothing is upcast silently)")
    return Concatenate(axis)(*tensors)
