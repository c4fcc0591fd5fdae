"""3D max and average pooling: the Functions (forward beside backward) and their wrappers.

Output size per axis (PyTorch's rule, ``conv3d.core.geometry.PoolGeometry``)::

    o = floor((i + 2p - d*(k - 1) - 1) / s) + 1      (ceil instead of floor with ceil_mode,
                                                      dropping a last window that would start
                                                      in the right padding)
"""
from __future__ import annotations

import numbers

import numpy as np

from ..core.backend import get_array_module, kernels_for
from ..core.shapes import to_triple
from ..core.tensor import Function, Tensor, as_tensor, check_float_dtypes
from ._args import check_5d, parse_pool_args
from .cpu_reference import _avg_divisor


class MaxPool3dFunction(Function):
    """Max pooling; backward sends each output's gradient to the one voxel that was the max."""

    def __init__(self, kernel_size, stride, padding, dilation, ceil_mode, keep_indices=False):
        self.settings = (kernel_size, stride, padding, dilation, ceil_mode)
        self.keep_indices = keep_indices  # return_indices: the caller wants the argmax

    def forward(self, x):
        self.x_shape = x.shape  # the argmax only when a backward (or the caller) needs it
        y, self.indices = kernels_for(self.device).max_pool3d_forward(
            x, *self.settings, return_indices=self.recording or self.keep_indices)
        return y

    def backward(self, gy):
        return kernels_for(self.device).max_pool3d_backward(gy, self.indices, self.x_shape)


class AvgPool3dFunction(Function):
    """Average pooling; backward spreads each output's gradient / divisor over its window."""

    def __init__(self, kernel_size, stride, padding, ceil_mode, count_include_pad):
        self.settings = (kernel_size, stride, padding, ceil_mode, count_include_pad)

    def forward(self, x):
        self.x_shape = x.shape
        return kernels_for(self.device).avg_pool3d_forward(x, *self.settings)

    def backward(self, gy):
        return kernels_for(self.device).avg_pool3d_backward(gy, self.x_shape, *self.settings)


def max_pool3d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices: bool = False):
    """Maximum over every (dilated) window, as ``torch.nn.functional.max_pool3d``.

    Args:
        x: (N, C, D, H, W).
        kernel_size: int or triple. stride: int or triple, default ``kernel_size``.
        padding: int or triple, at most ``kernel_size // 2``; padded voxels count as -inf.
        dilation: int or triple, the spacing between window taps.
        ceil_mode: round the output size up instead of down (see the module docstring).
        return_indices: also return where each maximum came from: an int64 array
            (N, C, OD, OH, OW) of flat indices into the D*H*W voxels of its (n, c) volume
            (torch's convention, what ``max_unpool3d`` takes; torch returns a tensor).

    Returns (N, C, OD, OH, OW), or ``(y, indices)`` with ``return_indices``. On ties the
    gradient goes to a single voxel, the first maximum in the window's scan order (depth, then
    height, then width), exactly as in PyTorch.

    >>> import numpy as np, conv3d, conv3d.functional as F
    >>> x = conv3d.Tensor(np.arange(8.0).reshape(1, 1, 2, 2, 2), requires_grad=True)
    >>> y = F.max_pool3d(x, 2)        # one 2x2x2 window: its maximum is 7
    >>> y.numpy().ravel(), y.shape
    (array([7.]), (1, 1, 1, 1, 1))
    >>> y.sum().backward(); x.grad.ravel()   # the gradient goes to the maximum only
    array([0., 0., 0., 0., 0., 0., 0., 1.])
    """
    x = as_tensor(x)
    g = parse_pool_args("max_pool3d", x.data, kernel_size, stride, padding, dilation, ceil_mode)
    fn = MaxPool3dFunction(g.kernel, g.stride, g.padding, g.dilation, g.ceil_mode,
                           bool(return_indices))
    y = fn(x)
    return (y, fn.indices) if return_indices else y


def avg_pool3d(x, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None) -> Tensor:
    """Mean over every window, as ``torch.nn.functional.avg_pool3d``.

    Args:
        x: (N, C, D, H, W).
        kernel_size: int or triple. stride: int or triple, default ``kernel_size``.
        padding: int or triple, at most ``kernel_size // 2``; padded voxels are zeros.
        ceil_mode: round the output size up instead of down.
        count_include_pad: divide by the window size including the padding (True) or by the
            number of real voxels in the window (False).
        divisor_override: an int > 0: divide every window's sum by it instead
            (``count_include_pad`` then does not matter, as in torch).

    The divisor is PyTorch's: a window is first clipped to the padded input (under ceil_mode a
    window may run past it, and that overhang never counts); with ``count_include_pad`` its
    clipped size is the divisor, otherwise the number of real voxels it covers. With
    ``divisor_override`` the result is the mean with ``count_include_pad`` times that clipped
    size (the window's sum) over the override.

    >>> import numpy as np, conv3d, conv3d.functional as F
    >>> x = conv3d.Tensor(np.ones((1, 1, 2, 2, 2)))
    >>> F.avg_pool3d(x, 2, padding=1).numpy()[0, 0, 0, 0]   # corner windows: 1 real voxel of 8
    array([0.125, 0.125])
    >>> F.avg_pool3d(x, 2, padding=1, count_include_pad=False).numpy()[0, 0, 0, 0]
    array([1., 1.])
    """
    x = as_tensor(x)
    g = parse_pool_args("avg_pool3d", x.data, kernel_size, stride, padding, 1, ceil_mode)
    if not isinstance(count_include_pad, (bool, int)):
        raise TypeError(f"avg_pool3d: count_include_pad must be True or False, got "
                        f"{count_include_pad!r}")
    if divisor_override is None:
        return AvgPool3dFunction(g.kernel, g.stride, g.padding, g.ceil_mode,
                                 bool(count_include_pad))(x)
    if isinstance(divisor_override, bool) or not isinstance(divisor_override, numbers.Integral) \
            or divisor_override < 1:
        raise ValueError(f"avg_pool3d: divisor_override must be an int >= 1 (or None), got "
                         f"{divisor_override!r}")
    xp = get_array_module(x.data)
    sizes = _avg_divisor(xp, g.in_size, g.kernel, g.stride, g.padding, g.out_size, True, x.dtype)
    mean = AvgPool3dFunction(g.kernel, g.stride, g.padding, g.ceil_mode, True)(x)
    return mean * Tensor(sizes / x.dtype.type(divisor_override), device=x.device)


