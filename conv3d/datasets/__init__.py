"""Seeded synthetic datasets (no downloads), Kaggle's 3D MNIST reader, and batching.

* ``voxel_digits``: scikit-learn's 8x8 digits as rotated, shifted, noisy 16^3 volumes, split by
  source digit (like Kaggle's 3D MNIST);
* ``shapes3d``: six solids (sphere, cube, torus, cylinder, cone, octahedron) in random poses;
* ``moving_shapes``: clips of a shape moving right/left/down/up (only frame order tells);
* ``segmentation_volumes``: ellipsoids and tubes in noise with per-voxel labels (segmentation);
* ``load_kaggle_3d_mnist``: reads ``full_dataset_vectors.h5`` (needs h5py);
* ``DataLoader``, ``ArrayDataset``, ``to_channels_first``, ``to_channels_last``.
"""
from .kaggle import load_kaggle_3d_mnist
from .loader import ArrayDataset, DataLoader, as_dataset, to_channels_first, to_channels_last
from .segmentation import SEGMENTATION_CLASSES, segmentation_volumes
from .shapes import (DIRECTIONS, REVERSED, SHAPES_2D, SHAPES_3D, moving_shapes, shapes3d)
from .voxel_digits import voxel_digit_sources, voxel_digits

__all__ = ["voxel_digits", "voxel_digit_sources", "shapes3d", "moving_shapes",
           "load_kaggle_3d_mnist", "DataLoader", "ArrayDataset", "as_dataset",
           "to_channels_first", "to_channels_last", "SHAPES_3D", "SHAPES_2D", "DIRECTIONS",
           "REVERSED", "segmentation_volumes", "SEGMENTATION_CLASSES"]
