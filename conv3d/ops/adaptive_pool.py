"""Adaptive 3D pooling: the caller names the output size, the op finds the windows.

Output index ``o`` of an axis with input size ``I`` and output size ``O`` pools the input
positions ``[start, end)`` with PyTorch's bin rule::

    start = floor(o * I / O)        end = ceil((o + 1) * I / O)

The bins cover the whole input; neighbours overlap by one position where ``I / O`` is not an
integer, and ``O > I`` repeats positions. Average pooling is separable (the mean over a box is
the mean over depth of the mean over height of the mean over width), so it is three small
matrix products, one per axis. Max pooling scans each output's box.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..core.backend import get_array_module, kernels_for
from ..core.tensor import Function, Tensor, as_tensor, check_float_dtypes
from ._args import check_5d


def adaptive_bins(I: int, O: int) -> list[tuple[int, int]]:  # noqa: E741, N803 (shape names)
    """The ``(start, end)`` input range of every output index (PyTorch's rule, above).

    >>> adaptive_bins(5, 3)
    [(0, 2), (1, 4), (3, 5)]
    """
    return [((o * I) // O, -((-(o + 1) * I) // O)) for o in range(O)]


def parse_output_size(op: str, output_size, in_size) -> tuple[int, int, int]:
    """``output_size`` (int, or three ints or Nones; None keeps that axis's size) -> a triple."""
    if isinstance(output_size, numbers.Integral) and not isinstance(output_size, bool):
        entries = (output_size,) * 3
    elif isinstance(output_size, (tuple, list)) and len(output_size) == 3:
        entries = tuple(output_size)
    else:
        raise ValueError(f"{op}: output_size must be an int or a tuple of 3 entries (each an int "
                         f"or None), got {output_size!r}; pass e.g. output_size=1 or (None, 7, 7)")
    out = []
    for axis, value, i in zip(("depth", "height", "width"), entries, in_size):
        if value is None:
            value = i
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{op}: output_size on the {axis} axis must be an int >= 1 or None "
                             f"(keep the input's size), got {value!r} in {output_size!r}")
        out.append(int(value))
    return tuple(out)


def _bin_matrix(I: int, O: int, dtype) -> np.ndarray:  # noqa: E741, N803
    """(O, I): row o holds 1/len(bin o) on bin o, so ``A @ v`` averages every bin of ``v``."""
    A = np.zeros((O, I), dtype=dtype)
    for o, (start, end) in enumerate(adaptive_bins(I, O)):
        A[o, start:end] = 1.0 / (end - start)
    return A


def _along(x, A, axis: int):
    """Apply the matrix A (O, I) to axis ``axis`` of x (whose size there is I)."""
    xp = get_array_module(x)
    return xp.moveaxis(xp.moveaxis(x, axis, -1) @ A.T, -1, axis)


class AdaptiveAvgPool3dFunction(Function):
    """y = x averaged over every output's bin, one axis at a time; backward is the transpose:
    each output's gradient spread evenly over its bin (a position in two bins gets both)."""

    def __init__(self, output_size):
        self.output_size = output_size

    def forward(self, x):
        xp = get_array_module(x)
        if self.output_size == (1, 1, 1):  # global pooling, every network's head: the average
            self.x_shape = x.shape         # pooling whose one window is the whole volume
            return kernels_for(self.device).avg_pool3d_forward(x, *self._global(x.shape))
        self.mats = [xp.asarray(_bin_matrix(i, o, x.dtype))
                     for i, o in zip(x.shape[2:], self.output_size)]
        for axis, A in zip((2, 3, 4), self.mats):
            x = _along(x, A, axis)
        return x

    @staticmethod
    def _global(x_shape):  # provider settings (kernel, stride, padding, ceil_mode, count_pad)
        return x_shape[2:], x_shape[2:], (0, 0, 0), False, True

    def backward(self, gy):
        if self.output_size == (1, 1, 1):
            return kernels_for(self.device).avg_pool3d_backward(gy, self.x_shape,
                                                                *self._global(self.x_shape))
        for axis, A in zip((2, 3, 4), self.mats):
            gy = _along(gy, A.T, axis)
        return gy


class AdaptiveMaxPool3dFunction(Function):
    """y = the maximum over every output's bin; backward sends each output's gradient to the
    voxel that was the maximum (a voxel that wins in two overlapping bins gets both).

    Which voxel wins, as PyTorch: the first maximum in the bin's scan order (depth, then
    height, then width); a bin holding NaN outputs NaN and its *last* NaN gets the gradient.
    ``self.indices`` (N, C, OD, OH, OW) are flat indices into D*H*W, as torch's return_indices.
    """

    def __init__(self, output_size):
        self.output_size = output_size

    def forward(self, x):
        xp = get_array_module(x)
        N, C, D, H, W = x.shape
        OD, OH, OW = self.output_size
        self.x_shape = x.shape
        y = xp.empty((N, C, OD, OH, OW), dtype=x.dtype)
        self.indices = xp.empty((N, C, OD, OH, OW), dtype=np.int64)
        for od, (d0, d1) in enumerate(adaptive_bins(D, OD)):
            for oh, (h0, h1) in enumerate(adaptive_bins(H, OH)):
                for ow, (w0, w1) in enumerate(adaptive_bins(W, OW)):
                    box = x[:, :, d0:d1, h0:h1, w0:w1].reshape(N, C, -1)
                    local = box.argmax(axis=2)  # the first maximum (NaN counts as the maximum)
                    nan = xp.isnan(box)
                    last_nan = box.shape[2] - 1 - nan[:, :, ::-1].argmax(axis=2)
                    local = xp.where(nan.any(axis=2), last_nan, local)
                    y[:, :, od, oh, ow] = xp.take_along_axis(box, local[:, :, None], 2)[..., 0]
                    ld, lh, lw = xp.unravel_index(local, (d1 - d0, h1 - h0, w1 - w0))
                    self.indices[:, :, od, oh, ow] = ((d0 + ld) * H + h0 + lh) * W + w0 + lw
        return y

    def backward(self, gy):
        xp = get_array_module(gy)
        N, C, D, H, W = self.x_shape
        gx = xp.zeros((N, C, D * H * W), dtype=gy.dtype)
        n, c = xp.meshgrid(xp.arange(N), xp.arange(C), indexing="ij")
        # one output position at a time: within it every (n, c) hits one voxel, so += is exact
        for od, oh, ow in np.ndindex(*gy.shape[2:]):
            gx[n, c, self.indices[:, :, od, oh, ow]] += gy[:, :, od, oh, ow]
        return gx.reshape(self.x_shape)


def _check_input(op: str, x: Tensor) -> None:
    check_5d(op, "input", x.data, "(N, C, D, H, W)",
             "add missing axes, e.g. x.reshape(1, 1, *x.shape) for a single 3-D volume")
    check_float_dtypes(op, input=x.data)
    if min(x.shape[2:]) < 1:
        raise ValueError(f"{op}: every spatial size must be >= 1, got input shape {x.shape}")


def adaptive_avg_pool3d(x, output_size) -> Tensor:
    """Average pooling to a chosen output size, as ``torch.nn.functional.adaptive_avg_pool3d``.

    Args:
        x: (N, C, D, H, W).
        output_size: (OD, OH, OW) or one int for all three; an entry None keeps that input size.

    Returns (N, C, OD, OH, OW); output ``o`` of an axis is the mean over input positions
    ``[floor(o*I/O), ceil((o+1)*I/O))``.

    >>> import numpy as np, conv3d, conv3d.functional as F
    >>> x = conv3d.Tensor(np.arange(5.0).reshape(1, 1, 1, 1, 5))
    >>> F.adaptive_avg_pool3d(x, (1, 1, 3)).numpy().ravel()   # bins [0,2) [1,4) [3,5)
    array([0.5, 2. , 3.5])
    """
    x = as_tensor(x)
    _check_input("adaptive_avg_pool3d", x)
    size = parse_output_size("adaptive_avg_pool3d", output_size, x.shape[2:])
    return AdaptiveAvgPool3dFunction(size)(x)


def adaptive_max_pool3d(x, output_size, return_indices: bool = False):
    """Max pooling to a chosen output size, as ``torch.nn.functional.adaptive_max_pool3d``.

    Bins as ``adaptive_avg_pool3d``. With ``return_indices`` also returns the winners' flat
    indices into D*H*W, an int64 array (N, C, OD, OH, OW) (torch returns a tensor).

    >>> import numpy as np, conv3d, conv3d.functional as F
    >>> x = conv3d.Tensor(np.array([3.0, 1, 3, 2, 0]).reshape(1, 1, 1, 1, 5))
    >>> y, where = F.adaptive_max_pool3d(x, (1, 1, 2), return_indices=True)  # [0,3) [2,5)
    >>> y.numpy().ravel(), where.ravel()       # ties go to the first maximum
    (array([3., 3.]), array([0, 2]))
    """
    x = as_tensor(x)
    _check_input("adaptive_max_pool3d", x)
    size = parse_output_size("adaptive_max_pool3d", output_size, x.shape[2:])
    fn = AdaptiveMaxPool3dFunction(size)
    y = fn(x)
    return (y, fn.indices) if return_indices else y
