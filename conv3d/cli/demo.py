"""``conv3d demo``: the worked 4x4x4 cube, with every voxel the published figure gets wrong."""
from __future__ import annotations

from ._args import add_width_argument


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="compute the worked 4x4x4 cube example and check the published figure",
        description="Convolve the 4x4x4 cube with the 3x3x3 filter from a published figure, print "
                    "the output beside the figure's, and show the arithmetic of every voxel where "
                    "the figure is wrong.")
    add_width_argument(p)
    p.set_defaults(func=run)


def fit_lines(text: str, width: int) -> str:
    """Wrap each line of ``text`` at spaces to ``width`` columns; a continuation is indented
    two more spaces than its line, so a wrapped sum still reads as one."""
    import textwrap  # noqa: PLC0415

    out = []
    for line in text.splitlines():
        indent = " " * (len(line) - len(line.lstrip(" ")))
        out.extend(textwrap.wrap(line, width, subsequent_indent=indent + "  ",
                                 break_long_words=False, break_on_hyphens=False) or [""])
    return "\n".join(out)


def run(args) -> int:
    import shutil  # noqa: PLC0415

    from ..teach.cube import report  # imported on use: `conv3d --help` stays fast
    from ..teach.report import terminal_width  # noqa: PLC0415

    width = terminal_width(None, getattr(args, "width", None)) or shutil.get_terminal_size().columns
    print(fit_lines(report(), width))
    return 0
