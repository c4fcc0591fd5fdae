"""Training: ``fit``, ``evaluate``, ``predict``, and .npz models and checkpoints.

``save(model, path)`` / ``load(model, path)`` store a state_dict; ``fit(..., checkpoint=path,
resume=True)`` writes and resumes full training checkpoints, atomically (see checkpoint.py).
"""
from .checkpoint import atomic_savez, load, load_checkpoint, save, save_checkpoint
from .loop import History, evaluate, fit, predict

__all__ = ["fit", "evaluate", "predict", "History", "save", "load", "save_checkpoint",
           "load_checkpoint", "atomic_savez"]
