"""Optimizers and learning-rate schedules: ``SGD``, ``Adam``, ``AdamW``, ``StepLR``,
``MultiStepLR``, ``LinearLR``, ``CosineAnnealingLR``."""
from .lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, MultiStepLR, StepLR
from .optimizer import SGD, Adam, AdamW, Optimizer

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "LRScheduler", "StepLR", "MultiStepLR",
           "LinearLR", "CosineAnnealingLR"]