class MaxUnpool3dFunction(Function):
    """The partial inverse of max pooling: each value goes back to the voxel its index names.

    Forward scatters: ``y.reshape(N, C, OD*OH*OW)[n, c, indices[n, c, j]] = x[n, c, j]``, zeros
    elsewhere. Backward gathers from the same places: ``gx[n, c, j] = gy[n, c, indices[n, c, j]]``.
    """

    def __init__(self, indices, out_size):
        self.indices, self.out_size = indices, out_size

    def forward(self, x):
        xp = get_array_module(x)
        N, C = x.shape[:2]
        y = xp.zeros((N, C, int(np.prod(self.out_size))), dtype=x.dtype)
        flat = self.indices.reshape(N, C, -1)
        xp.put_along_axis(y, flat, x.reshape(N, C, -1), axis=2)
        self.x_shape = x.shape
        return y.reshape((N, C) + self.out_size)

    def backward(self, gy):
        xp = get_array_module(gy)
        N, C = gy.shape[:2]
        flat = self.indices.reshape(N, C, -1)
        return xp.take_along_axis(gy.reshape(N, C, -1), flat, axis=2).reshape(self.x_shape)


def max_unpool3d(x, indices, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """Put pooled maxima back where they came from, as ``torch.nn.functional.max_unpool3d``.

    Args:
        x: (N, C, D, H, W), e.g. the output of ``max_pool3d(..., return_indices=True)``.
        indices: int array (or Tensor) of x's shape: flat indices into the OD*OH*OW voxels of
            each (n, c) output volume (torch's convention, what ``max_pool3d`` returns).
        kernel_size, stride (default ``kernel_size``), padding: those of the max pooling.
        output_size: (OD, OH, OW) (or with N, C in front); default per axis
            ``o = (i - 1)*s - 2p + k``, the size the pooling came from (up to its rounding).

    Returns (N, C, OD, OH, OW): zeros except at the indexed voxels. If two values share an
    index one of them wins (torch leaves that case undefined), while the backward gives each
    value the gradient at its index.

    >>> import numpy as np, conv3d.functional as F
    >>> x = np.array([5.0, 1, 2, 9]).reshape(1, 1, 1, 1, 4)
    >>> y, where = F.max_pool3d(x, (1, 1, 2), return_indices=True)
    >>> where.ravel(), F.max_unpool3d(y, where, (1, 1, 2)).numpy().ravel()
    (array([0, 3]), array([5., 0., 0., 9.]))
    """
    op = "max_unpool3d"
    x = as_tensor(x)
    check_5d(op, "input", x.data, "(N, C, D, H, W)", "pass the output of max_pool3d")
    check_float_dtypes(op, input=x.data)
    xp = get_array_module(x.data)
    raw = indices.data if isinstance(indices, Tensor) else indices
    raw = xp.asarray(raw)
    if raw.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be an integer array, got dtype {raw.dtype}")
    if tuple(raw.shape) != tuple(x.shape):
        raise ValueError(f"{op}: indices must have the input's shape {x.shape}, got "
                         f"{tuple(raw.shape)}")
    try:
        kernel = to_triple(kernel_size, "kernel_size", minimum=1)
        strides = kernel if stride is None else to_triple(stride, "stride", minimum=1)
        pads = to_triple(padding, "padding", minimum=0)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{op}: {exc}") from None
    default = tuple((i - 1) * s - 2 * p + k for i, s, p, k in
                    zip(x.shape[2:], strides, pads, kernel))
    if output_size is None:
        out = default
    else:
        out = tuple(int(v) for v in output_size)[-3:]
        if len(tuple(output_size)) not in (3, 5) or min(out) < 1:
            raise ValueError(f"{op}: output_size must be (OD, OH, OW) or (N, C, OD, OH, OW) of "
                             f"positive ints, got {output_size!r}")
        for axis, o, d, s in zip(("depth", "height", "width"), out, default, strides):
            if not d - s < o < d + s:
                raise ValueError(f"{op}: output_size {out} on the {axis} axis must lie strictly "
                                 f"between {d - s} and {d + s} (the sizes a pooling with stride "
                                 f"{s} maps to the input's), got {o}")
    if raw.size and (int(raw.min()) < 0 or int(raw.max()) >= int(np.prod(out))):
        raise ValueError(f"{op}: indices must lie in [0, {int(np.prod(out))}) for an output of "
                         f"size {out}, found values in [{int(raw.min())}, {int(raw.max())}]")
    return MaxUnpool3dFunction(raw.astype(np.int64, copy=False), out)(x)
