"""The comparisons of ``conv3d kernels check --device cuda|cuda-emu``: every kernel through the
provider, against the float64 NumPy reference.

Each case runs one provider operation (``conv3d.cuda.provider.CudaKernels``: the code path a
model uses) on the device, for every convolution algorithm (``CONV_ALGORITHMS``, read at run
time) and for float32 and float64, and compares the result with ``conv3d.ops.cpu_reference``
(im2col + BLAS, strided-slice pooling: no code shared with the kernels) run in float64 on the
same values. The convolution cases are the geometries that break kernels:

* mixed settings (groups, stride, asymmetric padding, dilation; ``conv3d kernels check``'s case);
* more input channels per group than the tiled kernel stages at once, and more output channels
  than a block computes (its multi-stage channel loop and a partial channel chunk);
* an empty batch (N = 0); a depthwise convolution; a 1x1x1 kernel;
* more than 65,535 samples or groups: CUDA caps gridDim.y and gridDim.z at 65,535, so the tiled
  kernel's grid-stride loops run (one voxel per sample or group keeps it cheap to emulate).

Every launch goes through ``RecordingKernels.launch``, which notes each entry point's largest
block and its shared memory: the occupancy rows use those launch sizes, and a kernel of
``conv3d.cuda.sources.KERNELS`` that no case launched is reported as not exercised.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

from ..cuda import launch
from ..cuda.provider import (CONV_ALGORITHMS, TENSOR_CORE_PRECISIONS, CudaKernels, conv_algorithm,
                             tensor_core_precision)
from ..ops import cpu_reference
from ..ops.resample import resize_backward, resize_forward, resize_matrix
from ._kernel_check import CONV, POOL, RESIZE, TOLERANCE

BEYOND_GRID = launch.MAX_GRID_YZ + 4465  # 70,000: over CUDA's 65,535 limit on gridDim.y/z


def conv_cases():
    """``[(label, x_shape, w_shape, stride, padding pairs, dilation, groups)]``."""
    c = launch.TILED_MAX_C_TILE + 4      # input channels: one full stage and a partial one
    k = launch.tiled_out_channels() + 2  # output channels: one full chunk and a partial one
    one = (1, 1, 1)
    pad1 = ((1, 1),) * 3
    return [
        ("groups 2, stride, asymmetric padding, dilation", CONV["x_shape"], CONV["w_shape"],
         CONV["stride"], CONV["padding"], CONV["dilation"], CONV["groups"]),
        (f"C={c} > the {launch.TILED_MAX_C_TILE}-channel stage, K={k}", (2, c, 4, 8, 8),
         (k, c, 3, 3, 3), one, pad1, one, 1),
        ("empty batch N=0", (0, 4, 3, 4, 5), (6, 4, 3, 3, 3), one, pad1, one, 1),
        ("depthwise (groups = C = K = 4)", (2, 4, 5, 6, 7), (4, 1, 3, 3, 3), one, pad1, one, 4),
        ("1x1x1 kernel", (2, 5, 3, 4, 5), (7, 5, 1, 1, 1), one, ((0, 0),) * 3, one, 1),
        (f"N={BEYOND_GRID:,} samples (grid z > 65,535)", (BEYOND_GRID, 1, 1, 1, 2),
         (1, 1, 1, 1, 1), one, ((0, 0),) * 3, one, 1),
        (f"{BEYOND_GRID:,} groups (grid y > 65,535)", (1, BEYOND_GRID, 1, 1, 1),
         (BEYOND_GRID, 1, 1, 1, 1), one, ((0, 0),) * 3, one, BEYOND_GRID),
    ]


class RecordingKernels(CudaKernels):
    """The provider, noting ``blocks = {entry: (largest block's threads, its dynamic shared
    bytes)}`` and ``entry_files = {entry: kernel file}`` of every launch."""

    def __init__(self, device: str):
        super().__init__(device)
        self.blocks, self.entry_files = {}, {}

    def launch(self, config, dtype, args) -> None:
        from ..cuda.sources import function_name  # noqa: PLC0415
        entry = function_name(config.function, dtype)
        threads = math.prod(config.block)
        if threads >= self.blocks.get(entry, (0, 0))[0]:
            self.blocks[entry] = (threads, config.shared_mem)
        self.entry_files[entry] = config.kernel
        super().launch(config, dtype, args)


def relative_error(got, expected) -> float:
    """max |got - expected| / max(1, max |expected|); inf for a shape mismatch."""
    got = np.asarray(got)
    if got.shape != expected.shape:
        return float("inf")
    if expected.size == 0:
        return 0.0
    scale = max(1.0, float(np.max(np.abs(expected))))
    return float(np.max(np.abs(got.astype(np.float64) - expected))) / scale


def _conv_reference(x, w, b, gy, settings):
    """float64 (y, gx, gw); an empty batch has empty outputs and a zero weight gradient (a sum
    over no samples), which the reference's reshapes cannot infer from zero elements."""
    stride, padding, dilation, groups = settings
    if x.shape[0] == 0:
        return np.zeros(gy.shape), np.zeros(x.shape), np.zeros(w.shape)
    y = cpu_reference.conv3d_forward(x, w, b, *settings)
    gx = cpu_reference.conv3d_backward_input(gy, w, x.shape, *settings)
    gw = cpu_reference.conv3d_backward_weight(gy, x, w.shape, *settings)
    return y, gx, gw


