"""``conv3d kernels``: list, read, plan and check the hand-written CUDA kernels.

Examples::

    conv3d kernels list
    conv3d kernels show conv3d_tiled
    conv3d kernels show indexing.cuh          # the helpers every kernel includes
    conv3d kernels launch conv3d_tiled --shape 8,16,32,32,32 --weight 32,16,3,3,3 --padding 1
    conv3d kernels launch max_pool3d_forward --shape 8,16,32,32,32 --kernel-size 2
    conv3d kernels launch upsample_trilinear_forward --shape 1,8,16,16,16 --size 32,32,32
    conv3d kernels check                      # NVRTC for sm_75/80/90 + emulation vs NumPy
    conv3d kernels check --device cuda --report DIR      # a GPU machine in one command
    conv3d kernels check --device cuda-emu --report DIR  # the same without a GPU
"""
from __future__ import annotations

import time

import numpy as np

from ._args import add_width_argument

ARCHS = ("sm_75", "sm_80", "sm_90")
CONV_KERNELS = ("conv3d_direct", "conv3d_tiled", "conv3d_implicit_gemm_tc", "im2col3d", "col2im3d",
                "conv3d_backward_input", "conv3d_backward_weight", "bias_add")
POOL_KERNELS = ("max_pool3d_forward", "max_pool3d_backward", "avg_pool3d_forward",
                "avg_pool3d_backward")
RESIZE_KERNELS = ("upsample_trilinear_forward", "upsample_trilinear_backward")


