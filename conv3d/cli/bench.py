"""``conv3d bench``: time every convolution implementation against PyTorch and write the report.

Runs the benchmark suite in ``benchmarks/`` (agreement check first, then interleaved rounds with
warm-up, medians) and writes ``README.md`` (the table), ``README.png`` (the chart) and
``README.json`` under ``--out`` (``quick.*`` with ``--quick``). Float32; ``--threads`` sets the
BLAS, numba and PyTorch thread counts (default 2).

    conv3d bench --quick --out /tmp/bench     # tiny shapes: checks that every row runs
    conv3d bench                              # the full run behind docs/benchmarks (minutes)

The suite lives in the ``benchmarks/`` folder of a source checkout (next to the ``conv3d``
package), where this command finds it.
"""
from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys


def _benchmarks():
    """Import the ``benchmarks`` package of the source checkout this conv3d was loaded from."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if os.path.isdir(os.path.join(root, "benchmarks")) and root not in sys.path:
        sys.path.insert(0, root)
    try:
        return importlib.import_module("benchmarks.run")
    except ImportError as exc:
        raise SystemExit(f"conv3d bench: the benchmark suite (benchmarks/ next to the conv3d "
                         f"package) was not found ({exc}); run it from a source checkout: "
                         f"git clone ... && pip install -e . && conv3d bench") from exc


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="benchmark conv3d against PyTorch; write a table "
                              "and a chart", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="tiny shapes and few rounds (checks that everything runs)")
    p.add_argument("--out", default="docs/benchmarks", help="output folder (default %(default)s)")
    p.add_argument("--name", default=None, help="base name of the files (default README, or "
                   "quick with --quick)")
    p.add_argument("--threads", type=int, default=2, help="BLAS/numba/PyTorch threads")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds per case")
    p.add_argument("--only", default="conv,pool,block,train",
                   help="comma-separated subset of conv,pool,block,train")
    p.add_argument("--shapes", default=None, help="comma-separated conv shapes: cube,a1,a2,b "
                   "(default), small")
    p.add_argument("--no-gpu", action="store_true", help="leave out the CuPy/GPU rows")
    p.set_defaults(func=_run)


def _run(args) -> int:
    if args.threads < 1:
        print(f"conv3d bench: --threads must be >= 1, got {args.threads}", file=sys.stderr)
        return 2
    command = "conv3d bench " + shlex.join(sys.argv[2:] if sys.argv[1:2] == ["bench"] else [])
    return _benchmarks().run(args, command.strip())
