"""Learning-rate schedules, stepped once per epoch (call ``scheduler.step()`` after each epoch).

* ``StepLR``: lr = base_lr * gamma ** (epoch // step_size)
* ``CosineAnnealingLR``: lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2
  (SGDR's cosine without restarts, Loshchilov & Hutter 2017; PyTorch computes the same values
  recursively).

Both write the optimizer's ``lr`` and keep ``last_epoch`` so they can be checkpointed.
"""
from __future__ import annotations

import math

import numpy as np


class LRScheduler:
    def __init__(self, optimizer):
        if not hasattr(optimizer, "hyper") or "lr" not in optimizer.hyper:
            raise TypeError(f"{type(self).__name__} needs a conv3d.optim optimizer, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0
        self.optimizer.lr = self.lr_at(0)

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError

    def step(self) -> float:
        """Advance one epoch and set the optimizer's lr; returns the new lr."""
        self.last_epoch += 1
        self.optimizer.lr = self.lr_at(self.last_epoch)
        return self.optimizer.lr

    def get_last_lr(self) -> float:
        return self.optimizer.lr

    def state_dict(self) -> dict:
        return {"last_epoch": np.asarray(self.last_epoch), "base_lr": np.asarray(self.base_lr)}

    def load_state_dict(self, state: dict) -> None:
        self.last_epoch = int(np.asarray(state["last_epoch"]))
        self.base_lr = float(np.asarray(state["base_lr"]))
        self.optimizer.lr = self.lr_at(self.last_epoch)


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        if not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be an int >= 1, got {step_size!r}")
        self.step_size, self.gamma = step_size, float(gamma)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """Cosine decay from the base lr to ``eta_min`` over ``T_max`` epochs (then back up, as the
    cosine continues, exactly like PyTorch's closed form)."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0):  # noqa: N803 (PyTorch name)
        if not isinstance(T_max, int) or T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be an int >= 1, got {T_max!r}")
        self.T_max, self.eta_min = T_max, float(eta_min)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (
            1 + math.cos(math.pi * epoch / self.T_max)) / 2
