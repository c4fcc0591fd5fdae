"""The two experiments of the examples and of ``conv3d train``: models, data, training, results.

* ``keras_3d_mnist_model`` / ``run_keras_3d_mnist``: the Keras article's 3D CNN on voxel digits.
* ``motion_models`` / ``run_motion``: a per-frame 2D CNN (late fusion), a (2+1)D CNN and a full
  3D CNN of similar size on moving shapes, where only the frame order tells the classes apart.

``examples/keras_3d_mnist.py`` and ``examples/motion_2d_vs_3d.py`` call these and print the
results; the code is here so that the command line can run the same thing.
"""
from __future__ import annotations

import time

import numpy as np

from .. import nn
from ..datasets import REVERSED, load_kaggle_3d_mnist, moving_shapes, voxel_digits
from ..optim import Adam
from .loop import evaluate, fit, predict


def keras_3d_mnist_model(in_channels: int = 1, dtype=np.float32) -> nn.Sequential:
    """The article's model, layer for layer, with Keras's initializers and BatchNorm defaults::

        Conv3D(32, 3, relu, he_uniform) MaxPool3D(2) BatchNormalization Dropout(0.5)
        Conv3D(64, 3, relu)             MaxPool3D(2) BatchNormalization Dropout(0.5)
        Flatten Dense(256, relu) Dropout(0.5) Dense(10, softmax)

    Keras defaults: glorot_uniform kernels, zero biases, BatchNormalization(momentum=0.99,
    epsilon=1e-3), i.e. our momentum 0.01. The final softmax is folded into the loss
    (cross-entropy on logits); ``predict(..., softmax=True)`` gives the probabilities.
    On 16^3 inputs: 16 -> conv 14 -> pool 7 -> conv 5 -> pool 2, so Flatten gives 64*2^3 = 512.
    """
    def bn(c):
        return nn.BatchNorm3d(c, momentum=0.01, eps=1e-3, dtype=dtype)

    return nn.Sequential(
        nn.Conv3d(in_channels, 32, 3, init="he_uniform", dtype=dtype), nn.ReLU(),
        nn.MaxPool3d(2), bn(32), nn.Dropout(0.5),
        nn.Conv3d(32, 64, 3, init="glorot_uniform", dtype=dtype), nn.ReLU(),
        nn.MaxPool3d(2), bn(64), nn.Dropout(0.5),
        nn.Flatten(),
        nn.Linear(64 * 2 * 2 * 2, 256, init="glorot_uniform", dtype=dtype), nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(256, 10, init="glorot_uniform", dtype=dtype),
    )


def run_keras_3d_mnist(n_train: int = 6000, n_test: int = 1000, epochs: int = 25,
                       batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
                       progress: bool = True, checkpoint=None, resume: bool = False,
                       kaggle=None, device: str = "cpu") -> dict:
    """Train the article's model on voxel digits (test digits never seen in training), or on
    Kaggle's ``full_dataset_vectors.h5`` when ``kaggle`` is its path (n_train/n_test ignored).
    ``device`` is 'cpu', 'cuda' or 'cuda-emu': the model moves there before the optimizer is
    built, and ``fit`` moves each batch to the model's device."""
    if kaggle is not None:
        (x, y), (xt, yt) = load_kaggle_3d_mnist(kaggle)
        n_train, n_test = len(x), len(xt)
    else:
        (x, y), (xt, yt) = voxel_digits(n_train, n_test, seed=seed)
    nn.init.manual_seed(seed)
    model = keras_3d_mnist_model().to(device)
    history = fit(model, (x, y), validation_split=0.1, epochs=epochs, batch_size=batch_size,
                  optimizer=Adam(model.parameters(), lr=lr), checkpoint=checkpoint,
                  resume=resume, progress=progress, seed=seed, verbose=True)
    test = evaluate(model, (xt, yt))
    return {"model": model, "history": history, "test_accuracy": test["accuracy"],
            "test_loss": test["loss"], "seconds_per_epoch": float(np.mean(history["time"])),
            "n_train": n_train, "n_test": n_test, "epochs": epochs,
            "data": "Kaggle 3D MNIST" if kaggle is not None else "voxel digits"}


