"""3D convolution: ``Conv3dFunction`` (forward and backward side by side) and ``conv3d``.

The arithmetic lives in the device's kernel provider (``conv3d.ops.fast`` on the CPU, whose
readable form is ``conv3d.ops.cpu_reference``: im2col + GEMM); this Function only wires the
three gradients together, so the same code serves every device.
"""
from __future__ import annotations

from ..core.backend import kernels_for
from ..core.tensor import Function, Tensor, as_tensor
from ._args import parse_conv_args


class Conv3dFunction(Function):
    """y = conv3d(x, w) + b, for validated settings (see ``conv3d`` for their meaning).

    Args:
        stride, dilation: int triples; padding: three (before, after) pairs; groups: int.
    """

    def __init__(self, stride, padding, dilation, groups):
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups

    def forward(self, x, w, b=None):
        if self.recording:  # the backward reads x (for gw) and w (for gx); inference keeps none
            self.x, self.w = x, w
        return kernels_for(self.device).conv3d_forward(x, w, b, self.stride, self.padding,
                                                       self.dilation, self.groups)

    def backward(self, gy):
        need = (self.inputs[0].requires_grad, self.inputs[1].requires_grad)
        gx, gw = kernels_for(self.device).conv3d_backward(
            gy, self.x, self.w, self.stride, self.padding, self.dilation, self.groups, need)
        if len(self.inputs) == 2:
            return gx, gw
        gb = gy.sum(axis=(0, 2, 3, 4)) if self.inputs[2].requires_grad else None
        return gx, gw, gb


def conv3d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """3D cross-correlation, as ``torch.nn.functional.conv3d`` (no kernel flip).

    Args:
        x: (N, C, D, H, W).
        weight: (K, C/groups, kD, kH, kW): K filters.
        bias: (K,) or None.
        stride, dilation: int or (d, h, w) triple, each >= 1.
        padding: int or triple (zeros added on both sides), ``'valid'`` (no padding) or
            ``'same'``.
        groups: split the channels into ``groups`` groups; filter group g sees channel group g
            only. Must divide both C and K.

    Returns:
        y of shape (N, K, OD, OH, OW), per axis ``o = floor((i + 2p - d*(k - 1) - 1) / s) + 1``,
        ``y[n, k, z, y, x] = b[k] + sum_{c, a, b, e} w[k, c, a, b, e] *
        xpad[n, g*C/G + c, z*sD + a*dD, y*sH + b*dH, x*sW + e*dW]``.

    ``padding='same'`` follows TensorFlow/Keras, so it also works with stride > 1: per axis the
    output size is ``o = ceil(i / s)``, the total padding is
    ``max((o - 1)*s + d*(k - 1) + 1 - i, 0)``, and when it is odd the extra voxel goes *after* the
    data (``before = total // 2``, ``after = total - before``). With stride 1 this gives the
    input's size, exactly like PyTorch's ``padding='same'``.

    >>> import numpy as np, conv3d, conv3d.functional as F
    >>> x = conv3d.Tensor(np.ones((1, 1, 4, 4, 4), dtype=np.float32), requires_grad=True)
    >>> w = conv3d.Tensor(np.ones((2, 1, 3, 3, 3), dtype=np.float32))
    >>> y = F.conv3d(x, w)            # o = floor((4 + 0 - 1*(3-1) - 1)/1) + 1 = 2 per axis
    >>> y.shape, float(y.numpy()[0, 0, 0, 0, 0])   # 27 ones times 27 ones
    ((1, 2, 2, 2, 2), 27.0)
    >>> F.conv3d(x, w, stride=2, padding="same").shape   # Keras's rule: ceil(4 / 2) = 2
    (1, 2, 2, 2, 2)
    >>> y.sum().backward(); float(x.grad[0, 0, 0, 0, 0])  # a corner: 1 window x 2 filters
    2.0
    """
    x, weight = as_tensor(x), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    geo = parse_conv_args(x.data, weight.data, None if bias is None else bias.data,
                          stride, padding, dilation, groups)
    fn = Conv3dFunction(geo.stride, geo.padding, geo.dilation, geo.groups)
    return fn(x, weight) if bias is None else fn(x, weight, bias)
