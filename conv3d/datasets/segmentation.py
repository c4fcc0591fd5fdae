"""A synthetic volumetric segmentation set: ellipsoids and tubes in noise, with per-voxel labels.

Each volume (size^3 voxels) holds 1 to 3 ellipsoids and 1 to 3 tubes on a dark background with
a smooth intensity ramp and Gaussian noise. The label of a voxel is the class of the object
that covers its centre (``SEGMENTATION_CLASSES``: 0 background, 1 ellipsoid, 2 tube), so the
labels are exact, with no partial-volume blur.

With p a voxel centre (relative to the grid centre, in voxels, axes (z, y, x) = (D, H, W)):

    ellipsoid   |R^T (p - c) / a| <= 1        a: semi-axes uniform in [0.08, 0.2] * size,
                                              R: a uniformly random rotation
    tube        |p - c - t u| <= r, with t = clip(u . (p - c), -L, L)
                                              (a cylinder with round caps around a segment)
                                              u: a uniformly random direction,
                                              L: half-length uniform in [0.25, 0.4] * size,
                                              r: radius uniform in [0.04, 0.07] * size

Centres c are uniform in +-0.3 * size per axis. Every object has its own brightness, uniform
in [0.6, 1.0] for both classes, so the intensity alone cannot tell an ellipsoid from a tube:
a model has to see the shape (a compact blob against a thin, long cylinder). Ellipsoids are
painted first and tubes over them, so where they cross the voxel is a tube (every volume has
tube voxels, and ellipsoid voxels unless the tubes happen to cover them all).

The background is ``g * (v . p) / size`` for a random unit vector v and g uniform in [0, 0.2]
(a scanner's bias field, in miniature), and every voxel gets Gaussian noise of std ``noise``.
Everything comes from ``numpy.random.default_rng(seed)``: the same seed gives the same volumes.
"""
from __future__ import annotations

import numbers

import numpy as np

from ._geometry import uniform_rotations, voxel_centres

SEGMENTATION_CLASSES = ("background", "ellipsoid", "tube")


def _unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 3) directions uniform on the sphere (normalized Gaussian vectors)."""
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _ellipsoid(p: np.ndarray, centre, rotation, axes) -> np.ndarray:
    q = (p - centre) @ rotation / axes  # rows: R^T (p - c) / a
    return (q * q).sum(axis=1) <= 1.0


def _tube(p: np.ndarray, centre, direction, half_length, radius) -> np.ndarray:
    rel = p - centre
    t = np.clip(rel @ direction, -half_length, half_length)
    off_axis = rel - t[:, None] * direction
    return (off_axis * off_axis).sum(axis=1) <= radius * radius


def segmentation_volumes(n: int = 64, size: int = 32, seed: int = 0, noise: float = 0.1,
                         dtype=np.float32):
    """``(x, labels)``: x (n, 1, size, size, size) float volumes and labels (n, size, size,
    size) int64 in {0, 1, 2} (``SEGMENTATION_CLASSES``); see the module docstring.

    >>> x, y = segmentation_volumes(2, size=16, seed=0)
    >>> x.shape, x.dtype, y.shape, sorted(set(y.ravel().tolist()))
    ((2, 1, 16, 16, 16), dtype('float32'), (2, 16, 16, 16), [0, 1, 2])
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"segmentation_volumes: n must be an int >= 1, got {n!r}")
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 8:
        raise ValueError(f"segmentation_volumes: size must be an int >= 8 (a tube is at least "
                         f"0.04 * size voxels thick), got {size!r}")
    if not isinstance(noise, numbers.Real) or noise < 0:
        raise ValueError(f"segmentation_volumes: noise must be a float >= 0, got {noise!r}")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"segmentation_volumes: dtype must be float32 or float64, got {dtype}")
    rng = np.random.default_rng(seed)
    p = voxel_centres(size)
    x = np.empty((n, size ** 3), dtype=np.float64)
    labels = np.zeros((n, size ** 3), dtype=np.int64)
    for i in range(n):
        ramp = rng.uniform(0.0, 0.2) * (p @ _unit_vectors(rng, 1)[0]) / size
        volume = ramp
        n_ell, n_tube = rng.integers(1, 4, size=2)
        rotations = uniform_rotations(rng, n_ell)
        for k in range(n_ell):
            inside = _ellipsoid(p, rng.uniform(-0.3, 0.3, 3) * size, rotations[k],
                                rng.uniform(0.08, 0.2, 3) * size)
            volume = np.where(inside, rng.uniform(0.6, 1.0), volume)
            labels[i, inside] = 1
        directions = _unit_vectors(rng, n_tube)
        for k in range(n_tube):
            inside = _tube(p, rng.uniform(-0.3, 0.3, 3) * size, directions[k],
                           rng.uniform(0.25, 0.4) * size, rng.uniform(0.04, 0.07) * size)
            volume = np.where(inside, rng.uniform(0.6, 1.0), volume)
            labels[i, inside] = 2
        x[i] = volume
    x += noise * rng.standard_normal(x.shape)
    shape = (n, size, size, size)
    return x.reshape((n, 1) + shape[1:]).astype(dtype), labels.reshape(shape)
