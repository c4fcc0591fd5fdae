"""Random rotations and voxel grids shared by the synthetic datasets.

Coordinates are (z, y, x) = (depth, height, width), the order of the array axes, measured in
voxels from the centre of the grid.
"""
from __future__ import annotations

import numpy as np


def voxel_centres(size: int) -> np.ndarray:
    """(size**3, 3) coordinates of the voxel centres, relative to the grid's centre."""
    axis = np.arange(size, dtype=np.float64) - (size - 1) / 2
    z, y, x = np.meshgrid(axis, axis, axis, indexing="ij")
    return np.stack([z.ravel(), y.ravel(), x.ravel()], axis=1)


def euler_rotations(rng: np.random.Generator, n: int, max_angle_deg: float) -> np.ndarray:
    """(n, 3, 3) rotations R = Rz(a) Ry(b) Rx(c), each angle uniform in +-max_angle_deg."""
    a, b, c = np.deg2rad(rng.uniform(-max_angle_deg, max_angle_deg, (3, n)))
    R = np.empty((n, 3, 3))
    for i in range(n):
        R[i] = _about(0, a[i]) @ _about(1, b[i]) @ _about(2, c[i])
    return R


def uniform_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 3, 3) rotations drawn uniformly from SO(3): QR of a Gaussian matrix, signs fixed."""
    Q, Rm = np.linalg.qr(rng.standard_normal((n, 3, 3)))
    Q = Q * np.sign(np.diagonal(Rm, axis1=1, axis2=2))[:, None, :]
    flip = np.linalg.det(Q) < 0
    Q[flip, :, 0] *= -1  # a reflection becomes a rotation
    return Q


def _about(axis: int, angle: float) -> np.ndarray:
    """Rotation by ``angle`` in the plane of the two axes other than ``axis``."""
    i, j = [k for k in range(3) if k != axis]
    R = np.eye(3)
    R[i, i] = R[j, j] = np.cos(angle)
    R[i, j], R[j, i] = -np.sin(angle), np.sin(angle)
    return R
