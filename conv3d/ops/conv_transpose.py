"""3D transposed convolution: ``ConvTranspose3dFunction`` and ``conv_transpose3d``.

A transposed convolution is not a "deconvolution" (it does not undo anything). It is the
*adjoint* of ``conv3d``: the linear map ``x -> conv3d(x, w)`` has a transpose, and that transpose,
applied to a small volume, gives a large one. Its forward is therefore exactly conv3d's input
gradient, and its backward uses conv3d's forward (for the input's gradient) and conv3d's weight
gradient (for the weight's)::

    conv_transpose3d(x, w)          = conv3d_backward_input(gy=x, w)
    d/dx of <conv_transpose3d(x, w), g> = conv3d(g, w)
    d/dw of <conv_transpose3d(x, w), g> = conv3d_backward_weight(gy=x, input=g)

so ``<conv3d(u, w), v> == <u, conv_transpose3d(v, w)>`` for every u and v. Nothing here computes
a product: the three calls go to the kernel provider of the device (``conv3d.core.backend``),
the same ones that ``Conv3dFunction`` uses.

Output size per axis (PyTorch's rule)::

    o = (i - 1)*s - 2p + d*(k - 1) + output_padding + 1

``output_padding`` (< stride or < dilation) picks one of the ``s`` input sizes that a strided
conv3d maps to the same output size; the adjoint of conv3d of *that* size is this op.
"""
from __future__ import annotations

import numpy as np

from ..core.backend import get_array_module, kernels_for
from ..core.shapes import to_triple
from ..core.tensor import Function, Tensor, as_tensor, check_float_dtypes
from ._args import check_5d


def transposed_output_size(i: int, k: int, s: int, p: int, d: int, output_padding: int) -> int:
    """``o = (i - 1)*s - 2p + d*(k - 1) + output_padding + 1``.

    >>> transposed_output_size(4, 2, 2, 0, 1, 0), transposed_output_size(4, 3, 2, 1, 1, 1)
    (8, 8)
    """
    return (i - 1) * s - 2 * p + d * (k - 1) + output_padding + 1


def _adjoint_padding(p: int, output_padding: int):
    """The conv3d this op is the adjoint of, on one axis: ``((before, after), uncovered)``.

    That conv3d reads an input of size ``o - uncovered`` with padding ``(p, p - output_padding)``,
    so that its output has exactly the transposed op's input size. When ``p < output_padding`` the
    "after" padding would be negative: the last ``output_padding - p`` output voxels are then
    reached by no input (only the bias lands there), and the conv3d reads the rest.
    """
    after = p - output_padding
    return (p, max(after, 0)), max(-after, 0)


class ConvTranspose3dFunction(Function):
    """y = conv_transpose3d(x, w) + b, for validated settings (see ``conv_transpose3d``).

    Args:
        stride, dilation: int triples; groups: int.
        conv_padding: three (before, after) pairs of the conv3d this op is the adjoint of.
        out_size: (OD, OH, OW).
        uncovered: per axis, trailing output voxels that no input reaches (zeros, plus bias).
    """

    def __init__(self, stride, conv_padding, dilation, groups, out_size, uncovered):
        self.stride, self.conv_padding, self.out_size = stride, conv_padding, out_size
        self.dilation, self.groups, self.uncovered = dilation, groups, uncovered

    def _settings(self):
        return self.stride, self.conv_padding, self.dilation, self.groups

    def _disjoint(self, w):
        """True when every output voxel gets exactly one tap of one input voxel (stride equal
        to the kernel, no padding, dilation 1, one group), on the CPU: then the op is one GEMM
        per tap into a strided slice of the output, with no im2col and no overlapping adds,
        which is the least work there is; the GPU keeps its kernel."""
        return (self.device == "cpu" and self.groups == 1 and self.stride == w.shape[2:]
                and self.dilation == (1, 1, 1) and all(p == (0, 0) for p in self.conv_padding))

    def forward(self, x, w, b=None):
        xp = get_array_module(x)
        if self.recording:
            self.x, self.w = x, w
        N = x.shape[0]
        C_out = w.shape[1] * self.groups
        core = tuple(o - u for o, u in zip(self.out_size, self.uncovered))
        # conv3d's input gradient reads only its input's *shape*: a zero-stride view stands in
        if self._disjoint(w):
            y = _disjoint_forward(x, w)
        else:
            shape_only = xp.broadcast_to(xp.zeros((), dtype=x.dtype), (N, C_out) + core)
            y, _ = kernels_for(self.device).conv3d_backward(x, shape_only, w, *self._settings(),
                                                            (True, False))
        if any(self.uncovered):
            full = xp.zeros((N, C_out) + self.out_size, dtype=x.dtype)
            full[:, :, :core[0], :core[1], :core[2]] = y
            y = full
        return y if b is None else y + b.reshape(1, -1, 1, 1, 1)

    def backward(self, gy):
        xp = get_array_module(gy)
        kernels = kernels_for(self.device)
        gb = gy.sum(axis=(0, 2, 3, 4)) if len(self.inputs) == 3 else None
        core = tuple(o - u for o, u in zip(self.out_size, self.uncovered))
        g = gy
        if any(self.uncovered):  # those voxels depend on the bias only
            g = xp.ascontiguousarray(gy[:, :, :core[0], :core[1], :core[2]])
        want = (self.inputs[0].requires_grad, self.inputs[1].requires_grad)
        if self._disjoint(self.w):
            gx, gw = _disjoint_backward(g, self.x, self.w, want)
            return (gx, gw) if gb is None else (gx, gw, gb)
        gx = gw = None
        if self.inputs[0].requires_grad:  # the adjoint of the adjoint: conv3d itself
            gx = kernels.conv3d_forward(g, self.w, None, *self._settings())
        if self.inputs[1].requires_grad:  # conv3d's weight gradient, with the roles swapped
            _, gw = kernels.conv3d_backward(self.x, g, self.w, *self._settings(), (False, True))
        return (gx, gw) if gb is None else (gx, gw, gb)


