"""Resizing a volume: ``interpolate`` (nearest, trilinear), as ``torch.nn.functional.interpolate``.

Both modes are *separable*: the value at output voxel (z, y, x) mixes input voxels with a weight
that is a product of one weight per axis. So the resize is three 1-D resizes, each a matrix
``M`` of shape (O, I) applied along one axis, and its backward is the transposed matrices applied
in the reverse order. The matrices hold PyTorch's index rules (``aten/src/ATen/native/UpSample.h``),
per axis with input size I and output size O:

* the scale: ``1 / scale_factor`` when a scale factor was given (and not recomputed), else
  ``I / O``; with ``align_corners=True`` (trilinear only) ``(I - 1) / (O - 1)`` (0 when O = 1);
* nearest: output o copies input ``min(floor(o * scale), I - 1)``, computed in float32 as torch
  does (in float64, ``scale_factor=3.7`` on 11 voxels would pick other voxels), with no special
  case for O = I or O = 2I (torch 2.x has none either: ``scale_factor=1.3`` on 2 voxels gives
  O = 2 but copies voxel 0 twice). The backward here is that forward's own gradient; torch's
  nearest backward still takes those two shortcuts, so in such cases its gradient is not the
  gradient of its forward, and conv3d's differs from it;
* trilinear: the source position is ``src = o * scale`` (align_corners) or
  ``max((o + 0.5) * scale - 0.5, 0)``; output o is ``(1 - l) * x[i0] + l * x[i1]`` with
  ``i0 = floor(src)``, ``i1 = min(i0 + 1, I - 1)``, ``l = src - i0``. An axis with O = I is
  copied, as torch does, even when ``scale_factor`` (e.g. 1.3 on 2 voxels) says otherwise.

The output size is ``size``, or ``floor(I * scale_factor)`` per axis.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..core.backend import get_array_module, kernels_for
from ..core.tensor import Function, Tensor, as_tensor
from ._args import check_5d

MODES = ("nearest", "trilinear")


def _scale(I: int, O: int, factor, align_corners: bool, dtype) -> np.floating:
    """The source-per-output step of one axis, in ``dtype`` (torch computes it in the input's
    float type, float32 for nearest)."""
    f = np.dtype(dtype).type
    if align_corners:
        return f(I - 1) / f(O - 1) if O > 1 else f(0)
    if factor is not None and factor > 0:
        return f(1.0 / factor)
    return f(I) / f(O)


def nearest_indices(I: int, O: int, factor=None) -> np.ndarray:
    """Input index of every output index: ``min(floor(o * scale), I - 1)`` in float32.

    >>> nearest_indices(2, 5).tolist()       # scale 2/5 = 0.4: floor(0, 0.4, 0.8, 1.2, 1.6)
    [0, 0, 0, 1, 1]
    """
    scale = _scale(I, O, factor, False, np.float32)
    src = np.floor(np.arange(O, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(src, I - 1)


def linear_weights(I: int, O: int, factor, align_corners: bool, dtype):
    """``(i0, i1, l)`` per output index: output o = ``(1 - l[o]) x[i0[o]] + l[o] x[i1[o]]``.

    >>> i0, i1, l = linear_weights(2, 4, None, False, np.float64)
    >>> i0.tolist(), i1.tolist(), l.tolist()     # src = max((o + 0.5)/2 - 0.5, 0); at the
    ... # last input i1 = i0, so l does not matter there
    ([0, 0, 0, 1], [1, 1, 1, 1], [0.0, 0.25, 0.75, 0.25])
    """
    f = np.dtype(dtype).type
    scale = _scale(I, O, factor, align_corners, dtype)
    o = np.arange(O, dtype=dtype)
    src = o * scale if align_corners else np.maximum((o + f(0.5)) * scale - f(0.5), f(0))
    i0 = src.astype(np.int64)  # src >= 0, so truncation is floor
    i0 = np.minimum(i0, I - 1)
    i1 = np.minimum(i0 + 1, I - 1)
    lam = np.clip(src - i0.astype(dtype), 0, 1).astype(dtype)
    return i0, i1, lam


def resize_matrix(I: int, O: int, mode: str, factor, align_corners: bool, dtype) -> np.ndarray:
    """The (O, I) matrix of one axis: row o holds the weights output o gives each input."""
    M = np.zeros((O, I), dtype=dtype)
    rows = np.arange(O)
    if mode == "nearest":
        M[rows, nearest_indices(I, O, factor)] = 1
        return M
    if O == I:  # torch copies such an axis, whatever scale_factor says (nearest does not)
        return np.eye(I, dtype=dtype)
    i0, i1, lam = linear_weights(I, O, factor, align_corners, dtype)
    np.add.at(M, (rows, i0), 1 - lam)
    np.add.at(M, (rows, i1), lam)  # i1 == i0 at the last input: the weights add up to 1
    return M


def _apply(a, M, axis: int):
    """``a`` with axis ``axis`` (2, 3 or 4 of NCDHW) replaced by ``M @ a`` along it."""
    if axis == 4:
        return a @ M.T
    if axis == 3:
        return M @ a
    N, C, D, H, W = a.shape
    return (M @ a.reshape(N, C, D, H * W)).reshape(N, C, M.shape[0], H, W)


def _is_copy(M) -> bool:
    """True when every row of ``M`` is a single 1 (nearest, or an axis that keeps its size)."""
    return bool(np.all((M != 0).sum(axis=1) == 1) and np.all(M.max(axis=1) == 1))


def resize_forward(x, matrices):
    """``x`` (N, C, D, H, W) resized by one (O, I) matrix per spatial axis: the array-level
    forward of the CPU provider (``interpolate_forward`` in ``conv3d.core.backend``).

    A resize that only copies (nearest) gathers, an exact copy as torch's (no 0 * inf = nan from
    a matrix product); otherwise the three matrix products."""
    xp = get_array_module(x)
    if all(_is_copy(M) for M in matrices):
        d, h, w = (xp.asarray(np.argmax(M, axis=1)) for M in matrices)
        return x[:, :, d[:, None, None], h[None, :, None], w[None, None, :]]
    y = x
    for axis, M in zip((2, 3, 4), matrices):
        y = _apply(y, xp.asarray(M), axis)
    return y


def resize_backward(gy, matrices):
    """The input gradient of ``resize_forward``: the transposed matrices, in reverse order (for
    a copy this adds up, per input voxel, the gradients of its copies)."""
    xp = get_array_module(gy)
    g = gy
    for axis, M in reversed(list(zip((2, 3, 4), matrices))):
        g = _apply(g, xp.asarray(M).T, axis)
    return xp.ascontiguousarray(g)


class InterpolateFunction(Function):
    """y = the input resized by one (O, I) matrix per spatial axis; backward: the transposes.

    The device's kernel provider applies them (``resize_forward`` above on the CPU;
    kernels/upsample_trilinear_*.cu on 'cuda' and 'cuda-emu')."""

    def __init__(self, matrices):
        self.matrices = matrices

    def forward(self, x):
        return kernels_for(self.device).interpolate_forward(x, self.matrices)

    def backward(self, gy):
        return kernels_for(self.device).interpolate_backward(gy, self.matrices)


def _triple_of(value, name: str, kind, minimum):
    """An int/float or a sequence of three -> a triple, with torch-style checks."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * 3
    if len(values) != 3 or any(isinstance(v, bool) or not isinstance(v, kind) for v in values):
        raise TypeError(f"interpolate: {name} must be a number or 3 numbers (depth, height, "
                        f"width), got {value!r}")
    if any(v <= minimum for v in values):
        raise ValueError(f"interpolate: {name} must be > {minimum} on every axis, got {value!r}")
    return values


