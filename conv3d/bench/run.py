"""The command line of ``conv3d bench`` (also ``python -m conv3d.bench.run``).

    conv3d bench --quick                       # tiny shapes, seconds: checks that every row runs
    conv3d bench                               # the ops suite (several minutes on 2 cores)
    conv3d bench --suite layers                # every distinct layer of four video networks
    conv3d bench --suite decoder               # a 3D U-Net's transposed convs and upsampling
    conv3d bench --suite models                # whole r3d_18 / r2plus1d_18 against PyTorch
    conv3d bench --device cuda                 # the conv cases on the GPU against cuDNN

Everything is float32, with ``--threads`` BLAS/numba/PyTorch threads (default 2). The report
(``README.md``/``.png``/``.json``, ``quick.*`` with ``--quick``) goes to a new folder
``./conv3d-bench-YYYYMMDD-HHMMSS`` unless ``--out`` names one.
"""
from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
import time

BENCHES = ("conv", "pool", "block", "train")
SUITES = ("ops", "layers", "decoder", "models")
TORCH_HINT = ("PyTorch is not installed, so the PyTorch rows are skipped: "
              "pip install 'conv3d[torch]'")
LAYER_BUDGET = 600.0  # seconds: the layer suite's default target run time (see run_suite)


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def build_parser(parser=None):
    parser = parser or argparse.ArgumentParser(prog="python -m conv3d.bench.run",
                                               description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="ops",
                        help=f"comma-separated suites of {','.join(SUITES)} (default ops: "
                             "the conv/pool/block/train cases on a1, a2, b and the cube)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny shapes and few rounds (checks that everything runs); with "
                             "--suite layers: batch 1 only, 1 round")
    parser.add_argument("--out", default=None,
                        help="output folder (default: a new ./conv3d-bench-YYYYMMDD-HHMMSS)")
    parser.add_argument("--name", default=None,
                        help="base name of the files (default README, or quick with --quick)")
    parser.add_argument("--threads", type=_positive(int), default=2,
                        help="BLAS/numba/PyTorch threads")
    parser.add_argument("--repeats", type=_positive(int), default=None,
                        help="timed rounds per case (default 7 for ops, 3 for layers and "
                             "models; --quick: 3 for ops, else 1; big ops shapes get at least 3)")
    parser.add_argument("--budget", type=_positive(float), default=None,
                        help=f"seconds the layers/models suites aim to take: each case gets "
                             f"fewer rounds when its share is used up, at least one (default "
                             f"{LAYER_BUDGET:.0f} for --suite layers, no limit otherwise)")
    parser.add_argument("--only", default=",".join(BENCHES),
                        help=f"ops suite: comma-separated subset of {','.join(BENCHES)}")
    parser.add_argument("--shapes", default=None,
                        help="ops suite: comma-separated conv shapes (default cube,a1,a2,b; "
                             "quick: cube,small)")
    parser.add_argument("--filter", default=None,
                        help="layers suite: only layers used by a layer whose name contains "
                             "this text, or one of several comma-separated texts (e.g. "
                             "'r3d_18 layer2', 'unet3d,s3d features.7')")
    parser.add_argument("--max-layers", type=_positive(int), default=None,
                        help="layers suite: the first N layers of the table only")
    parser.add_argument("--batches", default=None,
                        help="layers suite: comma-separated batch sizes (default: 1 and 8 for "
                             "the video networks, 1 for the U-Net; quick: 1)")
    parser.add_argument("--no-gpu", action="store_true", help="leave out the CuPy/GPU rows")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: only the suites' convolutions, on the GPU, conv3d's CUDA "
                             "kernels against cuDNN (fp32 strict, TF32, bf16), timed with CUDA "
                             "events (exits with a message when there is no GPU); default cpu")
    return parser


