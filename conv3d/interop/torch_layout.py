"""Weights in PyTorch's layout: a conv3d model's state under ``torch.nn`` names, and back.

conv3d already follows ``torch.nn``: the same layer names, weight shapes (Conv3d
``(K, C/groups, kD, kH, kW)``, Linear ``(out, in)``) and dotted state-dict keys. So the mapping
is the identity except for two things (``BatchNorm3d``'s weight, bias, running_mean,
running_var and int64 0-d num_batches_tracked are PyTorch's five, so its count travels both
ways):

* ``Dropout`` keeps a buffer ``rng_state`` (seed and call count, for reproducible masks); torch
  has nothing there (it draws from its global RNG). Export drops it; load keeps the model's own.
* ``Conv2Plus1d`` has the sub-layers ``spatial``, ``bn``, ``relu``, ``temporal``; its PyTorch
  twin is torchvision's ``Conv2Plus1D``, ``nn.Sequential(Conv3d, BatchNorm3d, ReLU, Conv3d)``.
  So ``spatial`` -> ``0``, ``bn`` -> ``1``, ``temporal`` -> ``3`` (the ReLU, ``2``, has no state).

Arrays are NumPy on both sides (``torch.from_numpy`` or ``torch.load`` turns them into tensors;
``load_torch_state_dict`` also accepts torch tensors directly). ``torch_module(model)`` builds the
equivalent ``torch.nn`` model with the weights loaded, for models made of the layers above,
``Sequential`` and the planned blocks of ``conv3d.interop.structure``. This module never needs PyTorch except in ``torch_module``.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..nn import (AdaptiveAvgPool3d, AdaptiveMaxPool3d, AvgPool3d, BatchNorm3d, Conv2Plus1d, Conv3d,
                  ConvTranspose3d, Dropout, Flatten, GlobalAvgPool3d, GroupNorm, Identity,
                  InstanceNorm3d, LayerNorm, Linear, MaxPool3d, MaxUnpool3d, Module, ReLU,
                  Sequential, Upsample)

from .structure import plan_of

#: conv3d sub-layer name -> torchvision Conv2Plus1D (nn.Sequential) index
CONV2PLUS1D_NAMES = {"spatial": "0", "bn": "1", "relu": "2", "temporal": "3"}


def _module_of(model: Module, dotted: str) -> Module:
    module = model
    for part in dotted.split(".")[:-1]:
        module = module._modules[part]
    return module


def torch_name(model: Module, name: str) -> str | None:
    """The PyTorch state-dict key of conv3d key ``name`` (None: the entry has no torch twin)."""
    parts, module, out = name.split("."), model, []
    for part in parts[:-1]:
        out.append(CONV2PLUS1D_NAMES[part] if isinstance(module, Conv2Plus1d) else part)
        module = module._modules[part]
    if isinstance(module, Dropout) and parts[-1] == "rng_state":
        return None
    return ".".join(out + [parts[-1]])


def name_map(model: Module) -> OrderedDict:
    """conv3d state-dict key -> PyTorch key, in state-dict order (None: dropped on export).

    >>> from conv3d import nn
    >>> block = nn.Sequential(nn.Conv2Plus1d(2, 4, 3), nn.Dropout(0.5))
    >>> for ours, theirs in name_map(block).items():
    ...     print(f"{ours:24s} -> {theirs}")
    0.spatial.weight         -> 0.0.weight
    0.bn.weight              -> 0.1.weight
    0.bn.bias                -> 0.1.bias
    0.temporal.weight        -> 0.3.weight
    0.bn.running_mean        -> 0.1.running_mean
    0.bn.running_var         -> 0.1.running_var
    0.bn.num_batches_tracked -> 0.1.num_batches_tracked
    1.rng_state              -> None
    """
    return OrderedDict((k, torch_name(model, k)) for k in model.state_dict())


def to_torch_state_dict(model: Module) -> OrderedDict:
    """The model's state under ``torch.nn`` names and shapes, as NumPy arrays (copies).

    Load it into the equivalent torch model with
    ``torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})``.

    >>> from conv3d import nn
    >>> sd = to_torch_state_dict(nn.Sequential(nn.Conv3d(1, 4, 3), nn.BatchNorm3d(4)))
    >>> {k: v.shape for k, v in sd.items()}  # doctest: +NORMALIZE_WHITESPACE
    {'0.weight': (4, 1, 3, 3, 3), '0.bias': (4,), '1.weight': (4,), '1.bias': (4,),
     '1.running_mean': (4,), '1.running_var': (4,), '1.num_batches_tracked': ()}
    """
    state, out = model.state_dict(), OrderedDict()
    for key, theirs in name_map(model).items():
        if theirs is not None:
            out[theirs] = np.array(state[key], copy=True)
    return out


def _as_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor (possibly on a GPU, possibly requiring grad)
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def load_torch_state_dict(model: Module, state_dict, strict: bool = True, dtype=None):
    """Load a state dict in PyTorch's layout (NumPy arrays or torch tensors) into ``model``.

    Dropout keeps its own ``rng_state``. With ``strict`` every other key must match, as in
    ``Module.load_state_dict``, whose errors (misshaped keys) name the conv3d keys and whose
    ``dtype`` rule applies: a float64 torch state dict in a float32 model warns unless
    ``dtype`` says which to cast to. Returns ``(missing_keys, unexpected_keys)`` in PyTorch's
    names.
    """
    if not hasattr(state_dict, "items"):
        raise TypeError(f"load_torch_state_dict: state_dict must be a mapping of names to arrays "
                        f"(e.g. torch_model.state_dict()), got {type(state_dict).__name__}")
    back = {theirs: ours for ours, theirs in name_map(model).items() if theirs is not None}
    own_state = model.state_dict()
    ours, unexpected = OrderedDict(), []
    for key, value in state_dict.items():
        if key in back:
            ours[back[key]] = _as_numpy(value)
        else:
            unexpected.append(key)
    for key, theirs in name_map(model).items():
        if theirs is None:  # conv3d-only state: keep the model's own
            ours[key] = own_state[key]
    missing = [theirs for ours_key, theirs in name_map(model).items()
               if theirs is not None and ours_key not in ours]
    if strict and (missing or unexpected):
        raise KeyError(f"load_torch_state_dict(strict=True): missing keys {missing}, unexpected "
                       f"keys {unexpected}. Build the same architecture as the torch model (same "
                       f"layer order and names), or pass strict=False")
    model.load_state_dict(ours, strict=False, dtype=dtype)
    return missing, unexpected


def _conv_padding(layer: Conv3d):
    if layer.padding == "valid":
        return 0
    if layer.padding == "same":
        if layer.stride != (1, 1, 1):
            raise ValueError(f"torch_module: {layer!r} uses padding='same' with stride "
                             f"{layer.stride}; PyTorch allows 'same' only with stride 1. Use "
                             f"explicit padding, or export to ONNX, which pads asymmetrically")
        return "same"
    return layer.padding


def torch_module(model: Module):
    """The equivalent ``torch.nn`` model, with this model's weights loaded (needs PyTorch).

    Supported: Conv3d (every padding_mode), ConvTranspose3d, Linear, BatchNorm3d, GroupNorm,
    InstanceNorm3d, LayerNorm, MaxPool3d (also return_indices), MaxUnpool3d, AvgPool3d (also
    divisor_override), AdaptiveAvgPool3d, AdaptiveMaxPool3d, Upsample, ReLU, Identity,
    Flatten, Dropout, GlobalAvgPool3d, Conv2Plus1d (as
    torchvision's Sequential layout), Sequential of them, and the blocks and models with a plan
    in ``conv3d.interop.structure`` (every model of ``conv3d.models``), as torch modules of the
    same child names. It is in the same train/eval mode as ``model``.
    """
    try:
        import torch  # noqa: PLC0415 - optional dependency
    except ImportError as exc:
        # name= tells a caller that skips on a missing optional package which one is missing
        raise ImportError("torch_module needs PyTorch: pip install conv3d[torch] (or torch)",
                          name="torch") from exc
    tm = _build(torch.nn, model)
    tm = tm.to(dtype=torch.float64 if _dtype(model) == np.float64 else torch.float32)
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in to_torch_state_dict(model).items()})
    return tm.train(model.training)


def _dtype(model: Module):
    return next((p.dtype for p in model.parameters()), np.dtype(np.float32))


class _TorchOps:
    """The operations of a plan (``structure``) on torch tensors, children taken from ``owner``."""

    def __init__(self, torch, owner):
        self.torch, self.owner = torch, owner

    def call(self, name, x, *more):  # more: a MaxUnpool3d's indices
        return getattr(self.owner, name)(x, *more)

    def add(self, a, b):
        return a + b

    def cat(self, xs):
        return self.torch.cat(xs, dim=1)

    def flatten(self, x):
        return x.flatten(1)

    def mean(self, x, axes):
        return x.mean(dim=tuple(axes))


def _planned(tnn, m: Module, plan):
    """A torch module running ``plan`` (``structure.plan_of``) over children of the same names,
    so the state-dict keys are conv3d's."""
    import torch  # noqa: PLC0415 - optional dependency, present when tnn is torch.nn

    class Planned(tnn.Module):
        def forward(self, x):
            return plan(_TorchOps(torch, self), m, x)

    Planned.__name__ = Planned.__qualname__ = type(m).__name__
    out = Planned()
    for name, child in m._modules.items():
        setattr(out, name, None if child is None else _build(tnn, child))
    return out


def _build(tnn, m: Module):
    plan = plan_of(m)
    if plan is not None:
        return _planned(tnn, m, plan)
    if isinstance(m, Sequential) and type(m).forward is Sequential.forward:
        return tnn.Sequential(OrderedDict((name, _build(tnn, c)) for name, c in m.named_children()))
    if isinstance(m, Conv2Plus1d):
        return tnn.Sequential(*(_build(tnn, m._modules[n]) for n in CONV2PLUS1D_NAMES))
    if isinstance(m, Conv3d):
        return tnn.Conv3d(m.in_channels, m.out_channels, m.kernel_size, m.stride, _conv_padding(m),
                          m.dilation, m.groups, bias=m.bias is not None,
                          padding_mode=m.padding_mode)
    if isinstance(m, ConvTranspose3d):
        return tnn.ConvTranspose3d(m.in_channels, m.out_channels, m.kernel_size, m.stride,
                                   m.padding, m.output_padding, m.groups,
                                   bias=m.bias is not None, dilation=m.dilation)
    if isinstance(m, Upsample):
        return tnn.Upsample(m.size, m.scale_factor, m.mode, m.align_corners,
                            m.recompute_scale_factor)
    if isinstance(m, GroupNorm):
        return tnn.GroupNorm(m.num_groups, m.num_channels, m.eps, m.affine)
    if isinstance(m, InstanceNorm3d):
        return tnn.InstanceNorm3d(m.num_features, m.eps, m.momentum, m.affine,
                                  m.track_running_stats)
    if isinstance(m, LayerNorm):
        return tnn.LayerNorm(m.normalized_shape, m.eps, m.elementwise_affine,
                             bias=m.bias is not None or not m.elementwise_affine)
    if isinstance(m, MaxUnpool3d):
        return tnn.MaxUnpool3d(m.kernel_size, m.stride, m.padding)
    if isinstance(m, Linear):
        return tnn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
    if isinstance(m, BatchNorm3d):
        return tnn.BatchNorm3d(m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine,
                               track_running_stats=m.track_running_stats)
    if isinstance(m, MaxPool3d):
        return tnn.MaxPool3d(m.kernel_size, m.stride, m.padding, m.dilation,
                             return_indices=m.return_indices, ceil_mode=m.ceil_mode)
    if isinstance(m, AvgPool3d):
        return tnn.AvgPool3d(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode,
                             count_include_pad=m.count_include_pad,
                             divisor_override=m.divisor_override)
    if isinstance(m, ReLU):
        return tnn.ReLU()
    if isinstance(m, Identity):
        return tnn.Identity()
    if isinstance(m, AdaptiveAvgPool3d):
        return tnn.AdaptiveAvgPool3d(m.output_size)
    if isinstance(m, AdaptiveMaxPool3d):
        return tnn.AdaptiveMaxPool3d(m.output_size)
    if isinstance(m, Flatten):
        return tnn.Flatten(m.start_dim, m.end_dim)
    if isinstance(m, Dropout):
        return tnn.Dropout(m.p)
    if isinstance(m, GlobalAvgPool3d):
        return tnn.Sequential(tnn.AdaptiveAvgPool3d(1), tnn.Flatten())
    raise TypeError(f"torch_module: no torch.nn equivalent is known for {type(m).__name__}; build "
                    f"the torch model yourself and load to_torch_state_dict(model) into it")
