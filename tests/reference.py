"""Independent float64 references for convolution and pooling, for the tests.

Written from the definitions with plain loops over output voxels and kernel taps, and explicit
index arithmetic (an input coordinate outside [0, size) is padding): no im2col, no padded
copies, nothing imported from the engine. Each loop body is vectorized over the batch and the
channels only, which keeps the references fast enough for property-based tests.

Conventions, as in PyTorch: x (N, C, D, H, W); w (K, C/groups, kD, kH, kW); per axis output voxel
o reads input coordinate ``o*s - p_lo + t*d`` with kernel tap t.
"""
from __future__ import annotations

import itertools
import math

import numpy as np


# ---- output sizes and 'same' padding, re-derived here ----------------------------------------

def ref_conv_out(i, k, s, p_lo, p_hi, d):
    """floor((i + p_lo + p_hi - d*(k - 1) - 1) / s) + 1"""
    return (i + p_lo + p_hi - d * (k - 1) - 1) // s + 1


def ref_same_padding(i, k, s, d):
    """TensorFlow's 'same': output ceil(i/s); the total padding it needs, smaller half first."""
    out = math.ceil(i / s)
    total = max((out - 1) * s + (k - 1) * d + 1 - i, 0)
    return total // 2, total - total // 2


def ref_pool_out(i, k, s, p, d, ceil_mode):
    """PyTorch's pooling output size (a ceil-mode window must start inside input or left pad)."""
    num = i + 2 * p - d * (k - 1) - 1
    out = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (out - 1) * s >= i + p:
        out -= 1
    return out


def pool_windows_see_data(size, kernel, stride, padding, dilation, ceil_mode):
    """True unless some dilated pooling window reads only padding (the op rejects that case)."""
    for i, k, s, p, d in zip(size, kernel, stride, padding, dilation):
        for o in range(ref_pool_out(i, k, s, p, d, ceil_mode)):
            if not any(0 <= o * s - p + t * d < i for t in range(k)):
                return False
    return True


def _conv_out_sizes(x_shape, kernel, stride, padding6, dilation):
    return tuple(ref_conv_out(i, k, s, lo, hi, d) for i, k, s, (lo, hi), d
                 in zip(x_shape[2:], kernel, stride, padding6, dilation))


def _taps(out, kernel, stride, pad_lo, dilation, in_size):
    """Yield (output index, kernel tap, input coordinate) for every in-bounds pair."""
    for o in itertools.product(*(range(n) for n in out)):
        for t in itertools.product(*(range(k) for k in kernel)):
            z = tuple(oo * s - p + tt * d
                      for oo, s, p, tt, d in zip(o, stride, pad_lo, t, dilation))
            if all(0 <= zz < n for zz, n in zip(z, in_size)):
                yield o, t, z


# ---- convolution ------------------------------------------------------------------------------

def naive_conv3d(x, w, b, stride, padding6, dilation, groups):
    """y[n, k, o] = b[k] + sum_{c, t} w[k, c, t] * x[n, g*Cg + c, o*s - p_lo + t*d]
    (x is zero outside its bounds; g = k // (K/groups) is the filter's group)."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    N, C = x.shape[:2]
    K, Cg = w.shape[:2]
    Kg = K // groups
    out = _conv_out_sizes(x.shape, w.shape[2:], stride, padding6, dilation)
    y = np.zeros((N, K) + out)
    for o, t, z in _taps(out, w.shape[2:], stride, [p[0] for p in padding6], dilation,
                         x.shape[2:]):
        for g in range(groups):
            ks, cs = slice(g * Kg, (g + 1) * Kg), slice(g * Cg, (g + 1) * Cg)
            y[(slice(None), ks) + o] += x[(slice(None), cs) + z] @ w[(ks, slice(None)) + t].T
    if b is not None:
        y += np.asarray(b, np.float64).reshape(1, K, 1, 1, 1)
    return y


def naive_conv3d_backward_input(gy, w, x_shape, stride, padding6, dilation, groups):
    """dL/dx: every output gradient flows back to the inputs its taps read, times the weight."""
    gy, w = np.asarray(gy, np.float64), np.asarray(w, np.float64)
    K, Cg = w.shape[:2]
    Kg = K // groups
    gx = np.zeros(x_shape)
    for o, t, z in _taps(gy.shape[2:], w.shape[2:], stride, [p[0] for p in padding6], dilation,
                         x_shape[2:]):
        for g in range(groups):
            ks, cs = slice(g * Kg, (g + 1) * Kg), slice(g * Cg, (g + 1) * Cg)
            gx[(slice(None), cs) + z] += gy[(slice(None), ks) + o] @ w[(ks, slice(None)) + t]
    return gx


def naive_conv3d_backward_weight(gy, x, w_shape, stride, padding6, dilation, groups):
    """dL/dw[k, c, t] = sum over n and output voxels of gy[n, k, o] * x[n, c, o*s - p_lo + t*d]."""
    gy, x = np.asarray(gy, np.float64), np.asarray(x, np.float64)
    K, Cg = w_shape[:2]
    Kg = K // groups
    gw = np.zeros(w_shape)
    for o, t, z in _taps(gy.shape[2:], w_shape[2:], stride, [p[0] for p in padding6], dilation,
                         x.shape[2:]):
        for g in range(groups):
            ks, cs = slice(g * Kg, (g + 1) * Kg), slice(g * Cg, (g + 1) * Cg)
            gw[(ks, slice(None)) + t] += gy[(slice(None), ks) + o].T @ x[(slice(None), cs) + z]
    return gw


# ---- max pooling ------------------------------------------------------------------------------

def naive_max_pool3d(x, kernel, stride, padding, dilation, ceil_mode):
    """(y, indices): the max of each window over its in-bounds taps (padding never wins), and its
    flat index into D*H*W. A tap replaces the running max only if strictly larger (first max in
    scan order wins ties) or NaN."""
    x = np.asarray(x, np.float64)
    N, C, D, H, W = x.shape
    out = tuple(ref_pool_out(i, k, s, p, d, ceil_mode)
                for i, k, s, p, d in zip((D, H, W), kernel, stride, padding, dilation))
    y = np.full((N, C) + out, np.nan)
    idx = np.full((N, C) + out, -1, dtype=np.int64)
    for o in itertools.product(*(range(n) for n in out)):
        best = np.full((N, C), -np.inf)
        arg = np.full((N, C), -1, dtype=np.int64)
        for t in itertools.product(*(range(k) for k in kernel)):
            z = tuple(oo * s - p + tt * d
                      for oo, s, p, tt, d in zip(o, stride, padding, t, dilation))
            if not all(0 <= zz < n for zz, n in zip(z, (D, H, W))):
                continue
            v = x[(slice(None), slice(None)) + z]
            take = (v > best) | np.isnan(v) | (arg < 0)
            best = np.where(take, v, best)
            arg = np.where(take, (z[0] * H + z[1]) * W + z[2], arg)
        y[(slice(None), slice(None)) + o] = best
        idx[(slice(None), slice(None)) + o] = arg
    return y, idx


def naive_max_pool3d_backward(gy, x, kernel, stride, padding, dilation, ceil_mode):
    """dL/dx: each window's gradient goes to its (first) maximum, found again from x."""
    x = np.asarray(x, np.float64)
    _, idx = naive_max_pool3d(x, kernel, stride, padding, dilation, ceil_mode)
    N, C = x.shape[:2]
    gx = np.zeros((N, C, x[0, 0].size))
    for n, c in itertools.product(range(N), range(C)):
        for j, g in zip(idx[n, c].ravel(), np.asarray(gy, np.float64)[n, c].ravel()):
            gx[n, c, j] += g
    return gx.reshape(x.shape)


