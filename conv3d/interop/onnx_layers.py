"""The ONNX nodes of the layers that have no one-operator twin in opset 17.

Each function takes the graph ``g`` of ``conv3d.interop.onnx_export`` (``g.node``, ``g.const``,
``g.weight``), the layer ``m``, the input's tensor name ``x`` and value ``xv`` (and the layer's
output value ``yv`` where the shapes are needed), and returns the output's tensor name:

==========================  ====================================================================
conv3d                      ONNX (opset 17)
==========================  ====================================================================
Conv3d(padding_mode=...)    'reflect': ``Pad(mode='reflect')``; 'replicate': ``Pad(mode='edge')``;
                            'circular': per axis ``Concat(Slice(x, I-lo:I), x, Slice(x, 0:hi))``
                            (``Pad``'s 'wrap' needs opset 19); then ``Conv`` without padding
ConvTranspose3d             ``ConvTranspose`` (pads, output_padding, dilations, group)
Upsample                    ``Resize``: nearest = 'asymmetric' + 'floor' (torch's legacy
                            nearest); trilinear = 'linear' with 'half_pixel' or 'align_corners'
GroupNorm                   ``Reshape`` (N, G, -1), ``InstanceNormalization``, ``Reshape`` back,
                            then ``Mul`` / ``Add`` by the per-channel weight and bias
InstanceNorm3d              ``InstanceNormalization``; with running statistics (eval mode of
                            ``track_running_stats=True``) ``BatchNormalization``
LayerNorm                   ``LayerNormalization`` over the last ``len(normalized_shape)`` axes
AvgPool3d(divisor_override) ``AveragePool`` counting the padding, times ``kernel volume / divisor``
==========================  ====================================================================
"""
from __future__ import annotations

import numpy as np

#: conv3d's padding modes -> ONNX Pad's
PAD_MODES = {"reflect": "reflect", "replicate": "edge"}


def padded(g, m, x: str, xv, pads, hint: str) -> str:
    """``x`` padded by ``pads`` ([d_lo, h_lo, w_lo, d_hi, h_hi, w_hi]) as ``m.padding_mode``
    pads it, for a ``Conv`` with no padding of its own."""
    lo, hi = pads[:3], pads[3:]
    if m.padding_mode in PAD_MODES:
        amounts = np.array([0, 0] + list(lo) + [0, 0] + list(hi), np.int64)
        return g.node("Pad", [x, g.const(f"{hint}_pads", amounts)], f"{hint}_pad",
                      mode=PAD_MODES[m.padding_mode])
    # circular: the last lo voxels go in front and the first hi behind, one axis at a time (the
    # wrap of each axis is independent of the others, so the order of the axes does not matter)
    for axis, before, after in zip((2, 3, 4), lo, hi):
        size = xv.shape[axis]
        parts = []
        if before:
            parts.append(_slice(g, x, size - before, size, axis, f"{hint}_wrap_lo"))
        parts.append(x)
        if after:
            parts.append(_slice(g, x, 0, after, axis, f"{hint}_wrap_hi"))
        if len(parts) > 1:
            x = g.node("Concat", parts, f"{hint}_wrap", axis=axis)
    return x


def _slice(g, x: str, start: int, end: int, axis: int, hint: str) -> str:
    consts = [g.const(f"{hint}_{what}", np.array([v], np.int64))
              for what, v in (("start", start), ("end", end), ("axis", axis))]
    return g.node("Slice", [x] + consts, hint)


def conv_transpose(g, m, x: str, hint: str) -> str:
    inputs = [x, g.weight(f"{hint}_weight", m.weight.numpy())]  # (C_in, C_out/groups, k...)
    if m.bias is not None:
        inputs.append(g.weight(f"{hint}_bias", m.bias.numpy()))
    return g.node("ConvTranspose", inputs, hint, kernel_shape=list(m.kernel_size),
                  strides=list(m.stride), dilations=list(m.dilation), group=m.groups,
                  pads=list(m.padding) * 2, output_padding=list(m.output_padding))


