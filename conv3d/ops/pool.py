"""3D max and average pooling: the Functions (forward beside backward) and their wrappers.

Output size per axis (PyTorch's rule, ``conv3d.core.geometry.PoolGeometry``)::

    o = floor((i + 2p - d*(k - 1) - 1) / s) + 1      (ceil instead of floor with ceil_mode,
                                                      dropping a last window that would start
                                                      in the right padding)
"""
from __future__ import annotations

from ..core.backend import kernels_for
from ..core.tensor import Function, Tensor, as_tensor
from ._args import parse_pool_args


class MaxPool3dFunction(Function):
    """Max pooling; backward sends each output's gradient to the one voxel that was the max."""

    def __init__(self, kernel_size, stride, padding, dilation, ceil_mode):
        self.settings = (kernel_size, stride, padding, dilation, ceil_mode)

    def forward(self, x):
        self.x_shape = x.shape  # the argmax only when a backward will need it
        y, self.indices = kernels_for(self.device).max_pool3d_forward(
            x, *self.settings, return_indices=self.recording)
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


def max_pool3d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False) -> Tensor:
    """Maximum over every (dilated) window, as ``torch.nn.functional.max_pool3d``.

    Args:
        x: (N, C, D, H, W).
        kernel_size: int or triple. stride: int or triple, default ``kernel_size``.
        padding: int or triple, at most ``kernel_size // 2``; padded voxels count as -inf.
        dilation: int or triple, the spacing between window taps.
        ceil_mode: round the output size up instead of down (see the module docstring).

    Returns (N, C, OD, OH, OW). On ties the gradient goes to a single voxel, the first maximum in
    the window's scan order (depth, then height, then width), exactly as in PyTorch.

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
    return MaxPool3dFunction(g.kernel, g.stride, g.padding, g.dilation, g.ceil_mode)(x)


def avg_pool3d(x, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True) -> Tensor:
    """Mean over every window, as ``torch.nn.functional.avg_pool3d``.

    Args:
        x: (N, C, D, H, W).
        kernel_size: int or triple. stride: int or triple, default ``kernel_size``.
        padding: int or triple, at most ``kernel_size // 2``; padded voxels are zeros.
        ceil_mode: round the output size up instead of down.
        count_include_pad: divide by the window size including the padding (True) or by the
            number of real voxels in the window (False).

    The divisor is PyTorch's: a window is first clipped to the padded input (under ceil_mode a
    window may run past it, and that overhang never counts); with ``count_include_pad`` its
    clipped size is the divisor, otherwise the number of real voxels it covers.

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
    return AvgPool3dFunction(g.kernel, g.stride, g.padding, g.ceil_mode,
                             bool(count_include_pad))(x)
