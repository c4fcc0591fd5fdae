"""Voxel digits: scikit-learn's 8x8 digits turned into 16x16x16 volumes (like Kaggle's 3D MNIST).

Each volume is one source digit, drawn as a slab: the 8x8 image, magnified ``scale`` times, is
extruded ``thickness`` voxels deep, then turned by a random 3D rotation, moved by a random shift
and covered in Gaussian noise. All of it is one resampling step: for every output voxel p we ask
which point q of the slab lands there, ``q = R^T (p - shift) / scale``, and read the image there by
bilinear interpolation (``scipy.ndimage.map_coordinates``).

The train/test split is made on the **source images** first (stratified by class), so no test
volume is a view of a digit that the training set has seen: a test of generalization, not of
memorizing 1,797 images.
"""
from __future__ import annotations

import functools

import numpy as np

from ._geometry import euler_rotations, voxel_centres


@functools.lru_cache(maxsize=1)
def _load_digits():
    """(images / 16, labels) of scikit-learn's 1,797 digits (read once per process)."""
    try:
        from sklearn.datasets import load_digits  # noqa: PLC0415 - optional dependency
    except ImportError as exc:
        raise ImportError("voxel_digits needs scikit-learn (its 8x8 digits ship inside the "
                          "package, no download): pip install 'conv3d[data]'",
                          name="sklearn") from exc
    digits = load_digits()
    images, labels = digits.images / 16.0, digits.target.astype(np.int64)
    images.flags.writeable = labels.flags.writeable = False  # shared by every call
    return images, labels


def split_sources(labels: np.ndarray, test_fraction: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the source images for training and for testing, stratified by class."""
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(test_fraction * len(idx)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def render_digits(images: np.ndarray, rng, size: int = 16, scale: float = 1.5,
                  thickness: float = 4.0, max_angle: float = 30.0, max_shift: float = 2.0,
                  noise: float = 0.05, dtype=np.float32) -> np.ndarray:
    """Volumes (n, 1, size, size, size) of the 2-D ``images`` (n, h, w), values in [0, 1]."""
    n, h, w = images.shape
    p = voxel_centres(size)  # (V, 3) as (z, y, x)
    R = euler_rotations(rng, n, max_angle)
    shift = rng.uniform(-max_shift, max_shift, (n, 3))
    out = np.empty((n, size ** 3), dtype=np.float64)
    chunk = 256
    from scipy.ndimage import map_coordinates  # noqa: PLC0415 - scipy comes with scikit-learn
    for s in range(0, n, chunk):
        Rc, sc = R[s:s + chunk], shift[s:s + chunk]
        m = len(Rc)
        # q = R^T (p - shift) / scale, for every sample and voxel: (m, V, 3)
        q = np.einsum("mji,mvj->mvi", Rc, p[None] - sc[:, None, :]) / scale
        rows, cols = q[..., 1] + (h - 1) / 2, q[..., 2] + (w - 1) / 2
        sample = np.broadcast_to(np.arange(m)[:, None], rows.shape)
        values = map_coordinates(images[s:s + m], [sample.ravel(), rows.ravel(), cols.ravel()],
                                 order=1, mode="grid-constant", cval=0.0).reshape(m, -1)
        depth = np.abs(q[..., 0]) * scale  # distance from the slab's middle plane, in voxels
        out[s:s + m] = values * np.clip(thickness / 2 + 0.5 - depth, 0.0, 1.0)
    out += noise * rng.standard_normal(out.shape)
    np.clip(out, 0.0, 1.0, out=out)
    return out.reshape(n, 1, size, size, size).astype(dtype)


def voxel_digits(n_train: int = 6000, n_test: int = 1000, size: int = 16, seed: int = 0,
                 test_fraction: float = 0.25, max_angle: float = 30.0, max_shift: float = 2.0,
                 noise: float = 0.05, dtype=np.float32):
    """``(x_train, y_train), (x_test, y_test)``: x (N, 1, size, size, size), y int64 digits.

    Args:
        n_train, n_test: how many volumes to make (source digits are reused with new poses).
        size: the grid's edge in voxels.
        seed: everything (split, poses, noise) follows from it.
        test_fraction: share of the 1,797 source images reserved for the test set.
        max_angle: each of the three rotation angles is uniform in +-max_angle degrees.
        max_shift: the shift is uniform in +-max_shift voxels on each axis.
        noise: standard deviation of the Gaussian noise (values are then clipped to [0, 1]).
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"{name} must be an int >= 1, got {n!r}")
    images, labels = _load_digits()
    rng = np.random.default_rng(seed)
    train_src, test_src = split_sources(labels, test_fraction, rng)
    out = []
    for n, pool in ((n_train, train_src), (n_test, test_src)):
        chosen = rng.choice(pool, size=n, replace=True)
        x = render_digits(images[chosen], rng, size=size, max_angle=max_angle,
                          max_shift=max_shift, noise=noise, dtype=dtype)
        out.append((x, labels[chosen]))
    return tuple(out)


def voxel_digit_sources(seed: int = 0, test_fraction: float = 0.25):
    """The indices (into ``sklearn.datasets.load_digits()``) of the training and test source
    images that ``voxel_digits`` with the same seed uses: the two sets never overlap."""
    _, labels = _load_digits()
    return split_sources(labels, test_fraction, np.random.default_rng(seed))
