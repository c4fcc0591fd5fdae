"""``conv3d shapes MODEL_OR_SPEC``: output size (formula filled in), receptive field and jump per layer.

Examples::

    conv3d shapes "input=16x16x16; conv k=3 s=1 p=0; pool k=2; conv k=3"
    conv3d shapes keras-3d-mnist
    conv3d shapes c3d --markdown
"""
from __future__ import annotations

import argparse

import sys

from ._args import add_width_argument


def register(subparsers) -> None:
    from ..teach.shapes import MODELS  # noqa: PLC0415
    p = subparsers.add_parser(
        "shapes", help="per-layer output sizes, receptive fields and jumps of a conv/pool stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="spec syntax: 'input=[C x]DxHxW' then layers separated by ';', each 'conv' or 'pool'\n"
               "(also maxpool/avgpool) with k= (kernel), s= (stride; a pool's default is its\n"
               "kernel), p= (padding; p=same for conv), d= (dilation), c= (output channels,\n"
               "gives the parameter count); every value an int or DxHxW.\n"
               "exit code: 0, or 1 when a layer's output would be smaller than one voxel.")
    p.add_argument("spec", metavar="MODEL_OR_SPEC",
                   help=f"a model name ({', '.join(sorted(MODELS))}) or a spec such as "
                        f"'input=16x16x16; conv k=3 s=1 p=0; pool k=2; conv k=3'")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--markdown", action="store_true", help="print a Markdown table")
    fmt.add_argument("--latex", action="store_true", help="print a LaTeX table")
    add_width_argument(p)
    p.set_defaults(func=run)


def run(args, file=None) -> int:
    """Exit code 0 when every layer has an output of at least one voxel, 1 otherwise."""
    from ..teach.report import render  # noqa: PLC0415
    from ..teach.shapes import shapes_report  # noqa: PLC0415
    try:
        report, ok = shapes_report(args.spec)
    except ValueError as err:
        print(f"conv3d shapes: error: {err}", file=sys.stderr)
        return 2
    render(report, "markdown" if args.markdown else "latex" if args.latex else "rich", file,
           getattr(args, "width", None))
    return 0 if ok else 1
