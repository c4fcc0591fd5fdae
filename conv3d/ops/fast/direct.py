"""Strategy ``'direct'``: compiled loops over the taps, for layers with few channels per group.

A depthwise layer (groups = channels) is C tiny convolutions of one channel each. im2col would
copy every input voxel kD*kH*kW times to feed GEMMs of one row; here each output channel is
accumulated tap by tap instead::

    y[n, k, o]           += w[k, c, a, b, e] * xpad[n, g*Cg + c, o*s + (a, b, e)*d]
    gx[n, g*Cg + c, ...] += w[k, c, a, b, e] * gy[n, k, o]     (the same voxels, scattered)
    gw[k, c, a, b, e]     = sum over n, o of gy[n, k, o] * xpad[n, g*Cg + c, o*s + (a, b, e)*d]

Each unit copies its channel into a zero-padded buffer laid out "wide": flat, with the padded
row length Wp and plane size Hp*Wp. Output (od, oh, ow) then sits at position
``q = (od*sd*Hp + oh*sh)*Wp + ow*sw`` and reads input position ``q + (a*dd*Hp + b*dh)*Wp + e*dw``,
so every tap is ONE long contiguous loop over q (which the compiler vectorizes) instead of
OD*OH loops of OW values. The positions between output voxels hold values nobody reads (for
stride 1 a few padding columns; for stride s about s times the work per axis), and for the
gradients ``gy`` is spread onto its positions with zeros between them.

The work is cut into independent units: the forward by (sample, output channel), the input
gradient by (sample, input channel), the weight gradient by (output channel, input channel of
its group). Units never write to the same array element, so threads each run a contiguous
range of them in the compiled loop, which releases the GIL (``sample_threads.run_units``).
There is no workspace: a unit's buffers are one channel's padded volume. The weight gradient
sums in float64.
"""
from __future__ import annotations

import numpy as np

from ...core.geometry import ConvGeometry
from .sample_threads import run_units
from .workspace import output

def _settings(geo: ConvGeometry) -> tuple:
    return geo.stride + tuple(p[0] for p in geo.padding) + geo.dilation


def forward(x, w, b, stride, padding, dilation, groups, workspace_limit=None, out=None):
    """y (N, K, OD, OH, OW); ``workspace_limit`` is accepted and unused (no scratch memory)."""
    geo = ConvGeometry.from_shapes(x.shape, w.shape, stride, padding, dilation, groups)
    y = output(geo.y_shape, x.dtype, out)
    bias = np.zeros(geo.K, x.dtype) if b is None else b
    run_units(_kernels()[0], geo.N * geo.K, geo.flops(), x, w, bias, y, *_settings(geo))
    return y


def backward(gy, x, w, stride, padding, dilation, groups, output_mask=(True, True),
             workspace_limit=None, out=None):
    """``(gx, gw)``, ``None`` where ``output_mask`` is False; ``out``: the array for ``gx``."""
    geo = ConvGeometry.from_shapes(x.shape, w.shape, stride, padding, dilation, groups)
    gx = gw = None
    if output_mask[0]:
        gx = output(geo.x_shape, gy.dtype, out)
        run_units(_kernels()[1], geo.N * geo.C, geo.flops(), gy, w, gx, *_settings(geo))
    if output_mask[1]:
        gw = np.empty(geo.w_shape, dtype=gy.dtype)
        run_units(_kernels()[2], geo.K * geo.Cg, geo.flops(), gy, x, gw, *_settings(geo))
    return gx, gw


_compiled = None


def _kernels():
    """``(forward, input gradient, weight gradient)``, compiled on first use."""
    global _compiled
    if _compiled is not None:
        return _compiled
    from . import _direct_loops as loops  # noqa: PLC0415 - numba loads only when a loop runs

    _compiled = loops.forward_loop, loops.input_loop, loops.weight_loop
    return _compiled
