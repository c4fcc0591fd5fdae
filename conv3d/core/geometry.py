"""The sizes of one convolution or one pooling, in one place: ``ConvGeometry``, ``PoolGeometry``.

Every layer that needs a convolution's sizes reads them from here: the argument checks of
``conv3d.ops``, the CPU providers (the readable one and the fast one), the CUDA launch code and
the teaching tools. Per spatial axis (``core.shapes`` has the scalar formulas)::

    convolution:  o = floor((i + p_lo + p_hi - d*(k - 1) - 1) / s) + 1
    pooling:      o = floor_or_ceil((i + 2p - d*(k - 1) - 1) / s) + 1   (PyTorch's ceil_mode rule)

``from_shapes`` / ``from_shape`` take the user-facing settings (an int or a triple; for
convolution also ``'same'``/``'valid'`` or three ``(before, after)`` pairs), check them and
raise a ValueError/TypeError that names the argument and the fix.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace
from functools import cached_property

from .shapes import conv_output_size, pool_output_size, same_padding, to_triple

AXES = ("depth", "height", "width")
_checked: dict = {}  # ConvGeometry.from_shapes: settings already checked -> their geometry
_IN, _OUT = ("D", "H", "W"), ("OD", "OH", "OW")


@dataclass(frozen=True)
class ConvGeometry:
    """x (N, C, D, H, W) * w (K, C/groups, kD, kH, kW) -> y (N, K, OD, OH, OW).

    ``padding`` holds ``(before, after)`` per axis. ``padding='same'`` is the TensorFlow/Keras
    rule: ``o = ceil(i / s)``, total padding ``max((o - 1)*s + d*(k - 1) + 1 - i, 0)``, the
    smaller half before the data. Per axis ``o = floor((i + p_lo + p_hi - d*(k-1) - 1)/s) + 1``.

    >>> g = ConvGeometry.from_shapes((2, 4, 16, 56, 56), (8, 4, 3, 3, 3), stride=(1, 2, 2),
    ...                              padding="same")
    >>> g.out_size, g.padding[1]       # ceil(56 / 2) = 28; 1 voxel of padding, after the data
    ((16, 28, 28), (0, 1))
    """

    N: int
    C: int
    D: int
    H: int
    W: int
    K: int
    kernel: tuple[int, int, int]
    stride: tuple[int, int, int] = (1, 1, 1)
    padding: tuple = ((0, 0), (0, 0), (0, 0))
    dilation: tuple[int, int, int] = (1, 1, 1)
    groups: int = 1

    @classmethod
    def from_shapes(cls, x_shape, w_shape, stride=1, padding=0, dilation=1,
                    groups=1) -> ConvGeometry:
        """Check the settings against the shapes and return the geometry. A call is checked by
        several layers in turn (ops, provider, strategy), so checked settings are remembered
        (the geometry is frozen), keyed by their ``repr``: ``1.0`` and ``True`` are not ``1``."""
        key = repr((x_shape, w_shape, stride, padding, dilation, groups))
        geo = _checked.get(key)
        if geo is None:
            if len(_checked) >= 512:
                _checked.clear()
            geo = _checked[key] = cls._check(x_shape, w_shape, stride, padding, dilation, groups)
        return geo

    @classmethod
    def _check(cls, x_shape, w_shape, stride, padding, dilation, groups) -> ConvGeometry:
        stride = to_triple(stride, "stride", minimum=1)
        dilation = to_triple(dilation, "dilation", minimum=1)
        N, C, D, H, W = (int(v) for v in x_shape)
        K, Cg = int(w_shape[0]), int(w_shape[1])
        kernel = tuple(int(v) for v in w_shape[2:])
        groups = _check_groups(groups, C, K)
        if Cg * groups != C:
            raise ValueError(
                f"channel mismatch: input has C={C} channels (shape {tuple(x_shape)}) but weight "
                f"of shape {tuple(w_shape)} with groups={groups} expects C = weight.shape[1] * "
                f"groups = {Cg} * {groups} = {Cg * groups}; weight must have shape "
                f"(K, C/groups, kD, kH, kW) = ({K}, {C // groups}, ...)")
        padding = _conv_padding(padding, (D, H, W), kernel, stride, dilation)
        geo = cls(N, C, D, H, W, K, kernel, stride, padding, dilation, groups)
        _check_output_sizes(geo, padding, "more padding (e.g. padding='same')")
        return geo

    in_size = property(lambda self: (self.D, self.H, self.W))
    x_shape = property(lambda self: (self.N, self.C, self.D, self.H, self.W))
    w_shape = property(lambda self: (self.K, self.C // self.groups) + self.kernel)
    y_shape = property(lambda self: (self.N, self.K) + self.out_size)
    Cg = property(lambda self: self.C // self.groups)   # input channels per group
    Kg = property(lambda self: self.K // self.groups)   # filters per group
    taps = property(lambda self: math.prod(self.kernel))          # kD*kH*kW
    OD = property(lambda self: self.out_size[0])
    OH = property(lambda self: self.out_size[1])
    OW = property(lambda self: self.out_size[2])
    plane = property(lambda self: self.out_size[1] * self.out_size[2])  # OH*OW

    @cached_property
    def out_size(self) -> tuple[int, int, int]:
        """(OD, OH, OW): ``o = floor((i + p_lo + p_hi - d*(k - 1) - 1) / s) + 1`` per axis."""
        return tuple(conv_output_size(i, k, s, lo, hi, d) for i, k, s, (lo, hi), d in
                     zip(self.in_size, self.kernel, self.stride, self.padding, self.dilation))

    def slab_depth(self, od: int) -> int:
        """Input planes read by ``od`` consecutive output planes: ``(od-1)*s + d*(k-1) + 1``."""
        return (od - 1) * self.stride[0] + self.dilation[0] * (self.kernel[0] - 1) + 1

    def depth_window(self, od0: int, od: int):
        """The input planes that output planes ``od0 .. od0+od-1`` read: ``(d_lo, count, a, b)``,
        planes ``d_lo .. d_lo+count-1``, of which ``a .. b-1`` exist (the rest is padding)."""
        d_lo, count = od0 * self.stride[0] - self.padding[0][0], self.slab_depth(od)
        return d_lo, count, max(d_lo, 0), min(d_lo + count, self.D)

    def one_group(self) -> ConvGeometry:
        """The geometry of one group (C/groups -> K/groups channels)."""
        return self if self.groups == 1 else replace(self, C=self.Cg, K=self.Kg, groups=1)

    def flops(self) -> int:
        """Multiply-adds times two of the forward pass (each gradient costs about the same)."""
        return 2 * self.N * self.K * self.Cg * self.taps * math.prod(self.out_size)

    def tap_ranges(self, tap, od0: int, od1: int):
        """Per axis ``(o_lo, o_hi, i_lo)`` of ``tap_range`` for kernel tap ``(kd, kh, kw)``, the
        depth range limited to output planes ``od0:od1`` and given relative to ``od0``."""
        starts, ends = (od0, 0, 0), (od1, self.out_size[1], self.out_size[2])
        return [tap_range(o0, o1, k, s, d, p[0], i) for o0, o1, k, s, d, p, i in
                zip(starts, ends, tap, self.stride, self.dilation, self.padding, self.in_size)]


def tap_range(o0: int, o1: int, k: int, s: int, d: int, p_lo: int, size: int):
    """Outputs ``o`` in ``[o0, o1)`` whose input ``i = o*s + k*d - p_lo`` lies in ``[0, size)``.

    Returns ``(o_lo, o_hi, i_lo)``: the valid outputs are ``o0+o_lo .. o0+o_hi-1`` and the first
    of them reads input ``i_lo``; ``o_lo == o_hi`` when none is valid.
    """
    first = max(o0, -((k * d - p_lo) // s))            # ceil((p_lo - k*d) / s)
    last = min(o1, (size - 1 + p_lo - k * d) // s + 1)  # one past the last valid output
    if last <= first:
        return 0, 0, 0
    return first - o0, last - o0, first * s + k * d - p_lo


@dataclass(frozen=True)
class PoolGeometry:
    """Pooling x (N, C, D, H, W) -> y (N, C, OD, OH, OW) over windows of ``kernel``.

    Symmetric ``padding`` (at most ``kernel // 2``, PyTorch's rule). Per axis
    ``o = floor((i + 2p - d*(k - 1) - 1) / s) + 1``; ``ceil_mode`` rounds up instead, then drops
    a last window that would start in the right padding (``(o - 1)*s >= i + p``).
    """

    N: int
    C: int
    D: int
    H: int
    W: int
    kernel: tuple[int, int, int]
    stride: tuple[int, int, int]
    padding: tuple[int, int, int] = (0, 0, 0)
    dilation: tuple[int, int, int] = (1, 1, 1)
    ceil_mode: bool = False

    @classmethod
    def from_shape(cls, x_shape, kernel_size, stride=None, padding=0, dilation=1,
                   ceil_mode=False) -> PoolGeometry:
        """Check the settings (``stride=None`` means ``kernel_size``) and return the geometry."""
        kernel = to_triple(kernel_size, "kernel_size", minimum=1)
        empty = isinstance(stride, (tuple, list)) and len(stride) == 0
        stride = kernel if stride is None or empty else to_triple(stride, "stride", minimum=1)
        dilation = to_triple(dilation, "dilation", minimum=1)
        padding = _padding_triple(padding)
        for axis, p, k in zip(AXES, padding, kernel):
            if p > k // 2:
                raise ValueError(
                    f"padding must be at most half the kernel size, but on the {axis} axis "
                    f"padding={p} > kernel_size//2 = {k}//2 = {k // 2}; use padding <= {k // 2} "
                    f"there (or a larger kernel_size)")
        if not isinstance(ceil_mode, (bool, numbers.Integral)):
            raise TypeError(f"ceil_mode must be True or False, got {ceil_mode!r}")
        N, C, D, H, W = (int(v) for v in x_shape)
        geo = cls(N, C, D, H, W, kernel, stride, padding, dilation, bool(ceil_mode))
        _check_output_sizes(geo, tuple((p, p) for p in padding),
                            "more padding (up to kernel_size // 2)")
        if max(dilation) > 1:  # without dilation, padding <= kernel // 2 rules this out
            _check_windows_see_data(geo)
        return geo

    in_size = property(lambda self: (self.D, self.H, self.W))
    x_shape = property(lambda self: (self.N, self.C, self.D, self.H, self.W))
    y_shape = property(lambda self: (self.N, self.C) + self.out_size)
    OD = property(lambda self: self.out_size[0])
    OH = property(lambda self: self.out_size[1])
    OW = property(lambda self: self.out_size[2])

    @cached_property
    def out_size(self) -> tuple[int, int, int]:
        """(OD, OH, OW), ``core.shapes.pool_output_size`` per axis."""
        return tuple(pool_output_size(i, k, s, p, d, self.ceil_mode) for i, k, s, p, d in
                     zip(self.in_size, self.kernel, self.stride, self.padding, self.dilation))

    @property
    def padding_pairs(self) -> tuple:
        """``(before, after)`` per axis such that every window fits in the padded input: under
        ``ceil_mode`` the last window may run past the right padding, so ``after`` grows."""
        return tuple((p, max(p, (o - 1) * s + d * (k - 1) + 1 - i - p)) for i, k, s, p, d, o in
                     zip(self.in_size, self.kernel, self.stride, self.padding, self.dilation,
                         self.out_size))


# ---- checks ----------------------------------------------------------------------------------

def _padding_triple(padding) -> tuple[int, int, int]:
    triple = to_triple(padding, "padding")
    if min(triple) < 0:
        raise ValueError(f"padding must be >= 0 on every axis, got negative padding "
                         f"{padding!r}; use 0 or more (to crop the input, slice it instead, "
                         f"e.g. x[:, :, 1:-1, 1:-1, 1:-1])")
    return triple


def _conv_padding(padding, in_size, kernel, stride, dilation):
    """int, triple, ``'valid'``, ``'same'`` or three (before, after) pairs -> three pairs."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * 3
        if padding == "same":
            return tuple(same_padding(i, k, s, d)
                         for i, k, s, d in zip(in_size, kernel, stride, dilation))
        raise ValueError(f"unknown padding string {padding!r}; use 'same', 'valid', an int or a "
                         f"tuple of 3 ints")
    if isinstance(padding, (tuple, list)) and len(padding) == 3 and all(
            isinstance(p, (tuple, list)) for p in padding):
        pairs = tuple((int(lo), int(hi)) for lo, hi in padding)
        _padding_triple(tuple(min(p) for p in pairs))
        return pairs
    return tuple((p, p) for p in _padding_triple(padding))


def _check_groups(groups, C: int, K: int) -> int:
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral):
        raise TypeError(f"groups must be an int, got {type(groups).__name__} {groups!r}; "
                        f"pass e.g. groups=1")
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}; use groups=1 for an ordinary "
                         f"convolution")
    if C % groups or K % groups:
        raise ValueError(
            f"groups={groups} must divide both the input channels (C={C}) and the output "
            f"channels (K=weight.shape[0]={K}); pick groups among the common divisors of "
            f"{C} and {K}")
    return int(groups)


