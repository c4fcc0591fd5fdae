"""From a NIfTI file on disk to a NIfTI mask on disk: the 3D U-Net trained on the synthetic
ellipsoids and tubes, run on the small brain MRI that nibabel ships (anatomical.nii).

Steps (docs/tutorials/segmentation.md walks through them):

1. read the scan with ``conv3d.io.read_nifti`` (data and affine);
2. scale its intensities to about [0, 1], the range of the training volumes;
3. ``segment_volume``: pad to a multiple of 2**depth, run the U-Net, crop the labels back;
4. ``conv3d.io.write_nifti``: the mask, with the scan's affine and header;
5. pictures: held-out synthetic volumes (input, truth, prediction) and the scan with its mask.

The U-Net was trained on synthetic shapes, never on anatomy: on the scan its mask marks bright,
compact (ellipsoid-like) and thin (tube-like) structures, not organs.

Run:  python examples/segment_mri.py --weights unet.npz [--out DIR]
      (unet.npz from: conv3d train segmentation --checkpoint unet.npz; the tutorial's pictures
      in docs/images/ come from the shipped weights: --weights conv3d/data/unet3d_synthetic.npz
      --out docs/images, then the mask it writes there is deleted)
"""
import argparse
import sys
from pathlib import Path

import numpy as np
from nibabel.testing import data_path

from conv3d.datasets import SEGMENTATION_CLASSES, segmentation_volumes
from conv3d.io import read_nifti, write_nifti
from conv3d.models import unet3d
from conv3d.teach.segment_view import overlay_figure
from conv3d.train import load
from conv3d.train.segmentation import HELD_OUT_SEED_OFFSET, dice_score, segment_volume


def scale_to_unit(volume: np.ndarray) -> np.ndarray:
    """Intensities mapped so the 1st percentile is 0 and the 99.5th is 1 (then clipped to
    [0, 1.2]): the synthetic volumes' background sits near 0 and their objects at 0.6 to 1."""
    lo, hi = np.percentile(volume, [1, 99.5])
    return np.clip((volume - lo) / (hi - lo), 0.0, 1.2).astype(np.float32)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True,
                        help="a checkpoint or state dict of unet3d(num_classes=3, "
                             "base_channels=8, depth=2) (conv3d train segmentation --checkpoint)")
    parser.add_argument("--out", default=".", help="folder for the mask and the pictures")
    args = parser.parse_args(argv)
    out = Path(args.out)
    model = load(unet3d(num_classes=3, base_channels=8, depth=2), args.weights)

    x, y = segmentation_volumes(4, seed=HELD_OUT_SEED_OFFSET)
    pred = np.stack([segment_volume(model, v) for v in x])
    dice = dice_score(pred, y, 3)
    print(f"held-out synthetic volumes: mean foreground Dice {dice[:, 1:].mean():.3f}")
    overlay_figure([("input", x[0, 0], None), ("true labels", x[0, 0], y[0]),
                    ("U-Net prediction", x[0, 0], pred[0])], slices=[6, 11, 16, 21, 26],
                   path=out / "segmentation_synthetic.png", class_names=SEGMENTATION_CLASSES,
                   title="A held-out synthetic volume (32^3): slices across axis 2")

    scan = read_nifti(Path(data_path) / "anatomical.nii")
    labels = segment_volume(model, scale_to_unit(scan.data))
    mask_path = write_nifti(out / "anatomical_mask.nii.gz", labels.astype(np.uint8),
                            scan.affine, header=scan.header)
    counts = np.bincount(labels.ravel(), minlength=3)
    print(f"scan {scan.data.shape}: " + ", ".join(
        f"{name} {n} voxels" for name, n in zip(SEGMENTATION_CLASSES, counts)))
    print(f"wrote {mask_path}")
    overlay_figure([("anatomical.nii", scan.data, None),
                    ("U-Net mask", scan.data, labels)], slices=[6, 9, 12, 15, 18],
                   path=out / "segmentation_mri.png", class_names=SEGMENTATION_CLASSES,
                   title="nibabel's anatomical.nii (33x41x25) and the synthetic-trained U-Net's "
                         "mask: slices across axis 2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
