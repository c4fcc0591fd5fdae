"""``conv3d explain``: one output voxel (or gradient, column matrix, pooling window, (2+1)D block),
product by product, in the terminal or as a Markdown/LaTeX handout.

Examples::

    conv3d explain --example cube --at 0,0,1
    conv3d explain --input 5x5x5 --kernel 3x3x3 --padding same --stride 2 --at 1,1,1
    conv3d explain --example cube --step              # every output voxel (n/p/q keys)
    conv3d explain --example cube --grad input --at 1,1,1
    conv3d explain --example cube --im2col
    conv3d explain --input 4x4x4 --kernel 2x2x2 --pool max --at 0,1,1
    conv3d explain --input 4x6x6 --kernel 3x3x3 --factorized --at 0,1,1
    conv3d explain --op conv_transpose3d --input 2x2x2 --stride 2 --at 1,0,1 --output-at 2,2,2
"""
from __future__ import annotations

import argparse
import json
import sys

from ._args import add_width_argument, count


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "explain", help="explain one output voxel of a 3D convolution, product by product",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_problem_arguments(p)
    p.add_argument("--at", default="0,0,0", help="d,h,w (or n,k,d,h,w): the output voxel; with "
                   "--grad input an input voxel, with --grad weight a weight tap (default 0,0,0)")
    p.add_argument("--op", choices=["conv3d", "conv_transpose3d"], default="conv3d",
                   help="conv_transpose3d: where input voxel --at scatters, and what output "
                        "voxel --output-at gathers (default conv3d)")
    p.add_argument("--output-at", default=None, help="--op conv_transpose3d: the output voxel "
                   "d,h,w (or n,k,d,h,w) to gather into (default: the middle of the output)")
    p.add_argument("--output-padding", default="0", help="--op conv_transpose3d: int or DxHxW "
                   "(default 0)")
    p.add_argument("--step", action="store_true", help="walk through every position in order "
                   "(keys n/p/q in a terminal; everything in order otherwise)")
    view = p.add_mutually_exclusive_group()
    view.add_argument("--grad", choices=["input", "weight"], help="explain one gradient entry")
    view.add_argument("--im2col", action="store_true", help="the column matrix and the GEMM")
    view.add_argument("--pool", choices=["max", "avg"], help="explain a pooling window instead")
    view.add_argument("--factorized", action="store_true", help="(2+1)D: spatial 1xdxd then "
                      "temporal tx1x1, with the mid-channel rule (kernel txdxd, channels from "
                      "--in-channels/--out-channels)")
    p.add_argument("--grad-output", choices=["ones", "random"], default="ones",
                   help="upstream gradient dL/dy for --grad (default ones: L = sum(y))")
    p.add_argument("--no-count-include-pad", action="store_true",
                   help="--pool avg: divide by the real cells only (PyTorch count_include_pad=False)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--markdown", action="store_true", help="print a Markdown handout")
    fmt.add_argument("--latex", action="store_true",
                     help="print a LaTeX handout (needs the booktabs and caption packages)")
    add_width_argument(p)
    p.set_defaults(func=run)


def add_problem_arguments(p) -> None:
    """The data and geometry options shared by explain, visualize and animate."""
    src = p.add_argument_group("the data (default: random small integers, seed 0)")
    src.add_argument("--example", choices=["cube"], help="the worked 4x4x4 cube and its 3x3x3 filter")
    src.add_argument("--input-file", metavar="F", help="a .npy or .json volume (D,H,W), (C,D,H,W) "
                     "or (N,C,D,H,W); a JSON object may also hold a 'filter'")
    src.add_argument("--random", type=int, metavar="SEED", help="random integer input and weights")
    geo = p.add_argument_group("the convolution")
    geo.add_argument("--input", default="4x4x4", metavar="DxHxW", help="input size (default 4x4x4)")
    geo.add_argument("--kernel", default=None, metavar="kDxkHxkW",
                     help="kernel size (default 3x3x3, or the filter that --example/--input-file brings)")
    geo.add_argument("--stride", default=None, help="int or DxHxW (default 1; for --pool: the kernel)")
    geo.add_argument("--padding", default="0", help="int, DxHxW, 'same' or 'valid' (default 0)")
    geo.add_argument("--dilation", default="1", help="int or DxHxW (default 1)")
    geo.add_argument("--batch", type=count(1), default=1, help="N (default 1)")
    geo.add_argument("--in-channels", type=count(1), default=1, help="C (default 1)")
    geo.add_argument("--out-channels", type=count(1), default=1, help="K (default 1)")
    geo.add_argument("--bias", type=float, default=0.0, help="bias added to every output (default 0)")


def problem_from_args(args):
    from ..teach.problem import make_problem  # noqa: PLC0415
    return make_problem(
        input_size=args.input, kernel=args.kernel, stride=args.stride or "1",
        padding=args.padding, dilation=args.dilation, example=args.example,
        input_file=args.input_file, seed=args.random, batch=args.batch,
        in_channels=args.in_channels, out_channels=args.out_channels, bias=args.bias)


