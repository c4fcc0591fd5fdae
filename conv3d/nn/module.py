"""``Module`` and ``Parameter``: the bookkeeping every layer shares, in the style of PyTorch.

A ``Module`` owns three kinds of state, registered simply by assigning attributes:

* **parameters** (``self.weight = Parameter(...)``): tensors the optimizer trains;
* **buffers** (``self.register_buffer('running_mean', array)``): arrays that are state but not
  trained, such as BatchNorm's running statistics;
* **submodules** (``self.conv1 = Conv3d(...)``): their parameters and buffers become ours, named
  with a dotted prefix (``conv1.weight``).

``state_dict()`` collects parameters and buffers as NumPy arrays under those dotted names;
``load_state_dict()`` puts them back, checking every name and shape first.
"""
from __future__ import annotations

import warnings
from collections import OrderedDict

import numpy as np

from ..core.backend import move_array, normalize_device
from ..core.tensor import Tensor


class Parameter(Tensor):
    """A tensor that a module trains: ``requires_grad`` is on (``Module.requires_grad_(False)``
    freezes it)."""

    def __init__(self, data, device: str | None = None):
        if isinstance(data, Tensor):
            device = device or data.device
            data = data.data
        super().__init__(data, requires_grad=True, device=device)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and model. Subclasses define ``forward``.

    Calling a module runs ``forward`` and then any hooks registered with
    ``register_forward_hook`` (``conv3d.summary`` uses them to see each layer's output).
    """

    def __init__(self):
        # object.__setattr__: our own __setattr__ needs these dictionaries to exist already
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration -------------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() in __init__ before "
                               f"assigning attributes such as {name!r}")
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        if isinstance(value, (Parameter, Module)):
            self.__dict__.pop(name, None)  # a plain attribute of that name would shadow it
            (self._parameters if isinstance(value, Parameter) else self._modules)[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):  # only called when normal lookup fails
        for table in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(table, {})
            if name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __delattr__(self, name):
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name: str, array) -> None:
        """Keep ``array`` (NumPy/CuPy, or None) as state that is saved but not trained."""
        if array is not None and not hasattr(array, "shape"):
            raise TypeError(f"register_buffer({name!r}, ...): expected an array, got "
                            f"{type(array).__name__}; pass e.g. np.zeros(C, dtype=np.float32)")
        self.__dict__.pop(name, None)
        self._buffers[name] = array

    def add_module(self, name: str, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}, ...): expected a Module, got "
                            f"{type(module).__name__}")
        setattr(self, name, module)

    def register_forward_hook(self, hook):
        """Call ``hook(module, inputs, output)`` after every forward; returns a handle with
        ``remove()``."""
        key = object()
        self._forward_hooks[key] = hook
        return _HookHandle(self._forward_hooks, key)

    # ---- calling ------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement forward(...)")

    def __call__(self, *args, **kwargs):
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            hook(self, args, out)
        return out

    # ---- walking the tree ---------------------------------------------------------------------
    def children(self):
        return iter(self._modules.values())

    def named_children(self):
        return iter(self._modules.items())

    def named_modules(self, prefix: str = ""):
        """This module and every submodule, depth first, as (dotted name, module)."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix: str = ""):
        for module_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self):
        """Every trainable parameter, each once (pass them to an optimizer)."""
        seen = set()
        for _, p in self.named_parameters():
            if id(p) not in seen:
                seen.add(id(p))
                yield p

    def named_buffers(self, prefix: str = ""):
        for module_name, module in self.named_modules(prefix):
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{module_name}.{name}" if module_name else name), b

    def buffers(self):
        return (b for _, b in self.named_buffers())

    # ---- modes and gradients ------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Training mode (Dropout drops, BatchNorm uses batch statistics); returns ``self``."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Inference mode: the same as ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Switch gradients on or off for every parameter, in place; returns ``self``.

        ``model.backbone.requires_grad_(False)`` freezes a pretrained backbone for fine-tuning:
        backward then computes no gradient for it and optimizers skip it (its ``.grad`` stays
        None), while the gradient still flows through it to earlier layers that want one.
        """
        for p in self.parameters():
            p.requires_grad = bool(requires_grad)
        return self

    def zero_grad(self) -> None:
        """Forget the gradients of every parameter (``backward`` adds into ``.grad``)."""
        for p in self.parameters():
            p.grad = None

    def num_parameters(self, trainable_only: bool = False) -> int:
        count = sum(int(p.size) for p in self.parameters()
                    if p.requires_grad or not trainable_only)  # frozen ones are not trainable
        if not trainable_only:
            count += sum(int(b.size) for b in self.buffers() if b.dtype.kind == "f")
        return count

    # ---- devices ------------------------------------------------------------------------------
    def to(self, device: str) -> Module:
        """Move every parameter and buffer to ``device`` ('cpu', 'cuda' or 'cuda-emu'), in place.

        Parameters keep their identity (an optimizer built earlier still holds them); their
        ``.grad`` moves with them.
        """
        device = normalize_device(device)
        for p in self.parameters():
            if p.device != device:
                p.data = move_array(p.data, device)
                if p.grad is not None:
                    p.grad = move_array(p.grad, device)
                p.device = device
        for m in self.modules():
            for name, b in m._buffers.items():
                if b is not None:
                    m._buffers[name] = move_array(b, device)
        return self

    def astype(self, dtype) -> Module:
        """Convert every floating parameter and buffer to ``dtype`` in place (e.g. float64 for
        gradient checks); returns ``self``."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"astype: modules hold floating-point weights, got dtype {dtype}")
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        for m in self.modules():
            for name, b in m._buffers.items():
                if b is not None and b.dtype.kind == "f":
                    m._buffers[name] = b.astype(dtype)
        return self

    @property
    def device(self) -> str:
        """The device of the first parameter ('cpu' for a module without parameters)."""
        return next((p.device for p in self.parameters()), "cpu")

    # ---- saving and loading -------------------------------------------------------------------
    def state_dict(self) -> OrderedDict:
        """Parameters and buffers as NumPy arrays (copies), keyed by dotted names."""
        state = OrderedDict()
        for name, p in self.named_parameters():
            state[name] = move_array(p.data, "cpu")
        for name, b in self.named_buffers():
            state[name] = move_array(b, "cpu")
        return state

    def load_state_dict(self, state_dict, strict: bool = True, dtype=None):
        """Copy arrays from ``state_dict`` into this module's parameters and buffers.

        With ``strict`` (the default) every key must match: a missing key, an unexpected key or
        a shape that differs raises one ``KeyError``/``ValueError`` listing all the problems.
        (A buffer a layer lists in ``_optional_buffers``, such as BatchNorm3d's
        ``num_batches_tracked``, may be missing: older checkpoints lack it.)

        Floating-point values whose dtype differs from the model's (a float32 checkpoint in a
        float64 model) are converted, with a ``UserWarning`` naming the first such key, since a
        silent cast would hide that the model and the checkpoint disagree. Pass ``dtype`` to
        cast on purpose and silently: every floating parameter and buffer of the module then
        becomes ``dtype`` (as ``astype(dtype)``) and holds the checkpoint's values in it.
        Returns ``(missing_keys, unexpected_keys)``.
        """
        if dtype is not None:
            dtype = np.dtype(dtype)
            if dtype.kind != "f":
                raise TypeError(f"load_state_dict: dtype must be a floating dtype such as "
                                f"np.float32 or np.float64, got {dtype}")
        own = OrderedDict(self.named_parameters())
        own_buffers = OrderedDict(self.named_buffers())
        targets = {**own, **own_buffers}
        optional = {f"{name}.{b}" if name else b for name, m in self.named_modules()
                    for b in getattr(m, "_optional_buffers", ())}
        missing = [k for k in targets if k not in state_dict and k not in optional]
        unexpected = [k for k in state_dict if k not in targets]
        misshaped, recast = [], []
        for k, target in targets.items():
            if k in state_dict:
                value = _to_numpy(state_dict[k])
                if tuple(value.shape) != tuple(target.shape):
                    misshaped.append(f"{k}: checkpoint {tuple(value.shape)} vs model "
                                     f"{tuple(target.shape)}")
                elif value.dtype.kind == "f" and target.dtype.kind == "f" \
                        and value.dtype != target.dtype:
                    recast.append((k, value.dtype, target.dtype))
        if misshaped:
            raise ValueError(f"load_state_dict: shapes differ for {len(misshaped)} key(s): "
                             + "; ".join(misshaped) + ". The checkpoint was made for a different "
                             "architecture (check channels, kernel sizes and layer order).")
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise KeyError(f"load_state_dict(strict=True): {' and '.join(parts)}. Build the same "
                           f"architecture as the saved one, or pass strict=False to load the keys "
                           f"that match.")
        if recast and dtype is None:
            key, theirs, ours = recast[0]
            warnings.warn(
                f"load_state_dict: {len(recast)} checkpoint value(s) are converted from {theirs} "
                f"to the model's {ours}, the first being {key!r}. To keep the checkpoint's "
                f"precision convert the model first (model.astype(np.{theirs})); to convert on "
                f"purpose pass dtype=np.{ours}.", UserWarning, stacklevel=2)
        if dtype is not None:  # only now: a refused checkpoint leaves the model as it was
            self.astype(dtype)
        for k, p in own.items():
            if k in state_dict:
                value = _to_numpy(state_dict[k])
                p.data = move_array(value.astype(p.dtype, copy=False), p.device)
        for module_name, module in self.named_modules():
            for name, b in module._buffers.items():
                key = f"{module_name}.{name}" if module_name else name
                if b is not None and key in state_dict:
                    value = _to_numpy(state_dict[key])
                    module._buffers[name] = move_array(value.astype(b.dtype, copy=False),
                                                       _array_device(b))
        return missing, unexpected

    # ---- printing -----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The settings shown between the parentheses of ``repr`` (override in layers)."""
        return ""

    def __repr__(self):
        lines = [f"({name}): " + _indent(repr(child)) for name, child in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


def _to_numpy(value) -> np.ndarray:
    """A state_dict entry (NumPy or CuPy array, Tensor, list) as a NumPy array."""
    if isinstance(value, Tensor):
        return value.numpy()
    return move_array(value, "cpu") if hasattr(value, "shape") else np.asarray(value)


def _indent(text: str) -> str:
    return text.replace("\n", "\n  ")


def _array_device(array) -> str:
    return "cuda" if type(array).__module__.startswith("cupy") else "cpu"


class _HookHandle:
    def __init__(self, table, key):
        self.table, self.key = table, key

    def remove(self) -> None:
        self.table.pop(self.key, None)