def interpolate(x, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                recompute_scale_factor=None) -> Tensor:
    """Resize a volume, as ``torch.nn.functional.interpolate`` on (N, C, D, H, W) input.

    Args:
        x: (N, C, D, H, W).
        size: int or (OD, OH, OW); or
        scale_factor: number or triple: ``o = floor(i * scale_factor)`` per axis (give exactly
            one of size and scale_factor).
        mode: 'nearest' or 'trilinear' (see the module docstring for the index rules).
        align_corners: trilinear only (None means False): True maps the corner voxels' centres
            onto each other, ``src = o * (I - 1) / (O - 1)``; False maps the volumes' edges,
            ``src = (o + 0.5) * scale - 0.5``.
        recompute_scale_factor: True: the scale used for indexing is ``I / O`` from the output
            size, not ``1 / scale_factor``.

    Returns:
        (N, C, OD, OH, OW).

    >>> import numpy as np, conv3d, conv3d.functional as F
    >>> x = conv3d.Tensor(np.array([0.0, 1.0]).reshape(1, 1, 1, 1, 2))
    >>> F.interpolate(x, scale_factor=(1, 1, 2), mode="trilinear").numpy().ravel()
    array([0.  , 0.25, 0.75, 1.  ])
    >>> F.interpolate(x, size=(1, 1, 3), mode="trilinear", align_corners=True).numpy().ravel()
    array([0. , 0.5, 1. ])
    >>> F.interpolate(x, scale_factor=(1, 1, 2)).numpy().ravel()      # nearest
    array([0., 0., 1., 1.])
    """
    x = as_tensor(x)
    check_5d("interpolate", "input", x.data, "(N, C, D, H, W)",
             "add missing axes, e.g. x.reshape(1, 1, *x.shape) for a single 3-D volume")
    if x.dtype.kind != "f":
        raise TypeError(f"interpolate: input must be float32 or float64, got {x.dtype}")
    if mode not in MODES:
        raise ValueError(f"interpolate: mode must be one of {MODES}, got {mode!r} (torch's "
                         f"'area', 'nearest-exact' and the 2-D modes are not here)")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("interpolate: align_corners can only be set with mode='trilinear' "
                         "(nearest has no corners to align); leave it None")
    align = bool(align_corners)
    if (size is None) == (scale_factor is None):
        raise ValueError(f"interpolate: give exactly one of size and scale_factor, got "
                         f"size={size!r}, scale_factor={scale_factor!r}")
    in_size = x.shape[2:]
    if size is not None:
        out = _triple_of(size, "size", numbers.Integral, 0)
        factors = (None,) * 3
    else:
        factors = _triple_of(scale_factor, "scale_factor", numbers.Real, 0)
        out = tuple(int(math.floor(i * float(f))) for i, f in zip(in_size, factors))
        if min(out) < 1:
            raise ValueError(f"interpolate: scale_factor={scale_factor!r} on input size "
                             f"{tuple(in_size)} gives an empty output {out}; use a larger factor")
        if recompute_scale_factor:
            factors = (None,) * 3
        factors = tuple(None if f is None else float(f) for f in factors)
    out = tuple(int(o) for o in out)
    matrices = tuple(resize_matrix(i, o, mode, f, align, x.dtype)
                     for i, o, f in zip(in_size, out, factors))
    return InterpolateFunction(matrices)(x)
