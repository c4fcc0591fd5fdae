"""Export a conv3d model to ONNX: ``conv3d.onnx.export(model, input_shape, path)``.

The exporter walks the model in forward order and writes one ONNX node (or two) per layer:

==================  ==========================================================================
conv3d layer        ONNX
==================  ==========================================================================
Conv3d              ``Conv`` (3-D kernel_shape, strides, dilations, group; pads as
                    [d_lo, h_lo, w_lo, d_hi, h_hi, w_hi], so 'same' with stride > 1 keeps its
                    asymmetric padding)
MaxPool3d           ``MaxPool`` (pads, dilations, ceil_mode)
AvgPool3d           ``AveragePool`` (pads, ceil_mode, count_include_pad)
BatchNorm3d         ``BatchNormalization`` with the running statistics (inference form)
ReLU                ``Relu``
Linear              ``Gemm`` (transB=1) on a 2-D input, else ``MatMul`` + ``Add``
Flatten             ``Flatten`` (axis=1) for the default (N, rest), else ``Reshape``
Dropout             ``Dropout`` in inference mode: the identity
GlobalAvgPool3d     ``GlobalAveragePool`` + ``Flatten``
AdaptiveAvgPool3d   ``AveragePool`` / ``MaxPool`` with kernel = stride = input / output size,
AdaptiveMaxPool3d   when that divides on every axis (equal bins; else a ValueError)
Identity            ``Identity``
ConvTranspose3d,    see ``conv3d.interop.onnx_layers``: ``ConvTranspose``, ``Resize``,
Upsample,           ``InstanceNormalization`` (GroupNorm through a reshape),
GroupNorm,          ``LayerNormalization``; Conv3d's padding modes 'reflect' / 'replicate' /
InstanceNorm3d,     'circular' as ``Pad`` / ``Slice`` + ``Concat`` before the ``Conv``;
LayerNorm           AvgPool3d's ``divisor_override`` as ``AveragePool`` times a constant
Conv2Plus1d         its parts: ``Conv`` (1 x d x d), ``BatchNormalization``, ``Relu``,
                    ``Conv`` (t x 1 x 1)
Sequential          its children, in order
residual blocks,    their plan in ``conv3d.interop.structure``: the children, then ``Add`` /
VideoResNet         ``Flatten`` where the forward adds or flattens
==================  ==========================================================================

The graph is exported in inference mode (``model.eval()`` during the export; the model's mode
is restored afterwards). The batch axis is symbolic (``N``), so any batch size runs; the other
axes are fixed by ``input_shape``. The float dtype is the model's (float32 -> FLOAT, float64 ->
DOUBLE). Every export is checked with ``onnx.checker.check_model``. Needs the optional extra
``pip install conv3d[interop]`` (onnx; onnxruntime to run the result).
"""
from __future__ import annotations

import numpy as np

from ..core.shapes import same_padding
from ..core.tensor import Tensor, no_grad
from ..ops.shape import cat
from ..nn import (AdaptiveAvgPool3d, AdaptiveMaxPool3d, AvgPool3d, BatchNorm3d, Conv2Plus1d, Conv3d,
                  ConvTranspose3d, Dropout, Flatten, GlobalAvgPool3d, GroupNorm, Identity,
                  InstanceNorm3d, LayerNorm, Linear, MaxPool3d, MaxUnpool3d, Module, ReLU,
                  Sequential, Upsample)
from . import onnx_layers as layers
from .structure import plan_of

OPSET = 17
#: ONNX IR version written: 8 goes with opset 17 and loads in every onnxruntime >= 1.14
IR_VERSION = 8


def _require_onnx():
    try:
        import onnx  # noqa: PLC0415 - optional dependency
    except ImportError as exc:
        raise ImportError("conv3d.onnx.export needs the onnx package: pip install "
                          "'conv3d[interop]' (installs onnx and onnxruntime)",
                          name="onnx") from exc
    return onnx