def keras_report(r: dict) -> str:
    """The result of ``run_keras_3d_mnist`` as text."""
    return (f"{r['data']}: {r['n_train']} training volumes (10% held out for validation), "
            f"{r['epochs']} epochs, {r['n_test']} test volumes of unseen source digits\n"
            f"test accuracy {r['test_accuracy']:.1%}, test loss {r['test_loss']:.3f}, "
            f"{r['seconds_per_epoch']:.1f} s per epoch")


def motion_models(dtype=np.float32) -> dict:
    """Three classifiers of (N, 1, T, H, W) clips with about 14k parameters each.

    All end in global average pooling over (T, H, W) and a Linear layer, so they differ only in
    how their convolutions treat time:

    * ``2d late fusion``: (1, 3, 3) kernels see one frame at a time; the frames meet only in the
      final average over time (and space) -- per-frame features, then temporal average pooling.
    * ``(2+1)d``: ``Conv2Plus1d`` blocks, a 1x3x3 spatial conv then a 3x1x1 temporal conv.
    * ``3d``: full 3x3x3 kernels.
    """
    def conv2d(c_in, c_out):
        return nn.Conv3d(c_in, c_out, (1, 3, 3), padding=(0, 1, 1), dtype=dtype)

    def head(c):
        return [nn.ReLU(), nn.GlobalAvgPool3d(), nn.Linear(c, 4, dtype=dtype)]

    pool = (1, 2, 2)
    return {
        "2d late fusion": nn.Sequential(conv2d(1, 24), nn.ReLU(), nn.MaxPool3d(pool),
                                        conv2d(24, 64), *head(64)),
        "(2+1)d": nn.Sequential(nn.Conv2Plus1d(1, 16, 3, padding=1, bias=True, dtype=dtype),
                                nn.ReLU(), nn.MaxPool3d(pool),
                                nn.Conv2Plus1d(16, 32, 3, padding=1, bias=True, dtype=dtype),
                                *head(32)),
        "3d": nn.Sequential(nn.Conv3d(1, 16, 3, padding=1, dtype=dtype), nn.ReLU(),
                            nn.MaxPool3d(pool), nn.Conv3d(16, 32, 3, padding=1, dtype=dtype),
                            *head(32)),
    }


def run_motion(n_train: int = 2000, n_test: int = 1000, epochs: int = 4, batch_size: int = 32,
               lr: float = 3e-3, seed: int = 0, progress: bool = True, names=None) -> list[dict]:
    """Train each model of ``motion_models`` on the same moving-shapes clips; report test
    accuracy, parameters, training time and how often reversing a clip flips the prediction to
    the opposite direction."""
    x, y = moving_shapes(n_train, seed=seed + 1)
    xt, yt = moving_shapes(n_test, seed=seed + 2)
    results = []
    nn.init.manual_seed(seed)
    models = motion_models()
    for name in names or models:
        model = models[name]
        t0 = time.perf_counter()
        fit(model, (x, y), epochs=epochs, batch_size=batch_size,
            optimizer=Adam(model.parameters(), lr=lr), progress=progress, seed=seed,
            verbose=True, name=name)
        seconds = time.perf_counter() - t0
        test = evaluate(model, (xt, yt))
        reversed_pred = predict(model, xt[:, :, ::-1].copy()).argmax(axis=1)
        flips = float(np.mean(reversed_pred == np.vectorize(REVERSED.get)(yt)))
        results.append({"name": name, "test_accuracy": test["accuracy"],
                        "params": sum(int(p.size) for p in model.parameters()),
                        "train_seconds": seconds, "reversed_flip_rate": flips,
                        "model": model})
    return results


def motion_report(results: list[dict], n_train: int, n_test: int, epochs: int) -> str:
    """The results of ``run_motion`` as a table."""
    lines = [f"moving shapes: {n_train} training clips, {n_test} test clips, {epochs} epochs, "
             f"chance = 25%",
             f"{'model':<16}{'params':>8}{'test acc':>10}{'train time':>12}"
             f"{'reversed -> opposite':>22}"]
    for r in results:
        lines.append(f"{r['name']:<16}{r['params']:>8,}{r['test_accuracy']:>10.1%}"
                     f"{r['train_seconds']:>11.1f}s{r['reversed_flip_rate']:>22.1%}")
    return "\n".join(lines)
