"""Optimizers and learning-rate schedules: ``SGD``, ``Adam``, ``AdamW``, ``StepLR``,
``CosineAnnealingLR``."""
from .lr_scheduler import CosineAnnealingLR, LRScheduler, StepLR
from .optimizer import SGD, Adam, AdamW, Optimizer

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "LRScheduler", "StepLR", "CosineAnnealingLR"]
