"""The CUDA C kernel sources (``*.cu``), installed as the package data of ``conv3d.kernels``."""
