"""Learning-rate schedules, stepped once per epoch (call ``scheduler.step()`` after each epoch).

* ``StepLR``: lr = base_lr * gamma ** (epoch // step_size)
* ``CosineAnnealingLR``: lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2
  (SGDR's cosine without restarts, Loshchilov & Hutter 2017; PyTorch computes the same values
  recursively).
* ``MultiStepLR``: lr = base_lr * gamma ** (number of milestones <= epoch)
* ``LinearLR``: lr = base_lr * (start + (end - start) * min(epoch, total_iters) / total_iters),
  a warm-up

All write every parameter group's ``lr`` (each from its own base lr) and keep ``last_epoch`` so
they can be checkpointed.
"""
from __future__ import annotations

import bisect
import math

import numpy as np


class LRScheduler:
    """Base class: ``lr_at(epoch, base_lr)`` gives one group's lr; the scheduler applies it to
    every parameter group with that group's own base lr (its lr when the scheduler was made),
    so a backbone at a tenth of the head's rate stays at a tenth."""

    def __init__(self, optimizer):
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(f"{type(self).__name__} needs a conv3d.optim optimizer, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def lr_at(self, epoch: int, base_lr: float) -> float:
        raise NotImplementedError

    def _apply(self) -> None:
        # groups added after the scheduler was made keep their lr, as in torch
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(self.last_epoch, base_lr)

    def step(self) -> float:
        """Advance one epoch and set every group's lr; returns the first group's."""
        self.last_epoch += 1
        self._apply()
        return self.optimizer.param_groups[0]["lr"]

    def get_last_lr(self) -> list[float]:
        """Every group's current lr, as torch's ``get_last_lr``."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"last_epoch": np.asarray(self.last_epoch), "base_lrs": np.asarray(self.base_lrs)}

    def load_state_dict(self, state: dict) -> None:
        self.last_epoch = int(np.asarray(state["last_epoch"]))
        if "base_lrs" in state:
            base_lrs = [float(v) for v in np.asarray(state["base_lrs"]).ravel()]
        else:  # saved before parameter groups existed: one base lr for every group
            base_lrs = [float(np.asarray(state["base_lr"]))] * len(self.base_lrs)
        if len(base_lrs) != len(self.base_lrs):
            raise ValueError(f"{type(self).__name__}.load_state_dict: saved for "
                             f"{len(base_lrs)} parameter group(s), this optimizer has "
                             f"{len(self.base_lrs)}")
        self.base_lrs = base_lrs
        self._apply()


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        if not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be an int >= 1, got {step_size!r}")
        self.step_size, self.gamma = step_size, float(gamma)
        super().__init__(optimizer)

    def lr_at(self, epoch: int, base_lr: float) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """Cosine decay from the base lr to ``eta_min`` over ``T_max`` epochs (then back up, as the
    cosine continues, exactly like PyTorch's closed form)."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0):  # noqa: N803 (PyTorch name)
        if not isinstance(T_max, int) or T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be an int >= 1, got {T_max!r}")
        self.T_max, self.eta_min = T_max, float(eta_min)
        super().__init__(optimizer)

    def lr_at(self, epoch: int, base_lr: float) -> float:
        return self.eta_min + (base_lr - self.eta_min) * (
            1 + math.cos(math.pi * epoch / self.T_max)) / 2


class MultiStepLR(LRScheduler):
    """Multiply the lr by ``gamma`` at each epoch in ``milestones``:
    lr = base_lr * gamma ** (number of milestones <= epoch), as torch's MultiStepLR (a
    milestone listed twice counts twice)."""

    def __init__(self, optimizer, milestones, gamma: float = 0.1):
        milestones = list(milestones)
        if not milestones or any(isinstance(m, bool) or not isinstance(m, int) or m < 1
                                 for m in milestones):
            raise ValueError(f"MultiStepLR: milestones must be ints >= 1, got {milestones!r}")
        self.milestones, self.gamma = sorted(milestones), float(gamma)
        super().__init__(optimizer)

    def lr_at(self, epoch: int, base_lr: float) -> float:
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)


class LinearLR(LRScheduler):
    """Scale the lr linearly from ``start_factor * base_lr`` to ``end_factor * base_lr`` over
    ``total_iters`` epochs, then hold it (a warm-up), as torch's LinearLR::

        lr = base_lr * (start + (end - start) * min(epoch, total_iters) / total_iters)
    """

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must lie in (0, 1] and end_factor in "
                             f"[0, 1], got {start_factor} and {end_factor}")
        if not isinstance(total_iters, int) or total_iters < 1:
            raise ValueError(f"LinearLR: total_iters must be an int >= 1, got {total_iters!r}")
        self.start, self.end, self.total_iters = float(start_factor), float(end_factor), total_iters
        super().__init__(optimizer)

    def lr_at(self, epoch: int, base_lr: float) -> float:
        done = min(epoch, self.total_iters) / self.total_iters
        return base_lr * (self.start + (self.end - self.start) * done)
