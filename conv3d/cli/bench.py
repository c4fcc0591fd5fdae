"""``conv3d bench``: time conv3d against PyTorch in one run and write the report.

Runs the benchmark suites of ``conv3d.bench`` (agreement check first, then interleaved rounds
with warm-up, medians and best times) and writes ``README.md`` (the table), ``README.png`` (the
chart) and ``README.json`` (every number; ``quick.*`` with ``--quick``) into a new folder
``./conv3d-bench-YYYYMMDD-HHMMSS``, or into ``--out``. Float32; ``--threads`` sets the BLAS,
numba and PyTorch thread counts (default 2). Without PyTorch the PyTorch rows are skipped
(pip install 'conv3d[torch]').

    conv3d bench --quick                      # tiny shapes: checks that every row runs
    conv3d bench                              # the shapes a1, a2, b and the worked cube
    conv3d bench --suite layers               # every distinct layer of r3d_18, mc3_18,
                                              # r2plus1d_18, s3d and a 3D U-Net
                                              # (aims at --budget 600 seconds)
    conv3d bench --suite layers --quick --filter "r3d_18 layer1"
    conv3d bench --suite decoder              # a 3D U-Net's transposed convolutions and
                                              # trilinear upsampling, against PyTorch
    conv3d bench --suite models               # whole r3d_18 and r2plus1d_18
    conv3d bench --device cuda                # the suites' convolutions on an NVIDIA GPU:
                                              # conv3d's CUDA kernels against cuDNN (fp32
                                              # strict, TF32, bf16), CUDA-event timing
"""
from __future__ import annotations

import argparse
import shlex
import sys

from conv3d.bench import run as bench_run


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="benchmark conv3d against PyTorch; write a table "
                              "and a chart", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    bench_run.build_parser(p)
    p.set_defaults(func=_run)


def _run(args) -> int:
    command = "conv3d bench " + shlex.join(sys.argv[2:] if sys.argv[1:2] == ["bench"] else [])
    return bench_run.run(args, command.strip())