def default_out() -> str:
    """A new folder name in the current directory: never an existing one (a report is never
    written over another unless --out names that folder)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path, n = f"conv3d-bench-{stamp}", 1
    while os.path.exists(path):
        n += 1
        path = f"conv3d-bench-{stamp}-{n}"
    return path


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
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    return run(args, "python -m conv3d.bench.run " + shlex.join(argv))


def _ops_cases(args, cases, cases_model):
    """The ops suite as (make_cases, big) pairs; ``big`` cases get fewer rounds."""
    shapes = (args.shapes.split(",") if args.shapes else
              ["cube", "small"] if args.quick else ["cube", "a1", "a2", "b"])
    out = []
    only = set(args.only.split(","))
    if "conv" in only:
        for shape in shapes:
            for backward in (False, True):
                out.append(lambda s=shape, bw=backward:
                           [cases.conv_case(s, bw, gpu=not args.no_gpu)])
    if "pool" in only:
        for shape in (["cube"] if args.quick else list(cases.POOL_SHAPES)):
            out.append(lambda s=shape: [cases.pool_case(s)])
    if "block" in only:
        block_shape = (2, 8, 4, 8, 8) if args.quick else cases_model.R21D_SHAPE
        out.append(lambda: cases_model.block_cases(block_shape, 8 if args.quick else 64))
    if "train" in only:
        out.append(lambda: [cases_model.train_case(8 if args.quick else 128)])
    return out


def _check_args(args):
    """Errors in the comma-separated options: a message, or None."""
    suites = args.suite.split(",")
    if set(suites) - set(SUITES):
        return f"unknown suite(s) {sorted(set(suites) - set(SUITES))}; choose from {SUITES}"
    unknown = set(args.only.split(",")) - set(BENCHES)
    if unknown:
        return f"unknown benchmark(s) {sorted(unknown)}; choose from {BENCHES}"
    from . import cases  # noqa: PLC0415
    bad = [s for s in (args.shapes.split(",") if args.shapes else []) if s not in cases.CONV_SHAPES]
    if bad:
        return f"unknown shape(s) {bad}; choose from {list(cases.CONV_SHAPES)}"
    if args.batches:
        try:
            if min(int(b) for b in args.batches.split(",")) < 1:
                raise ValueError
        except ValueError:
            return f"--batches: expected positive integers like 1,8, got {args.batches!r}"
    return None


def run(args, command) -> int:
    import numpy as np  # noqa: PLC0415

    import conv3d  # noqa: PLC0415

    from . import cases, cases_model, decoder, layers, models, report  # noqa: PLC0415
    from .harness import load_average, machine_info, run_case  # noqa: PLC0415
    error = _check_args(args)
    if error:
        print(f"conv3d bench: {error}", file=sys.stderr)
        return 2
    if args.device == "cuda":
        from . import gpu  # noqa: PLC0415
        return gpu.run_bench(args, command)
    suites = args.suite.split(",")
    repeats = args.repeats or (1 if args.quick and "ops" not in suites else
                               3 if args.quick or suites != ["ops"] else 7)
    conv3d.set_num_threads(args.threads)
    torch = cases.torch_module()
    if torch:
        torch.set_num_threads(args.threads)
    out = args.out or default_out()
    info = machine_info()
    print(f"conv3d bench: {info['cpu']}, {args.threads} threads, {info['blas']}; "
          f"load average {info['load_average']}; writing into {out}")
    if not torch:
        print(f"conv3d bench: {TORCH_HINT}")
    work = []  # (suite, make_cases)
    if "ops" in suites:
        work += [("ops", make) for make in _ops_cases(args, cases, cases_model)]
    if "layers" in suites:
        batches = ([int(b) for b in args.batches.split(",")] if args.batches
                   else [1] if args.quick else None)
        chosen = layers.select(layers.load_table(), batches, args.filter, args.max_layers)
        if not chosen:
            print(f"conv3d bench: no layer matches --filter {args.filter!r}", file=sys.stderr)
            return 2
        work += [("layers", lambda la=la, b=b, bw=bw: [layers.layer_case(la, b, bw)])
                 for la, b in chosen for bw in (False, True)]
    if "decoder" in suites:
        chosen = decoder.decoder_layers()[:3 if args.quick else None]
        work += [("decoder", lambda la=la, bw=bw: [decoder.decoder_case(la, 1, bw)])
                 for la in chosen for bw in (False, True)]
    if "models" in suites:
        made = (models.model_cases(batches=(1,), train_batch=1) if args.quick
                else models.model_cases())
        work += [("models", lambda c=c: [c]) for c in made]
    budget = args.budget or (LAYER_BUDGET if "layers" in suites and not args.quick else None)
    order = [i for i, (suite, _) in enumerate(work) if suite == "ops"]
    rest = [i for i, (suite, _) in enumerate(work) if suite != "ops"]
    if budget is not None:
        # a seeded random order: the cases left with one round when the budget runs out are
        # then not all of the last network in the table (the report keeps the table's order)
        rest = [rest[j] for j in np.random.default_rng(0).permutation(len(rest))]
    results, t0, budgeted = [[] for _ in work], time.perf_counter(), len(rest)
    for n, i in enumerate(order + rest, 1):
        suite, make = work[i]
        if suite != "ops" and n % 20 == 0:
            print(f"  [{n}/{len(work)} cases, {time.perf_counter() - t0:.0f} s]")
        share = None
        if budget is not None and suite != "ops":
            # the time left, shared equally among the cases left: cheap cases leave theirs
            # to the next ones, and every case gets at least one round
            share = max(0.0, budget - (time.perf_counter() - t0)) / budgeted
            budgeted -= 1
        for case in make():
            big = suite == "ops" and case.shape in ("b", "a1")
            results[i] += run_case(case, max(3, repeats // 2) if big else repeats, budget=share)
    rows = [r for rs in results for r in rs]
    info["load_average_after"] = load_average()
    info["seconds"] = round(time.perf_counter() - t0, 1)
    name = args.name or ("quick" if args.quick else "README")
    title = "conv3d benchmarks" + (" (--quick)" if args.quick else "")
    extra = targets_section(rows) + layers.summary(rows) + decoder.summary(rows)
    if not torch:
        extra = f"**{TORCH_HINT}.**\n\n" + extra
    md, png = report.write(rows, info, command, out, name, title, extra)
    print(f"wrote {md}" + (f" and {png}" if png else "") + f" in {info['seconds']:.0f} s "
          f"(load average after: {info['load_average_after']})")
    if not torch:
        print(f"conv3d bench: {TORCH_HINT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
