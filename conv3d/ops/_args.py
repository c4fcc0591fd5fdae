"""Argument parsing and validation for convolution and pooling.

Every op checks its arguments here, *before* any kernel runs, so that the kernel providers
(NumPy, CUDA, the CUDA emulator) may assume valid input, and so that a user who gets something
wrong sees one clear message: which argument, what was received, what was expected, how to fix it.

The parsers turn the user-facing arguments (ints or triples, ``'same'``/``'valid'``) into the
normalized form the providers take: int triples for stride, dilation and kernel size, and for
convolution a padding of three ``(before, after)`` pairs.
"""
from __future__ import annotations

import numbers
from typing import NamedTuple

from ..core.shapes import conv_output_size, pool_output_size, same_padding, to_triple
from ..core.tensor import check_float_dtypes

AXES = ("depth", "height", "width")
_IN, _OUT = ("D", "H", "W"), ("OD", "OH", "OW")


class ConvArgs(NamedTuple):
    stride: tuple[int, int, int]
    padding: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]  # (before, after) per axis
    dilation: tuple[int, int, int]
    groups: int


class PoolArgs(NamedTuple):
    kernel_size: tuple[int, int, int]
    stride: tuple[int, int, int]
    padding: tuple[int, int, int]  # symmetric
    dilation: tuple[int, int, int]
    ceil_mode: bool


def check_5d(op: str, name: str, a, layout: str, fix: str) -> None:
    """Raise ValueError unless ``a`` is 5-D."""
    if a.ndim != 5:
        raise ValueError(f"{op}: {name} must be 5-D {layout}, got a {a.ndim}-D array of shape "
                         f"{tuple(a.shape)}; {fix}")


def _triple(op: str, value, name: str, minimum: int | None = None) -> tuple[int, int, int]:
    """``core.shapes.to_triple``, with the op's name in front of its error message."""
    try:
        return to_triple(value, name, minimum)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{op}: {exc}") from None


def _check_padding_triple(op: str, padding) -> tuple[int, int, int]:
    triple = _triple(op, padding, "padding")
    if min(triple) < 0:
        raise ValueError(f"{op}: padding must be >= 0 on every axis, got negative padding "
                         f"{padding!r}; use 0 or more (to crop the input, slice it instead, "
                         f"e.g. x[:, :, 1:-1, 1:-1, 1:-1])")
    return triple


def _check_output_sizes(op: str, in_size, kernel, stride, padding6, dilation, out,
                        more_padding: str) -> None:
    """Raise ValueError, showing the formula with the numbers, if an output size is < 1."""
    for axis, i, k, s, (lo, hi), d, o, I, O in zip(AXES, in_size, kernel, stride, padding6,
                                                    dilation, out, _IN, _OUT):
        if o < 1:
            raise ValueError(
                f"{op}: the kernel is larger than the padded input on the {axis} axis: "
                f"{O} = floor(({I} + pad_before + pad_after - dilation*(kernel - 1) - 1) / stride)"
                f" + 1 = floor(({i} + {lo} + {hi} - {d}*({k} - 1) - 1) / {s}) + 1 = {o}, but it "
                f"must be >= 1. Use a smaller kernel or dilation, {more_padding}, or a larger "
                f"input")


def _parse_groups(op: str, groups, C: int, K: int) -> int:
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral):
        raise TypeError(f"{op}: groups must be an int, got {type(groups).__name__} {groups!r}; "
                        f"pass e.g. groups=1")
    groups = int(groups)
    if groups < 1:
        raise ValueError(f"{op}: groups must be >= 1, got {groups}; use groups=1 for an "
                         f"ordinary convolution")
    if C % groups or K % groups:
        raise ValueError(
            f"{op}: groups={groups} must divide both the input channels (C={C}) and the output "
            f"channels (K=weight.shape[0]={K}); pick groups among the common divisors of "
            f"{C} and {K}")
    return groups


