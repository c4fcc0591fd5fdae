"""Synthetic shapes: six 3-D solids, and 2-D shapes moving in one of four directions.

``shapes3d``: each volume is a solid, tested voxel by voxel with an implicit inequality in the
solid's own frame. A voxel centre p (relative to the grid centre) lies in the solid when
q = R^T (p - shift) / radius satisfies

    sphere      |q| <= 1                          cube        max |q_i| <= 0.8
    torus       (sqrt(q_y^2 + q_x^2) - 0.65)^2 + q_z^2 <= 0.3^2
    cylinder    q_y^2 + q_x^2 <= 0.7^2 and |q_z| <= 0.9
    cone        sqrt(q_y^2 + q_x^2) <= 0.8 (0.9 - q_z) / 1.8 and |q_z| <= 0.9
    octahedron  |q_z| + |q_y| + |q_x| <= 1.2

with R a uniformly random rotation, a random radius (scale) and a random shift.

``moving_shapes``: clips (N, 1, T, H, W) of one small 2-D shape moving one pixel per frame
right, left, down or up (labels 0, 1, 2, 3). It is built so that only the *order* of the frames
tells the classes apart:

* a clip played backwards is a clip of the opposite direction (right <-> left, down <-> up);
* the start position is uniform over every position that keeps the whole path inside the frame,
  so the *set* of frames of a rightward clip has exactly the distribution of a leftward one;
* the shape, its size and brightness, and the noise are independent of the label, and the path
  never comes near the border (so a per-frame model with global pooling sees the same thing in
  every frame whatever the direction).

A per-frame model that pools each frame globally and averages over time (late fusion) therefore
has nothing to go on and stays at chance (25%); a model with temporal filters sees the motion.
(Horizontal and vertical paths do differ as *sets* of positions, a row against a column: an
order-blind model that kept each frame's positions could reach 50% by telling the axis, never
more, because each reversed pair has identical frame sets.)
"""
from __future__ import annotations

import numpy as np

from ._geometry import uniform_rotations, voxel_centres

SHAPES_3D = ("sphere", "cube", "torus", "cylinder", "cone", "octahedron")
DIRECTIONS = ("right", "left", "down", "up")
REVERSED = {0: 1, 1: 0, 2: 3, 3: 2}  # label of the same clip played backwards
SHAPES_2D = ("square", "disk", "plus", "diamond")


def _inside(kind: int, q: np.ndarray) -> np.ndarray:
    z, y, x = q[..., 0], q[..., 1], q[..., 2]
    r_yx = np.sqrt(y * y + x * x)
    if kind == 0:
        return z * z + y * y + x * x <= 1.0
    if kind == 1:
        return np.abs(q).max(axis=-1) <= 0.8
    if kind == 2:
        return (r_yx - 0.65) ** 2 + z * z <= 0.3 ** 2
    if kind == 3:
        return (r_yx <= 0.7) & (np.abs(z) <= 0.9)
    if kind == 4:
        return (r_yx <= 0.8 * (0.9 - z) / 1.8) & (np.abs(z) <= 0.9)
    return np.abs(q).sum(axis=-1) <= 1.2


def shapes3d(n: int = 600, size: int = 16, seed: int = 0, noise: float = 0.1,
             dtype=np.float32):
    """``(x, y)``: x (n, 1, size, size, size) volumes of the solids in ``SHAPES_3D``, y their
    int64 labels (balanced: sample i has label i % 6, then shuffled).

    Pose: uniform random rotation; radius uniform in [0.25, 0.42] * size; shift uniform in
    +-0.08 * size voxels per axis. Voxels inside are 1, outside 0, plus Gaussian noise.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(SHAPES_3D)).astype(np.int64)
    R = uniform_rotations(rng, n)
    radius = rng.uniform(0.25, 0.42, n) * size
    shift = rng.uniform(-0.08, 0.08, (n, 3)) * size
    p = voxel_centres(size)
    x = np.empty((n, size ** 3), dtype=np.float64)
    for i in range(n):
        q = (p - shift[i]) @ R[i] / radius[i]  # rows: R^T (p - shift) / radius
        x[i] = _inside(int(labels[i]), q)
    x += noise * rng.standard_normal(x.shape)
    return x.reshape(n, 1, size, size, size).astype(dtype), labels


def _sprite(kind: int, r: int) -> np.ndarray:
    """A (2r+1, 2r+1) binary picture of a 2-D shape of half-width r."""
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    if kind == 0:
        return np.ones_like(dy, dtype=bool)
    if kind == 1:
        return dy * dy + dx * dx <= r * r + 0.5
    if kind == 2:
        return (np.abs(dy) <= r // 2) | (np.abs(dx) <= r // 2)
    return np.abs(dy) + np.abs(dx) <= r


def moving_shapes(n: int = 1000, frames: int = 8, size: int = 16, seed: int = 0,
                  noise: float = 0.1, speed: int = 1, dtype=np.float32):
    """``(x, y)``: clips x (n, 1, frames, size, size) and int64 labels y, the index of the
    direction in ``DIRECTIONS`` (balanced: i % 4, then shuffled).

    Each clip: one shape from ``SHAPES_2D`` of half-width 1 or 2, brightness uniform in
    [0.6, 1], moving ``speed`` pixels per frame; Gaussian noise of std ``noise`` on every pixel.
    See the module docstring for why a frame-order-blind model cannot beat chance.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    span = (frames - 1) * speed
    margin = 2 + 1  # largest half-width + 1 pixel, so every path stays off the border
    if size - 1 - 2 * margin - span < 0:
        raise ValueError(f"moving_shapes: a path of {frames} frames at speed {speed} spans "
                         f"{span} pixels, which does not fit in size={size} with a margin of "
                         f"{margin}; use size >= {span + 2 * margin + 1} or fewer frames")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 4).astype(np.int64)
    x = np.zeros((n, frames, size, size), dtype=np.float64)
    t = np.arange(frames)
    for i in range(n):
        r = int(rng.integers(1, 3))
        sprite = _sprite(int(rng.integers(len(SHAPES_2D))), r) * rng.uniform(0.6, 1.0)
        label = int(labels[i])
        sign = 1 if label in (0, 2) else -1
        # start uniform over the positions that keep the path inside [margin, size-1-margin]:
        # the set of positions {start + sign*speed*t} then has the same law for both signs
        low = margin if sign > 0 else margin + span
        start = int(rng.integers(low, low + size - 2 * margin - span))
        across = int(rng.integers(margin, size - margin))
        along = start + sign * speed * t
        ys, xs = (np.full(frames, across), along) if label < 2 else (along, np.full(frames, across))
        for f in range(frames):
            x[i, f, ys[f] - r:ys[f] + r + 1, xs[f] - r:xs[f] + r + 1] += sprite
    x += noise * rng.standard_normal(x.shape)
    return x[:, None].astype(dtype), labels
