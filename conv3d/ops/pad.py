"""Padding of the last axes, as ``torch.nn.functional.pad(x, pad, mode, value)``.

``pad`` lists (before, after) amounts from the LAST axis backwards, torch's order::

    pad = (W_lo, W_hi, H_lo, H_hi, D_lo, D_hi)       output W' = W_lo + W + W_hi, ...

Four modes, shown on one axis holding ``a b c d`` padded by (2, 2)::

    constant   (value v)   v v | a b c d | v v
    reflect                c b | a b c d | c b     (mirror about the edge voxel, not repeating it)
    replicate              a a | a b c d | d d
    circular               c d | a b c d | a b     (wrap around)

With 'constant' a negative amount crops instead (I3D's "same" max pooling pads this way,
asymmetrically, before an ordinary ``max_pool3d``). The other three modes are a *gather*: output
voxel j of an axis copies input voxel ``source(j)``, so their backward adds each output
gradient into the voxel it was copied from (several outputs share an edge voxel).
"""
from __future__ import annotations

import numbers

import numpy as np

from ..core.backend import get_array_module
from ..core.tensor import Function, Tensor, as_tensor

MODES = ("constant", "reflect", "replicate", "circular")


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


def source_index(size: int, lo: int, hi: int, mode: str) -> np.ndarray:
    """For each of the ``lo + size + hi`` output voxels of one axis, the input voxel it copies.

    >>> [source_index(4, 2, 2, m).tolist() for m in ("reflect", "replicate", "circular")]
    [[2, 1, 0, 1, 2, 3, 2, 1], [0, 0, 0, 1, 2, 3, 3, 3], [2, 3, 0, 1, 2, 3, 0, 1]]
    """
    j = np.arange(-lo, size + hi)
    if mode == "replicate":
        return np.clip(j, 0, size - 1)
    if mode == "circular":
        return j % size
    j = np.abs(j)                                  # reflect: mirror the left side ...
    return np.where(j > size - 1, 2 * (size - 1) - j, j)  # ... and the right side


class GatherPadFunction(Function):
    """y = x gathered along each padded axis by ``source_index``; backward scatters back.

    Per axis, ``y = take(x, idx, axis)``, so ``gx[i] = sum of gy[j] over the j with idx[j] = i``:
    the axis is moved to the front and the sum is one ``add.at``.
    """

    def __init__(self, indices):
        self.indices = indices  # {axis: index array}

    def forward(self, x):
        xp = get_array_module(x)
        self.sizes = x.shape
        for axis, idx in self.indices.items():
            x = xp.take(x, xp.asarray(idx), axis=axis)
        return x

    def backward(self, gy):
        xp = get_array_module(gy)
        for axis, idx in reversed(list(self.indices.items())):
            moved = xp.moveaxis(gy, axis, 0)
            g = xp.zeros((self.sizes[axis],) + moved.shape[1:], dtype=gy.dtype)
            xp.add.at(g, xp.asarray(idx), moved)
            gy = xp.moveaxis(g, 0, axis)
        return xp.ascontiguousarray(gy)


def pad(x, pad, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad the last ``len(pad) // 2`` axes of ``x`` (with 'constant', negative amounts crop).

    Args:
        pad: an even number of ints, (last_lo, last_hi, second_last_lo, ...), as torch.
        mode: 'constant', 'reflect', 'replicate' or 'circular' (see the module docstring).
            'reflect' needs each amount < the axis's size, 'circular' <= it; the three of them
            need amounts >= 0. They pad any number of trailing axes (torch's take exactly the
            last three of a 5-D input).
        value: the fill value of 'constant' (e.g. ``-float('inf')`` before a max pooling).

    >>> import numpy as np, conv3d, conv3d.functional as F
    >>> F.pad(conv3d.Tensor(np.ones((1, 1, 1, 1, 2))), (1, 2)).numpy().ravel()
    array([0., 1., 1., 0., 0.])
    >>> x = conv3d.Tensor(np.arange(3.0).reshape(1, 1, 1, 1, 3))
    >>> F.pad(x, (2, 1), mode="reflect").numpy().ravel()
    array([2., 1., 0., 1., 2., 1.])
    """
    x = as_tensor(x)
    if mode not in MODES:
        raise ValueError(f"pad: mode must be one of {MODES}, got mode={mode!r}")
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
    if mode == "constant":
        for axis, (size, (lo, hi)) in enumerate(zip(x.shape, pairs)):
            if size + min(lo, 0) + min(hi, 0) < 0:  # the crops together exceed the axis
                raise ValueError(f"pad: cropping ({lo}, {hi}) on axis {axis} of size {size} "
                                 f"removes more than the axis holds")
        return PadFunction(tuple(pairs), value)(x)
    indices = {}
    for axis, (size, (lo, hi)) in enumerate(zip(x.shape, pairs)):
        if (lo, hi) == (0, 0):
            continue
        if min(lo, hi) < 0:
            raise ValueError(f"pad: mode={mode!r} needs amounts >= 0, got ({lo}, {hi}) on axis "
                             f"{axis}; crop first with mode='constant' or slicing")
        limit = size - 1 if mode == "reflect" else size
        if mode != "replicate" and max(lo, hi) > limit:
            raise ValueError(f"pad: mode={mode!r} can add at most {limit} voxels on axis {axis} "
                             f"of size {size}, got ({lo}, {hi}); use smaller amounts or "
                             f"mode='replicate'")
        if size == 0:
            raise ValueError(f"pad: mode={mode!r} cannot pad the empty axis {axis}")
        indices[axis] = source_index(size, lo, hi, mode)
    return GatherPadFunction(indices)(x)