def _conv_padding(op: str, padding, in_size, kernel, stride, dilation):
    """``padding`` (int, triple, 'valid' or 'same') -> three ``(before, after)`` pairs."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * 3
        if padding == "same":
            # TensorFlow/Keras rule (core.shapes.same_padding): output size ceil(i / s); the
            # total padding that needs is split with the smaller half before the data.
            return tuple(same_padding(i, k, s, d)
                         for i, k, s, d in zip(in_size, kernel, stride, dilation))
        raise ValueError(f"{op}: unknown padding string {padding!r}; use 'same', 'valid', an "
                         f"int or a tuple of 3 ints")
    return tuple((p, p) for p in _check_padding_triple(op, padding))


def parse_conv_args(x, weight, bias, stride, padding, dilation, groups) -> ConvArgs:
    """Validate ``conv3d``'s arrays and settings; return them normalized (see ``ConvArgs``)."""
    op = "conv3d"
    check_5d(op, "input", x, "(N, C, D, H, W)",
             "add missing axes, e.g. x.reshape(1, 1, *x.shape) for a single 3-D volume")
    check_5d(op, "weight", weight, "(K, C/groups, kD, kH, kW)",
             "add missing axes, e.g. w.reshape(1, 1, *w.shape) for a single 3-D kernel")
    check_float_dtypes(op, input=x, weight=weight, bias=bias)
    stride = _triple(op, stride, "stride", minimum=1)
    dilation = _triple(op, dilation, "dilation", minimum=1)
    N, C = x.shape[:2]
    K, Cg = weight.shape[:2]
    groups = _parse_groups(op, groups, C, K)
    if Cg * groups != C:
        raise ValueError(
            f"{op}: channel mismatch: input has C={C} channels (shape {tuple(x.shape)}) but weight "
            f"of shape {tuple(weight.shape)} with groups={groups} expects C = weight.shape[1] * "
            f"groups = {Cg} * {groups} = {Cg * groups}; weight must have shape "
            f"(K, C/groups, kD, kH, kW) = ({K}, {C // groups}, ...)")
    if bias is not None and tuple(bias.shape) != (K,):
        raise ValueError(f"{op}: bias must have shape (K,) = ({K},), one value per output "
                         f"channel, got shape {tuple(bias.shape)}; pass bias of shape ({K},) "
                         f"or bias=None")
    kernel = tuple(weight.shape[2:])
    in_size = tuple(x.shape[2:])
    padding6 = _conv_padding(op, padding, in_size, kernel, stride, dilation)
    out = tuple(conv_output_size(i, k, s, lo, hi, d)
                for i, k, s, (lo, hi), d in zip(in_size, kernel, stride, padding6, dilation))
    _check_output_sizes(op, in_size, kernel, stride, padding6, dilation, out,
                        "more padding (e.g. padding='same')")
    return ConvArgs(stride, padding6, dilation, groups)


def parse_pool_args(op: str, x, kernel_size, stride, padding, dilation, ceil_mode) -> PoolArgs:
    """Validate a pooling op's input and settings (PyTorch's rules); return them normalized.

    ``stride=None`` means ``stride = kernel_size``. Padding may be at most half the kernel
    (``padding <= kernel_size // 2``, as PyTorch requires), so every window holds real data.
    """
    check_5d(op, "input", x, "(N, C, D, H, W)",
             "add missing axes, e.g. x.reshape(1, 1, *x.shape) for a single 3-D volume")
    check_float_dtypes(op, input=x)
    kernel = _triple(op, kernel_size, "kernel_size", minimum=1)
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        stride = kernel
    else:
        stride = _triple(op, stride, "stride", minimum=1)
    dilation = _triple(op, dilation, "dilation", minimum=1)
    padding = _check_padding_triple(op, padding)
    for axis, p, k in zip(AXES, padding, kernel):
        if p > k // 2:
            raise ValueError(
                f"{op}: padding must be at most half the kernel size, but on the {axis} axis "
                f"padding={p} > kernel_size//2 = {k}//2 = {k // 2}; use padding <= {k // 2} "
                f"there (or a larger kernel_size)")
    if not isinstance(ceil_mode, (bool, numbers.Integral)):
        raise TypeError(f"{op}: ceil_mode must be True or False, got {ceil_mode!r}")
    ceil_mode = bool(ceil_mode)
    in_size = tuple(x.shape[2:])
    out = tuple(pool_output_size(i, k, s, p, d, ceil_mode)
                for i, k, s, p, d in zip(in_size, kernel, stride, padding, dilation))
    _check_output_sizes(op, in_size, kernel, stride, tuple((p, p) for p in padding), dilation,
                        out, "more padding (up to kernel_size // 2)")
    _check_windows_see_data(op, in_size, kernel, stride, padding, dilation, out)
    return PoolArgs(kernel, stride, padding, dilation, ceil_mode)


def _check_windows_see_data(op, in_size, kernel, stride, padding, dilation, out) -> None:
    """Raise ValueError if a dilated window reads nothing but padding (its max is undefined).

    Without dilation ``padding <= kernel_size // 2`` rules this out; with dilation the taps of a
    window can step over a small input entirely (PyTorch does not check this case).
    """
    for axis, i, k, s, p, d, o in zip(AXES, in_size, kernel, stride, padding, dilation, out):
        for j in range(o):
            taps = [j * s - p + t * d for t in range(k)]
            if not any(0 <= z < i for z in taps):
                raise ValueError(
                    f"{op}: on the {axis} axis the window of output {j} reads only padding: with "
                    f"dilation={d} its taps fall on input positions {taps}, none inside [0, {i}); "
                    f"use a smaller dilation or padding, or a larger input")
