"""The autograd core: ``Tensor``, ``Function`` and reverse-mode ``backward``.

Read this file top to bottom. A ``Tensor`` wraps an array (NumPy, or CuPy on a GPU). Calling a
``Function`` on tensors runs its ``forward`` on their arrays and, when a gradient is wanted,
records the function as the output's *creator*. ``Tensor.backward`` then sorts the recorded graph
topologically and calls each creator's ``backward`` from the output back to the leaves, adding
(``+=``) the gradients that reach a tensor along different paths.

Gradients (``Tensor.grad``) are plain arrays with the tensor's shape, not tensors: this engine
computes first derivatives only, which is all that training needs.
"""
from __future__ import annotations

import contextlib
import numbers
import sys

import numpy as np

from .backend import get_array_module, move_array, normalize_device

_GRAD_ENABLED = True


@contextlib.contextmanager
def no_grad():
    """Context manager: inside it no graph is recorded (inference, optimizer updates).

    >>> import conv3d
    >>> w = conv3d.Tensor([1.0, 2.0], requires_grad=True)
    >>> with conv3d.no_grad():
    ...     y = w * 3
    >>> y.requires_grad, (w * 3).requires_grad
    (False, True)
    """
    global _GRAD_ENABLED
    previous, _GRAD_ENABLED = _GRAD_ENABLED, False
    try:
        yield
    finally:
        _GRAD_ENABLED = previous


def is_grad_enabled() -> bool:
    return _GRAD_ENABLED


def _default_float(data):
    """Python numbers and lists become float32 arrays (the default dtype); arrays keep theirs."""
    if isinstance(data, (bool, numbers.Integral)) and not isinstance(data, np.generic):
        return np.asarray(data, dtype=np.int64)
    if isinstance(data, (numbers.Real, list, tuple)) and not isinstance(data, np.generic):
        arr = np.asarray(data)
        return arr.astype(np.float32) if arr.dtype.kind == "f" else arr
    return data


