"""The benchmark cases: convolution forward and forward+backward, max pooling.

Shapes: ``a1`` and ``a2`` are the two convolutions of the article's model at batch 128,
``b`` is a C3D-like layer, ``cube`` the 4x4x4 worked example (per-call overhead).
Each case lists its implementations, one row each; see ``harness.py`` for how they are timed.
"""
from __future__ import annotations

import contextlib
import importlib.util
import math
import os

import numpy as np

import conv3d
import conv3d.functional as F
from conv3d.core.geometry import ConvGeometry
from conv3d.ops import fast

from .harness import Case, Impl

# The float64 loops of tests/reference.py (nothing from conv3d) are rows where a source checkout
# has them; an installed package has no tests/ folder, and the rows say so.
_NAIVE_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "tests", "reference.py")
NAIVE_NAME = "naive loops (float64, tests/reference.py)"
NAIVE_SKIP = "the float64 loops are tests/reference.py of a source checkout, not installed"


def naive_module():
    """tests/reference.py of the source checkout this conv3d runs from, or None."""
    if not os.path.isfile(_NAIVE_PATH):
        return None
    spec = importlib.util.spec_from_file_location("conv3d_bench_naive_reference", _NAIVE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def conv_geometry(x_shape, w_shape, stride=1, padding=0, dilation=1) -> ConvGeometry:
    """The library's geometry of a case (sizes, ``out_size``, ``flops()``); the groups are read
    off the weight shape (K, C/groups, kD, kH, kW)."""
    return ConvGeometry.from_shapes(x_shape, w_shape, stride, padding, dilation,
                                    x_shape[1] // w_shape[1])


CONV_SHAPES = {  # name: (x shape, w shape, padding)
    "cube": ((1, 1, 4, 4, 4), (1, 1, 3, 3, 3), 0),
    "a1": ((128, 3, 16, 16, 16), (32, 3, 3, 3, 3), 0),
    "a2": ((128, 32, 7, 7, 7), (64, 32, 3, 3, 3), 0),
    "b": ((4, 64, 16, 56, 56), (128, 64, 3, 3, 3), 1),
    "small": ((2, 4, 6, 6, 6), (8, 4, 3, 3, 3), 1),  # --quick only
}
NAIVE_SHAPES = ("cube", "small", "a2")   # the float64 loops are too slow for a1 and b
EMU_SHAPES = ("cube", "small")           # the CUDA emulator: for scale only


def cpu_strategies():
    """Every named CPU strategy but 'auto' and 'reference' (rows of their own), read at run
    time from ``conv3d.ops.fast.STRATEGIES``."""
    return [s for s in fast.STRATEGIES if s not in ("auto", "reference")]
GPU_ALGORITHMS = ("direct", "tiled", "im2col")


def torch_module():
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        return None
    return torch


def gpu_skip_reason():
    import conv3d.cuda  # noqa: PLC0415
    return None if conv3d.cuda.is_available() else "no NVIDIA GPU with CuPy on this machine"


@contextlib.contextmanager
def _nothing():
    yield


def _conv_arrays(shape_name, seed=0):
    xs, ws, p = CONV_SHAPES[shape_name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs, dtype=np.float32)
    w = (rng.standard_normal(ws, dtype=np.float32) / np.sqrt(np.prod(ws[1:]))).astype(np.float32)
    b = rng.standard_normal(ws[0], dtype=np.float32)
    geo = conv_geometry(xs, ws, padding=(p, p, p))
    gy = rng.standard_normal((xs[0], ws[0]) + geo.out_size, dtype=np.float32)
    return x, w, b, gy, p, geo


def _conv3d_run(x, w, b, gy, p, device="cpu", context=_nothing, backward=False, host=True):
    """One forward (and backward) through the autograd API on ``device``; ``host=False`` returns
    the device arrays, without copying them back (what a GPU timer should time)."""
    xt = conv3d.Tensor(x, requires_grad=backward).to(device)
    wt = conv3d.Tensor(w, requires_grad=backward).to(device)
    bt = conv3d.Tensor(b, requires_grad=backward).to(device)
    gyd = conv3d.Tensor(gy).to(device).data if backward else None

    def run():
        with context():
            if not backward:
                with conv3d.no_grad():
                    y = F.conv3d(xt, wt, bt, padding=p)
                    return [y.numpy()] if host else [y.data]
            xt.grad = wt.grad = bt.grad = None
            y = F.conv3d(xt, wt, bt, padding=p)
            y.backward(gyd)
            if not host:
                return [y.data, xt.grad, wt.grad, bt.grad]
            return [y.numpy()] + [conv3d.Tensor(t.grad, device=t.device).numpy()
                                  for t in (xt, wt, bt)]
    return run


def _torch_run(torch, x, w, b, gy, p, backward):
    xt, wt, bt = (torch.from_numpy(a).requires_grad_(backward) for a in (x, w, b))
    gyt = torch.from_numpy(gy)

    def run():
        if not backward:
            with torch.no_grad():
                return [torch.nn.functional.conv3d(xt, wt, bt, padding=p).numpy()]
        xt.grad = wt.grad = bt.grad = None
        y = torch.nn.functional.conv3d(xt, wt, bt, padding=p)
        y.backward(gyt)
        return [y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()]
    return run


def _naive_run(naive, x, w, b, gy, p, backward):
    args = ((1, 1, 1), ((p, p),) * 3, (1, 1, 1), 1)

    def run():
        y = naive.naive_conv3d(x, w, b, *args)
        if not backward:
            return [y]
        return [y, naive.naive_conv3d_backward_input(gy, w, x.shape, *args),
                naive.naive_conv3d_backward_weight(gy, x, w.shape, *args),
                gy.astype(np.float64).sum(axis=(0, 2, 3, 4))]
    return run


def _gemm_impl(geo):
    """A float32 GEMM of the size of this convolution's (chunked) im2col product."""
    M, K = geo.K, geo.Cg * geo.taps
    cols = min(geo.N * int(np.prod(geo.out_size)), 16384)
    rng = np.random.default_rng(1)
    a = rng.standard_normal((M, K), dtype=np.float32)
    bm = rng.standard_normal((K, cols), dtype=np.float32)
    return Impl(f"float32 GEMM {M}x{K}x{cols} (NumPy BLAS)", lambda: [a @ bm],
                flops=2.0 * M * K * cols, is_gemm=True, note="the machine's GEMM rate")


def conv_case(shape_name: str, backward: bool, gpu: bool = True) -> Case:
    x, w, b, gy, p, geo = _conv_arrays(shape_name)
    flops = geo.flops() * (3 if backward else 1)
    bench = "conv3d forward+backward" if backward else "conv3d forward"
    whole_col = geo.N * geo.C * geo.taps * int(np.prod(geo.out_size)) * x.itemsize
    impls = [_gemm_impl(geo)]
    if shape_name in NAIVE_SHAPES:
        naive = naive_module()
        impls.append(Impl(NAIVE_NAME, naive and _naive_run(naive, x, w, b, gy, p, backward),
                          flops, note="small shapes only", skip=None if naive else NAIVE_SKIP))
    impls.append(Impl("conv3d auto (fast path)", _conv3d_run(x, w, b, gy, p, backward=backward),
                      flops, "measured", note="strategy chosen per shape"))
    split = getattr(fast, "sample_split", None)  # threads over samples: on where it exists
    impls.append(Impl("conv3d auto, unsplit (BLAS threads only)",
                      split and _conv3d_run(x, w, b, gy, p, backward=backward,
                                            context=lambda: split(False)),
                      flops, "measured", note="no threads over samples",
                      skip=None if split else "this conv3d has no conv3d.ops.fast.sample_split"))
    impls.append(Impl("conv3d reference (readable im2col)",
                      _conv3d_run(x, w, b, gy, p, backward=backward,
                                  context=lambda: fast.use_strategy("reference")),
                      flops, whole_col, note="whole im2col matrix, no limit"))
    for name in cpu_strategies():
        impls.append(Impl(f"conv3d {name}",
                          _conv3d_run(x, w, b, gy, p, backward=backward,
                                      context=lambda n=name: fast.use_strategy(n)),
                          flops, "measured"))
    for algo in GPU_ALGORITHMS:
        import conv3d.cuda  # noqa: PLC0415
        ctx = (lambda a=algo: conv3d.cuda.conv_algorithm(a))
        skip = None if shape_name in EMU_SHAPES else "emulator: small shapes only (for scale)"
        impls.append(Impl(f"cuda-emu {algo} (CUDA kernels on the CPU)",
                          None if skip else _conv3d_run(x, w, b, gy, p, "cuda-emu", ctx, backward),
                          flops, skip=skip))
    if gpu:
        impls.extend(gpu_impls(x, w, b, gy, p, flops, backward))
    torch = torch_module()
    impls.append(Impl("PyTorch (peer)", _torch_run(torch, x, w, b, gy, p, backward) if torch
                      else None, flops, skip=None if torch else "torch not installed",
                      is_peer=True))

    def reference():
        with fast.use_strategy("reference"):
            return _conv3d_run(x, w, b, gy, p, backward=backward)()
    return Case(bench, shape_name, impls, reference)


def gpu_impls(x, w, b, gy, p, flops, backward):
    """The CUDA kernels on a real GPU through CuPy, and cuDNN through CuPy as the GPU peer.
    Each row runs on its own CuPy stream and is timed with CUDA events (``gpu_timer``)."""
    reason = gpu_skip_reason()
    impls = []
    for algo in GPU_ALGORITHMS:
        run = timer = None
        if reason is None:
            import conv3d.cuda  # noqa: PLC0415
            ctx = (lambda a=algo: conv3d.cuda.conv_algorithm(a))
            stream = new_stream()
            run = on_stream(_conv3d_run(x, w, b, gy, p, "cuda", ctx, backward), stream)
            timer = gpu_timer(_conv3d_run(x, w, b, gy, p, "cuda", ctx, backward, host=False),
                              stream)
        label = "im2col+cuBLAS" if algo == "im2col" else algo
        impls.append(Impl(f"CUDA {label} (CuPy, GPU)", run, flops, skip=reason,
                          device_timer=timer, note="CUDA events" if timer else ""))
    cudnn = (None, None) if reason is not None or backward else _cudnn_run(x, w, b, p)
    impls.append(Impl("cuDNN via CuPy (GPU peer)", cudnn[0], flops,
                      skip=reason or ("cuDNN row: forward only" if backward else None),
                      device_timer=cudnn[1], note="CUDA events" if cudnn[1] else ""))
    return impls


def new_stream():
    import cupy  # noqa: PLC0415
    return cupy.cuda.Stream(non_blocking=True)


def on_stream(run, stream):
    """``run`` with its launches on ``stream`` (CuPy and RawKernel launch on the current
    stream), finished before it returns."""
    def call():
        with stream:
            out = run()
        stream.synchronize()
        return out
    return call


def gpu_timer(step, stream):
    """A function that runs ``step()`` once on ``stream`` and returns the GPU seconds between two
    CUDA events recorded on that stream around it (the host waits only for the end event)."""
    import cupy  # noqa: PLC0415
    start, end = cupy.cuda.Event(), cupy.cuda.Event()

    def timed():
        with stream:
            start.record(stream)
            step()
            end.record(stream)
        end.synchronize()
        return cupy.cuda.get_elapsed_time(start, end) / 1e3  # milliseconds -> seconds
    return timed


def _cudnn_run(x, w, b, p):
    """(run, timer) of cuDNN's forward through CuPy, strict fp32 (no tensor cores)."""
    import cupy  # noqa: PLC0415
    from cupy import cudnn  # noqa: PLC0415
    xd, wd, bd = cupy.asarray(x), cupy.asarray(w), cupy.asarray(b)
    geo = conv_geometry(x.shape, w.shape, padding=(p, p, p))
    yd = cupy.empty((x.shape[0], w.shape[0]) + geo.out_size, dtype=cupy.float32)
    stream = new_stream()

    def step():
        cudnn.convolution_forward(xd, wd, bd, yd, (p, p, p), (1, 1, 1), (1, 1, 1), 1,
                                  auto_tune=True, tensor_core="never")

    def run():
        with stream:
            step()
            out = [cupy.asnumpy(yd, stream=stream)]
        stream.synchronize()
        return out
    return run, gpu_timer(step, stream)


POOL_SHAPES = {"cube": (1, 1, 4, 4, 4), "a1": (128, 32, 14, 14, 14), "b": (4, 64, 16, 56, 56)}


def pool_case(shape_name: str) -> Case:
    """max_pool3d(kernel 2), forward (with the indices the backward needs) against PyTorch.
    The reference is the readable strided-slice code (``use_strategy('reference')``)."""
    x = np.random.default_rng(2).standard_normal(POOL_SHAPES[shape_name], dtype=np.float32)
    xt = conv3d.Tensor(x)

    def ours(device="cpu"):
        xd = xt.to(device)

        def run():
            with conv3d.no_grad():
                return [F.max_pool3d(xd, 2).numpy()]
        return run
    impls = []
    if shape_name == "cube":
        naive = naive_module()
        impls.append(Impl(NAIVE_NAME, naive and (lambda: [naive.naive_max_pool3d(
            x, (2,) * 3, (2,) * 3, (0,) * 3, (1,) * 3, False)[0]]),
            skip=None if naive else NAIVE_SKIP))
    impls.append(Impl("conv3d max_pool3d (fast path)", ours()))
    impls.append(Impl("cuda-emu max_pool3d (CUDA kernel on the CPU)",
                      ours("cuda-emu") if shape_name == "cube" else None,
                      skip=None if shape_name == "cube" else "emulator: small shapes only"))
    torch = torch_module()
    if torch:
        tx = torch.from_numpy(x)
        impls.append(Impl("PyTorch (peer)",
                          lambda: [torch.nn.functional.max_pool3d(tx, 2).numpy()], is_peer=True))
    else:
        impls.append(Impl("PyTorch (peer)", None, skip="torch not installed", is_peer=True))
    def reference():
        with fast.use_strategy("reference"):
            return ours()()
    impls.insert(-2, Impl("conv3d max_pool3d (reference strided slices)", reference))
    return Case("max_pool3d forward (k=2)", shape_name, impls, reference, rtol=0.0)