# ---- average pooling --------------------------------------------------------------------------

def _avg_windows(in_size, out, kernel, stride, padding, count_include_pad):
    """Yield (output index, real-voxel ranges per axis, divisor), PyTorch's divisor rule."""
    for o in itertools.product(*(range(n) for n in out)):
        ranges, padded_size, real_size = [], 1, 1
        for oo, i, k, s, p in zip(o, in_size, kernel, stride, padding):
            start = oo * s - p
            end = min(start + k, i + p)        # clipped to the padded input
            padded_size *= end - start
            lo, hi = max(start, 0), min(end, i)  # clipped to the real input
            real_size *= hi - lo
            ranges.append(slice(lo, hi))
        yield o, tuple(ranges), (padded_size if count_include_pad else real_size)


def naive_avg_pool3d(x, kernel, stride, padding, ceil_mode, count_include_pad):
    """Sum of the real voxels of each window / PyTorch's divisor."""
    x = np.asarray(x, np.float64)
    N, C = x.shape[:2]
    out = tuple(ref_pool_out(i, k, s, p, 1, ceil_mode)
                for i, k, s, p in zip(x.shape[2:], kernel, stride, padding))
    y = np.zeros((N, C) + out)
    for o, ranges, divisor in _avg_windows(x.shape[2:], out, kernel, stride, padding,
                                           count_include_pad):
        y[(slice(None), slice(None)) + o] = (
            x[(slice(None), slice(None)) + ranges].sum(axis=(2, 3, 4)) / divisor)
    return y


def naive_avg_pool3d_backward(gy, x_shape, kernel, stride, padding, ceil_mode,
                              count_include_pad):
    """dL/dx: each real voxel of a window receives the window's gradient / divisor."""
    gy = np.asarray(gy, np.float64)
    gx = np.zeros(x_shape)
    for o, ranges, divisor in _avg_windows(x_shape[2:], gy.shape[2:], kernel, stride, padding,
                                           count_include_pad):
        g = gy[(slice(None), slice(None)) + o] / divisor
        gx[(slice(None), slice(None)) + ranges] += g[:, :, None, None, None]
    return gx


# ---- tensor-core input roundings (float32 -> a narrower format, returned as float32) ----------

def round_tf32(v):
    """float32 -> tf32 as cvt.rna.tf32.f32 (wmma::__float_to_tf32): keep 10 mantissa bits,
    round half AWAY from zero (finite values)."""
    u = np.asarray(v, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x1000) & ~np.uint64(0x1FFF)).astype(np.uint32).view(np.float32)


def round_bf16(v):
    """float32 -> bfloat16 as __float2bfloat16_rn: keep 7 mantissa bits, round half to even."""
    u = np.asarray(v, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16 << 16).astype(np.uint32).view(np.float32)


def round_fp16(v):
    """float32 -> IEEE half as __float2half_rn (NumPy's float16: ties to even)."""
    return np.asarray(v, np.float32).astype(np.float16).astype(np.float32)


ROUND = {"tf32": round_tf32, "bf16": round_bf16, "fp16": round_fp16}
# Unit roundoff of each format (half an ulp of 1): 10 mantissa bits for tf32 and fp16, 7 for bf16.
UNIT_ROUNDOFF = {"tf32": 2.0 ** -11, "bf16": 2.0 ** -8, "fp16": 2.0 ** -11}
