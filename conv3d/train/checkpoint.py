"""Saving models and training checkpoints as ``.npz`` files, atomically.

An ``.npz`` file is a zip of NumPy arrays: portable, inspectable with ``np.load``, no pickle.

**Atomic writes.** A checkpoint is written to a temporary file in the *same directory*, flushed
and ``fsync``-ed to disk, and only then renamed over the old one with ``os.replace`` (an atomic
rename on POSIX and Windows). A process killed at any moment (even ``kill -9`` halfway through
the write) leaves either the old complete checkpoint or the new complete one, plus at worst a
stray ``.<name>.tmp-<pid>`` file, which ``save`` ignores and later writes clean up.

Checkpoint layout (keys of the .npz): ``model/<param or buffer name>``,
``optimizer/<key>`` (see ``Optimizer.state_dict``), ``scheduler/<key>``, ``history/<metric>``
and ``meta/epoch`` (the number of epochs completed), ``meta/optimizer`` (its class name).
"""
from __future__ import annotations

import glob
import os
import zipfile

import numpy as np

FORMAT_VERSION = 1


def atomic_savez(path, arrays: dict) -> None:
    """Write ``arrays`` to ``path`` as .npz so that readers never see a partial file."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    base = os.path.basename(path)
    for stale in glob.glob(os.path.join(directory, f".{glob.escape(base)}.tmp-*")):
        pid = stale.rsplit("-", 1)[-1]
        if pid.isdigit() and not _process_alive(int(pid)):
            _remove_quietly(stale)  # left behind by a killed writer
    tmp = os.path.join(directory, f".{base}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them visible
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_quietly(path) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def read_npz(path) -> dict:
    """All arrays of an .npz file, with a clear error for a missing or damaged file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path!r} is not a readable .npz file ({type(exc).__name__}: {exc}); "
                         f"it may be truncated, or not made by conv3d") from exc


def save(model, path) -> None:
    """Save ``model.state_dict()`` to ``path`` (.npz), atomically."""
    atomic_savez(path, dict(model.state_dict()))


def load(model, path, strict: bool = True):
    """Load a state_dict saved by ``save`` (or the model part of a checkpoint) into ``model``;
    returns the model."""
    arrays = read_npz(path)
    if any(k.startswith("model/") for k in arrays):
        arrays = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    model.load_state_dict(arrays, strict=strict)
    return model


def save_checkpoint(path, model, optimizer=None, epoch: int = 0, history=None,
                    scheduler=None) -> None:
    """Write model + optimizer (+ scheduler) state, the epoch count and the history."""
    arrays = {"meta/format": np.asarray(FORMAT_VERSION), "meta/epoch": np.asarray(int(epoch))}
    arrays.update({f"model/{k}": v for k, v in model.state_dict().items()})
    if optimizer is not None:
        arrays["meta/optimizer"] = np.asarray(type(optimizer).__name__)
        arrays.update({f"optimizer/{k}": v for k, v in optimizer.state_dict().items()})
    if scheduler is not None:
        arrays.update({f"scheduler/{k}": v for k, v in scheduler.state_dict().items()})
    for k, values in (history or {}).items():
        arrays[f"history/{k}"] = np.asarray(values, dtype=np.float64)
    atomic_savez(path, arrays)


def load_checkpoint(path, model=None, optimizer=None, scheduler=None) -> dict:
    """Read a checkpoint; restore it into ``model``/``optimizer``/``scheduler`` when given.

    Returns ``{'epoch': int, 'history': {metric: list}, 'model': state_dict,
    'optimizer': state_dict, 'scheduler': state_dict}``.
    """
    arrays = read_npz(path)
    if "meta/epoch" not in arrays:
        raise ValueError(f"{os.fspath(path)!r} is not a conv3d training checkpoint (no "
                         f"meta/epoch); for a bare state_dict use conv3d.train.load")
    parts = {"model": {}, "optimizer": {}, "scheduler": {}, "history": {}}
    for key, value in arrays.items():
        kind, _, name = key.partition("/")
        if kind in parts:
            parts[kind][name] = value
    saved_type = str(arrays.get("meta/optimizer", ""))
    if optimizer is not None and saved_type and saved_type != type(optimizer).__name__:
        raise ValueError(f"checkpoint {os.fspath(path)!r} holds {saved_type} state but the "
                         f"optimizer is {type(optimizer).__name__}; build the same optimizer")
    if model is not None:
        model.load_state_dict(parts["model"])
    if optimizer is not None and parts["optimizer"]:
        optimizer.load_state_dict(parts["optimizer"])
    if scheduler is not None and parts["scheduler"]:
        scheduler.load_state_dict(parts["scheduler"])
    history = {k: [float(v) for v in vals] for k, vals in parts["history"].items()}
    return {"epoch": int(arrays["meta/epoch"]), "history": history, "model": parts["model"],
            "optimizer": parts["optimizer"], "scheduler": parts["scheduler"]}
