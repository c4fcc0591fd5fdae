"""Convolutions on a real NVIDIA GPU: conv3d's kernels against cuDNN, timed with CUDA events.

Used by ``conv3d bench --device cuda`` and ``conv3d kernels check --device cuda``. One *spec*
(shapes and settings of one convolution) gives, for forward and for backward (input and weight
gradients), one row per conv3d algorithm (``conv3d.cuda.CONV_ALGORITHMS``, read at run time) and
one row per cuDNN mode:

* through PyTorch (when ``torch.cuda.is_available()``): ``fp32 strict``
  (``torch.backends.cudnn.allow_tf32 = False``: no tensor cores), ``TF32``
  (``allow_tf32 = True``, PyTorch's default for cuDNN convolutions) and ``bf16`` (bfloat16
  inputs and weights, float32 accumulation inside cuDNN);
* else through CuPy's ``cupy.cudnn`` (forward only), labelled with the math mode it asks for.

Timing: each row runs on its own stream; a CUDA event is recorded before and after the call on
that stream and the GPU time between them is read after the end event completes
(``cupy.cuda.Event`` / ``torch.cuda.Event``), so the host's launch overhead and the copies back
are not in the numbers. Two untimed warm-up calls come first (they compile the kernels and let
cuDNN's ``benchmark`` mode pick its algorithm), then up to ``repeats`` timed calls, fewer when
the spec's ``budget`` seconds would be exceeded; the row reports the median and the best.
Before timing, each row's result is compared with the peer's, cuDNN fp32 strict (PyTorch) or
CuPy's cuDNN forward, or, for a backward without PyTorch (no peer, no ratio), with the first
conv3d algorithm's: ``vs_peer`` is the largest difference relative to the largest magnitude, so a
TF32 or bf16 row shows its rounding and a wrong kernel shows up.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np

STRICT = "cuDNN fp32 strict (torch, allow_tf32=False)"
TF32 = "cuDNN TF32 (torch, allow_tf32=True)"
BF16 = "cuDNN bf16 (torch, bfloat16 inputs)"
CUPY_CUDNN = "cuDNN fp32 (CuPy cudnn, CUDNN_DEFAULT_MATH: may use TF32 on sm_80+)"
PEER_NOTE = ("GPU time between two CUDA events on the row's own stream, median of the rounds "
             "after two warm-up calls. 'x peer' divides by cuDNN fp32 strict (PyTorch) or, "
             "without PyTorch, by CuPy's cuDNN forward (no backward peer). The reference of "
             "'max diff' is the peer, or the first conv3d row where there is none; the "
             "difference is relative to the reference's largest magnitude.")


def cuda_unavailable_reason() -> str | None:
    """Why device 'cuda' cannot run here (a sentence starting 'no CUDA device'), or None."""
    from conv3d.core.backend import cupy_module  # noqa: PLC0415
    cp = cupy_module()
    if cp is None:
        return ("no CUDA device (CuPy is not installed: pip install 'conv3d[gpu-cuda12]' or "
                "'conv3d[gpu-cuda13]' on a machine with an NVIDIA GPU)")
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - no driver, no device: say which
        return f"no CUDA device (CuPy {cp.__version__} cannot reach a driver: {exc})"
    return None if count > 0 else f"no CUDA device (CuPy {cp.__version__} sees 0 GPUs)"


def torch_cuda():
    """``torch`` when it is installed with CUDA and sees a GPU, else ``(None, reason)``."""
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        return None, "torch is not installed"
    if not torch.cuda.is_available():
        return None, f"torch {torch.__version__} has no CUDA device (a CPU-only build?)"
    return torch, None


@dataclass(frozen=True)
class ConvSpec:
    """One convolution: symmetric padding (what both conv3d and cuDNN take)."""
    label: str
    x_shape: tuple
    w_shape: tuple
    stride: tuple = (1, 1, 1)
    padding: tuple = (0, 0, 0)
    dilation: tuple = (1, 1, 1)
    groups: int = 1

    def geometry(self):
        from conv3d.core.geometry import ConvGeometry  # noqa: PLC0415
        return ConvGeometry.from_shapes(self.x_shape, self.w_shape, self.stride,
                                        tuple((p, p) for p in self.padding), self.dilation,
                                        self.groups)


def _arrays(spec: ConvSpec, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(spec.x_shape, dtype=np.float32)
    w = (rng.standard_normal(spec.w_shape, dtype=np.float32)
         / np.sqrt(np.prod(spec.w_shape[1:]))).astype(np.float32)
    gy = rng.standard_normal(spec.geometry().y_shape, dtype=np.float32)
    return x, w, gy


def _ours(cp, spec, algorithm, arrays, backward):
    """``step()`` running conv3d's kernels on device arrays (no autograd, no copies)."""
    import conv3d.cuda  # noqa: PLC0415
    from conv3d.core.backend import kernels_for  # noqa: PLC0415
    provider = kernels_for("cuda")
    x, w, gy = (cp.asarray(a) for a in arrays)
    settings = (spec.stride, tuple((p, p) for p in spec.padding), spec.dilation, spec.groups)

    def step():
        with conv3d.cuda.conv_algorithm(algorithm):
            if backward:
                return provider.conv3d_backward(gy, x, w, *settings)
            return (provider.conv3d_forward(x, w, None, *settings),)
    return step, lambda out: [cp.asnumpy(a) for a in out]


