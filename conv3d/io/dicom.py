"""DICOM series (one file per slice) through pydicom, as a volume with a NIfTI-style affine.

DICOM gives each slice its own geometry: ``ImagePositionPatient`` (the centre of its first
pixel, mm), ``ImageOrientationPatient`` (X, the direction in which the column index grows, then
Y, the direction of the row index; unit vectors) and ``PixelSpacing`` (row spacing dr, then
column spacing dc), all in the patient frame LPS+. The volume's voxel (i, j, k) = (row, column,
slice) then lies at::

    LPS(i, j, k) = P_0 + i * dr * Y + j * dc * X + k * step,   step = (P_last - P_0) / (K - 1)

with the slices sorted by their position along the normal X x Y. The affine returned is that
map, turned to RAS+ by negating x and y (``diag(-1, -1, 1, 1) @ affine_lps``), so
``write_nifti`` stores the volume where the scanner saw it. The data is indexed (i, j, k): slice
k is that file's (row, column) ``pixel_array`` as it is, with ``RescaleSlope`` and
``RescaleIntercept`` applied (the voxel order of nibabel's DICOM wrappers).

Slices that are not equally spaced along one line (a gap, a gantry tilt) have no affine and
are refused, as are multi-frame (enhanced) files.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._optional import require
from .nifti import Volume

#: LPS+ (DICOM) to RAS+ (NIfTI): x and y point the other way
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: how far a slice may sit from its place on the line through the first and last ones, as a
#: fraction of the slice spacing: positions are decimal strings that scanners round, and 1% of
#: the spacing tells such rounding from a missing slice or a tilt
POSITION_TOLERANCE = 0.01


def _files(source) -> list[Path]:
    if isinstance(source, (str, os.PathLike)):
        folder = Path(source)
        if not folder.is_dir():
            raise FileNotFoundError(f"read_dicom_series: {folder} is not a folder; pass the "
                                    f"folder of one series or a list of its files")
        return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    files = [Path(p) for p in source]
    for p in files:
        if not p.is_file():
            raise FileNotFoundError(f"read_dicom_series: no such file {p}")
    return files


def _read_slices(files, pydicom, series_uid):
    slices, skipped = [], []
    for path in files:
        try:
            ds = pydicom.dcmread(path)
        except pydicom.errors.InvalidDicomError:
            skipped.append(path.name)
            continue
        if "PixelData" in ds:
            slices.append((path, ds))
    if not slices:
        raise ValueError(f"read_dicom_series: no DICOM image among {len(files)} files"
                         + (f" (not DICOM: {skipped[:5]})" if skipped else ""))
    uids = sorted({str(ds.get("SeriesInstanceUID", "")) for _, ds in slices})
    if series_uid is not None:
        slices = [(p, ds) for p, ds in slices if str(ds.get("SeriesInstanceUID", "")) ==
                  series_uid]
        if not slices:
            raise ValueError(f"read_dicom_series: no slice of series {series_uid!r}; the files "
                             f"hold {uids}")
    elif len(uids) > 1:
        raise ValueError(f"read_dicom_series: the files hold {len(uids)} series {uids}; pick "
                         f"one with series_uid=")
    return slices


def _geometry(path, ds):
    for tag in ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing"):
        if tag not in ds:
            raise ValueError(f"read_dicom_series: {path.name} has no {tag}, so its place in "
                             f"space is unknown")
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise ValueError(f"read_dicom_series: {path.name} is a multi-frame (enhanced) DICOM "
                         f"file; only one-slice-per-file series are read")
    orientation = np.asarray(ds.ImageOrientationPatient, dtype=np.float64)
    position = np.asarray(ds.ImagePositionPatient, dtype=np.float64)
    spacing = np.asarray(ds.PixelSpacing, dtype=np.float64)  # (between rows, between columns)
    return orientation[:3], orientation[3:], position, spacing


def read_dicom_series(source, dtype=np.float32, series_uid: str | None = None) -> Volume:
    """Read one DICOM series: ``Volume(data (rows, columns, slices), affine (RAS+), None)``.

    Args:
        source: the series' folder (every file in it is tried; non-DICOM files are skipped) or
            a list of its files.
        dtype: float32 (default) or float64, after the rescale slope and intercept.
        series_uid: the SeriesInstanceUID to read when the files hold several series.
    """
    pydicom = require("pydicom", "reading DICOM")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"read_dicom_series: dtype must be float32 or float64, got {dtype}")
    slices = _read_slices(_files(source), pydicom, series_uid)
    geometry = [_geometry(path, ds) for path, ds in slices]
    x_dir, y_dir, _, spacing = geometry[0]
    for (path, _), (x_k, y_k, _, spacing_k) in zip(slices, geometry):
        if not (np.allclose(x_k, x_dir, atol=1e-4) and np.allclose(y_k, y_dir, atol=1e-4)
                and np.allclose(spacing_k, spacing)):
            raise ValueError(f"read_dicom_series: {path.name} has another orientation or pixel "
                             f"spacing than {slices[0][0].name}; a series shares them")
    normal = np.cross(x_dir, y_dir)
    order = np.argsort([float(g[2] @ normal) for g in geometry], kind="stable")
    slices = [slices[k] for k in order]
    positions = np.stack([geometry[k][2] for k in order])
    K = len(slices)
    if K > 1:
        step = (positions[-1] - positions[0]) / (K - 1)
        if np.linalg.norm(step) < 1e-6:
            raise ValueError(f"read_dicom_series: the {K} slices share one position; is this "
                             f"several acquisitions (echoes, time points) of one slice?")
        expected = positions[0] + np.arange(K)[:, None] * step
        off = np.abs(positions - expected).max(axis=1)
        if off.max() > POSITION_TOLERANCE * float(np.linalg.norm(step)):
            bad = slices[int(off.argmax())][0].name
            raise ValueError(f"read_dicom_series: the slices are not equally spaced on one line "
                             f"({bad} is {off.max():.3g} mm off it: a gap or a tilt), so no "
                             f"affine describes them")
    else:  # one slice: its thickness (or 1 mm) along the normal
        thickness = float(slices[0][1].get("SpacingBetweenSlices", 0) or
                          slices[0][1].get("SliceThickness", 0) or 1.0)
        step = normal * thickness
    affine_lps = np.eye(4)
    affine_lps[:3, 0] = y_dir * spacing[0]  # i: the row index, dr mm apart along Y
    affine_lps[:3, 1] = x_dir * spacing[1]  # j: the column index, dc mm apart along X
    affine_lps[:3, 2] = step
    affine_lps[:3, 3] = positions[0]
    data = np.empty(tuple(slices[0][1].pixel_array.shape) + (K,), dtype=dtype)
    for k, (path, ds) in enumerate(slices):
        pixels = ds.pixel_array
        if pixels.ndim != 2 or pixels.shape != data.shape[:2]:
            raise ValueError(f"read_dicom_series: {path.name} holds pixels of shape "
                             f"{pixels.shape}, the first slice {data.shape[:2]}; a series "
                             f"needs one (rows, columns) size, one value per pixel")
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
        data[:, :, k] = pixels.astype(np.float64) * slope + intercept
    return Volume(data, LPS_TO_RAS @ affine_lps, None)
