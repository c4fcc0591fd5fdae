"""conv3d.io: NIfTI through nibabel and DICOM series through pydicom. The references are
independent: nibabel reading back what write_nifti wrote, values and voxel positions computed
by hand from the DICOM geometry, and nibabel's own DICOM wrapper for one slice's affine."""
import numpy as np
import pytest

from conv3d.io import read_dicom_series, read_nifti, write_nifti

nib = pytest.importorskip("nibabel", reason="nibabel is not installed: pip install "
                                            "'conv3d[medical]'")

#: an oblique, anisotropic, sheared affine: a round trip that swapped or dropped a column fails
AFFINE = np.array([[0.9, 0.1, 0.0, -40.5],
                   [-0.2, 1.1, 0.3, 12.25],
                   [0.05, 0.0, 2.5, 7.0],
                   [0.0, 0.0, 0.0, 1.0]])


def test_nifti_round_trip_keeps_values_dtype_and_affine(tmp_path):
    data = np.random.default_rng(0).standard_normal((5, 6, 7)).astype(np.float32)
    path = write_nifti(tmp_path / "v.nii.gz", data, AFFINE)
    image = nib.load(str(path))  # nibabel itself, not our reader
    assert image.get_data_dtype() == np.float32
    np.testing.assert_array_equal(np.asarray(image.dataobj), data)
    np.testing.assert_allclose(image.affine, AFFINE, rtol=1e-6, atol=1e-6)  # stored as float32
    vol = read_nifti(path)
    assert vol.data.dtype == np.float32 and vol.data.shape == (5, 6, 7)
    np.testing.assert_array_equal(vol.data, data)
    assert vol.affine.dtype == np.float64
    assert read_nifti(path, dtype=np.float64).data.dtype == np.float64


def test_scaled_scan_is_rescaled_and_a_mask_from_its_header_is_not(tmp_path):
    raw = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    image = nib.Nifti1Image(raw, AFFINE)
    image.header.set_slope_inter(2.0, 10.0)
    nib.save(image, str(tmp_path / "scan.nii"))
    scan = read_nifti(tmp_path / "scan.nii")
    np.testing.assert_array_equal(scan.data, raw * 2.0 + 10.0)  # by hand: slope * raw + inter
    mask = scan.data > 30  # voxels 11..23
    write_nifti(tmp_path / "mask.nii.gz", mask, scan.affine, header=scan.header)
    back = nib.load(str(tmp_path / "mask.nii.gz"))
    assert back.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(back.dataobj), mask.astype(np.uint8))
    np.testing.assert_array_equal(back.get_fdata(), mask)  # no slope 2 / intercept 10 on it
    np.testing.assert_allclose(back.affine, image.affine, atol=1e-6)