def resize(g, m, x: str, xv, yv, hint: str) -> str:
    """``Upsample``. With a scale factor the index rule divides by the factor, as torch's does;
    with a size (or ``recompute_scale_factor``) by O / I, which is what ``Resize`` does given
    the output sizes."""
    if m.mode == "nearest":
        attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                     nearest_mode="floor")
    else:
        # 'half_pixel', not 'pytorch_half_pixel': the latter maps an output of one voxel to 0,
        # where torch maps it to the centre like any other, (0 + 0.5) * I - 0.5
        attrs = dict(mode="linear", coordinate_transformation_mode="align_corners"
                     if m.align_corners else "half_pixel")
    if m.scale_factor is not None and not m.recompute_scale_factor:
        factors = m.scale_factor if isinstance(m.scale_factor, (tuple, list)) \
            else (m.scale_factor,) * 3
        # trilinear copies an axis whose size does not change, whatever its factor says
        factors = [1.0 if m.mode == "trilinear" and i == o else float(f)
                   for f, i, o in zip(factors, xv.shape[2:], yv.shape[2:])]
        scales = g.const(f"{hint}_scales", np.array([1.0, 1.0] + factors, np.float32))
        return g.node("Resize", [x, "", scales], hint, **attrs)
    batch_channels = g.node("Shape", [x], f"{hint}_shape", start=0, end=2)  # the batch may vary
    sizes = g.node("Concat", [batch_channels, g.const(f"{hint}_size",
                                                      np.array(yv.shape[2:], np.int64))],
                   f"{hint}_sizes", axis=0)
    return g.node("Resize", [x, "", "", sizes], hint, **attrs)


def group_norm(g, m, x: str, xv, hint: str) -> str:
    """Each group of C / G channels normalized as one: an instance norm of (N, G, rest)."""
    G = m.num_groups
    grouped = g.node("Reshape", [x, g.const(f"{hint}_groups", np.array([0, G, -1], np.int64))],
                     f"{hint}_grouped")
    normed = g.node("InstanceNormalization", [grouped, g.weight(f"{hint}_ones", np.ones(G)),
                                              g.weight(f"{hint}_zeros", np.zeros(G))],
                    f"{hint}_norm", epsilon=m.eps)
    y = g.node("Reshape", [normed, g.const(f"{hint}_shape",
                                           np.array([0] + list(xv.shape[1:]), np.int64))], hint)
    if not m.affine:
        return y
    per_channel = (m.num_channels,) + (1,) * (len(xv.shape) - 2)
    y = g.node("Mul", [y, g.weight(f"{hint}_weight", m.weight.numpy().reshape(per_channel))],
               f"{hint}_scale")
    return g.node("Add", [y, g.weight(f"{hint}_bias", m.bias.numpy().reshape(per_channel))],
                  f"{hint}_shift")


def batch_norm(g, m, x: str, hint: str) -> str:
    """Normalization with the running statistics (BatchNorm3d, and InstanceNorm3d in eval mode
    with ``track_running_stats``): ``BatchNormalization`` in its inference form."""
    C = m.num_features
    scale = m.weight.numpy() if m.affine else np.ones(C)
    shift = m.bias.numpy() if m.affine else np.zeros(C)
    return g.node("BatchNormalization",
                  [x, g.weight(f"{hint}_scale", scale), g.weight(f"{hint}_bias", shift),
                   g.weight(f"{hint}_mean", np.asarray(m.running_mean)),
                   g.weight(f"{hint}_var", np.asarray(m.running_var))],
                  hint, epsilon=m.eps,  # momentum: only training reads it; None -> torch's 0.1
                  momentum=1.0 - (0.1 if m.momentum is None else m.momentum))


def instance_norm(g, m, x: str, hint: str) -> str:
    if m.track_running_stats:  # the graph is exported in eval mode, which uses them
        return batch_norm(g, m, x, hint)
    C = m.num_features
    scale = m.weight.numpy() if m.affine else np.ones(C)
    shift = m.bias.numpy() if m.affine else np.zeros(C)
    return g.node("InstanceNormalization", [x, g.weight(f"{hint}_scale", scale),
                                            g.weight(f"{hint}_bias", shift)], hint, epsilon=m.eps)