class Tensor:
    """An n-dimensional array that remembers how it was computed.

    Args:
        data: a NumPy or CuPy array, a Python number or a nested list. Lists of floats become
            float32 (the default dtype, as in PyTorch); arrays keep their dtype, so float64 stays
            float64.
        requires_grad: whether ``backward`` should compute ``.grad`` for this tensor.
        device: ``'cpu'``, ``'cuda'`` or ``'cuda-emu'`` (see ``conv3d.core.backend``). Default:
            ``'cuda'`` for a CuPy array, else ``'cpu'``.

    The operators (``+``, ``*``, ``@``, ``x[i]``, ``.sum()``, ``.reshape()``, ...) are Functions
    of ``conv3d.core.arith``, attached by its ``setup_tensor()`` once they are defined (as
    DeZero's ``setup_variable``), so this module never imports that one.
    """

    __array_priority__ = 100  # make ndarray + Tensor call Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, device: str | None = None):
        if isinstance(data, Tensor):
            data = data.data
        data = _default_float(data)
        xp = get_array_module(data)
        if device is None:
            device = "cuda" if xp is not np else "cpu"
        device = normalize_device(device)
        if device == "cuda" and xp is np:
            data = move_array(data, "cuda")
        elif device != "cuda":
            data = np.asarray(data) if xp is np else data.get()
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got dtype "
                            f"{data.dtype}; convert first, e.g. Tensor(x.astype(np.float32), ...)")
        self.data = data
        self.device = device
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self.creator: Function | None = None  # the Function that produced this tensor
        self.retains_grad = False

    # ---- what it is ---------------------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    is_leaf = property(lambda self: self.creator is None)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        body = np.array2string(np.asarray(self.numpy()), precision=4, separator=", ",
                               prefix="Tensor(")
        extra = "" if self.device == "cpu" else f", device='{self.device}'"
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({body}, dtype={self.dtype}{extra}{grad})"

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (no copy on the CPU; a copy from a GPU)."""
        return self.data.get() if self.device == "cuda" else self.data

    def __array__(self, dtype=None, copy=None):
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype, copy=False)

    def __dlpack__(self, **kwargs):
        """Export the data through DLPack without a copy (``torch.from_dlpack(t)``,
        ``np.from_dlpack(t)``, ``cupy.from_dlpack(t)``); see ``conv3d.core.dlpack``."""
        return self.data.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        """DLPack's ``(device_type, device_id)``: ``(1, 0)`` for CPU data, ``(2, id)`` on a GPU."""
        return self.data.__dlpack_device__()

    def item(self) -> float:
        return self.numpy().item()

    def detach(self) -> Tensor:
        """The same data, cut off from the graph."""
        return Tensor(self.data, device=self.device)

    def retain_grad(self) -> Tensor:
        """Keep ``.grad`` on this non-leaf tensor after ``backward`` (for inspection)."""
        self.retains_grad = True
        return self

    # ---- devices ------------------------------------------------------------------------------
    def to(self, device: str) -> Tensor:
        """This tensor on ``device``; ``self`` when it is already there. The copy is a leaf that
        keeps ``requires_grad`` (like ``nn.Module.to`` moving parameters)."""
        device = normalize_device(device)
        if device == self.device:
            return self
        return Tensor(move_array(self.data, device), requires_grad=self.requires_grad,
                      device=device)

    def cuda(self) -> Tensor:
        return self.to("cuda")

    def cpu(self) -> Tensor:
        return self.to("cpu")

    # ---- backward -----------------------------------------------------------------------------
    def backward(self, grad=None) -> None:
        """Compute d(self)/d(leaf) for every leaf that requires a gradient, adding into ``.grad``.

        ``grad`` is the gradient flowing into ``self``; it defaults to 1 for a one-element tensor.
        A leaf's first ``.grad`` is the array the graph computed for it when nothing else refers
        to that array (no copy, as in PyTorch), otherwise a copy; later calls add into it.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() called on a tensor that does not require grad: none "
                               "of its inputs had requires_grad=True (or it was made under no_grad)")
        xp = get_array_module(self.data)
        if grad is None:
            if self.size != 1:
                raise ValueError(f"backward() without a grad argument needs a one-element tensor, "
                                 f"got shape {self.shape}; reduce it first (e.g. loss.sum()) or "
                                 f"pass grad= an array of shape {self.shape}")
            grad = xp.ones_like(self.data)
        grad = xp.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.dtype)
        if grad.shape != self.shape:
            raise ValueError(f"grad has shape {grad.shape} but the tensor has shape {self.shape}")

        grads = {id(self): grad}  # gradient reaching each tensor so far
        for t in reversed(_topological_order(self)):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if t.is_leaf or t.retains_grad:
                if t.grad is None:
                    t.grad = g if t.is_leaf and _unshared(g) else g.copy()
                else:
                    t.grad += g  # accumulate across backward calls, as PyTorch does
            if t.is_leaf:
                continue
            fn = t.creator
            input_grads = fn.backward(g)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for x, gx in zip(fn.inputs, input_grads):
                if gx is None or not x.requires_grad:
                    continue
                if gx.shape != x.shape:
                    raise RuntimeError(f"{type(fn).__name__}.backward returned a gradient of shape "
                                       f"{gx.shape} for an input of shape {x.shape}")
                if id(x) in grads:
                    grads[id(x)] = grads[id(x)] + gx  # x feeds several ops: gradients add up
                else:
                    grads[id(x)] = gx
            input_grads = gx = None  # now only ``grads`` refers to them (see _unshared)


def _unshared(a) -> bool:
    """Whether array ``a`` owns its memory and nothing but the caller's one variable refers to it.

    Such a gradient can become a leaf's ``.grad`` as it is, instead of being copied (PyTorch's
    ``AccumulateGrad`` "steals" it in the same case). The copy is not free: a fresh array costs
    a page fault per 4 KiB page when it is first written. Anything else that could see
    the array (another tensor's pending gradient, the caller's ``grad=`` argument, a buffer a
    Function keeps) holds a reference, and a view (``a.base``) may share memory, so both copy.
    """
    # the references counted: the caller's variable, ``a`` here and getrefcount's argument
    return getattr(a, "base", None) is None and sys.getrefcount(a) <= 3


def _topological_order(root: Tensor) -> list[Tensor]:
    """Tensors of the graph ending at ``root``, each after all the tensors it was computed from."""
    order, seen = [], set()
    stack = [(root, False)]
    while stack:  # iterative depth-first search: deep networks do not hit the recursion limit
        t, children_done = stack.pop()
        if children_done:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        if t.creator is not None:
            for x in t.creator.inputs:
                if x.requires_grad and id(x) not in seen:
                    stack.append((x, False))
    return order


def as_tensor(value, like: Tensor | None = None) -> Tensor:
    """``value`` as a Tensor. Python numbers take ``like``'s dtype and device (no upcasting)."""
    if isinstance(value, Tensor):
        return value
    if like is not None and isinstance(value, numbers.Number) and not isinstance(value, bool):
        xp = get_array_module(like.data)
        return Tensor(xp.asarray(value, dtype=like.dtype), device=like.device)
    return Tensor(value, device=like.device if like is not None else None)


