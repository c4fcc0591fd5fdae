"""``conv3d demo``: the worked 4x4x4 cube, with every voxel the published figure gets wrong."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="compute the worked 4x4x4 cube example and check the published figure",
        description="Convolve the 4x4x4 cube with the 3x3x3 filter from a published figure, print "
                    "the output beside the figure's, and show the arithmetic of every voxel where "
                    "the figure is wrong.")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..teach.cube import report  # imported on use: `conv3d --help` stays fast

    print(report())
    return 0