class _Graph:
    """Collects nodes and initializers while the model is walked, tracking the current tensor."""

    def __init__(self, onnx, dtype):
        self.onnx, self.dtype = onnx, dtype
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, hint: str, array) -> str:
        name = self.name(hint)
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, hint: str, array) -> str:
        return self.const(hint, np.asarray(array, dtype=self.dtype))

    def node(self, op: str, inputs, hint: str, **attrs) -> str:
        out = self.name(hint)
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out


def _conv_pads(layer: Conv3d, in_shape) -> list[int]:
    if layer.padding == "valid":
        lo = hi = (0, 0, 0)
    elif layer.padding == "same":
        pairs = [same_padding(i, k, s, d) for i, k, s, d in
                 zip(in_shape[2:], layer.kernel_size, layer.stride, layer.dilation)]
        lo, hi = tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
    else:
        lo = hi = tuple(layer.padding)
    return list(lo) + list(hi)


def _emit(g: _Graph, m: Module, x: str, xv: Tensor, path: str) -> tuple[str, Tensor]:
    """Emit the nodes of module ``m`` applied to tensor name ``x`` (whose value is ``xv``)."""
    if isinstance(m, Sequential) and type(m).forward is Sequential.forward:
        for name, child in m.named_children():
            x, xv = _emit(g, child, x, xv, f"{path}.{name}" if path else name)
        return x, xv
    if isinstance(m, Conv2Plus1d):
        for name in ("spatial", "bn", "relu", "temporal"):  # the order of its forward
            x, xv = _emit(g, m._modules[name], x, xv, f"{path}.{name}" if path else name)
        return x, xv
    plan = plan_of(m)
    if plan is not None:
        return plan(_Ops(g, m, path), m, (x, xv))
    hint = path.replace(".", "_") or type(m).__name__
    if getattr(m, "return_indices", False) or isinstance(m, MaxUnpool3d):
        # (y, indices) = pool(x) and unpool(y, indices) are steps of a block's plan, whose
        # forward says where the indices go; a Sequential or a whole model has one tensor
        option = "return_indices=True" if isinstance(m, MaxPool3d) else "(y, indices)"
        raise ValueError(f"ONNX export: {hint} is {type(m).__name__}({option}) outside a "
                         f"planned block, which this exporter cannot express (a layer of two "
                         f"outputs or inputs in a chain of one tensor); use it in a block with a "
                         f"plan in conv3d.interop.structure, or torch_module(model)")
    yv = m(xv)
    if isinstance(m, Conv3d):
        pads = _conv_pads(m, xv.shape)
        if m.padding_mode != "zeros":
            x, pads = layers.padded(g, m, x, xv, pads, hint), [0] * 6
        inputs = [x, g.weight(f"{hint}_weight", m.weight.numpy())]
        if m.bias is not None:
            inputs.append(g.weight(f"{hint}_bias", m.bias.numpy()))
        y = g.node("Conv", inputs, hint, kernel_shape=list(m.kernel_size),
                   strides=list(m.stride), dilations=list(m.dilation), group=m.groups, pads=pads)
    elif isinstance(m, ConvTranspose3d):
        y = layers.conv_transpose(g, m, x, hint)
    elif isinstance(m, MaxPool3d):
        y = g.node("MaxPool", [x], hint, kernel_shape=list(m.kernel_size), strides=list(m.stride),
                   pads=list(m.padding) * 2, dilations=list(m.dilation), ceil_mode=int(m.ceil_mode))
    elif isinstance(m, AvgPool3d) and m.divisor_override is not None:
        y = layers.avg_pool_divisor(g, m, x, path, hint)
    elif isinstance(m, AvgPool3d):
        y = g.node("AveragePool", [x], hint, kernel_shape=list(m.kernel_size),
                   strides=list(m.stride), pads=list(m.padding) * 2, ceil_mode=int(m.ceil_mode),
                   count_include_pad=int(m.count_include_pad))
    elif isinstance(m, BatchNorm3d):
        if not m.track_running_stats:
            raise ValueError(f"ONNX export: {hint} is BatchNorm3d(track_running_stats=False), "
                             f"which normalizes with each batch's statistics even in eval mode; "
                             f"ONNX inference BatchNormalization needs fixed statistics")
        y = layers.batch_norm(g, m, x, hint)
    elif isinstance(m, InstanceNorm3d):
        y = layers.instance_norm(g, m, x, hint)
    elif isinstance(m, GroupNorm):
        y = layers.group_norm(g, m, x, xv, hint)
    elif isinstance(m, LayerNorm):
        y = layers.layer_norm(g, m, x, hint)
    elif isinstance(m, Upsample):
        y = layers.resize(g, m, x, xv, yv, hint)
    elif isinstance(m, ReLU):
        y = g.node("Relu", [x], hint)
    elif isinstance(m, Linear):
        if xv.ndim == 2:  # y = x @ W^T + b in one node
            inputs = [x, g.weight(f"{hint}_weight", m.weight.numpy())]
            if m.bias is not None:
                inputs.append(g.weight(f"{hint}_bias", m.bias.numpy()))
            y = g.node("Gemm", inputs, hint, transB=1)
        else:  # Linear over the last axis of an N-d input: MatMul with W^T, then Add
            y = g.node("MatMul", [x, g.weight(f"{hint}_weightT", m.weight.numpy().T)], hint)
            if m.bias is not None:
                y = g.node("Add", [y, g.weight(f"{hint}_bias", m.bias.numpy())], hint + "_add")
    elif isinstance(m, Flatten):
        start = m.start_dim % xv.ndim
        end = m.end_dim % xv.ndim
        if start == 1 and end == xv.ndim - 1:
            y = g.node("Flatten", [x], hint, axis=1)
        else:
            shape = [0] + list(yv.shape[1:]) if start > 0 else list(yv.shape)
            y = g.node("Reshape", [x, g.const(f"{hint}_shape", np.array(shape, np.int64))], hint)
    elif isinstance(m, Dropout):
        y = g.node("Dropout", [x], hint)  # training_mode defaults to false: the identity
    elif isinstance(m, GlobalAvgPool3d):
        y = g.node("Flatten", [g.node("GlobalAveragePool", [x], hint + "_gap")], hint, axis=1)
    elif isinstance(m, (AdaptiveAvgPool3d, AdaptiveMaxPool3d)):
        # equal bins are an ordinary pooling; unequal ones (torch's overlapping bins) are not
        sizes = list(zip(xv.shape[2:], yv.shape[2:]))
        if any(i % o for i, o in sizes):
            raise ValueError(f"conv3d.onnx.export: {type(m).__name__} at {path or 'the top level'} "
                             f"maps input {tuple(xv.shape[2:])} to output {tuple(yv.shape[2:])}; "
                             f"ONNX has no adaptive pooling, and only an output size that divides "
                             f"the input on every axis is a plain pooling")
        kernel = [i // o for i, o in sizes]
        op = "AveragePool" if isinstance(m, AdaptiveAvgPool3d) else "MaxPool"
        y = g.node(op, [x], hint, kernel_shape=kernel, strides=kernel)
    elif isinstance(m, Identity):
        y = g.node("Identity", [x], hint)
    else:
        raise TypeError(f"conv3d.onnx.export: no ONNX mapping for {type(m).__name__} (at "
                        f"{path or 'the top level'}); supported: Sequential, Conv2Plus1d, Conv3d, "
                        f"ConvTranspose3d, MaxPool3d, AvgPool3d, AdaptiveAvgPool3d, "
                        f"AdaptiveMaxPool3d, Upsample, BatchNorm3d, GroupNorm, InstanceNorm3d, "
                        f"LayerNorm, ReLU, Linear, Flatten, Dropout, GlobalAvgPool3d, Identity, "
                        f"and the blocks "
                        f"of conv3d.interop.structure. Rebuild the model from these, or give "
                        f"its block a plan there")
    return y, yv


class _Ops:
    """The operations of a plan (``structure``) on (tensor name, value) pairs: one node each."""

    def __init__(self, g: _Graph, m: Module, path: str):
        self.g, self.m, self.path = g, m, path
        self.hint = path.replace(".", "_") or type(m).__name__

    def call(self, name, x, *more):
        child, path = self.m._modules[name], f"{self.path}.{name}" if self.path else name
        # the two layers of two outputs or two inputs: (y, indices) = pool(x), unpool(y, indices)
        if isinstance(child, MaxPool3d) and child.return_indices:
            return layers.max_pool_with_indices(self.g, child, *x, path.replace(".", "_"))
        if isinstance(child, MaxUnpool3d):
            return layers.max_unpool(self.g, child, x, *more, path.replace(".", "_"))
        return _emit(self.g, child, *x, path)

    def add(self, a, b):
        return self.g.node("Add", [a[0], b[0]], self.hint + "_add"), a[1] + b[1]

    def cat(self, xs):
        return (self.g.node("Concat", [x[0] for x in xs], self.hint + "_cat", axis=1),
                cat([x[1] for x in xs], axis=1))

    def flatten(self, x):
        return self.g.node("Flatten", [x[0]], self.hint + "_flatten", axis=1), x[1].flatten(1)

    def mean(self, x, axes):
        return (self.g.node("ReduceMean", [x[0]], self.hint + "_mean", axes=list(axes),
                            keepdims=0), x[1].mean(axis=tuple(axes)))


def to_onnx(model: Module, input_shape, opset: int = OPSET, dynamic_batch: bool = True):
    """The model as an ``onnx.ModelProto`` (checked with ``onnx.checker``); see ``export``."""
    onnx = _require_onnx()
    if not isinstance(model, Module):
        raise TypeError(f"conv3d.onnx.export: model must be a conv3d.nn.Module, got "
                        f"{type(model).__name__}")
    shape = tuple(int(s) for s in input_shape)
    if len(shape) < 2 or min(shape) < 1:
        raise ValueError(f"conv3d.onnx.export: input_shape must hold the batch size too, e.g. "
                         f"(1, 1, 16, 16, 16) for (N, C, D, H, W), got {tuple(input_shape)}")
    dtype = next((p.dtype for p in model.parameters()), np.dtype(np.float32))
    elem = {np.dtype(np.float32): onnx.TensorProto.FLOAT,
            np.dtype(np.float64): onnx.TensorProto.DOUBLE}[np.dtype(dtype)]
    g = _Graph(onnx, dtype)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            y, yv = _emit(g, model, "input", Tensor(np.zeros(shape, dtype=dtype)), "")
    finally:
        model.train(was_training)
    batch = "N" if dynamic_batch else shape[0]
    g.nodes.append(onnx.helper.make_node("Identity", [y], ["output"], name="output"))
    graph = onnx.helper.make_graph(
        g.nodes, "conv3d_model",
        [onnx.helper.make_tensor_value_info("input", elem, [batch] + list(shape[1:]))],
        [onnx.helper.make_tensor_value_info("output", elem, [batch] + list(yv.shape[1:]))],
        initializer=g.inits)
    proto = onnx.helper.make_model(graph, producer_name="conv3d",
                                   opset_imports=[onnx.helper.make_opsetid("", opset)])
    proto.ir_version = min(proto.ir_version, IR_VERSION)  # what released onnxruntimes accept
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export(model: Module, input_shape, path, opset: int = OPSET, dynamic_batch: bool = True):
    """Write ``model`` to the ONNX file ``path`` and return the ``onnx.ModelProto``.

    Args:
        model: a conv3d ``Module`` built from the layers in the table of this module.
        input_shape: the input's shape including the batch, e.g. ``(1, 1, 16, 16, 16)``; it fixes
            'same' padding and the shapes of the graph (the batch axis stays symbolic unless
            ``dynamic_batch=False``).
        path: the ``.onnx`` file to write.
        opset: the ONNX operator set (default 17).

    Raises:
        ImportError: onnx is not installed (``pip install 'conv3d[interop]'``).
        TypeError: a layer has no ONNX mapping.

    Run it with onnxruntime::

        sess = onnxruntime.InferenceSession(path)
        y = sess.run(None, {"input": x_numpy})[0]
    """
    proto = to_onnx(model, input_shape, opset=opset, dynamic_batch=dynamic_batch)
    _require_onnx().save(proto, str(path))
    return proto
