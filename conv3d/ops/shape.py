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


def stack(tensors, axis: int = 0) -> Tensor:
    """``torch.stack``: join same-shape tensors along a new axis ``axis`` (default 0).

    It is ``cat`` of the tensors each given a new axis of size 1, so the gradient is cut back
    into the same pieces.

    >>> import numpy as np, conv3d.functional as F
    >>> F.stack([np.zeros((2, 3)), np.ones((2, 3))], axis=1).shape
    (2, 2, 3)
    """
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: expected at least one tensor, got an empty sequence")
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: every tensor must have the same shape, got "
                         f"{[tuple(t.shape) for t in tensors]}")
    ndim = tensors[0].ndim + 1
    if not -ndim <= axis < ndim:
        raise ValueError(f"stack: axis {axis} is out of range for the {ndim}-d result")
    axis %= ndim
    shape = tensors[0].shape
    expanded = [arith.reshape(t, shape[:axis] + (1,) + shape[axis:]) for t in tensors]
    return cat(expanded, axis=axis)


def split(x, split_size_or_sections, axis: int = 0) -> tuple:
    """``torch.split``: pieces of ``split_size`` along ``axis`` (the last one may be smaller),
    or, given a list of sizes, pieces of exactly those sizes (they must add up to the axis).

    >>> import numpy as np, conv3d.functional as F
    >>> tuple(p.shape for p in F.split(np.zeros((5, 2)), 2))
    ((2, 2), (2, 2), (1, 2))
    >>> tuple(p.shape for p in F.split(np.zeros((5, 2)), (1, 4)))
    ((1, 2), (4, 2))
    """
    x = as_tensor(x)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"split: axis {axis} is out of range for a {x.ndim}-d tensor")
    axis %= x.ndim
    n = x.shape[axis]
    arg = split_size_or_sections
    if isinstance(arg, (list, tuple)):
        sizes = list(arg)
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in sizes) or \
                sum(sizes) != n:
            raise ValueError(f"split: the sections must be ints >= 0 that add up to the axis's "
                             f"size {n}, got {list(arg)}")
    else:
        if isinstance(arg, bool) or not isinstance(arg, int) or arg < 1:
            raise ValueError(f"split: split_size must be an int >= 1 (or a list of sizes), "
                             f"got {arg!r}")
        sizes = [min(arg, n - start) for start in range(0, n, arg)] or [0]
    pieces, start = [], 0
    for s in sizes:
        index = (slice(None),) * axis + (slice(start, start + s),)
        pieces.append(arith.getitem(x, index))
        start += s
    return tuple(pieces)


def chunk(x, chunks: int, axis: int = 0) -> tuple:
    """``torch.chunk``: at most ``chunks`` pieces of ``ceil(n / chunks)`` along ``axis``
    (fewer when that size already covers the axis, as torch).

    >>> import numpy as np, conv3d.functional as F
    >>> [p.shape[0] for p in F.chunk(np.zeros((5, 1)), 3)], len(F.chunk(np.zeros((4, 1)), 3))
    ([2, 2, 1], 2)
    """
    x = as_tensor(x)
    if isinstance(chunks, bool) or not isinstance(chunks, int) or chunks < 1:
        raise ValueError(f"chunk: chunks must be an int >= 1, got {chunks!r}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"chunk: axis {axis} is out of range for a {x.ndim}-d tensor")
    n = x.shape[axis]
    return split(x, max(-(-n // chunks), 1), axis)
