"""Training the 3D U-Net on the synthetic ellipsoids-and-tubes volumes, and the Dice score.

``run_segmentation`` makes the training and held-out volumes (different seeds, so no volume is
seen twice), trains ``conv3d.models.UNet3D`` with ``fit`` on cross-entropy + soft Dice, and
scores the held-out volumes with ``dice_score``. ``conv3d train segmentation`` runs it.

The metric (hard Dice of the argmax prediction, per volume and class)::

    dice[n, c] = 2 |P ∩ T| / (|P| + |T|),   P = {v : pred[n, v] = c},  T = {v : target[n, v] = c}

(1 when the class is absent from both). The reported score is its mean over the held-out
volumes and the foreground classes (background left out: it is most of every volume and
would flatter the score).
"""
from __future__ import annotations

import time

import numpy as np

from .. import functional as F
from ..datasets.segmentation import SEGMENTATION_CLASSES, segmentation_volumes
from ..models.unet3d import UNet3D
from ..nn import init as nn_init
from ..optim import Adam, CosineAnnealingLR
from .loop import fit, predict

#: the held-out volumes are drawn from seed + this (the training ones from seed): a different
#: stream, so no held-out volume is a training volume
HELD_OUT_SEED_OFFSET = 1_000_003


def dice_score(pred, target, num_classes: int) -> np.ndarray:
    """(N, num_classes) hard Dice of integer predictions against integer labels, both (N, ...)
    of one shape; see the module docstring."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape or pred.ndim < 2:
        raise ValueError(f"dice_score: pred and target must be label arrays (N, ...) of one "
                         f"shape, got {pred.shape} and {target.shape}; pass the argmax over "
                         f"the class axis, not the logits")
    axes = tuple(range(1, pred.ndim))
    scores = np.empty((pred.shape[0], num_classes))
    for c in range(num_classes):
        p, t = pred == c, target == c
        both = (p & t).sum(axis=axes)
        total = p.sum(axis=axes) + t.sum(axis=axes)
        scores[:, c] = np.where(total > 0, 2.0 * both / np.maximum(total, 1), 1.0)
    return scores


def segmentation_loss(logits, labels):
    """Cross-entropy per voxel plus the soft Dice loss of the softmax: the first gives every
    voxel a gradient from the start, the second weighs the small tube class as much as the
    large background."""
    return F.cross_entropy(logits, labels) + F.dice_loss(F.softmax(logits, dim=1), labels)


def run_segmentation(n_train: int = 96, n_test: int = 16, size: int = 32, epochs: int = 30,
                     batch_size: int = 4, lr: float = 3e-3, base_channels: int = 8,
                     depth: int = 2, upsample: str = "transpose", norm: str = "group",
                     seed: int = 0, progress: bool = True, checkpoint=None,
                     resume: bool = False) -> dict:
    """Train a UNet3D on ``n_train`` synthetic volumes and score ``n_test`` held-out ones.

    Adam at ``lr`` with a cosine decay to zero over the epochs. Returns the model, the history,
    ``test_dice`` (mean foreground Dice), ``class_dice`` (per class, background included) and
    ``train_seconds`` (the sum of the epoch times in the history, so a resumed run counts the
    epochs trained before it too) and ``run_seconds`` (this call's training only).
    """
    x, y = segmentation_volumes(n_train, size=size, seed=seed)
    xt, yt = segmentation_volumes(n_test, size=size, seed=seed + HELD_OUT_SEED_OFFSET)
    nn_init.manual_seed(seed)
    classes = len(SEGMENTATION_CLASSES)
    model = UNet3D(1, classes, base_channels=base_channels, depth=depth, upsample=upsample,
                   norm=norm)
    optimizer = Adam(model.parameters(), lr=lr)
    scheduler = CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    t0 = time.perf_counter()
    history = fit(model, (x, y), epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                  loss=segmentation_loss, scheduler=scheduler, checkpoint=checkpoint,
                  resume=resume, progress=progress, seed=seed, name="unet3d")
    run_seconds = time.perf_counter() - t0
    pred = predict(model, xt, batch_size=batch_size).argmax(axis=1)
    scores = dice_score(pred, yt, classes)
    return {"model": model, "history": history, "test_dice": float(scores[:, 1:].mean()),
            "class_dice": dict(zip(SEGMENTATION_CLASSES, scores.mean(axis=0).tolist())),
            "train_seconds": float(sum(history["time"])), "run_seconds": run_seconds,
            "n_train": n_train, "n_test": n_test, "size": size,
            "epochs": epochs, "config": dict(base_channels=base_channels, depth=depth,
                                              upsample=upsample, norm=norm)}


def _seconds(r: dict) -> str:
    """'452 s of training', plus this run's share when earlier runs trained part of it."""
    text = f"{r['train_seconds']:.0f} s of training"
    if r["train_seconds"] - r["run_seconds"] > 1:  # resumed: earlier epochs were timed before
        text += f" ({r['run_seconds']:.0f} s in this run, resumed from a checkpoint)"
    return text


def segmentation_report(r: dict) -> str:
    """The result of ``run_segmentation`` as text."""
    c = r["config"]
    per_class = ", ".join(f"{k} {v:.3f}" for k, v in r["class_dice"].items())
    return (f"unet3d (base_channels={c['base_channels']}, depth={c['depth']}, "
            f"upsample={c['upsample']}, norm={c['norm']}): {r['n_train']} training volumes of "
            f"{r['size']}^3, {r['epochs']} epochs, {_seconds(r)}\n"
            f"held-out Dice (mean of ellipsoid and tube over {r['n_test']} volumes): "
            f"{r['test_dice']:.3f}  [{per_class}]")


def segment_volume(model, volume) -> np.ndarray:
    """Integer labels (D, H, W) for one volume (D, H, W) or (C, D, H, W), any size.

    A U-Net needs D, H and W divisible by 2**depth: the volume is padded at the far end by
    repeating its border voxels (zeros would draw a dark frame the model never saw), run in eval
    mode, and the labels are cropped back to the input's size. The intensities are the caller's
    business: the synthetic training volumes lie in about [0, 1], so scale a scan alike.
    """
    volume = np.asarray(volume)
    if volume.ndim == 3:
        volume = volume[None]
    if volume.ndim != 4:
        raise ValueError(f"segment_volume: volume must be (D, H, W) or (C, D, H, W), got shape "
                         f"{volume.shape}")
    multiple = 2 ** model.depth
    size = volume.shape[1:]
    padding = [(0, 0)] + [(0, -s % multiple) for s in size]
    padded = np.pad(volume, padding, mode="edge")
    logits = predict(model, padded[None], batch_size=1)[0]
    return logits.argmax(axis=0)[:size[0], :size[1], :size[2]]
