"""Run the benchmark suite and write docs/benchmarks/README.md (+ .png chart, + .json).

    python -m benchmarks.run                  # the full run (several minutes on 2 cores)
    python -m benchmarks.run --quick --out /tmp/bench   # tiny shapes, seconds
    conv3d bench [--quick] [--out DIR]        # the same, from the conv3d command

Everything is float32, with ``--threads`` BLAS/numba/PyTorch threads (default 2).
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time

BENCHES = ("conv", "pool", "block", "train")


def build_parser(parser=None):
    parser = parser or argparse.ArgumentParser(prog="python -m benchmarks.run",
                                               description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny shapes and few rounds (checks that everything runs)")
    parser.add_argument("--out", default="docs/benchmarks", help="output folder")
    parser.add_argument("--name", default=None,
                        help="base name of the files (default README, or quick with --quick)")
    parser.add_argument("--threads", type=int, default=2, help="BLAS/numba/PyTorch threads")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed rounds per case (default 7, 3 with --quick; big shapes get "
                             "at least 3)")
    parser.add_argument("--only", default=",".join(BENCHES),
                        help=f"comma-separated subset of {','.join(BENCHES)}")
    parser.add_argument("--shapes", default=None,
                        help="comma-separated conv shapes (default cube,a1,a2,b; quick: "
                             "cube,small)")
    parser.add_argument("--no-gpu", action="store_true", help="leave out the CuPy/GPU rows")
    return parser


def targets_section(rows) -> str:
    """The issue's done-when numbers, read off this run's rows."""
    def find(bench, shape, impl):
        return next((r for r in rows if r["bench"] == bench and r["shape"] == shape
                     and r["impl"] == impl and r["ms"] is not None), None)
    lines = ["## Issue 6 targets, from this run", "",
             "| target | measured | met? |", "|---|---|---|"]
    ratios = []
    for shape in ("a1", "a2", "b"):
        r = find("conv3d forward+backward", shape, "conv3d auto (fast path)")
        if r and r["ratio"] is not None:
            ratios.append(r["ratio"])
            lines.append(f"| fwd+bwd {shape} within 1.5x of PyTorch | {r['ratio']:.3f}x "
                         f"({r['ms']:.0f} ms) | {'yes' if r['ratio'] <= 1.5 else 'no'} |")
    if len(ratios) == 3:
        best = min(ratios)
        lines.append(f"| fwd+bwd within 1.2x on at least one of a1, a2, b | best {best:.3f}x | "
                     f"{'yes' if best <= 1.2 else 'no'} |")
    r = find("conv3d forward", "b", "conv3d auto (fast path)")
    if r and r["frac_gemm"] is not None:
        lines.append(f"| forward b >= 60% of the measured GEMM rate | {r['frac_gemm']:.0%} "
                     f"({r['gflops']:.0f} GFLOP/s) | {'yes' if r['frac_gemm'] >= 0.6 else 'no'} |")
    return "\n".join(lines) + "\n" if len(lines) > 4 else ""


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run(args, "python -m benchmarks.run " + shlex.join(argv if argv is not None
                                                                else sys.argv[1:]))


def run(args, command) -> int:
    import conv3d  # noqa: PLC0415

    from . import cases, cases_model, report  # noqa: PLC0415
    from .harness import machine_info, run_case  # noqa: PLC0415
    only = set(args.only.split(","))
    unknown = only - set(BENCHES)
    if unknown:
        print(f"unknown benchmark(s) {sorted(unknown)}; choose from {BENCHES}", file=sys.stderr)
        return 2
    shapes = (args.shapes.split(",") if args.shapes else
              ["cube", "small"] if args.quick else ["cube", "a1", "a2", "b"])
    bad = [s for s in shapes if s not in cases.CONV_SHAPES]
    if bad:
        print(f"unknown shape(s) {bad}; choose from {list(cases.CONV_SHAPES)}", file=sys.stderr)
        return 2
    repeats = args.repeats or (3 if args.quick else 7)
    conv3d.set_num_threads(args.threads)
    torch = cases.torch_module()
    if torch:
        torch.set_num_threads(args.threads)
    info = machine_info()
    print(f"conv3d bench: {info['cpu']}, {args.threads} threads, {info['blas']}")
    all_cases = []
    if "conv" in only:
        for shape in shapes:
            for backward in (False, True):
                all_cases.append(lambda s=shape, bw=backward:
                                 cases.conv_case(s, bw, gpu=not args.no_gpu))
    if "pool" in only:
        for shape in (["cube"] if args.quick else list(cases.POOL_SHAPES)):
            all_cases.append(lambda s=shape: cases.pool_case(s))
    if "block" in only:
        block_shape = (2, 8, 4, 8, 8) if args.quick else cases_model.R21D_SHAPE
        all_cases.append(lambda: cases_model.block_cases(block_shape, 8 if args.quick else 64))
    if "train" in only:
        all_cases.append(lambda: cases_model.train_case(8 if args.quick else 128))
    rows, t0 = [], time.perf_counter()
    for make in all_cases:
        built = make()
        for case in built if isinstance(built, list) else [built]:
            big = case.shape in ("b", "a1")
            rows += run_case(case, max(3, repeats // 2) if big else repeats)
    name = args.name or ("quick" if args.quick else "README")
    title = "conv3d benchmarks" + (" (--quick)" if args.quick else "")
    md, png = report.write(rows, info, command, args.out, name, title)
    targets = targets_section(rows)
    if targets:
        with open(md) as f:
            text = f.read()
        head, sep, rest = text.partition("\nFloat32.")
        with open(md, "w") as f:
            f.write(head + "\n" + targets + sep + rest)
    print(f"wrote {md} and {png} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
