"""The training loop: ``fit``, ``evaluate`` and ``predict``, in the spirit of Keras.

One epoch of ``fit``::

    model.train()
    for x, y in batches (reshuffled every epoch):
        loss = loss_fn(model(x), y)      # forward: records the graph
        optimizer.zero_grad()
        loss.backward()                  # backward: fills every parameter's .grad
        optimizer.step()                 # update: p -= lr * (what the rule makes of p.grad)
    then validation (eval mode, no graph), the history, a checkpoint, the lr schedule.

Everything random is seeded: the batch order of epoch e comes from (seed, e), Dropout's masks
from its saved ``rng_state``. So a run resumed from a checkpoint continues exactly as the
uninterrupted run would have.
"""
from __future__ import annotations

import os
import time

import numpy as np

from .. import functional as F
from ..core.tensor import Tensor, no_grad
from ..datasets.loader import DataLoader, as_dataset
from ..optim import Adam
from .checkpoint import load_checkpoint, save_checkpoint


class History:
    """What ``fit`` returns: ``history['loss']``, ``['accuracy']``, ``['val_loss']``,
    ``['val_accuracy']``, ``['lr']``, ``['time']`` (seconds per epoch), one value per epoch."""

    def __init__(self, history: dict | None = None):
        self.history = {k: list(v) for k, v in (history or {}).items()}

    def append(self, **values) -> None:
        for k, v in values.items():
            self.history.setdefault(k, []).append(float(v))

    @property
    def epoch(self) -> list[int]:
        return list(range(len(self.history.get("loss", []))))

    def __getitem__(self, key):
        return self.history[key]

    def __repr__(self):
        last = {k: round(v[-1], 4) for k, v in self.history.items() if v}
        return f"History({len(self.epoch)} epochs, last={last})"


def _loss_fn(loss):
    if loss in (None, "cross_entropy", "sparse_categorical_crossentropy"):
        return F.cross_entropy
    if callable(loss):
        return loss
    raise ValueError(f"loss must be 'cross_entropy' or a callable loss(outputs, labels), got "
                     f"{loss!r}")


def _model_dtype(model):
    return next((p.dtype for p in model.parameters()), np.dtype(np.float32))


def _to_input(model, x) -> Tensor:
    """A batch as a Tensor on the model's device, in the model's dtype (an explicit cast)."""
    x = x.numpy() if isinstance(x, Tensor) else np.asarray(x)
    return Tensor(x.astype(_model_dtype(model), copy=False)).to(model.device)


def _accuracy(out: Tensor, y) -> float | None:
    y = np.asarray(y)
    if out.ndim != 2 or y.ndim != 1 or y.dtype.kind not in "iu":
        return None
    return float((np.asarray(out.numpy()).argmax(axis=1) == y).mean())


def _split(data, validation_split):
    ds = as_dataset(data)
    if not 0 < validation_split < 1:
        raise ValueError(f"validation_split must lie strictly between 0 and 1, got "
                         f"{validation_split}")
    n = len(ds)
    n_val = int(round(n * validation_split))
    if n_val < 1 or n_val >= n:
        raise ValueError(f"validation_split={validation_split} of {n} samples leaves "
                         f"{n - n_val} for training and {n_val} for validation; both need >= 1")
    # as Keras: the *last* fraction of the samples, taken before any shuffling
    idx_train, idx_val = np.arange(n - n_val), np.arange(n - n_val, n)
    return ds[idx_train], ds[idx_val]


def _progress(iterable, total, desc, enabled):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm  # noqa: PLC0415 - tqdm is a dependency, imported when used
    return tqdm(iterable, total=total, desc=desc, leave=True, dynamic_ncols=True)


