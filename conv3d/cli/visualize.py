"""``conv3d visualize``: pictures of one convolution step, written to files (paths are printed).

Examples::

    conv3d visualize --example cube --at 0,0,1                 # slices.png and voxels.png
    conv3d visualize --example cube --html cube.html           # interactive, works offline
    conv3d visualize --input 4x5x5 --padding 1 --stride 2 --at 1,1,1 --out-dir figs
    conv3d visualize --all-figures docs/images                 # every figure of the docs
    conv3d visualize --mri mri_edges.png                       # a real MRI scan, edge kernel
"""
from __future__ import annotations

import argparse

import sys
from pathlib import Path

from .explain import add_problem_arguments, parse_at, problem_from_args


def register(subparsers) -> None:
    p = subparsers.add_parser("visualize", help="draw a convolution step: slice grid, 3D voxels, "
                              "interactive HTML, the MRI demo", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_problem_arguments(p)
    p.add_argument("--at", default="0,0,0", help="the output voxel d,h,w (default 0,0,0)")
    p.add_argument("--out-dir", default=".", help="where slices.png and voxels.png go (default .)")
    p.add_argument("--html", metavar="FILE", help="write the interactive page (one file, works "
                   "offline) instead of the PNGs")
    p.add_argument("--mri", metavar="FILE", help="write the MRI edge-detection demo instead")
    p.add_argument("--all-figures", metavar="DIR", help="regenerate every documentation figure in DIR")
    p.set_defaults(func=run)


def all_figures(out_dir) -> list[Path]:
    """The documentation figures: one of each picture type (see docs/make_figures.py)."""
    from ..teach import viz, volume_demo  # noqa: PLC0415
    from ..teach.problem import make_problem  # noqa: PLC0415
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cube = make_problem(example="cube")
    padded = make_problem(input_size="3x5x5", kernel="3x3x3", padding="1", stride="2", seed=4)
    written = [viz.slice_grid(cube, (0, 0, 1), out / "slice_grid_cube.png"),
               viz.slice_grid(padded, (1, 1, 1), out / "slice_grid_padding_stride.png"),
               viz.voxel_view(cube, (0, 0, 1), out / "voxels_cube.png")]
    viz.animate(cube, out / "sliding_cube.gif")
    written.append(out / "sliding_cube.gif")
    written.append(viz.gif_filmstrip(out / "sliding_cube.gif", out / "sliding_cube_frames.png"))
    written.append(viz.html_preview(cube, (0, 0, 1), out / "interactive_preview.png"))
    written.append(volume_demo.render(out / "mri_edges.png"))
    return [Path(p) for p in written]


def run(args) -> int:
    from ..teach import viz, volume_demo  # noqa: PLC0415
    try:
        if args.all_figures:
            paths = all_figures(args.all_figures)
        elif args.mri:
            paths = [volume_demo.render(args.mri)]
        else:
            pr = problem_from_args(args)
            at = parse_at(args.at)
            if args.html:
                viz.interactive_html(pr, args.html)
                paths = [args.html]
            else:
                out = Path(args.out_dir)
                out.mkdir(parents=True, exist_ok=True)
                paths = [viz.slice_grid(pr, at, out / "slices.png"),
                         viz.voxel_view(pr, at, out / "voxels.png")]
    except (ValueError, ImportError, FileNotFoundError) as err:
        print(f"conv3d visualize: error: {err}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"wrote {Path(path).resolve()}")
    return 0
