"""Optimizers: ``SGD`` (momentum, Nesterov, weight decay), ``Adam`` (with AMSGrad) and ``AdamW``,
with PyTorch's exact math.

An optimizer holds the parameters (``Tensor``s whose ``.grad`` ``backward`` fills) in
``param_groups``, as torch does: a list of dicts, each with its ``'params'`` and its own options
(``lr``, ``weight_decay``, ...; an option a group does not give takes the constructor's value).
Pass ``model.parameters()`` for one group, or a list of dicts for several, e.g. a smaller
learning rate for a pretrained backbone than for a new head::

    SGD([{'params': backbone.parameters(), 'lr': 1e-4}, {'params': head.parameters()}], lr=1e-2)

``optimizer.param_groups[i]['lr']`` may be read and written at any time (schedulers do).

For each parameter the optimizer keeps the running state its rule needs (a momentum buffer,
Adam's moments). ``step()`` updates ``p.data`` in place from ``p.grad``; ``zero_grad()`` clears
the gradients before the next ``backward`` (which *adds* into ``.grad``). Parameters without a
gradient are skipped, as in PyTorch. Updates run on whatever array module holds the data (NumPy
or CuPy) and keep its dtype.

``state_dict()`` / ``load_state_dict()`` give a flat ``{name: NumPy array}`` dictionary (every
group's options, the step counts and every state buffer) so a checkpoint can resume exactly.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.backend import get_array_module, move_array
from ..core.tensor import Tensor


class Optimizer:
    """Base class: parameter groups, per-parameter state, checkpointing.

    Subclasses give ``defaults`` (every option and its default), ``check_group(group)`` (raise
    ValueError on a bad option) and ``update(p, grad, state, group, xp)`` (one parameter's step).
    """

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.params: list = []  # every group's parameters, in order (state.{i} indexes this)
        self.state: list[dict] = []
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list; pass "
                             f"model.parameters() of a model that has parameters")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        """Add ``{'params': [...], option: value, ...}``; missing options take the defaults
        (as ``torch.optim.Optimizer.add_param_group``)."""
        name = type(self).__name__
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{name}: a parameter group is a dict with a 'params' entry, got "
                            f"{type(group).__name__}; pass e.g. {{'params': head.parameters(), "
                            f"'lr': 0.01}}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        if not params:
            raise ValueError(f"{name}: parameter group {len(self.param_groups)} is empty")
        for j, p in enumerate(params):
            # as torch: a frozen parameter (requires_grad False) is accepted and skipped, since
            # it never gets a gradient; unfreezing it later makes it train
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: parameter {len(self.params) + j} is not a conv3d Tensor "
                                f"(got {type(p).__name__}); pass model.parameters()")
        seen = {id(p) for p in self.params}
        if len({id(p) for p in params}) != len(params) or seen & {id(p) for p in params}:
            raise ValueError(f"{name}: a parameter appears more than once (within a group or "
                             f"in two groups); give each parameter to one group only")
        new = {**self.defaults, **group, "params": params}
        for k, v in new.items():  # numbers as Python floats, as the constructor stores them
            if k != "params" and isinstance(v, (int, float)) and not isinstance(v, bool) \
                    and isinstance(self.defaults.get(k), float):
                new[k] = float(v)
        self.check_group(new)
        self.param_groups.append(new)
        self.params.extend(params)
        self.state.extend({} for _ in params)

    def check_group(self, group: dict) -> None:
        _check_nonnegative(group, "lr", "weight_decay")

    @property
    def lr(self) -> float:
        """The first group's learning rate; setting it sets every group's (use
        ``param_groups[i]['lr']`` for one group)."""
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        for group in self.param_groups:
            group["lr"] = float(value)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        i = 0
        for group in self.param_groups:
            for p in group["params"]:
                state, i = self.state[i], i + 1
                if p.grad is None:
                    continue
                if p.grad.shape != p.data.shape:
                    raise ValueError(f"{type(self).__name__}.step: a gradient has shape "
                                     f"{p.grad.shape} but its parameter has shape {p.data.shape}")
                self.update(p, p.grad, state, group, get_array_module(p.data))

    def update(self, p, grad, state: dict, group: dict, xp) -> None:
        raise NotImplementedError

    # ---- checkpointing ------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{'group.0.lr': ..., 'group.0.params': count, 'state.0.momentum_buffer': ...}``,
        all NumPy arrays (``state.{i}`` numbers the parameters of all groups in order)."""
        out = {}
        for g, group in enumerate(self.param_groups):
            out[f"group.{g}.params"] = np.asarray(len(group["params"]), dtype=np.int64)
            for k in self.defaults:
                out[f"group.{g}.{k}"] = np.asarray(group[k], dtype=np.float64)
        for i, state in enumerate(self.state):
            for k, v in state.items():
                out[f"state.{i}.{k}"] = move_array(v, "cpu") if hasattr(v, "shape") \
                    else np.asarray(v)
        return out

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore ``state_dict()``'s output. The optimizer must have the same groups (same
        sizes); a checkpoint written before parameter groups existed (``hyper.{option}`` keys)
        sets every group's options."""
        name = type(self).__name__
        saved = sorted({int(k.split(".")[1]) for k in state_dict if k.startswith("group.")})
        if saved and saved[-1] >= len(self.param_groups):
            raise KeyError(f"{name}.load_state_dict: options for parameter group {saved[-1]} but "
                           f"the optimizer has {len(self.param_groups)} group(s); build it with "
                           f"the same groups as the saved one")
        for key, value in state_dict.items():
            kind, _, rest = key.partition(".")
            if kind == "hyper":  # the single-group format of earlier conv3d versions
                for group in self.param_groups:
                    self._set_option(group, rest, value)
            elif kind == "group":
                index, _, option = rest.partition(".")
                g = int(index)
                if option == "params":
                    have = len(self.param_groups[g]["params"])
                    if int(np.asarray(value)) != have:
                        raise ValueError(f"{name}.load_state_dict: group {g} had "
                                         f"{int(np.asarray(value))} parameters when saved, this "
                                         f"optimizer's has {have}")
                else:
                    self._set_option(self.param_groups[g], option, value)
            elif kind == "state":
                index, _, entry = rest.partition(".")
                i = int(index)
                if i >= len(self.params):
                    raise KeyError(f"{name}.load_state_dict: state for parameter {i} but the "
                                   f"optimizer has {len(self.params)} parameters")
                value = np.asarray(value)
                if value.ndim == 0:
                    self.state[i][entry] = value.item()
                else:
                    p = self.params[i]
                    if value.shape != p.data.shape:
                        raise ValueError(f"{name}.load_state_dict: {key} has shape "
                                         f"{value.shape} but parameter {i} has {p.data.shape}")
                    self.state[i][entry] = move_array(value.astype(p.dtype), p.device)
            else:
                raise KeyError(f"{name}.load_state_dict: unexpected key {key!r}")

    def _set_option(self, group: dict, option: str, value) -> None:
        legacy = {"beta1": 0, "beta2": 1}  # earlier Adam checkpoints kept the betas apart
        if option in legacy and "betas" in self.defaults:
            betas = list(group["betas"])
            betas[legacy[option]] = float(np.asarray(value))
            group["betas"] = tuple(betas)
            return
        if option not in self.defaults:
            raise KeyError(f"{type(self).__name__}.load_state_dict: unknown hyper-parameter "
                           f"{option!r}; the state comes from another optimizer type")
        default = self.defaults[option]
        value = np.asarray(value)
        group[option] = tuple(float(v) for v in value) if isinstance(default, tuple) \
            else type(default)(value.item())

    def __repr__(self):
        parts = []
        for group in self.param_groups:
            settings = ", ".join(f"{k}={v}" for k, v in group.items() if k != "params")
            parts.append(f"{len(group['params'])} parameters, {settings}")
        return f"{type(self).__name__}(" + "; ".join(parts) + ")"


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
        super().__init__(params, dict(lr=_number(lr, "lr"), momentum=_number(momentum, "momentum"),
                                      dampening=_number(dampening, "dampening"),
                                      weight_decay=_number(weight_decay, "weight_decay"),
                                      nesterov=bool(nesterov)))

    def check_group(self, group):
        _check_nonnegative(group, "lr", "momentum", "weight_decay")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: nesterov=True needs momentum > 0 and dampening = 0 (as in "
                             f"PyTorch), got momentum={group['momentum']}, "
                             f"dampening={group['dampening']}")

    def update(self, p, grad, state, group, xp):
        wd, momentum = group["weight_decay"], group["momentum"]
        g = grad + wd * p.data if wd else grad
        if momentum:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = g.copy()
            else:
                buf = state["momentum_buffer"]
                buf *= momentum
                buf += (1 - group["dampening"]) * g
            buf = state["momentum_buffer"]
            g = g + momentum * buf if group["nesterov"] else buf
        p.data -= (group["lr"] * g).astype(p.dtype, copy=False)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) as torch.optim.Adam, weight_decay being L2 added to the gradient::

        g = grad + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        v_max = max(v_max, v)      (amsgrad, Reddi et al. 2018; v_max replaces v below)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    decoupled_weight_decay = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        super().__init__(params, dict(lr=_number(lr, "lr"), betas=_betas(betas),
                                      eps=_number(eps, "eps"),
                                      weight_decay=_number(weight_decay, "weight_decay"),
                                      amsgrad=bool(amsgrad)))

    def check_group(self, group):
        _check_nonnegative(group, "lr", "eps", "weight_decay")
        group["betas"] = _betas(group["betas"])

    def update(self, p, grad, state, group, xp):
        lr, wd, (beta1, beta2) = group["lr"], group["weight_decay"], group["betas"]
        if self.decoupled_weight_decay:
            p.data *= 1 - lr * wd  # AdamW: shrink the weights, not the gradient
            g = grad
        else:
            g = grad + wd * p.data if wd else grad
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(p.data)
            state["exp_avg_sq"] = xp.zeros_like(p.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(p.data)
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        if group["amsgrad"]:
            if "max_exp_avg_sq" not in state:  # amsgrad switched on after some steps
                state["max_exp_avg_sq"] = xp.zeros_like(p.data)
            v = xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        step_size = lr / (1 - beta1 ** t)
        denom = xp.sqrt(v) / math.sqrt(1 - beta2 ** t) + group["eps"]
        p.data -= (step_size * m / denom).astype(p.dtype, copy=False)


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter 2019) as torch.optim.AdamW: Adam whose weight decay is
    decoupled from the gradient, ``p = p * (1 - lr * weight_decay)`` before the Adam step;
    weight_decay defaults to 0.01, as torch."""

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, amsgrad: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


def _number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def _check_nonnegative(group: dict, *names) -> None:
    for name in names:
        value = group[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")


def _betas(betas) -> tuple[float, float]:
    try:
        beta1, beta2 = (float(b) for b in betas)
    except (TypeError, ValueError):
        raise ValueError(f"Adam: betas must be two numbers in [0, 1), got {betas!r}") from None
    if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
        raise ValueError(f"Adam: betas must lie in [0, 1), got {betas}")
    return beta1, beta2