def _check_output_sizes(geo, pairs, more_padding: str) -> None:
    """Raise ValueError, showing the formula with the numbers, if an output size is < 1."""
    for axis, i, k, s, (lo, hi), d, o, I, O in zip(AXES, geo.in_size, geo.kernel, geo.stride,
                                                    pairs, geo.dilation, geo.out_size, _IN, _OUT):
        if o < 1:
            raise ValueError(
                f"the kernel is larger than the padded input on the {axis} axis: "
                f"{O} = floor(({I} + pad_before + pad_after - dilation*(kernel - 1) - 1) / stride)"
                f" + 1 = floor(({i} + {lo} + {hi} - {d}*({k} - 1) - 1) / {s}) + 1 = {o}, but it "
                f"must be >= 1. Use a smaller kernel or dilation, {more_padding}, or a larger "
                f"input")


def _check_windows_see_data(geo: PoolGeometry) -> None:
    """Raise ValueError if a dilated window reads nothing but padding (its max is undefined;
    PyTorch does not check this case)."""
    for axis, i, k, s, p, d, o in zip(AXES, geo.in_size, geo.kernel, geo.stride, geo.padding,
                                      geo.dilation, geo.out_size):
        for j in range(o):
            taps = [j * s - p + t * d for t in range(k)]
            if not any(0 <= z < i for z in taps):
                raise ValueError(
                    f"on the {axis} axis the window of output {j} reads only padding: with "
                    f"dilation={d} its taps fall on input positions {taps}, none inside [0, {i}); "
                    f"use a smaller dilation or padding, or a larger input")
