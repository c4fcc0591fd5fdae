"""Constant padding of the last axes, as ``torch.nn.functional.pad(x, pad, value=...)``.

``pad`` lists (before, after) amounts from the LAST axis backwards, torch's order::

    pad = (W_lo, W_hi, H_lo, H_hi, D_lo, D_hi)       output W' = W_lo + W + W_hi, ...

A negative amount crops instead. I3D's "same" max pooling pads this way (asymmetrically, the
larger half after the data) before an ordinary ``max_pool3d``.
"""
from __future__ import annotations

import numbers

from ..core.backend import get_array_module
from ..core.tensor import Function, Tensor, as_tensor


def _windows(shape, pad):
    """The slices of the input that survive and where they land in the output, per axis."""
    src, dst, out = [], [], []
    for size, (lo, hi) in zip(shape, pad):
        new = size + lo + hi
        src.append(slice(max(-lo, 0), size - max(-hi, 0)))
        dst.append(slice(max(lo, 0), new - max(hi, 0)))
        out.append(new)
    return tuple(src), tuple(dst), tuple(out)


class PadFunction(Function):
    """y = x placed inside a block of ``value``; backward cuts the same block out of gy."""

    def __init__(self, pad, value):
        self.pad, self.value = pad, value

    def forward(self, x):
        xp = get_array_module(x)
        self.x_shape = x.shape
        self.src, self.dst, out = _windows(x.shape, self.pad)
        y = xp.full(out, self.value, dtype=x.dtype)
        y[self.dst] = x[self.src]
        return y

    def backward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.x_shape, dtype=gy.dtype)
        gx[self.src] = gy[self.dst]
        return gx


def pad(x, pad, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad (or, with negative amounts, crop) the last ``len(pad) // 2`` axes of ``x``.

    Args:
        pad: an even number of ints, (last_lo, last_hi, second_last_lo, ...), as torch.
        mode: only 'constant' (torch's 'reflect', 'replicate' and 'circular' are not here).
        value: the fill value (e.g. ``-float('inf')`` before a max pooling).

    >>> import numpy as np, conv3d, conv3d.functional as F
    >>> F.pad(conv3d.Tensor(np.ones((1, 1, 1, 1, 2))), (1, 2)).numpy().ravel()
    array([0., 1., 1., 0., 0.])
    """
    x = as_tensor(x)
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is implemented, got mode={mode!r}")
    if not isinstance(pad, (tuple, list)) or len(pad) % 2 or not pad or any(
            isinstance(p, bool) or not isinstance(p, numbers.Integral) for p in pad):
        raise ValueError(f"pad: pad must be an even number of ints (W_lo, W_hi, H_lo, H_hi, ...), "
                         f"got {pad!r}")
    axes = len(pad) // 2
    if axes > x.ndim:
        raise ValueError(f"pad: {len(pad)} amounts pad {axes} axes but the input has {x.ndim} "
                         f"(shape {x.shape})")
    pairs = [(int(pad[2 * i]), int(pad[2 * i + 1])) for i in range(axes)][::-1]
    pairs = [(0, 0)] * (x.ndim - axes) + pairs  # now first axis to last
    for axis, (size, (lo, hi)) in enumerate(zip(x.shape, pairs)):
        if size + min(lo, 0) + min(hi, 0) < 0:  # the crops together exceed the axis
            raise ValueError(f"pad: cropping ({lo}, {hi}) on axis {axis} of size {size} removes "
                             f"more than the axis holds")
    return PadFunction(tuple(pairs), value)(x)