def _taps(w):
    """(a, b, e) for every tap of a (C_in, C_out, kD, kH, kW) weight, depth first."""
    kD, kH, kW = w.shape[2:]
    return [(a, b, e) for a in range(kD) for b in range(kH) for e in range(kW)]


def _disjoint_forward(x, w):
    """conv_transpose3d for stride == kernel: tap (a, b, e) of input voxel (z, i, j) lands on
    output voxel (z*kD + a, i*kH + b, j*kW + e) and nowhere else, so each tap is one GEMM
    (C_out x C_in) @ (C_in x D*H*W) written into the output's slice [a::kD, b::kH, e::kW]."""
    N, C, D, H, W = x.shape
    K, (kD, kH, kW) = w.shape[1], w.shape[2:]
    y = np.empty((N, K, D * kD, H * kH, W * kW), dtype=x.dtype)
    xm = x.reshape(N, C, D * H * W)
    for a, b, e in _taps(w):
        y[:, :, a::kD, b::kH, e::kW] = (w[:, :, a, b, e].T @ xm).reshape(N, K, D, H, W)
    return y


def _disjoint_backward(gy, x, w, want):
    """The gradients of ``_disjoint_forward``. Gathering gy by tap, ``G[n, (k, t), v]`` = the
    output voxel that tap t of input voxel v wrote into channel k, makes each gradient one GEMM
    with all the taps in its inner dimension, in w's own layout (C_in, C_out*taps):
    gx[n] = w @ G[n] and gw = sum over n of X[n] @ G[n]^T."""
    N, C, D, H, W = x.shape
    K, (kD, kH, kW) = w.shape[1], w.shape[2:]
    g = gy.reshape(N, K, D, kD, H, kH, W, kW).transpose(0, 1, 3, 5, 7, 2, 4, 6)
    g = g.reshape(N, K * kD * kH * kW, D * H * W)  # the one copy: gy in tap order
    wm = w.reshape(C, -1)
    gx = (wm @ g).reshape(x.shape) if want[0] else None
    gw = None
    if want[1]:
        xm = x.reshape(N, C, D * H * W)
        gw = xm[0] @ g[0].T if N else np.zeros_like(wm)
        for n in range(1, N):
            gw += xm[n] @ g[n].T
        gw = gw.reshape(w.shape)
    return gx, gw