def _row(kind, case, algorithm, dtype, op, error, tol, status=None):
    ok = status is None and error <= tol  # also False for NaN
    return dict(section=kind, case=case, algorithm=algorithm, dtype=np.dtype(dtype).name,
                op=op, error=error, tolerance=tol,
                status=status or ("pass" if ok else f"FAIL: error {error:.3g} > {tol:g}"))


# Unit roundoff of the formats the 'tensor-core' forward rounds float32 inputs to. Its error is
# that of rounding the inputs, about 2u of max |y| (docs/concepts/cuda.md); 8u leaves room for
# the accumulation order and still fails a kernel that gets a product wrong.
TENSOR_CORE_UNIT_ROUNDOFF = {"tf32": 2.0 ** -11, "bf16": 2.0 ** -8, "fp16": 2.0 ** -11}


def algorithm_variants():
    """``(label, algorithm, precision)`` for every convolution the check runs: each algorithm,
    and the tensor-core one once per input precision (each is its own entry point)."""
    out = []
    for algorithm in CONV_ALGORITHMS:
        if algorithm == "tensor-core":
            out += [(f"tensor-core {p}", algorithm, p) for p in TENSOR_CORE_PRECISIONS]
        else:
            out.append((algorithm, algorithm, None))
    return out


def _tolerance(precision, dtype, op):
    """The row's tolerance: the dtype's, or for a tensor-core forward on float32 8u of the
    format its inputs are rounded to (its gradients run the exact kernels)."""
    if precision and np.dtype(dtype) == np.float32 and op.startswith("forward"):
        return 8 * TENSOR_CORE_UNIT_ROUNDOFF[precision]
    return TOLERANCE[np.dtype(dtype)]


def conv_rows(provider, to_device, to_host, dtypes, log=print):
    rows = []
    for label, xs, ws, stride, padding, dilation, groups in conv_cases():
        settings = (stride, padding, dilation, groups)
        rng = np.random.default_rng(0)
        x64, w64, b64 = (rng.standard_normal(s) for s in (xs, ws, ws[:1]))
        geo_y = (xs[0], ws[0]) + provider_out_size(xs, ws, settings)
        gy64 = rng.standard_normal(geo_y)
        for dtype in dtypes:
            # the reference sees the very values the kernels see (rounded to dtype first)
            x, w, b, gy = (a.astype(dtype) for a in (x64, w64, b64, gy64))
            refs = _conv_reference(*(a.astype(np.float64) for a in (x, w, b, gy)), settings)
            tol = TOLERANCE[np.dtype(dtype)]
            for name, algorithm, precision in algorithm_variants():
                ops = ("forward (+ bias)", "input gradient", "weight gradient")
                precise = (tensor_core_precision(precision) if precision
                           else contextlib.nullcontext())
                try:
                    with conv_algorithm(algorithm), precise:
                        dx, dw, db, dgy = (to_device(a) for a in (x, w, b, gy))
                        got = [provider.conv3d_forward(dx, dw, db, *settings)]
                        got += list(provider.conv3d_backward(dgy, dx, dw, *settings))
                    for op, g, ref in zip(ops, got, refs):
                        g = to_host(g)
                        status = None if g.dtype == dtype else f"FAIL: result dtype {g.dtype}"
                        rows.append(_row("conv", label, name, dtype, op,
                                         relative_error(g, ref),
                                         _tolerance(precision, dtype, op), status))
                except Exception as exc:  # noqa: BLE001 - a failing kernel is a row
                    rows.append(_row("conv", label, name, dtype, "all", float("nan"), tol,
                                     f"FAIL: {type(exc).__name__}: {str(exc)[:200]}"))
        bad = [r for r in rows if r["case"] == label and r["status"] != "pass"]
        log(f"  conv: {label}: {'ok' if not bad else f'{len(bad)} failing row(s)'}")
    return rows


