"""``ConvTranspose3d``: the layer form of ``conv3d.functional.conv_transpose3d``, as torch's."""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..core.shapes import to_triple
from . import init as _init
from .layers import _float_dtype, _set_conv_settings
from .module import Module, Parameter


class ConvTranspose3d(Module):
    """3D transposed convolution layer, as ``torch.nn.ConvTranspose3d``: the adjoint of a
    Conv3d from ``out_channels`` to ``in_channels`` (see ``conv3d.functional.conv_transpose3d``),
    the usual way a decoder doubles its resolution (``kernel_size=2, stride=2``).

    Args:
        in_channels (C_in), out_channels (C_out), kernel_size: int or (kD, kH, kW).
        stride, padding, output_padding, groups, dilation: as the functional op.
        bias: learn a (C_out,) bias.
        init, rng, dtype: as ``Conv3d`` (None = PyTorch's default, whose fan-in is read from the
            weight's shape, C_out/groups * kD*kH*kW, as torch does).

    Shapes: x (N, C_in, D, H, W) -> y (N, C_out, OD, OH, OW),
    ``o = (i - 1)*s - 2p + d*(k - 1) + output_padding + 1``.
    Parameters: weight (C_in, C_out/groups, kD, kH, kW) (+ bias (C_out,)), torch's names and
    layout, so a torch ``state_dict`` loads unchanged.

    >>> import numpy as np, conv3d
    >>> up = conv3d.nn.ConvTranspose3d(8, 4, kernel_size=2, stride=2)
    >>> up(conv3d.Tensor(np.zeros((1, 8, 3, 3, 3), np.float32))).shape, up.weight.shape
    ((1, 4, 6, 6, 6), (8, 4, 2, 2, 2))
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1, init=None,
                 rng=None, dtype=np.float32):
        super().__init__()
        name = "ConvTranspose3d"
        _set_conv_settings(self, name, in_channels, out_channels, groups, kernel_size, stride,
                           dilation)
        self.padding = to_triple(padding, "padding", minimum=0)
        self.output_padding = to_triple(output_padding, "output_padding", minimum=0)
        for op_, s, d in zip(self.output_padding, self.stride, self.dilation):
            if op_ >= max(s, d):
                raise ValueError(f"{name}: output_padding={self.output_padding} must be smaller "
                                 f"than stride={self.stride} or dilation={self.dilation} on "
                                 f"every axis")
        dtype = _float_dtype(dtype, name)
        shape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        self.weight = Parameter(np.zeros(shape, dtype=dtype))
        self.bias = Parameter(np.zeros(self.out_channels, dtype=dtype)) if bias else None
        _init.initialize(self.weight, self.bias, init, rng)

    def forward(self, x, output_size=None):
        """``output_size`` ((OD, OH, OW), or with N and C in front), as torch: the
        output_padding that gives that size, instead of the layer's own."""
        output_padding = self.output_padding
        if output_size is not None:
            output_padding = self._output_padding_for(x.shape[2:], output_size)
        return F.conv_transpose3d(x, self.weight, self.bias, self.stride, self.padding,
                                  output_padding, self.groups, self.dilation)

    def _output_padding_for(self, in_size, output_size):
        size = tuple(int(v) for v in output_size)[-3:]
        if len(tuple(output_size)) not in (3, 5):
            raise ValueError(f"ConvTranspose3d: output_size must be (OD, OH, OW) or "
                             f"(N, C, OD, OH, OW), got {output_size!r}")
        pads = []
        for axis, i, o, k, s, p, d in zip(("depth", "height", "width"), in_size, size,
                                          self.kernel_size, self.stride, self.padding,
                                          self.dilation):
            smallest = (i - 1) * s - 2 * p + d * (k - 1) + 1
            if not smallest <= o < smallest + max(s, d):
                raise ValueError(f"ConvTranspose3d: output_size {size} is out of reach on the "
                                 f"{axis} axis: from {i} voxels it can be {smallest} to "
                                 f"{smallest + max(s, d) - 1}, got {o}")
            pads.append(o - smallest)
        return tuple(pads)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        for name, default in (("stride", (1, 1, 1)), ("padding", (0, 0, 0)),
                              ("output_padding", (0, 0, 0)), ("dilation", (1, 1, 1))):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")