class Function:
    """One differentiable operation: ``forward`` on arrays, ``backward`` on gradients.

    Subclasses take their non-tensor settings (stride, axis, ...) in ``__init__`` and implement

    * ``forward(*xs)``: the input arrays -> the output array; save what backward needs on
      ``self``, but only when ``self.recording`` (a graph is recorded: gradients are enabled and
      an input requires one), so that inference pays for nothing the backward needs;
    * ``backward(gy)``: the output's gradient -> one gradient (or ``None``) per input.

    Calling the function checks that the inputs share a device and a floating dtype, runs
    ``forward`` and, when a gradient is wanted, records ``self`` as the output's creator.
    """

    inputs: tuple[Tensor, ...] = ()
    recording = True  # set by __call__ before forward runs

    def __call__(self, *inputs) -> Tensor:
        first = next((x for x in inputs if isinstance(x, Tensor)), None)
        tensors = tuple(as_tensor(x, like=first) for x in inputs)
        check_same_device(type(self).__name__, tensors)
        self.device = tensors[0].device
        self.recording = _GRAD_ENABLED and any(t.requires_grad for t in tensors)
        y = self.forward(*(t.data for t in tensors))
        out = Tensor(y, device=self.device)
        if self.recording:
            out.requires_grad = True
            out.creator = self
            self.inputs = tensors
        return out

    def forward(self, *xs):
        raise NotImplementedError(f"{type(self).__name__} must implement forward")

    def backward(self, gy):
        raise NotImplementedError(f"{type(self).__name__} must implement backward")


def check_same_device(op: str, tensors) -> None:
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        raise ValueError(f"{op}: inputs are on different devices {sorted(devices)}; move them to "
                         f"one device first, e.g. x.to('{tensors[0].device}')")


def check_float_dtypes(op: str, **arrays) -> None:
    """Raise TypeError unless every named array has the same floating dtype (no silent upcasts)."""
    named = {k: v for k, v in arrays.items() if v is not None}
    for name, a in named.items():
        if a.dtype.kind != "f":
            raise TypeError(f"{op}: {name} has dtype {a.dtype}, expected float32 or float64; "
                            f"convert it, e.g. {name}.astype(np.float32)")
    dtypes = {a.dtype for a in named.values()}
    if len(dtypes) > 1:
        listing = ", ".join(f"{k}={v.dtype}" for k, v in named.items())
        raise TypeError(f"{op}: mixed dtypes ({listing}); conv3d never upcasts silently, so "
                        f"convert them to one dtype first, e.g. t.astype(np.float32)")