def layer_norm(g, m, x: str, hint: str) -> str:
    shape = m.normalized_shape
    inputs = [x, g.weight(f"{hint}_scale", np.ones(shape) if m.weight is None
                          else m.weight.numpy())]
    if m.bias is not None:
        inputs.append(g.weight(f"{hint}_bias", m.bias.numpy()))
    return g.node("LayerNormalization", inputs, hint, axis=-len(shape), epsilon=m.eps)


def avg_pool_divisor(g, m, x: str, path: str, hint: str) -> str:
    """``AvgPool3d(divisor_override=d)``: the window sums over d. ``AveragePool`` counting the
    padding divides every window by the kernel volume, so a constant factor gives the sums
    over d; with ``ceil_mode`` the last windows can pass the padding, and ONNX runtimes
    disagree on what those count, so that case is refused."""
    if m.ceil_mode:
        raise ValueError(f"ONNX export: {path or 'the top level'} is AvgPool3d(divisor_override="
                         f"{m.divisor_override}, ceil_mode=True), which this exporter cannot "
                         f"express (the windows past the padding have no fixed count in ONNX); "
                         f"use ceil_mode=False, or torch_module(model)")
    mean = g.node("AveragePool", [x], f"{hint}_mean", kernel_shape=list(m.kernel_size),
                  strides=list(m.stride), pads=list(m.padding) * 2, count_include_pad=1)
    volume = int(np.prod(m.kernel_size))
    return g.node("Mul", [mean, g.weight(f"{hint}_factor", np.array(volume / m.divisor_override))],
                  hint)


def max_pool_with_indices(g, m, x: str, xv, hint: str):
    """``MaxPool3d(return_indices=True)`` inside a planned block: ``((y, yv), (indices, iv))``.
    ONNX's second output counts over the whole tensor, ``((n*C + c)*D + d)*H*W + h*W + w``;
    torch's and conv3d's count within each (n, c) volume, which is that index mod D*H*W."""
    yv, iv = m(xv)
    y, flat = g.name(hint), g.name(f"{hint}_flat_indices")
    g.nodes.append(g.onnx.helper.make_node(
        "MaxPool", [x], [y, flat], name=y, kernel_shape=list(m.kernel_size),
        strides=list(m.stride), pads=list(m.padding) * 2, dilations=list(m.dilation),
        ceil_mode=int(m.ceil_mode)))
    volume = int(np.prod(xv.shape[2:]))
    indices = g.node("Mod", [flat, g.const(f"{hint}_volume", np.array(volume, np.int64))],
                     f"{hint}_indices")
    return (y, yv), (indices, iv)


def max_unpool(g, m, pooled, indices, hint: str):
    """``MaxUnpool3d(y, indices)``: ONNX's ``MaxUnpool`` wants whole-tensor indices into the
    output, so each (n, c) volume's indices are moved by ``(n*C + c) * OD*OH*OW``; the offsets
    are built from the input's shape, so the batch axis stays symbolic."""
    (x, xv), (i, iv) = pooled, indices
    yv = m(xv, iv)
    volume = int(np.prod(yv.shape[2:]))
    batch_channels = g.node("Shape", [x], f"{hint}_nc", start=0, end=2)
    count = g.node("ReduceProd", [batch_channels], f"{hint}_count", keepdims=0)
    planes = g.node("Range", [g.const(f"{hint}_zero", np.array(0, np.int64)), count,
                              g.const(f"{hint}_one", np.array(1, np.int64))], f"{hint}_planes")
    column = g.node("Concat", [batch_channels, g.const(f"{hint}_ones", np.ones(3, np.int64))],
                    f"{hint}_column", axis=0)
    offsets = g.node("Mul", [g.node("Reshape", [planes, column], f"{hint}_plane_of"),
                             g.const(f"{hint}_volume", np.array(volume, np.int64))],
                     f"{hint}_offsets")
    flat = g.node("Add", [i, offsets], f"{hint}_flat_indices")
    shape = g.node("Concat", [batch_channels, g.const(f"{hint}_size",
                                                      np.array(yv.shape[2:], np.int64))],
                   f"{hint}_shape", axis=0)
    return g.node("MaxUnpool", [x, flat, shape], hint, kernel_shape=list(m.kernel_size),
                  strides=list(m.stride), pads=list(m.padding) * 2), yv