def conv_transpose3d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> Tensor:
    """3D transposed convolution, as ``torch.nn.functional.conv_transpose3d`` (same argument
    order): the adjoint of ``conv3d`` (see the module docstring), which scatters every input
    voxel, times the kernel, into a ``stride``-spaced output.

    Args:
        x: (N, C_in, D, H, W).
        weight: (C_in, C_out/groups, kD, kH, kW), torch's layout: the weight of the conv3d
            from C_out to C_in channels that this op is the adjoint of.
        bias: (C_out,) or None.
        stride, dilation: int or triple, each >= 1.
        padding: int or triple >= 0: crops ``p`` voxels from each side of the full scatter
            (it is the zero padding of the conv3d this op is the adjoint of).
        output_padding: int or triple >= 0, smaller than stride or dilation on each axis:
            voxels added on the far side of each axis (which size of the ``s`` possible).
        groups: divides C_in and C_out; input group g scatters into output group g only.

    Returns:
        y of shape (N, C_out, OD, OH, OW), per axis
        ``o = (i - 1)*s - 2p + d*(k - 1) + output_padding + 1``, and
        ``y[n, g*C_out/G + c, z*s + a*d - p, ...] += x[n, k, z, ...] * w[k, c, a, ...]`` over
        the input channels k of group g and the taps (a, b, e).

    >>> import numpy as np, conv3d, conv3d.functional as F
    >>> x = conv3d.Tensor(np.ones((1, 1, 2, 2, 2), dtype=np.float32))
    >>> w = conv3d.Tensor(np.ones((1, 3, 2, 2, 2), dtype=np.float32))
    >>> F.conv_transpose3d(x, w, stride=2).shape   # (2 - 1)*2 + 1*(2 - 1) + 1 = 4 per axis
    (1, 3, 4, 4, 4)
    >>> F.conv_transpose3d(x, w, stride=1).numpy()[0, 0, :, :, 1]  # overlapping windows add up
    array([[2., 4., 2.],
           [4., 8., 4.],
           [2., 4., 2.]], dtype=float32)
    """
    op = "conv_transpose3d"
    x, weight = as_tensor(x), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    check_5d(op, "input", x.data, "(N, C_in, D, H, W)",
             "add missing axes, e.g. x.reshape(1, 1, *x.shape) for a single 3-D volume")
    check_5d(op, "weight", weight.data, "(C_in, C_out/groups, kD, kH, kW)",
             "add missing axes, e.g. w.reshape(1, 1, *w.shape) for a single 3-D kernel")
    check_float_dtypes(op, input=x.data, weight=weight.data,
                       bias=None if bias is None else bias.data)
    try:
        stride = to_triple(stride, "stride", minimum=1)
        dilation = to_triple(dilation, "dilation", minimum=1)
        padding = to_triple(padding, "padding", minimum=0)
        output_padding = to_triple(output_padding, "output_padding", minimum=0)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{op}: {exc}") from None
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise TypeError(f"{op}: groups must be an int >= 1, got {groups!r}")
    N, C_in = x.shape[:2]
    if weight.shape[0] != C_in or C_in % groups:
        raise ValueError(f"{op}: weight must have shape (C_in, C_out/groups, kD, kH, kW) with "
                         f"C_in = {C_in} (the input's channels) divisible by groups={groups}, "
                         f"got weight shape {weight.shape}")
    C_out = weight.shape[1] * groups
    if bias is not None and tuple(bias.shape) != (C_out,):
        raise ValueError(f"{op}: bias must have shape (C_out,) = ({C_out},), got "
                         f"{tuple(bias.shape)}; pass one value per output channel or bias=None")
    for axis, op_, s, d in zip(("depth", "height", "width"), output_padding, stride, dilation):
        if op_ >= max(s, d):
            raise ValueError(f"{op}: output_padding must be smaller than stride or dilation, "
                             f"but on the {axis} axis output_padding={op_} >= max(stride={s}, "
                             f"dilation={d}); use output_padding < {max(s, d)}")
    out_size, pairs, uncovered = [], [], []
    for axis, i, k, s, p, d, op_ in zip(("depth", "height", "width"), x.shape[2:],
                                        weight.shape[2:], stride, padding, dilation,
                                        output_padding):
        o = transposed_output_size(i, k, s, p, d, op_)
        if o < 1:
            raise ValueError(f"{op}: the output would be empty on the {axis} axis: "
                             f"(i - 1)*s - 2p + d*(k - 1) + output_padding + 1 = ({i} - 1)*{s} - "
                             f"2*{p} + {d}*({k} - 1) + {op_} + 1 = {o}; use less padding")
        pair, u = _adjoint_padding(p, op_)
        out_size.append(o)
        pairs.append(pair)
        uncovered.append(u)
    fn = ConvTranspose3dFunction(stride, tuple(pairs), dilation, groups, tuple(out_size),
                                 tuple(uncovered))
    return fn(x, weight) if bias is None else fn(x, weight, bias)
