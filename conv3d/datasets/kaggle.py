"""Reader for Kaggle's 3D MNIST file ``full_dataset_vectors.h5`` (for users who have it).

The file holds four datasets: ``X_train`` (10000, 4096), ``y_train`` (10000,), ``X_test``
(2000, 4096) and ``y_test`` (2000,). Each row of X is a 16x16x16 occupancy grid flattened in C
order, exactly as the Keras article reshapes it (``X.reshape(-1, 16, 16, 16)``); we return it
channels-first, (N, 1, 16, 16, 16). h5py is an optional dependency (``pip install
'conv3d[data]'``).
"""
from __future__ import annotations

import os

import numpy as np

KEYS = ("X_train", "y_train", "X_test", "y_test")


def load_kaggle_3d_mnist(path, dtype=np.float32):
    """``(x_train, y_train), (x_test, y_test)`` from ``full_dataset_vectors.h5``.

    x arrays are (N, 1, 16, 16, 16) of ``dtype``; y arrays are int64 class indices.
    """
    try:
        import h5py  # noqa: PLC0415 - optional dependency
    except ImportError as exc:
        raise ImportError("reading Kaggle's 3D MNIST file needs h5py, an optional dependency: "
                          "pip install h5py (or pip install 'conv3d[data]')",
                          name="h5py") from exc
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}; download full_dataset_vectors.h5 from "
                                f"Kaggle's '3D MNIST' dataset, or use "
                                f"conv3d.datasets.voxel_digits() (no download needed)")
    with h5py.File(path, "r") as f:
        missing = [k for k in KEYS if k not in f]
        if missing:
            raise KeyError(f"{path!r} lacks the dataset(s) {missing}; expected {list(KEYS)} as "
                           f"in Kaggle's full_dataset_vectors.h5 (found {sorted(f.keys())})")
        arrays = {k: np.asarray(f[k][()]) for k in KEYS}
    out = []
    for split in ("train", "test"):
        x, y = arrays[f"X_{split}"], arrays[f"y_{split}"]
        if x.ndim != 2 or x.shape[1] != 16 ** 3:
            raise ValueError(f"X_{split} has shape {x.shape}; expected (N, 4096), one flattened "
                             f"16x16x16 grid per row")
        if len(y) != len(x):
            raise ValueError(f"X_{split} has {len(x)} rows but y_{split} has {len(y)} labels")
        out.append((x.reshape(-1, 1, 16, 16, 16).astype(dtype), y.astype(np.int64)))
    return tuple(out)
