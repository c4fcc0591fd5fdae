"""Reading and writing medical volumes: NIfTI through nibabel, DICOM series through pydicom.

* ``read_nifti(path)`` -> ``Volume(data, affine, header)``; ``write_nifti(path, data, affine)``
  (a mask written with the scan's affine lies on the scan, voxel for voxel);
* ``read_dicom_series(folder)`` -> ``Volume``: the slices of one series sorted along their
  normal, with the affine in NIfTI's convention, so ``write_nifti`` takes it as it is.

A ``Volume``'s ``data`` is indexed by the file's voxel axes (i, j, k) and its ``affine`` (4, 4)
maps ``(i, j, k, 1)`` to millimetres in the scanner's RAS+ frame (x grows toward the patient's
right, y toward the front, z toward the head), as NIfTI and nibabel do. DICOM's own frame is
LPS+ (x toward the left, y toward the back); ``read_dicom_series`` converts.

Both libraries are optional (``pip install 'conv3d[medical]'``); each function imports its own
when called and says how to install it when it is missing. This package is a utility at the
top: it uses NumPy and those libraries only, and nothing else in conv3d imports it.
"""
from .dicom import read_dicom_series
from .nifti import Volume, read_nifti, write_nifti

__all__ = ["Volume", "read_nifti", "write_nifti", "read_dicom_series"]
