"""The 'im2col' algorithm of the CUDA provider: kernels/im2col3d.cu + a GEMM, in chunks.

The column matrix of a whole batch is large (``N x C*kD*kH*kW x OD*OH*OW`` values: 1.8 GB for
N=2, C=32, 64^3 and a 3x3x3 kernel), so, like the CPU path (``conv3d.ops.fast.workspace``), the
work is cut into chunks whose column matrix fits the workspace limit
(``conv3d.set_workspace_limit``, 256 MiB by default): whole samples first, then fewer output depth
planes of one sample (``launch.im2col_chunks``). A chunk of output planes ``od0 .. od1-1`` reads
the input planes its windows cover, ``od0*sD - pD .. (od1-1)*sD - pD + (kD-1)*dD``; what of that
range lies outside the volume becomes the chunk's own padding, so the unmodified im2col3d and
col2im3d kernels run on the chunk as on a smaller convolution.

Per chunk: forward ``y = w_mat @ col`` (cuBLAS through ``xp.matmul`` on a GPU); weight gradient
``gw += gy @ col^T``; input gradient ``gcol = w_mat^T @ gy``, folded back by col2im3d (a gather)
and added into the chunk's input planes. Chunks run one after another in a fixed order, so the
sums are the same every run.
"""
from __future__ import annotations

import math

from ..core.geometry import ConvGeometry
from ..ops.fast.workspace import resolve_limit
from . import launch


def column_chunks(geo: ConvGeometry, itemsize: int):
    """Yield ``(n0, n1, od0, od1, d0, d1, sub)``: samples ``n0:n1`` and output planes ``od0:od1``
    computed from input planes ``d0:d1`` with the geometry ``sub`` (``None`` when those windows
    see only padding, so the chunk's columns are all zero)."""
    samples, planes = launch.im2col_chunks(geo, itemsize, resolve_limit(None))
    (pad_lo, _), other_padding = geo.padding[0], tuple(geo.padding[1:])
    kD, sD, dD = geo.kernel[0], geo.stride[0], geo.dilation[0]
    OD = geo.out_size[0]
    for n0 in range(0, geo.N, samples):
        n1 = min(geo.N, n0 + samples)
        for od0 in range(0, OD, planes):
            od1 = min(OD, od0 + planes)
            start = od0 * sD - pad_lo                       # first input plane of the windows
            end = (od1 - 1) * sD - pad_lo + (kD - 1) * dD + 1  # one past the last
            d0, d1 = (0, geo.D) if planes == OD else (max(0, start), min(geo.D, end))
            padding = geo.padding if planes == OD else ((d0 - start, end - d1),) + other_padding
            sub = None if d1 <= d0 else ConvGeometry.from_shapes(
                (n1 - n0, geo.C, d1 - d0, geo.H, geo.W), geo.w_shape, geo.stride, padding,
                geo.dilation, geo.groups)
            yield n0, n1, od0, od1, d0, d1, sub


def _columns(kern, x, sub):
    """col (n, G, Cg*taps, L) of the contiguous chunk input ``x``, ready for a batched matmul."""
    L = math.prod(sub.out_size)
    col = kern.xp.empty((sub.N, sub.C * sub.taps, L), dtype=x.dtype)
    kern.launch(launch.im2col3d_config(sub), x.dtype, (x, col) + launch.im2col_args(sub))
    return col.reshape(sub.N, sub.groups, -1, L)


def _chunk(xp, a, n0, n1, lo, hi, whole):
    """``a[n0:n1, :, lo:hi]``, contiguous (a view when the depth range is whole)."""
    return a[n0:n1] if whole else xp.ascontiguousarray(a[n0:n1, :, lo:hi])


def conv_forward(kern, x, w, geo):
    xp, G = kern.xp, geo.groups
    w_mat = w.reshape(G, geo.K // G, -1)                        # (G, Kg, Cg*taps)
    y = xp.empty(geo.y_shape, dtype=x.dtype)
    for n0, n1, od0, od1, d0, d1, sub in column_chunks(geo, x.dtype.itemsize):
        if sub is None:
            y[n0:n1, :, od0:od1] = 0
            continue
        col = _columns(kern, _chunk(xp, x, n0, n1, d0, d1, sub.D == geo.D), sub)
        y[n0:n1, :, od0:od1] = xp.matmul(w_mat, col).reshape(sub.y_shape)  # cuBLAS on a GPU
    return y


def backward_weight(kern, gy, x, geo):
    xp, G, Kg = kern.xp, geo.groups, geo.K // geo.groups
    gw = xp.zeros((G, Kg, geo.C // G * geo.taps), dtype=gy.dtype)
    for n0, n1, od0, od1, d0, d1, sub in column_chunks(geo, gy.dtype.itemsize):
        if sub is None:
            continue
        whole = od1 - od0 == geo.out_size[0]
        col = _columns(kern, _chunk(xp, x, n0, n1, d0, d1, sub.D == geo.D), sub)
        gy_chunk = _chunk(xp, gy, n0, n1, od0, od1, whole).reshape(sub.N, G, Kg, -1)
        gw += xp.matmul(gy_chunk, col.transpose(0, 1, 3, 2)).sum(axis=0)
    return xp.ascontiguousarray(gw.reshape(geo.w_shape))


def backward_input(kern, gy, w, geo):
    xp, G, Kg = kern.xp, geo.groups, geo.K // geo.groups
    w_t = w.reshape(G, Kg, -1).transpose(0, 2, 1)               # (G, Cg*taps, Kg)
    gx = xp.zeros(geo.x_shape, dtype=gy.dtype)
    for n0, n1, od0, od1, d0, d1, sub in column_chunks(geo, gy.dtype.itemsize):
        if sub is None:
            continue
        whole = od1 - od0 == geo.out_size[0]
        gy_chunk = _chunk(xp, gy, n0, n1, od0, od1, whole).reshape(sub.N, G, Kg, -1)
        gcol = xp.ascontiguousarray(xp.matmul(w_t, gy_chunk))  # (n, G, Cg*taps, L)
        # whole samples: col2im3d writes every element of gx[n0:n1] (a contiguous view) itself;
        # chunks of output planes share input planes, so theirs are added up
        gx_chunk = gx[n0:n1] if whole else xp.empty(sub.x_shape, dtype=gy.dtype)
        kern.launch(launch.col2im3d_config(sub), gy.dtype,
                    (gcol.reshape(sub.N, -1, gcol.shape[-1]), gx_chunk) + launch.im2col_args(sub))
        if not whole:
            gx[n0:n1, :, d0:d1] += gx_chunk
    return gx