def parse_at(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise ValueError(f"--at must be comma-separated ints such as 0,0,1, got {text!r}") from None


def check_example_args(args) -> None:
    """The cube brings its own data, so a size option given with it would be silently ignored:
    refuse it instead (ValueError naming the option)."""
    if args.example != "cube":
        return
    fixed = [("--input", args.input, "4x4x4"), ("--batch", args.batch, 1),
             ("--in-channels", args.in_channels, 1)]
    if not args.factorized:  # (2+1)D takes its output channels from --out-channels
        fixed.append(("--out-channels", args.out_channels, 1))
    for flag, value, cube in fixed:
        if value != cube:
            raise ValueError(f"{flag} {value}: the cube example is one 4x4x4 volume with 1 "
                             f"channel and one 3x3x3 filter (N=1, C=1, K=1); drop {flag}, or "
                             f"use --random SEED (or --input-file F) for other sizes")


def run_transpose(args, fmt_name: str, file=None) -> None:
    """``--op conv_transpose3d``: the scatter of one input voxel and the gather of one output."""
    from ..teach.report import render  # noqa: PLC0415
    from ..teach.transpose_view import explain_transpose, make_transpose_problem  # noqa: PLC0415

    unsupported = [flag for flag, used in (
        ("--example", args.example), ("--input-file", args.input_file), ("--step", args.step),
        ("--grad", args.grad), ("--im2col", args.im2col), ("--pool", args.pool),
        ("--factorized", args.factorized), ("--batch", args.batch != 1),
        ("--bias", args.bias != 0)) if used]
    if unsupported:
        raise ValueError(f"{', '.join(unsupported)} cannot be combined with --op "
                         f"conv_transpose3d (it takes --input, --kernel, --stride, --padding, "
                         f"--output-padding, --dilation, --in-channels, --out-channels, "
                         f"--random, --at and --output-at)")
    tp = make_transpose_problem(args.input,
                                args.kernel or "3x3x3", args.stride or "1", args.padding,
                                args.output_padding, args.dilation, args.random,
                                args.in_channels, args.out_channels)
    output_at = None if args.output_at is None else parse_at(args.output_at)
    render(explain_transpose(tp, parse_at(args.at), output_at), fmt_name, file,
           getattr(args, "width", None))


def run(args, stdin=None, file=None) -> int:
    from ..teach import explain, grad  # noqa: PLC0415
    from ..teach.report import Report, render  # noqa: PLC0415
    fmt_name = "markdown" if args.markdown else "latex" if args.latex else "rich"
    try:
        if args.op == "conv_transpose3d":
            run_transpose(args, fmt_name, file)
            return 0
        if args.output_at is not None or args.output_padding != "0":
            raise ValueError("--output-at and --output-padding belong to --op conv_transpose3d")
        check_example_args(args)
        if args.pool:
            from ..teach import pool_view  # noqa: PLC0415
            pp = pool_view.make_pool_problem(args)
            build = lambda at, first=True: pool_view.explain_pool(pp, at, with_problem=first)  # noqa: E731
            positions = pool_view.positions(pp)
        elif args.factorized:
            from ..teach import factorized_view  # noqa: PLC0415
            fp = factorized_view.make_factorized_problem(args)
            build = lambda at, first=True: factorized_view.explain_factorized(fp, at, with_problem=first)  # noqa: E731
            positions = factorized_view.positions(fp)
        else:
            pr = problem_from_args(args)
            seed = args.random or 0
            if args.im2col:
                from ..teach.im2col_view import explain_im2col  # noqa: PLC0415
                render(explain_im2col(pr), fmt_name, file, getattr(args, "width", None))
                return 0
            if args.grad == "input":
                build = lambda at, first=True: grad.explain_input_grad(pr, at, args.grad_output, seed, first)  # noqa: E731
                positions = grad.input_positions(pr)
            elif args.grad == "weight":
                build = lambda at, first=True: grad.explain_weight_grad(pr, at, args.grad_output, seed, first)  # noqa: E731
                positions = grad.weight_positions(pr)
            else:
                build = lambda at, first=True: explain.explain_voxel(pr, at, with_problem=first)  # noqa: E731
                positions = explain.all_positions(pr)
        if args.step:
            first = {"done": False}

            def build_step(at):
                rep = build(at, not first["done"])  # the problem description only once
                first["done"] = True
                return rep
            explain.step_through(positions, build_step, fmt_name, file, stdin,
                                 width=getattr(args, "width", None))
        else:
            rep: Report = build(parse_at(args.at))
            render(rep, fmt_name, file, getattr(args, "width", None))
    except json.JSONDecodeError as err:  # before ValueError, its base: name the file
        print(f"conv3d explain: error: argument --input-file: {args.input_file} is not valid "
              f"JSON: {err.msg} at line {err.lineno}, column {err.colno}", file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"conv3d explain: error: {err}", file=sys.stderr)
        return 2
    return 0
