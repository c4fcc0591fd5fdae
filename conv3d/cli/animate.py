"""``conv3d animate``: a GIF of the kernel sliding through the volume, one frame per output voxel.

Examples::

    conv3d animate --example cube --out cube.gif
    conv3d animate --input 3x5x5 --kernel 3 --padding 1 --stride 2 --fps 2 --out stride.gif
    conv3d animate --example cube --html cube.html     # the same, as an interactive page only
    conv3d animate --example cube --out cube.gif --html cube.html   # both

The page is one self-contained file (no network, no server): a step slider, Play/Pause, hover or
click an output voxel for its products, and the backward view; it is written in well under a
second. A GIF frame is a full matplotlib figure (about a second or more each), so with --html
alone no GIF is written. GIFs use matplotlib's Pillow writer, so no ffmpeg is needed.
"""
from __future__ import annotations

import argparse

import sys
from pathlib import Path

from .explain import add_problem_arguments, problem_from_args


def register(subparsers) -> None:
    p = subparsers.add_parser("animate", help="GIF (or interactive HTML) of the kernel sliding "
                              "through the volume", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_problem_arguments(p)
    p.add_argument("--out", default=None, help="the GIF to write (default conv3d.gif, or none "
                   "when only --html is given)")
    p.add_argument("--fps", type=float, default=1.5, help="frames per second (default 1.5)")
    p.add_argument("--html", metavar="FILE", help="write the interactive page (one file, works "
                   "offline) with a step slider, Play/Pause and hovering")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..teach import viz  # noqa: PLC0415
    try:
        if args.fps <= 0:
            raise ValueError(f"--fps must be positive, got {args.fps}")
        pr = problem_from_args(args)
        gif = args.out if args.out or args.html else "conv3d.gif"
        if gif:
            frames = viz.animate(pr, gif, fps=args.fps)
            print(f"wrote {Path(gif).resolve()} ({frames} frames, one per output voxel)")
        if args.html:
            steps = viz.interactive_html(pr, args.html)
            print(f"wrote {Path(args.html).resolve()} ({steps} steps, one per output voxel; open "
                  f"it in any browser)")
    except ValueError as err:
        print(f"conv3d animate: error: {err}", file=sys.stderr)
        return 2
    return 0
