"""im2col for volumes: ``vol2col`` builds the column matrix, ``col2vol`` scatters it back.

A 3D convolution is a matrix product in disguise. Put, for every output voxel, the
``C * kD * kH * kW`` input values its kernel window covers into one column, and the convolution
becomes ``weight (K, C*kD*kH*kW) @ columns (C*kD*kH*kW, OD*OH*OW)``: one BLAS GEMM.

Building the columns needs no loop over output voxels (Chainer's N-d im2col): for a fixed kernel
tap ``(kd, kh, kw)``, the input values that tap touches, over all output voxels, form a *strided
slice* of the padded input::

    xpad[:, :, kd*dD : kd*dD + sD*(OD-1) + 1 : sD,  (same for h and w)]

so the only Python loop is over the ``kD*kH*kW`` taps. Per axis the output size is

    o = floor((i + p_lo + p_hi - d*(k - 1) - 1) / s) + 1

(``floor((i + 2p - d(k-1) - 1)/s) + 1`` for symmetric padding p), with i the input size, k the
kernel size, s the stride and d the dilation. ``col2vol`` is the adjoint (the transpose) of
``vol2col``: it adds each column entry back onto the input voxel it was copied from. That is
exactly what the gradient with respect to the input needs.
"""
from __future__ import annotations

import itertools

from ..core.backend import get_array_module
from ..core.shapes import conv_output_size


def window_slices(tap, stride, dilation, out_size) -> tuple[slice, slice, slice]:
    """The slices of the *padded* input that kernel tap ``tap = (kd, kh, kw)`` reads.

    Along one axis, output voxel ``o`` reads padded position ``o*s + k*d`` with this tap, so over
    ``o = 0 .. O-1`` the positions are ``k*d, k*d + s, ..., k*d + s*(O-1)``: a strided slice.
    """
    return tuple(slice(k * d, k * d + s * (o - 1) + 1, s)
                 for k, s, d, o in zip(tap, stride, dilation, out_size))


def pad_volume(x, padding, value=0.0):
    """Pad the spatial axes of ``x`` (N, C, D, H, W) by ``padding``: three (before, after) pairs."""
    xp = get_array_module(x)
    if all(lo == 0 and hi == 0 for lo, hi in padding):
        return x
    return xp.pad(x, ((0, 0), (0, 0)) + tuple(padding), mode="constant", constant_values=value)


def vol2col(x, kernel_size, stride, padding, dilation):
    """The column tensor of ``x``: every kernel window of every output voxel.

    Args:
        x: (N, C, D, H, W).
        kernel_size, stride, dilation: int triples (kD, kH, kW), (sD, sH, sW), (dD, dH, dW).
        padding: three (before, after) pairs; the padding is zeros.

    Returns:
        col of shape (N, C, kD, kH, kW, OD, OH, OW) with ::

            col[n, c, kd, kh, kw, od, oh, ow] =
                xpad[n, c, od*sD + kd*dD, oh*sH + kh*dH, ow*sW + kw*dW]

        and ``OD = floor((D + pd_lo + pd_hi - dD*(kD - 1) - 1) / sD) + 1`` (same for OH, OW),
        that is ``o = floor((i + 2p - d(k-1) - 1)/s) + 1`` with symmetric padding p. Reshaped
        to (N, C*kD*kH*kW, OD*OH*OW), each column holds one window: the GEMM operand.
    """
    xp = get_array_module(x)
    N, C, D, H, W = x.shape
    kD, kH, kW = kernel_size
    OD, OH, OW = (conv_output_size(i, k, s, lo, hi, d) for i, k, s, (lo, hi), d
                  in zip((D, H, W), kernel_size, stride, padding, dilation))
    xpad = pad_volume(x, padding)
    col = xp.empty((N, C, kD, kH, kW, OD, OH, OW), dtype=x.dtype)
    for kd, kh, kw in itertools.product(range(kD), range(kH), range(kW)):
        window = window_slices((kd, kh, kw), stride, dilation, (OD, OH, OW))
        col[:, :, kd, kh, kw] = xpad[(slice(None), slice(None)) + window]
    return col


def col2vol(col, x_shape, stride, padding, dilation):
    """Scatter-add a column tensor back onto a volume: the adjoint of ``vol2col``.

    Args:
        col: (N, C, kD, kH, kW, OD, OH, OW), e.g. the gradient of the columns.
        x_shape: (N, C, D, H, W), the shape of the volume to rebuild.
        stride, dilation: int triples; padding: three (before, after) pairs, as for ``vol2col``.
            OD, OH, OW are read from ``col``; they satisfy
            ``OD = floor((D + pd_lo + pd_hi - dD*(kD - 1) - 1) / sD) + 1`` (with symmetric
            padding p: ``o = floor((i + 2p - d(k-1) - 1)/s) + 1``) when ``col`` came from
            ``vol2col``; a larger ``pd_hi`` is allowed (pooling under ceil_mode): it is cropped.

    Returns:
        vol of shape ``x_shape`` with ``vol[n, c, z, y, x]`` = the sum of every column entry that
        ``vol2col`` would have copied from that voxel (entries that fell on padding are dropped).
    """
    xp = get_array_module(col)
    N, C, kD, kH, kW, OD, OH, OW = col.shape
    D, H, W = x_shape[2:]
    (pd0, pd1), (ph0, ph1), (pw0, pw1) = padding
    vol = xp.zeros((N, C, D + pd0 + pd1, H + ph0 + ph1, W + pw0 + pw1), dtype=col.dtype)
    for kd, kh, kw in itertools.product(range(kD), range(kH), range(kW)):
        window = window_slices((kd, kh, kw), stride, dilation, (OD, OH, OW))
        # within one tap the strided positions are distinct, so += adds each entry once
        vol[(slice(None), slice(None)) + window] += col[:, :, kd, kh, kw]
    return xp.ascontiguousarray(vol[:, :, pd0:pd0 + D, ph0:ph0 + H, pw0:pw0 + W])
