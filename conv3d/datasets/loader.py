"""Batches: ``DataLoader`` and the channels_last <-> channels_first helpers.

Keras stores volumes channels-last, (N, D, H, W, C); conv3d (like PyTorch) wants channels-first,
(N, C, D, H, W). ``to_channels_first`` and ``to_channels_last`` move the axis (a copy, so the
result is contiguous).
"""
from __future__ import annotations

import numbers

import numpy as np


def to_channels_first(x) -> np.ndarray:
    """(N, D, H, W, C) -> (N, C, D, H, W)."""
    x = np.asarray(x)
    if x.ndim != 5:
        raise ValueError(f"to_channels_first expects a 5-D array (N, D, H, W, C), got shape "
                         f"{x.shape}; add a channel axis first, e.g. x[..., None]")
    return np.ascontiguousarray(np.moveaxis(x, -1, 1))


def to_channels_last(x) -> np.ndarray:
    """(N, C, D, H, W) -> (N, D, H, W, C)."""
    x = np.asarray(x)
    if x.ndim != 5:
        raise ValueError(f"to_channels_last expects a 5-D array (N, C, D, H, W), got shape "
                         f"{x.shape}; add a channel axis first, e.g. x[:, None]")
    return np.ascontiguousarray(np.moveaxis(x, 1, -1))


class ArrayDataset:
    """Samples ``i`` of one or more equally long arrays: ``ds[i] == (x[i], y[i])``."""

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("ArrayDataset needs at least one array")
        arrays = tuple(np.asarray(getattr(a, "data", a)) for a in arrays)
        lengths = {len(a) for a in arrays}
        if len(lengths) != 1:
            raise ValueError(f"ArrayDataset: the arrays have different lengths "
                             f"{[len(a) for a in arrays]}; every array needs one row per sample")
        self.arrays = arrays

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)


def as_dataset(data):
    """An ``(x, y)`` tuple of arrays, a single array, or an object with ``__len__`` and
    ``__getitem__`` (taking an array of indices) -> something a DataLoader can index."""
    if isinstance(data, DataLoader):
        return data.dataset
    if isinstance(data, (tuple, list)):
        return ArrayDataset(*data)
    if hasattr(data, "shape"):
        return ArrayDataset(data)
    if hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        return data
    raise TypeError(f"expected (x, y) arrays or a dataset with __len__ and __getitem__, got "
                    f"{type(data).__name__}")


class DataLoader:
    """Iterate over a dataset in batches of NumPy arrays.

    Args:
        dataset_or_arrays: ``(x, y)`` arrays or a dataset (see ``as_dataset``).
        batch_size: samples per batch; the last batch is smaller unless ``drop_last``.
        shuffle: draw a new order each epoch. The order of epoch ``e`` comes from
            ``numpy.random.default_rng([seed, e])``, so it depends only on the seed and the epoch
            (a resumed run sees the same batches: call ``set_epoch``).
        seed: the shuffling seed.
    """

    def __init__(self, dataset_or_arrays, batch_size: int = 32, shuffle: bool = False,
                 seed: int = 0, drop_last: bool = False):
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
                or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        self.dataset = as_dataset(dataset_or_arrays)
        self.batch_size, self.shuffle, self.seed = int(batch_size), bool(shuffle), int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use the order of ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle
                 else np.arange(n))
        self.epoch += 1
        for start in range(0, n, self.batch_size):
            index = order[start:start + self.batch_size]
            if self.drop_last and len(index) < self.batch_size:
                break
            yield self.dataset[index]
