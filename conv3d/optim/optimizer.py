"""Optimizers: ``SGD`` (momentum, Nesterov, weight decay) and ``Adam``, with PyTorch's exact math.

An optimizer holds the parameters (``Tensor``s whose ``.grad`` ``backward`` fills) and, for each
one, the running state its rule needs (a momentum buffer, Adam's two moments). ``step()`` updates
``p.data`` in place from ``p.grad``; ``zero_grad()`` clears the gradients before the next
``backward`` (which *adds* into ``.grad``). Parameters without a gradient are skipped, as in
PyTorch. Updates run on whatever array module holds the data (NumPy or CuPy) and keep its dtype.

``state_dict()`` / ``load_state_dict()`` give a flat ``{name: NumPy array}`` dictionary (the
hyper-parameters, the step counts and every state buffer) so a checkpoint can resume exactly.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.backend import get_array_module, move_array


class Optimizer:
    """Base class: parameter list, hyper-parameters, per-parameter state, checkpointing."""

    def __init__(self, params, defaults: dict):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list; pass "
                             f"model.parameters() of a model that has parameters")
        for i, p in enumerate(self.params):
            if not getattr(p, "requires_grad", False):
                raise TypeError(f"{type(self).__name__}: parameter {i} is not a tensor with "
                                f"requires_grad=True (got {type(p).__name__}); pass "
                                f"model.parameters()")
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError(f"{type(self).__name__}: a parameter appears more than once")
        self.defaults = dict(defaults)
        self.hyper = dict(defaults)  # current values (a scheduler changes hyper['lr'])
        self.state: list[dict] = [{} for _ in self.params]

    @property
    def lr(self) -> float:
        return self.hyper["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        self.hyper["lr"] = float(value)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        for p, state in zip(self.params, self.state):
            if p.grad is None:
                continue
            if p.grad.shape != p.data.shape:
                raise ValueError(f"{type(self).__name__}.step: a gradient has shape "
                                 f"{p.grad.shape} but its parameter has shape {p.data.shape}")
            self.update(p, p.grad, state, get_array_module(p.data))

    def update(self, p, grad, state: dict, xp) -> None:
        raise NotImplementedError

    # ---- checkpointing ------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{'hyper.lr': ..., 'state.0.momentum_buffer': ..., ...}``, all NumPy arrays."""
        out = {f"hyper.{k}": np.asarray(v, dtype=np.float64) for k, v in self.hyper.items()}
        for i, state in enumerate(self.state):
            for k, v in state.items():
                out[f"state.{i}.{k}"] = move_array(v, "cpu") if hasattr(v, "shape") \
                    else np.asarray(v)
        return out

    def load_state_dict(self, state_dict: dict) -> None:
        for key, value in state_dict.items():
            kind, _, rest = key.partition(".")
            if kind == "hyper":
                if rest not in self.hyper:
                    raise KeyError(f"{type(self).__name__}.load_state_dict: unknown "
                                   f"hyper-parameter {rest!r}; the state comes from another "
                                   f"optimizer type")
                self.hyper[rest] = type(self.defaults[rest])(np.asarray(value).item())
            elif kind == "state":
                index, _, name = rest.partition(".")
                i = int(index)
                if i >= len(self.params):
                    raise KeyError(f"{type(self).__name__}.load_state_dict: state for parameter "
                                   f"{i} but the optimizer has {len(self.params)} parameters")
                value = np.asarray(value)
                if value.ndim == 0:
                    self.state[i][name] = value.item()
                else:
                    p = self.params[i]
                    if value.shape != p.data.shape:
                        raise ValueError(f"{type(self).__name__}.load_state_dict: {key} has shape "
                                         f"{value.shape} but parameter {i} has {p.data.shape}")
                    self.state[i][name] = move_array(value.astype(p.dtype), p.device)
            else:
                raise KeyError(f"{type(self).__name__}.load_state_dict: unexpected key {key!r}")

    def __repr__(self):
        settings = ", ".join(f"{k}={v}" for k, v in self.hyper.items())
        return f"{type(self).__name__}({len(self.params)} parameters, {settings})"


class SGD(Optimizer):
    """Stochastic gradient descent, torch.optim.SGD's update::

        g = grad + weight_decay * p
        if momentum:
            b = g                                     (first step)
            b = momentum * b + (1 - dampening) * g    (later steps)
            g = g + momentum * b   if nesterov   else   b
        p = p - lr * g
    """

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        _check_nonnegative(lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov=True needs momentum > 0 and dampening = 0 (as in "
                             f"PyTorch), got momentum={momentum}, dampening={dampening}")
        super().__init__(params, dict(lr=float(lr), momentum=float(momentum),
                                      dampening=float(dampening),
                                      weight_decay=float(weight_decay), nesterov=bool(nesterov)))

    def update(self, p, grad, state, xp):
        h = self.hyper
        g = grad + h["weight_decay"] * p.data if h["weight_decay"] else grad
        if h["momentum"]:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = g.copy()
            else:
                buf = state["momentum_buffer"]
                buf *= h["momentum"]
                buf += (1 - h["dampening"]) * g
            buf = state["momentum_buffer"]
            g = g + h["momentum"] * buf if h["nesterov"] else buf
        p.data -= (h["lr"] * g).astype(p.dtype, copy=False)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) as torch.optim.Adam, weight_decay being L2 added to the gradient::

        g = grad + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        beta1, beta2 = betas
        _check_nonnegative(lr=lr, eps=eps, weight_decay=weight_decay)
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"Adam: betas must lie in [0, 1), got {betas}")
        super().__init__(params, dict(lr=float(lr), beta1=float(beta1), beta2=float(beta2),
                                      eps=float(eps), weight_decay=float(weight_decay)))

    def update(self, p, grad, state, xp):
        h = self.hyper
        g = grad + h["weight_decay"] * p.data if h["weight_decay"] else grad
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(p.data)
            state["exp_avg_sq"] = xp.zeros_like(p.data)
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        m *= h["beta1"]
        m += (1 - h["beta1"]) * g
        v *= h["beta2"]
        v += (1 - h["beta2"]) * g * g
        step_size = h["lr"] / (1 - h["beta1"] ** t)
        denom = xp.sqrt(v) / math.sqrt(1 - h["beta2"] ** t) + h["eps"]
        p.data -= (step_size * m / denom).astype(p.dtype, copy=False)


def _check_nonnegative(**values) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