def _torch_step(torch, spec, arrays, backward, mode):
    dtype = torch.bfloat16 if mode == "bf16" else torch.float32
    x, w, gy = (torch.from_numpy(a).cuda().to(dtype) for a in arrays)
    args = (list(spec.stride), list(spec.padding), list(spec.dilation))

    def step():
        torch.backends.cudnn.allow_tf32 = mode == "tf32"
        if backward:
            gx, gw, _ = torch.ops.aten.convolution_backward(
                gy, x, w, None, *args, False, [0, 0, 0], spec.groups, [True, True, False])
            return gx, gw
        return (torch.nn.functional.conv3d(x, w, None, *args, spec.groups),)
    return step, lambda out: [t.float().cpu().numpy() for t in out]


def _cupy_cudnn_step(cp, spec, arrays):
    from cupy import cudnn  # noqa: PLC0415
    x, w = cp.asarray(arrays[0]), cp.asarray(arrays[1])
    y = cp.empty(spec.geometry().y_shape, dtype=cp.float32)

    def step():
        cudnn.convolution_forward(x, w, None, y, spec.padding, spec.stride, spec.dilation,
                                  spec.groups, auto_tune=True, tensor_core="never")
        return (y,)
    return step, lambda out: [cp.asnumpy(a) for a in out]


def _difference(outputs, expected) -> float:
    worst = 0.0
    for got, want in zip(outputs, expected):
        scale = max(float(np.max(np.abs(want))), 1e-30) if want.size else 1.0
        if got.shape != want.shape:
            return float("inf")
        if want.size:
            worst = max(worst, float(np.max(np.abs(got.astype(np.float64) - want))) / scale)
    return worst


def _cupy_timer(step):
    """(run, timed) for ``step`` on a stream of its own: ``cases``' stream runner and CUDA-event
    timer, shared with the ops suite's GPU rows."""
    from .cases import gpu_timer, new_stream, on_stream  # noqa: PLC0415
    stream = new_stream()
    return on_stream(step, stream), gpu_timer(step, stream)


def _torch_timer(torch, step):
    stream = torch.cuda.Stream()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def run():
        with torch.cuda.stream(stream):
            out = step()
        stream.synchronize()
        return out

    def timed():
        with torch.cuda.stream(stream):
            start.record(stream)
            step()
            end.record(stream)
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    return run, timed


