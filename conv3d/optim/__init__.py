"""Optimizers and learning-rate schedules: ``SGD``, ``Adam``, ``StepLR``, ``CosineAnnealingLR``."""
from .lr_scheduler import CosineAnnealingLR, LRScheduler, StepLR
from .optimizer import SGD, Adam, Optimizer

__all__ = ["Optimizer", "SGD", "Adam", "LRScheduler", "StepLR", "CosineAnnealingLR"]
