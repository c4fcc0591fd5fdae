"""``conv3d explore``: write the 3D convolution explorer, one self-contained HTML page.

Examples::

    conv3d explore                                   # explore.html: the worked cube, every slider
    conv3d explore --out lecture.html --input 5 --stride 2 --padding same --channels 2

Open the file in any browser, offline: no server and no network are needed. Sliders set the
input size, kernel, stride, padding (0..3 or 'same'), dilation and channels; hover or click an
output voxel to see its receptive field, its products and subtotals, the output-size formula and
the NumPy line; Play walks through every output voxel; the backward view shows one input voxel's
gradient. The options below only choose where the sliders start.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _limited(name, lo, hi):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--{name} takes an int from {lo} to {hi}, got "
                                             f"{text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"--{name} must be from {lo} to {hi} (the slider's "
                                             f"range), got {v}")
        return v
    return parse


def _padding(text):
    if text.strip().lower() == "same":
        return "same"
    try:
        return _limited("padding", 0, 3)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"--padding takes an int from 0 to 3 or 'same', got "
                                         f"{text!r}") from None


def register(subparsers) -> None:
    p = subparsers.add_parser("explore", help="write the interactive 3D convolution explorer "
                              "(one offline HTML page)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="explore.html", help="the page to write (default explore.html)")
    p.add_argument("--input", type=_limited("input", 1, 8), default=4,
                   help="input size D=H=W, 1..8 (default 4)")
    p.add_argument("--kernel", type=_limited("kernel", 1, 5), default=3,
                   help="kernel, 1..5 (default 3)")
    p.add_argument("--stride", type=_limited("stride", 1, 3), default=1,
                   help="stride, 1..3 (default 1)")
    p.add_argument("--padding", type=_padding, default=0, help="0..3 or 'same' (default 0)")
    p.add_argument("--dilation", type=_limited("dilation", 1, 3), default=1,
                   help="dilation, 1..3 (default 1)")
    p.add_argument("--channels", type=_limited("channels", 1, 3), default=1,
                   help="input channels C, 1..3 (default 1)")
    p.add_argument("--out-channels", type=_limited("out-channels", 1, 2), default=1,
                   help="output channels K, 1..2 (default 1)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..teach.explorer import write_explorer  # noqa: PLC0415
    initial = dict(input=args.input, kernel=args.kernel, stride=args.stride, padding=args.padding,
                   dilation=args.dilation, channels=args.channels, outchannels=args.out_channels)
    cube = (args.input, args.kernel, args.channels, args.out_channels) == (4, 3, 1, 1)
    initial["data"] = "cube" if cube else "formula"
    try:
        path = write_explorer(args.out, initial=initial)
    except OSError as err:
        print(f"conv3d explore: error: cannot write {args.out!r}: {err}", file=sys.stderr)
        return 2
    print(f"wrote {Path(path).resolve()} (open it in any browser; it works offline)")
    return 0