def register(subparsers) -> None:
    from ..cuda.sources import HEADERS, KERNELS  # noqa: PLC0415

    p = subparsers.add_parser("kernels", help="list, show, plan and check the CUDA kernels",
                              description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="kernels_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])

    lst = sub.add_parser("list", help="the kernels, one line each")
    add_width_argument(lst)
    lst.set_defaults(func=run_list)

    show = sub.add_parser("show", help="print a kernel's CUDA C source (or a shared header's)")
    show.add_argument("name", choices=[*KERNELS, *HEADERS], metavar="NAME")
    show.set_defaults(func=run_show)

    lau = sub.add_parser("launch", help="grid, block, shared memory and thread mapping for a shape")
    lau.add_argument("name", choices=list(KERNELS), metavar="NAME")
    lau.add_argument("--shape", required=True, help="input N,C,D,H,W")
    lau.add_argument("--weight", help="conv kernels: weight K,C/groups,kD,kH,kW")
    lau.add_argument("--kernel-size", help="pool kernels: k or kD,kH,kW")
    lau.add_argument("--size", help="resize kernels: the output size OD,OH,OW")
    lau.add_argument("--stride", help="s or sD,sH,sW (default 1; pooling: the kernel size)")
    lau.add_argument("--padding", default="0",
                     help="p, pD,pH,pW, six ints (before,after per axis: conv only), 'same' or "
                          "'valid' (default 0)")
    lau.add_argument("--dilation", default="1", help="d or dD,dH,dW (default 1)")
    lau.add_argument("--groups", type=int, default=1, help="conv groups (default 1)")
    lau.add_argument("--ceil-mode", action="store_true", help="pooling: PyTorch's ceil_mode")
    lau.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    lau.set_defaults(func=run_launch)

    chk = sub.add_parser("check", help="compile every kernel with NVRTC for each architecture and "
                                       "run it in emulation against NumPy")
    chk.add_argument("--arch", default=None,
                     help=f"default {','.join(ARCHS)} (with --device: sm_80,sm_90)")
    chk.add_argument("--kernel", action="append", choices=list(KERNELS), metavar="NAME",
                     help="check only these kernels (repeatable)")
    chk.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    chk.add_argument("--no-emulation", action="store_true", help="compile only")
    chk.add_argument("--device", choices=("cuda", "cuda-emu"), default=None,
                     help="the one-command device check (conv3d/cli/_device_check.py): GPU "
                          "tests, every kernel and algorithm vs the float64 reference, timings "
                          "against cuDNN, registers/spills/occupancy; cuda-emu runs what needs "
                          "no GPU and marks the rest skipped")
    chk.add_argument("--report", metavar="DIR", default=None,
                     help="with --device: the folder for device-check.md and device-check.json "
                          "(default ./device-check)")
    add_width_argument(chk)
    chk.set_defaults(func=run_check)


# ---- list / show ---------------------------------------------------------------------------

def run_list(args) -> int:
    from ..cuda.sources import KERNELS  # noqa: PLC0415
    from ..teach.report import Report, render  # noqa: PLC0415

    report = Report()
    report.table("CUDA kernels: the source of NAME is kernels/NAME.cu (each with _f32 and _f64 "
                 "entry points)", ["name", "what it does"], [list(kv) for kv in KERNELS.items()])
    render(report, "rich", width=getattr(args, "width", None))
    return 0


def run_show(args) -> int:
    from ..cuda.sources import (HEADERS, header_source, kernel_filename,  # noqa: PLC0415
                                kernel_source)

    if args.name in HEADERS:
        print(f"// kernels/{args.name}")
        print(header_source(args.name), end="")
        return 0
    print(f"// {kernel_filename(args.name)}")
    print(kernel_source(args.name), end="")
    return 0


# ---- launch --------------------------------------------------------------------------------

def _ints(text: str, name: str, counts: tuple[int, ...]) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise ValueError(f"--{name} must be comma-separated integers, got {text!r}") from None
    if len(values) not in counts:
        raise ValueError(f"--{name} needs {' or '.join(map(str, counts))} integers, got {text!r}")
    return values


def _triple(text: str, name: str) -> tuple[int, int, int]:
    values = _ints(text, name, (1, 3))
    return values * 3 if len(values) == 1 else values


def _conv_padding(text, in_size, kernel, stride, dilation):
    from ..core.shapes import same_padding  # noqa: PLC0415

    if text == "valid":
        return ((0, 0),) * 3
    if text == "same":
        return tuple(same_padding(i, k, s, d) for i, k, s, d in zip(in_size, kernel, stride,
                                                                     dilation))
    values = _ints(text, "padding", (1, 3, 6))
    if len(values) == 6:
        return tuple(zip(values[0::2], values[1::2]))
    values = values * 3 if len(values) == 1 else values
    return tuple((p, p) for p in values)


def _launch_config(args):
    from ..core.geometry import ConvGeometry, PoolGeometry  # noqa: PLC0415
    from ..cuda import launch  # noqa: PLC0415

    shape = _ints(args.shape, "shape", (5,))
    itemsize = np.dtype(args.dtype).itemsize
    dilation = _triple(args.dilation, "dilation")
    if args.name in RESIZE_KERNELS:
        if not args.size:
            raise ValueError(f"{args.name} is a resize kernel: give --size OD,OH,OW (the output)")
        return getattr(launch, f"{args.name}_config")(shape, _triple(args.size, "size"))
    if args.name in CONV_KERNELS:
        if not args.weight:
            raise ValueError(f"{args.name} is a convolution kernel: give --weight K,C/groups,kD,kH,kW")
        weight = _ints(args.weight, "weight", (5,))
        if weight[1] * args.groups != shape[1]:
            raise ValueError(f"--weight has {weight[1]} input channels per group, but --shape has "
                             f"C={shape[1]} and --groups {args.groups}: need C/groups = {weight[1]}")
        stride = _triple(args.stride or "1", "stride")
        padding = _conv_padding(args.padding, shape[2:], weight[2:], stride, dilation)
        geo = ConvGeometry.from_shapes(shape, weight, stride, padding, dilation, args.groups)
        if min(geo.out_size) < 1:
            raise ValueError(f"the output would be empty: {geo.y_shape}")
        if args.name == "conv3d_tiled":
            config = launch.conv3d_tiled_config(geo, itemsize)
            if config is None:
                raise ValueError("this geometry's smallest tile does not fit in shared memory; "
                                 "the provider uses conv3d_direct for it")
            return config
        if args.name == "bias_add":
            return launch.bias_add_config(geo.y_shape)
        if args.name == "conv3d_backward_weight":
            return launch.conv3d_backward_weight_config(geo, itemsize)
        return getattr(launch, f"{args.name}_config")(geo)
    if not args.kernel_size:
        raise ValueError(f"{args.name} is a pooling kernel: give --kernel-size k or kD,kH,kW")
    kernel = _triple(args.kernel_size, "kernel-size")
    stride = _triple(args.stride, "stride") if args.stride else kernel
    padding = _triple(args.padding, "padding")
    if args.name.startswith("avg") and dilation != (1, 1, 1):
        raise ValueError("average pooling has no dilation; drop --dilation")
    geo = PoolGeometry.from_shape(shape, kernel, stride, padding, dilation, args.ceil_mode)
    if min(geo.out_size) < 1:
        raise ValueError(f"the output would be empty: {geo.y_shape}")
    if args.name == "max_pool3d_backward":
        return launch.max_pool3d_backward_config(geo.y_shape)
    return getattr(launch, f"{args.name}_config")(geo)


def run_launch(args) -> int:
    try:
        config = _launch_config(args)
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    print(config.describe())
    return 0


# ---- check ---------------------------------------------------------------------------------

def _compile_all(names, archs):
    """{(kernel, arch): (ok, text)} from NVRTC, or a reason why NVRTC is unavailable."""
    from ..cuda.sources import include_options, kernel_filename, kernel_source  # noqa: PLC0415

    try:
        from ..cuda.nvrtc import compile_cubin  # noqa: PLC0415
    except ImportError as exc:
        return {(n, a): (False, f"NVRTC layer missing: {exc}") for n in names for a in archs}
    results = {}
    for name in names:
        for arch in archs:
            try:
                cubin = compile_cubin(kernel_source(name), kernel_filename(name), arch=arch,
                                      options=include_options())
                results[name, arch] = (True, f"CUBIN {len(cubin)} B")
            except Exception as exc:  # compile error or missing NVRTC: report, never crash
                results[name, arch] = (False, str(exc).strip())
    return results


def _emulate_all(names, dtypes):
    from ._kernel_check import run_case, skip_reason  # noqa: PLC0415

    results = {}
    for name in names:
        parts, ok = [], True
        for dtype in dtypes:
            if skip_reason(name, dtype):
                parts.append(f"{np.dtype(dtype).name}: skipped ({skip_reason(name, dtype)})")
                continue
            start = time.perf_counter()
            try:
                error = run_case(name, dtype)
                parts.append(f"{np.dtype(dtype).name}: err {error:.1e} "
                             f"({time.perf_counter() - start:.1f}s)")
            except Exception as exc:  # noqa: BLE001 - a failing kernel is a result to report
                ok = False
                parts.append(f"{np.dtype(dtype).name}: FAIL {type(exc).__name__}: {exc}")
        results[name] = (ok, "; ".join(parts))
    return results


def run_check(args) -> int:
    from rich.table import Table  # noqa: PLC0415

    from ..cuda.sources import KERNELS  # noqa: PLC0415
    from ..teach.report import make_console  # noqa: PLC0415

    if args.device:
        from ._device_check import run_device_check  # noqa: PLC0415
        return run_device_check(args)
    if args.report:
        print("error: --report goes with --device cuda or --device cuda-emu")
        return 2
    names = args.kernel or list(KERNELS)
    archs = [a.strip() for a in (args.arch or ",".join(ARCHS)).split(",") if a.strip()]
    dtypes = {"float32": [np.float32], "float64": [np.float64],
              "both": [np.float32, np.float64]}[args.dtype]
    console = make_console(width=getattr(args, "width", None))
    compiled = _compile_all(names, archs)
    emulated = {} if args.no_emulation else _emulate_all(names, dtypes)

    table = Table(title="conv3d kernels check: NVRTC CUBIN per architecture, emulation vs NumPy",
                  caption="emulation: max error relative to max(1, |NumPy result|); the first "
                          "time of a kernel includes its one-off g++ build (cached on disk)")
    table.add_column("kernel", style="bold")
    table.add_column("arch")
    table.add_column("NVRTC")
    table.add_column("emulation vs NumPy")
    failures = 0
    for name in names:
        emu_ok, emu_text = emulated.get(name, (True, "skipped (--no-emulation)"))
        failures += not emu_ok
        for arch in archs:
            ok, text = compiled[name, arch]
            failures += not ok
            table.add_row(name, arch, f"[green]OK[/] {text}" if ok else f"[red]FAIL[/] {text}",
                          f"[green]OK[/] {emu_text}" if emu_ok else f"[red]{emu_text}[/]")
    console.print(table)
    if failures:
        console.print(f"[red]{failures} failure(s)[/]")
        return 1
    console.print(f"[green]all {len(names)} kernels compile for {', '.join(archs)}"
                  + ("" if args.no_emulation else " and match NumPy in emulation") + "[/]")
    return 0