def provider_out_size(xs, ws, settings):
    from ..core.geometry import ConvGeometry  # noqa: PLC0415
    return ConvGeometry.from_shapes(xs, ws, *settings).out_size


def pool_resize_rows(provider, to_device, to_host, dtypes, log=print):
    """Max and average pooling (forward, backward) and resizing (forward, backward) through
    the provider, on ``conv3d kernels check``'s geometries."""
    rows = []
    kernel, stride, padding = POOL["kernel"], POOL["stride"], POOL["padding"]
    dilation, ceil = POOL["dilation"], POOL["ceil_mode"]
    for dtype in dtypes:
        tol = TOLERANCE[np.dtype(dtype)]
        rng = np.random.default_rng(1)
        x = np.round(rng.standard_normal(POOL["x_shape"]), 1).astype(dtype)  # ties
        x64 = x.astype(np.float64)

        def add(name, compute, section="pool"):
            """One row: ``name`` is 'operation pass (detail)', e.g. 'max_pool3d forward'."""
            case, _, output = name.partition(" (")
            output = output.rstrip(")") or ("gradient" if "backward" in case else "values")
            try:
                got, ref, status = compute()
                if status is None and got.dtype != dtype:
                    status = f"FAIL: result dtype {got.dtype}"
                rows.append(_row(section, case, "-", dtype, output, relative_error(got, ref),
                                 tol, status))
            except Exception as exc:  # noqa: BLE001 - a failing kernel is a row
                rows.append(_row(section, case, "-", dtype, output, float("nan"), tol,
                                 f"FAIL: {type(exc).__name__}: {str(exc)[:200]}"))

        def max_forward():
            y, idx = provider.max_pool3d_forward(to_device(x), kernel, stride, padding,
                                                 dilation, ceil)
            y_ref, idx_ref = cpu_reference.max_pool3d_forward(x64, kernel, stride, padding,
                                                              dilation, ceil)
            same = np.array_equal(to_host(idx), idx_ref)
            return to_host(y), y_ref, None if same else "FAIL: argmax indices differ"
        add("max_pool3d forward (values and argmax)", max_forward)
        _, idx_ref = cpu_reference.max_pool3d_forward(x64, kernel, stride, padding, dilation,
                                                      ceil)
        gy = rng.standard_normal(idx_ref.shape).astype(dtype)
        add("max_pool3d backward", lambda: (
            to_host(provider.max_pool3d_backward(to_device(gy), to_device(idx_ref), x.shape)),
            cpu_reference.max_pool3d_backward(gy.astype(np.float64), idx_ref, x.shape), None))
        for include in (True, False):
            args = (kernel, stride, padding, ceil, include)
            y_ref = cpu_reference.avg_pool3d_forward(x64, *args)
            gya = rng.standard_normal(y_ref.shape).astype(dtype)
            add(f"avg_pool3d forward (count_include_pad={include})", lambda a=args, r=y_ref: (
                to_host(provider.avg_pool3d_forward(to_device(x), *a)), r, None))
            add(f"avg_pool3d backward (count_include_pad={include})", lambda a=args, g=gya: (
                to_host(provider.avg_pool3d_backward(to_device(g), x.shape, *a)),
                cpu_reference.avg_pool3d_backward(g.astype(np.float64), x.shape, *a), None))
        xr = rng.standard_normal(RESIZE["x_shape"]).astype(dtype)
        for mode, align in RESIZE["modes"]:
            mats = tuple(resize_matrix(i, o, mode, None, align, dtype)
                         for i, o in zip(RESIZE["x_shape"][2:], RESIZE["out_size"]))
            mats64 = tuple(m.astype(np.float64) for m in mats)
            gyr = rng.standard_normal(RESIZE["x_shape"][:2] + RESIZE["out_size"]).astype(dtype)
            name = f"{mode}{', align_corners' if align else ''}"
            add(f"resize forward ({name})", lambda m=mats, m64=mats64: (
                to_host(provider.interpolate_forward(to_device(xr), m)),
                resize_forward(xr.astype(np.float64), m64), None), "resize")
            add(f"resize backward ({name})", lambda m=mats, m64=mats64, g=gyr: (
                to_host(provider.interpolate_backward(to_device(g), m)),
                resize_backward(g.astype(np.float64), m64), None), "resize")
    bad = [r for r in rows if r["status"] != "pass"]
    log(f"  pooling and resizing: {len(rows)} rows, "
        f"{'ok' if not bad else f'{len(bad)} failing'}")
    return rows
