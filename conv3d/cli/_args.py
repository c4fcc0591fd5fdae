"""Argument types and options that several ``conv3d`` subcommands share.

A bad value fails in argparse, which prints the usage and a one-line
``conv3d CMD: error: argument --x: ...`` and exits with status 2.
"""
from __future__ import annotations

import argparse


def count(minimum: int):
    """An argparse type: a whole number of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if n < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {n}")
        return n
    parse.__name__ = f"int >= {minimum}"  # what argparse names in its messages
    return parse


def add_width_argument(p) -> None:
    """``--width N``: the columns a terminal table or explanation is printed at (a projector)."""
    p.add_argument("--width", type=count(20), default=None, metavar="N",
                   help="print N columns wide (default: the terminal's width, or COLUMNS, or 80 "
                        "when the output is not a terminal)")
