"""(2+1)D convolution (R(2+1)D, Tran et al. 2018): a t x d x d convolution factorized in two.

    x -> Conv3d(C, M, (1, d, d)) -> BatchNorm3d(M) -> ReLU -> Conv3d(M, K, (t, 1, 1)) -> y
         spatial: stride (1, sH, sW),              temporal: stride (sT, 1, 1),
                  padding (0, pH, pW)                        padding (pT, 0, 0)

The block sees the same t x d x d neighbourhood as the full 3-D conv but puts a nonlinearity
between space and time. Its width M ("mid_channels") defaults to the R(2+1)D rule that keeps the
number of weights of the full conv:

    t*d*d*C*K = M*(d*d*C + t*K)   =>   M = floor(t*d*d*C*K / (d*d*C + t*K))

e.g. C = K = 64, t = d = 3: M = floor(110592 / 768) = 144, and 144*(9*64 + 3*64) = 110,592
weights, exactly 3*3*3*64*64. As in torchvision's ``Conv2Plus1D`` the two convs have no bias
(BatchNorm follows the first; add ``bias=True`` for a bias on the second).
"""
from __future__ import annotations

import numbers

import numpy as np

from ..core.shapes import to_triple
from .layers import BatchNorm3d, Conv3d, ReLU
from .module import Module


def mid_channels_rule(in_channels: int, out_channels: int, kernel_size) -> int:
    """floor(t*d*d*C*K / (d*d*C + t*K)) for kernel (t, d, d); d*d is kH*kW in general."""
    t, kh, kw = to_triple(kernel_size, "kernel_size", minimum=1)
    area = kh * kw
    return (t * area * in_channels * out_channels) // (area * in_channels + t * out_channels)


class Conv2Plus1d(Module):
    """Factorized (2+1)D convolution block; see the module docstring.

    Args:
        in_channels, out_channels: C and K.
        kernel_size: int or (t, kH, kW).
        stride, padding: int or (time, height, width); 'same' and 'valid' apply to both convs.
            The spatial conv gets the height/width parts, the temporal conv the time part.
        mid_channels: M; None applies the parameter-matching rule.
        bias: give the temporal conv a bias.
        init, rng, dtype: as ``Conv3d``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size=3, stride=1, padding=0,
                 mid_channels: int | None = None, bias: bool = False, init=None, rng=None,
                 dtype=np.float32):
        super().__init__()
        t, kh, kw = to_triple(kernel_size, "kernel_size", minimum=1)
        st, sh, sw = to_triple(stride, "stride", minimum=1)
        if isinstance(padding, str):
            spatial_pad = temporal_pad = padding
        else:
            pt, ph, pw = to_triple(padding, "padding", minimum=0)
            spatial_pad, temporal_pad = (0, ph, pw), (pt, 0, 0)
        if mid_channels is None:
            mid_channels = mid_channels_rule(in_channels, out_channels, (t, kh, kw))
        if isinstance(mid_channels, bool) or not isinstance(mid_channels, numbers.Integral) \
                or mid_channels < 1:
            raise ValueError(f"Conv2Plus1d: mid_channels must be an int >= 1, got "
                             f"{mid_channels!r} (the rule gives less than 1 for these channel "
                             f"counts: pass mid_channels explicitly)")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.mid_channels = (t, kh, kw), int(mid_channels)
        self.spatial = Conv3d(in_channels, self.mid_channels, (1, kh, kw), stride=(1, sh, sw),
                              padding=spatial_pad, bias=False, init=init, rng=rng, dtype=dtype)
        self.bn = BatchNorm3d(self.mid_channels, dtype=dtype)
        self.relu = ReLU()
        self.temporal = Conv3d(self.mid_channels, out_channels, (t, 1, 1), stride=(st, 1, 1),
                               padding=temporal_pad, bias=bias, init=init, rng=rng, dtype=dtype)

    def forward(self, x):
        return self.temporal(self.relu(self.bn(self.spatial(x))))

    def conv_weight_count(self) -> int:
        """Weights of the two convolutions (no bias, no BatchNorm)."""
        return int(self.spatial.weight.size + self.temporal.weight.size)

    def full_conv_weight_count(self) -> int:
        """Weights of the t x kH x kW Conv3d this block replaces: t*kH*kW*C*K."""
        return int(np.prod(self.kernel_size)) * self.in_channels * self.out_channels

    def extra_repr(self):
        t, kh, kw = self.kernel_size
        total = sum(int(p.size) for p in self.parameters())
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"mid_channels={self.mid_channels}, conv weights {self.conv_weight_count():,} "
                f"(+{total - self.conv_weight_count():,} BatchNorm/bias) vs full {t}x{kh}x{kw} "
                f"Conv3d {self.full_conv_weight_count():,}")
