"""Regenerate every figure under docs/images/ (run from the repository root).

    python docs/make_figures.py            # same as: conv3d visualize --all-figures docs/images

Figures: the slice grid of the worked cube and of a padded, strided example; the 3D voxel view;
the GIF of the kernel sliding through the cube and a still strip of its first frames; a still of
the interactive page's scene; the MRI edge-detection demo.
"""
from __future__ import annotations

import sys
from pathlib import Path

from conv3d.cli.visualize import all_figures

if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "images"
    for path in all_figures(out):
        print(f"wrote {path}")