def time_spec(spec: ConvSpec, backward: bool, repeats: int = 10, budget: float = 5.0,
              log=print) -> list[dict]:
    """The rows of one spec and pass on the GPU (see the module docstring). Needs CuPy and a
    GPU (``cuda_unavailable_reason()`` is None)."""
    import cupy as cp  # noqa: PLC0415

    import conv3d.cuda  # noqa: PLC0415
    arrays = _arrays(spec)
    torch, torch_reason = torch_cuda()
    impls = []  # (name, make) with make() -> (run, timed, to_host)
    for algorithm in conv3d.cuda.CONV_ALGORITHMS:
        def make(a=algorithm):
            step, host = _ours(cp, spec, a, arrays, backward)
            return (*_cupy_timer(step), host)
        impls.append((f"conv3d {algorithm} (CuPy)", make, None))
    if torch is not None:
        saved = torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.benchmark = True
        for name, mode in ((STRICT, "strict"), (TF32, "tf32"), (BF16, "bf16")):
            def make(m=mode):
                step, host = _torch_step(torch, spec, arrays, backward, m)
                return (*_torch_timer(torch, step), host)
            impls.append((name, make, None))
    elif backward:
        impls.append((CUPY_CUDNN, None, f"skipped: the CuPy cuDNN peer is forward only "
                                        f"(PyTorch with CUDA would time the backward: "
                                        f"{torch_reason})"))
    else:
        impls.append((CUPY_CUDNN, lambda: (*_cupy_timer(_cupy_cudnn_step(cp, spec, arrays)[0]),
                                           lambda out: [cp.asnumpy(a) for a in out]), None))
    # the ratio's denominator: cuDNN fp32 strict, or CuPy's cuDNN forward; the results are
    # compared with the peer's, or with the first conv3d row where there is no peer
    peer_name = STRICT if torch is not None else None if backward else CUPY_CUDNN
    reference_name = peer_name or impls[0][0]
    geo = spec.geometry()
    flops = geo.flops() * (2 if backward else 1)
    base = dict(case=spec.label, x=list(spec.x_shape), w=list(spec.w_shape),
                stride=list(spec.stride), padding=list(spec.padding), groups=spec.groups,
                pas="backward (input + weight)" if backward else "forward", gflop=flops / 1e9)
    rows, live, expected = [], [], None
    order = sorted(impls, key=lambda i: i[0] != reference_name)  # the reference first
    try:
        for name, make, skip in order:
            row = dict(base, impl=name, ms=None, best_ms=None, rounds=0, vs_peer=None,
                       ratio=None, status=skip or "ok")
            rows.append(row)
            if skip:
                continue
            try:
                run, timed, host = make()
                out = host(run())
                run()
            except Exception as exc:  # noqa: BLE001 - a row that cannot run says why
                row["status"] = f"error: {type(exc).__name__}: {str(exc)[:160]}"
                log(f"    {spec.label} / {base['pas']} / {name}: {row['status']}")
                continue
            if expected is None and name == reference_name:
                expected = out
            row["vs_peer"] = _difference(out, expected) if expected is not None else None
            live.append((row, timed))
        times = {id(row): [] for row, _ in live}
        t0, rounds = time.perf_counter(), 0
        while rounds < repeats and (rounds == 0 or time.perf_counter() - t0 < budget):
            for row, timed in live:
                times[id(row)].append(timed())
            rounds += 1
    finally:
        if torch is not None:  # the caller's settings back
            torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32 = saved
    peer_ms = None
    for row, _ in live:
        row["ms"] = statistics.median(times[id(row)]) * 1e3
        row["best_ms"] = min(times[id(row)]) * 1e3
        row["rounds"] = len(times[id(row)])
        if peer_name is not None and row["impl"] == peer_name:
            peer_ms = row["ms"]
    for row in rows:
        if row["ms"] is not None and peer_ms:
            row["ratio"] = row["ms"] / peer_ms
        text = f"{row['ms']:.3f} ms" if row["ms"] is not None else row["status"]
        log(f"    {spec.label:34s} {base['pas'][:8]:8s} {row['impl']:44s} {text}"
            + (f"  x{row['ratio']:.2f} vs {peer_name.split(' (')[0]}" if row["ratio"] else ""))
    for row in rows:
        row["reference"] = reference_name
    return rows


