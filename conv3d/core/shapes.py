"""Output-size arithmetic shared by every backend (NumPy, CuPy, the CUDA emulator).

The one formula to remember, per spatial axis (PyTorch's and cuDNN's convention)::

    o = floor((i + p_lo + p_hi - d*(k - 1) - 1) / s) + 1

with i the input size, k the kernel size, s the stride, d the dilation and p_lo/p_hi the padding
added before and after the data. With symmetric padding p_lo = p_hi = p this is the familiar
``floor((i + 2p - d(k-1) - 1)/s) + 1``.
"""
from __future__ import annotations

import math
import numbers


def to_triple(value, name: str, minimum: int | None = None) -> tuple[int, int, int]:
    """Turn an int or a sequence of three ints into a ``(depth, height, width)`` triple.

    ``name`` is the argument's name, used in the error message. ``minimum`` (if given) is the
    smallest value each entry may take.

    >>> to_triple(2, "stride"), to_triple((1, 2, 2), "stride")
    ((2, 2, 2), (1, 2, 2))
    """
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, tuple, list)):
        raise TypeError(
            f"{name} must be an int or a tuple of 3 ints (depth, height, width), got "
            f"{type(value).__name__} {value!r}; pass e.g. {name}=1 or {name}=(1, 2, 2)")
    if isinstance(value, numbers.Integral):
        triple = (int(value),) * 3
    else:
        if len(value) != 3 or not all(
                isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
            raise TypeError(
                f"{name} must be an int or a tuple of 3 ints (depth, height, width), got {value!r}; "
                f"pass e.g. {name}=(1, 2, 2)")
        triple = tuple(int(v) for v in value)
    if minimum is not None and min(triple) < minimum:
        raise ValueError(f"{name} must be >= {minimum} on every axis, got {value!r}; "
                         f"use values of at least {minimum}")
    return triple  # type: ignore[return-value]


def conv_output_size(i: int, k: int, s: int = 1, p_lo: int = 0, p_hi: int | None = None,
                     d: int = 1) -> int:
    """``o = floor((i + p_lo + p_hi - d*(k-1) - 1) / s) + 1`` (``p_hi`` defaults to ``p_lo``).

    >>> conv_output_size(16, 3)                # floor((16 - 2 - 1)/1) + 1
    14
    >>> conv_output_size(112, 3, s=2, p_lo=1)  # floor((112 + 2 - 2 - 1)/2) + 1
    56
    >>> conv_output_size(7, 3, d=2)            # a dilated kernel spans d*(k-1) + 1 = 5 voxels
    3
    """
    if p_hi is None:
        p_hi = p_lo
    return (i + p_lo + p_hi - d * (k - 1) - 1) // s + 1


def same_padding(i: int, k: int, s: int = 1, d: int = 1) -> tuple[int, int]:
    """Padding ``(before, after)`` for ``padding='same'``, the TensorFlow/Keras rule.

    The output size is ``ceil(i / s)``; the total padding is what that needs,
    ``max((o - 1)*s + d*(k - 1) + 1 - i, 0)``; the smaller half goes before the data and the larger
    half after it. With stride 1 the output has the input's size, exactly as in PyTorch (which
    allows 'same' only with stride 1).

    >>> same_padding(16, 3)          # stride 1: one voxel on each side
    (1, 1)
    >>> same_padding(6, 3, s=2)      # o = 3 needs 1 voxel of padding: it goes after the data
    (0, 1)
    """
    o = -(-i // s)  # ceil(i / s)
    total = max((o - 1) * s + d * (k - 1) + 1 - i, 0)
    return total // 2, total - total // 2


def pool_output_size(i: int, k: int, s: int, p: int, d: int = 1, ceil_mode: bool = False) -> int:
    """Pooling output size, PyTorch's rule.

    ``o = floor_or_ceil((i + 2p - d*(k-1) - 1) / s) + 1``; with ``ceil_mode`` the last window
    must still start inside the input or its left padding, so ``o`` drops by one when
    ``(o - 1)*s >= i + p``.

    >>> pool_output_size(5, 2, 2, 0), pool_output_size(5, 2, 2, 0, ceil_mode=True)
    (2, 3)
    """
    span = i + 2 * p - d * (k - 1) - 1
    o = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (o - 1) * s >= i + p:
        o -= 1
    return o