def test_nifti_errors_name_the_problem(tmp_path):
    data = np.zeros((2, 2, 2), np.float32)
    with pytest.raises(ValueError, match=r"end in \.nii or \.nii\.gz"):
        write_nifti(tmp_path / "v.npy", data, np.eye(4))
    with pytest.raises(ValueError, match=r"\(4, 4\) array.*\(3, 3\)"):
        write_nifti(tmp_path / "v.nii", data, np.eye(3))
    with pytest.raises(ValueError, match="singular"):
        write_nifti(tmp_path / "v.nii", data, np.diag([1.0, 0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"\(i, j, k\).*\(2, 2\)"):
        write_nifti(tmp_path / "v.nii", np.zeros((2, 2)), np.eye(4))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_nifti(tmp_path / "no" / "v.nii", data, np.eye(4))
    with pytest.raises(TypeError, match="NIfTI header"):
        write_nifti(tmp_path / "v.nii", data, np.eye(4), header={"sform_code": 1})
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_nifti(tmp_path / "missing.nii")


# --- DICOM -------------------------------------------------------------------------------

def _ds(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")  # a DICOM decimal string (<= 16 chars)


def _write_series(folder, volume, x_dir, y_dir, spacing, origin, step, slope=1.0,
                  intercept=0.0, uid="1.2.3.4", names=None):
    """One file per slice k: pixels volume[:, :, k] (rows, columns), position origin + k*step.
    ``names``: the file name of each slice (to write them out of order)."""
    pydicom = pytest.importorskip("pydicom", reason="pydicom is not installed: pip install "
                                                    "'conv3d[medical]'")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    rows, cols, K = volume.shape
    for k in range(K):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.SeriesInstanceUID, ds.Modality = uid, "MR"
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.ImageOrientationPatient = [_ds(v) for v in (*x_dir, *y_dir)]
        ds.ImagePositionPatient = [_ds(v) for v in np.asarray(origin) + k * np.asarray(step)]
        ds.PixelSpacing = [_ds(v) for v in spacing]
        ds.SliceThickness = _ds(float(np.linalg.norm(step)) or 1.0)
        ds.RescaleSlope, ds.RescaleIntercept = _ds(slope), _ds(intercept)
        ds.PixelData = np.ascontiguousarray(volume[:, :, k]).astype("<u2").tobytes()
        name = names[k] if names is not None else f"slice{k:03d}.dcm"
        ds.save_as(str(folder / name), enforce_file_format=True)
    return pydicom


def _volume(shape=(4, 3, 5), seed=0):
    return np.random.default_rng(seed).integers(0, 4000, shape).astype(np.uint16)


def test_series_is_sorted_rescaled_and_placed_in_ras(tmp_path):
    volume = _volume()
    # written out of order: slice 0 in the file that sorts last, and so on
    _write_series(tmp_path, volume, (1, 0, 0), (0, 1, 0), spacing=(0.8, 0.5),
                  origin=(-100.0, -120.0, 30.0), step=(0, 0, 2.5), slope=2.0, intercept=-10.0,
                  names=[f"im{9 - k}.dcm" for k in range(5)])
    (tmp_path / "README.txt").write_text("not DICOM: skipped")
    vol = read_dicom_series(tmp_path)
    assert vol.data.shape == (4, 3, 5) and vol.data.dtype == np.float32
    np.testing.assert_array_equal(vol.data, volume * 2.0 - 10.0)
    # voxel (row i=3, column j=2, slice k=1) by hand: LPS = origin + i*dr*Y + j*dc*X + k*step
    # = (-100 + 2*0.5, -120 + 3*0.8, 30 + 2.5) = (-99, -117.6, 32.5); RAS negates x and y
    np.testing.assert_allclose(vol.affine @ [3, 2, 1, 1], [99.0, 117.6, 32.5, 1.0], atol=1e-9)
    np.testing.assert_allclose(vol.affine[3], [0, 0, 0, 1])


def test_oblique_series_affine_matches_nibabels_dicom_wrapper(tmp_path):
    pydicom = pytest.importorskip("pydicom", reason="pydicom is not installed: pip install "
                                                    "'conv3d[medical]'")
    from nibabel.nicom.dicomwrappers import wrapper_from_data
    c, s = np.cos(0.4), np.sin(0.4)
    x_dir, y_dir = (c, s, 0.0), (0.0, 0.0, -1.0)  # a tilted sagittal-coronal plane
    normal = np.cross(x_dir, y_dir)
    _write_series(tmp_path, _volume((6, 4, 3), seed=1), x_dir, y_dir, spacing=(1.2, 0.7),
                  origin=(10.0, -5.0, 40.0), step=3.0 * normal)
    vol = read_dicom_series(tmp_path, dtype=np.float64)
    first = pydicom.dcmread(str(tmp_path / "slice000.dcm"))
    # nibabel: (row, column, slice) voxels -> LPS mm. From one file it cannot know which way
    # the series goes: its slice axis is a normal times the thickness, up to the sign
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ wrapper_from_data(first).affine
    np.testing.assert_allclose(vol.affine[:, [0, 1, 3]], ras[:, [0, 1, 3]], atol=1e-5)
    np.testing.assert_allclose(np.abs(vol.affine[:3, 2]), np.abs(ras[:3, 2]), atol=1e-5)
    # the series knows: slice k sits at origin + k * 3 * normal (LPS), by construction
    np.testing.assert_allclose(vol.affine[:3, 2], np.diag([-1, -1, 1]) @ (3.0 * normal),
                               atol=1e-5)
    np.testing.assert_array_equal(vol.data[:, :, 0], first.pixel_array)


def test_series_problems_are_refused_with_the_reason(tmp_path):
    pytest.importorskip("pydicom", reason="pydicom is not installed: pip install "
                                          "'conv3d[medical]'")
    a, b = tmp_path / "two_series", tmp_path / "gap"
    a.mkdir()
    b.mkdir()
    _write_series(a, _volume((3, 3, 2)), (1, 0, 0), (0, 1, 0), (1, 1), (0, 0, 0), (0, 0, 1),
                  uid="1.2.3", names=["a0.dcm", "a1.dcm"])
    _write_series(a, _volume((3, 3, 2)), (1, 0, 0), (0, 1, 0), (1, 1), (0, 0, 0), (0, 0, 1),
                  uid="1.2.4", names=["b0.dcm", "b1.dcm"])
    with pytest.raises(ValueError, match=r"2 series.*series_uid="):
        read_dicom_series(a)
    assert read_dicom_series(a, series_uid="1.2.4").data.shape == (3, 3, 2)
    _write_series(b, _volume((3, 3, 4)), (1, 0, 0), (0, 1, 0), (1, 1), (0, 0, 0), (0, 0, 1))
    (b / "slice002.dcm").unlink()  # slices at z = 0, 1, 3: a missing slice
    with pytest.raises(ValueError, match="not equally spaced"):
        read_dicom_series(b)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        read_dicom_series(tmp_path / "nothing")