def markdown_table(rows, peer_note: str = "") -> str:
    """The rows as a Markdown table (one line per row)."""
    lines = ["| case | pass | implementation | median ms | best ms | rounds | x peer | "
             "max diff vs reference | status |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        def f(v, spec):
            return "" if v is None else format(v, spec)
        lines.append(f"| {r['case']} | {r['pas']} | {r['impl']} | {f(r['ms'], '.3f')} | "
                     f"{f(r['best_ms'], '.3f')} | {r['rounds'] or ''} | {f(r['ratio'], '.2f')} | "
                     f"{f(r['vs_peer'], '.1e')} | {r['status']} |")
    return "\n".join(lines) + "\n" + (f"\n{peer_note}\n" if peer_note else "")


# ---- conv3d bench --device cuda ---------------------------------------------------------------

def suite_specs(args) -> tuple[list, list]:
    """``(specs, notes)``: the convolutions of the suites ``args`` selects (the ops suite's conv
    shapes, the layer table's conv layers) and a note for each suite that has none to time."""
    from . import cases, layers  # noqa: PLC0415
    specs, notes = [], []
    for suite in args.suite.split(","):
        if suite == "ops":
            shapes = (args.shapes.split(",") if args.shapes else
                      ["cube", "small"] if args.quick else ["cube", "a1", "a2", "b"])
            for name in shapes:
                xs, ws, p = cases.CONV_SHAPES[name]
                specs.append(ConvSpec(f"ops {name}", xs, ws, padding=(p, p, p)))
        elif suite == "layers":
            batches = ([int(b) for b in args.batches.split(",")] if args.batches
                       else [1] if args.quick else None)
            chosen = layers.select(layers.load_table(), batches, args.filter, args.max_layers)
            for layer, batch in chosen:
                if layer["op"] == "conv":
                    specs.append(ConvSpec(f"{layer['name']} b{batch}",
                                          (batch, *layer["x"][1:]), tuple(layer["w"]),
                                          tuple(layer["stride"]), tuple(layer["padding"]),
                                          tuple(layer["dilation"]), layer["groups"]))
        else:
            notes.append(f"suite {suite!r}: not timed on the GPU (only conv3d forward/backward "
                         f"cases are; its transposed convolutions, pooling or whole models are "
                         f"not)")
    return specs, notes


def run_bench(args, command: str) -> int:
    """``conv3d bench --device cuda``: every conv case of the chosen suites on the GPU."""
    import datetime  # noqa: PLC0415
    import json  # noqa: PLC0415
    import os  # noqa: PLC0415
    import sys  # noqa: PLC0415

    reason = cuda_unavailable_reason()
    if reason:
        print(f"conv3d bench --device cuda: cannot run: {reason}. The CPU benchmarks run "
              f"without --device cuda; `conv3d kernels check --device cuda-emu` checks the "
              f"kernels without a GPU.", file=sys.stderr)
        return 2
    specs, notes = suite_specs(args)
    for note in notes:
        print(f"conv3d bench: {note}")
    out = args.out or f"conv3d-bench-gpu-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    os.makedirs(out, exist_ok=True)
    repeats = args.repeats or (3 if args.quick else 10)
    budget = (args.budget / max(1, 2 * len(specs))) if args.budget else 2.0
    rows, t0 = [], time.perf_counter()
    for n, spec in enumerate(specs, 1):
        print(f"  [{n}/{len(specs)}] {spec.label}")
        for backward in (False, True):
            rows += time_spec(spec, backward, repeats, budget)
    info = device_info()
    name = args.name or ("quick-gpu" if args.quick else "gpu")
    md = os.path.join(out, f"{name}.md")
    with open(md, "w") as f:
        f.write(f"# conv3d on the GPU against cuDNN\n\n`{command}`\n\n"
                + "".join(f"- {k}: {v}\n" for k, v in info.items())
                + f"- seconds: {time.perf_counter() - t0:.0f}\n\n"
                + "".join(f"- {n}\n" for n in notes) + "\n"
                + markdown_table(rows, PEER_NOTE))
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(dict(command=command, info=info, notes=notes, rows=rows), f, indent=1)
    print(f"wrote {md}")
    return 0


def device_info() -> dict:
    """The GPU, its driver and the libraries: what the numbers were measured with."""
    import platform  # noqa: PLC0415

    import conv3d  # noqa: PLC0415
    info = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "host": platform.node(), "python": platform.python_version(),
            "numpy": np.__version__, "conv3d": conv3d.__version__}
    reason = cuda_unavailable_reason()
    if reason is None:
        import cupy as cp  # noqa: PLC0415
        props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        info["gpu"] = (f"{name} (sm_{props['major']}{props['minor']}, "
                       f"{props['multiProcessorCount']} SMs, "
                       f"{props['totalGlobalMem'] / 2**30:.0f} GiB)")
        info["cuda driver / runtime"] = (f"{cp.cuda.runtime.driverGetVersion()} / "
                                         f"{cp.cuda.runtime.runtimeGetVersion()}")
        info["cupy"] = cp.__version__
    else:
        info["gpu"] = reason
    try:
        import torch  # noqa: PLC0415
        cudnn = torch.backends.cudnn.version() if torch.cuda.is_available() else None
        info["torch"] = (f"{torch.__version__} (CUDA {torch.version.cuda}, cuDNN {cudnn})"
                         if cudnn else f"{torch.__version__} (no CUDA device)")
    except ImportError:
        info["torch"] = "not installed"
    return info