def fit(model, train_data, val_data=None, validation_split=None, epochs: int = 1,
        batch_size: int = 32, optimizer=None, loss="cross_entropy", checkpoint=None,
        resume: bool = False, progress: bool = True, seed: int = 0, scheduler=None,
        shuffle: bool = True, verbose: bool | None = None, name: str | None = None) -> History:
    """Train ``model`` and return its ``History``.

    Args:
        train_data: ``(x, y)`` arrays, a dataset or a ``DataLoader`` (then its batch size,
            shuffling and seed are used).
        val_data: ``(x, y)`` evaluated after every epoch; or ``validation_split``: hold out that
            fraction of ``train_data`` (its last samples, as Keras does).
        epochs: the total number of epochs (a resumed run trains only the missing ones).
        batch_size, shuffle, seed: batching (the order of epoch e is drawn from (seed, e)).
        optimizer: a ``conv3d.optim`` optimizer (default: Adam(model.parameters(), 1e-3)).
        loss: 'cross_entropy' (softmax cross-entropy on logits and integer labels) or a
            callable ``loss(outputs, labels) -> scalar Tensor``.
        checkpoint: path of an .npz written atomically after every epoch (model, optimizer,
            scheduler, epoch, history).
        resume: if ``checkpoint`` exists, restore it and continue after its last epoch.
        progress: show a tqdm progress bar per epoch.
        verbose: print one line of metrics per epoch (default: the same as ``progress``).
        scheduler: a ``conv3d.optim`` lr schedule, stepped after every epoch.
        name: the model's name, opening every progress bar and metrics line as ``[name]``, so a
            log of several models says which model each epoch belongs to.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be an int >= 0, got {epochs!r}")
    if val_data is not None and validation_split is not None:
        raise ValueError("pass either val_data or validation_split, not both")
    if validation_split is not None:
        if isinstance(train_data, DataLoader):
            raise ValueError("validation_split needs arrays or a dataset, not a DataLoader; "
                             "split the data yourself and pass val_data")
        train_data, val_data = _split(train_data, validation_split)
    loader = train_data if isinstance(train_data, DataLoader) else DataLoader(
        train_data, batch_size=batch_size, shuffle=shuffle, seed=seed)
    optimizer = optimizer if optimizer is not None else Adam(model.parameters(), lr=1e-3)
    loss_fn = _loss_fn(loss)
    history = History()
    start = 0
    if resume and checkpoint is not None and os.path.exists(checkpoint):
        state = load_checkpoint(checkpoint, model, optimizer, scheduler)
        start, history = state["epoch"], History(state["history"])

    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        model.train()
        loader.set_epoch(epoch)
        total_loss = correct = seen = 0.0
        label = f"[{name}] epoch {epoch + 1}/{epochs}" if name else f"epoch {epoch + 1}/{epochs}"
        bar = _progress(loader, len(loader), label, progress)
        for xb, yb in bar:
            out = model(_to_input(model, xb))
            batch_loss = loss_fn(out, yb)
            optimizer.zero_grad()
            batch_loss.backward()
            optimizer.step()
            n = len(yb)
            total_loss += batch_loss.item() * n
            seen += n
            acc = _accuracy(out, yb)
            if acc is not None:
                correct += acc * n
            if progress:
                bar.set_postfix(loss=f"{total_loss / seen:.4f}",
                                acc=f"{correct / seen:.3f}" if acc is not None else "-")
        if seen == 0:
            raise ValueError("fit: the training data produced no batches (is it empty?)")
        metrics = {"loss": total_loss / seen, "lr": optimizer.lr}
        if acc is not None:
            metrics["accuracy"] = correct / seen
        if val_data is not None:
            val = evaluate(model, val_data, batch_size=max(batch_size, 64), loss=loss)
            metrics.update({f"val_{k}": v for k, v in val.items()})
        if scheduler is not None:
            scheduler.step()
        metrics["time"] = time.perf_counter() - t0
        history.append(**metrics)
        if progress:
            bar.close()
        if verbose if verbose is not None else progress:
            print(f"{label}: " + ", ".join(
                f"{k}={v:.4g}" for k, v in metrics.items()), flush=True)
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, epoch + 1, history.history, scheduler)
    return history


def evaluate(model, data, batch_size: int = 256, loss="cross_entropy") -> dict:
    """``{'loss': mean loss, 'accuracy': fraction correct}`` over ``data`` in eval mode."""
    loss_fn = _loss_fn(loss)
    was_training = model.training
    model.eval()
    total = correct = seen = 0.0
    with_acc = True
    try:
        with no_grad():
            for xb, yb in DataLoader(as_dataset(data), batch_size=batch_size):
                out = model(_to_input(model, xb))
                n = len(yb)
                total += loss_fn(out, yb).item() * n
                acc = _accuracy(out, yb)
                with_acc = with_acc and acc is not None
                correct += (acc or 0.0) * n
                seen += n
    finally:
        model.train(was_training)
    if seen == 0:
        raise ValueError("evaluate: the data is empty")
    result = {"loss": total / seen}
    if with_acc:
        result["accuracy"] = correct / seen
    return result


def predict(model, x, batch_size: int = 256, softmax: bool = False) -> np.ndarray:
    """The model's outputs for ``x`` (N, ...) as a NumPy array, in eval mode; with ``softmax``
    the class probabilities (the model itself outputs logits)."""
    x = x.numpy() if isinstance(x, Tensor) else np.asarray(x)
    was_training = model.training
    model.eval()
    outs = []
    try:
        with no_grad():
            for (xb,) in DataLoader((x,), batch_size=batch_size):
                out = model(_to_input(model, xb))
                if softmax:
                    out = F.softmax(out, axis=1)
                outs.append(np.asarray(out.numpy()))
    finally:
        model.train(was_training)
    return np.concatenate(outs) if outs else np.zeros((0,))
