"""NIfTI-1/NIfTI-2 files (.nii, .nii.gz) through nibabel, keeping the affine."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ._optional import require


class Volume(NamedTuple):
    """A volume read from disk: ``data`` (i, j, k[, t]) array, ``affine`` (4, 4) float64 voxel
    -> RAS+ millimetres, ``header`` the reader's header (nibabel's for NIfTI, None for DICOM)."""
    data: np.ndarray
    affine: np.ndarray
    header: Any = None


def check_affine(affine) -> np.ndarray:
    """``affine`` as a (4, 4) float64 array whose last row is (0, 0, 0, 1) and whose 3x3 part
    is invertible (a voxel grid must map onto space one to one)."""
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4):
        raise ValueError(f"affine must be a (4, 4) array (voxel (i, j, k, 1) -> millimetres), got "
                         f"shape {a.shape}")
    if not np.allclose(a[3], (0, 0, 0, 1)):
        raise ValueError(f"affine's last row must be (0, 0, 0, 1), got {a[3].tolist()}")
    if abs(np.linalg.det(a[:3, :3])) < 1e-12:
        raise ValueError(f"affine's 3x3 part is singular (a voxel axis of zero length): "
                         f"{a[:3, :3].tolist()}")
    return a


def read_nifti(path, dtype=np.float32) -> Volume:
    """Read a .nii/.nii.gz file: ``Volume(data, affine, header)``.

    ``data`` has the file's scaling applied (``scl_slope``, ``scl_inter``) and the given float
    dtype (float32 by default, float64 on request); ``affine`` is nibabel's best affine (the
    sform, else the qform); ``header`` is nibabel's, for ``write_nifti(..., header=)``.
    """
    nib = require("nibabel", "reading and writing NIfTI")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"read_nifti: no such file {path!r}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"read_nifti: dtype must be float32 or float64, got {dtype}")
    image = nib.load(path)
    if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
        raise ValueError(f"read_nifti: {path!r} is a {type(image).__name__}, not NIfTI")
    return Volume(image.get_fdata(dtype=dtype), np.asarray(image.affine, dtype=np.float64),
                  image.header)


def write_nifti(path, data, affine, header=None) -> Path:
    """Write ``data`` (i, j, k[, t]) with ``affine`` to ``path`` (.nii or .nii.gz); returns it.

    The array is stored in its own dtype (a bool mask as uint8), unscaled, and both the sform
    and the qform hold ``affine`` (code 'scanner' unless ``header`` has its own codes).
    ``header``: a NIfTI header to start from (``read_nifti(...).header``), for its units and
    codes; its size and dtype are replaced by the data's.
    """
    nib = require("nibabel", "reading and writing NIfTI")
    path = Path(path)
    if not path.name.endswith((".nii", ".nii.gz")):
        raise ValueError(f"write_nifti: the file name must end in .nii or .nii.gz, got "
                         f"{path.name!r}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"write_nifti: the folder {path.parent} does not exist")
    data = np.asarray(data)
    if data.dtype == bool:
        data = data.astype(np.uint8)
    if data.ndim not in (3, 4):
        raise ValueError(f"write_nifti: data must be (i, j, k) or (i, j, k, t), got shape "
                         f"{data.shape}")
    affine = check_affine(affine)
    if header is not None and not isinstance(header, nib.Nifti1Header):
        raise TypeError(f"write_nifti: header must be a NIfTI header (read_nifti(...).header), "
                        f"got {type(header).__name__}")
    header = header.copy() if header is not None else nib.Nifti1Header()
    # Nifti2Header subclasses Nifti1Header: test for it first
    kind = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
    image = kind(data, affine, header=header)
    image.header.set_data_dtype(data.dtype)
    # the values as they are: a header copied from a scaled scan must not rescale a mask
    image.header.set_slope_inter(1.0, 0.0)
    sform_code = int(header["sform_code"]) or 1
    qform_code = int(header["qform_code"]) or 1
    image.set_sform(affine, code=sform_code)
    image.set_qform(affine, code=qform_code)
    nib.save(image, str(path))
    return path
