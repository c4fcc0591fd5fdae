"""``conv3d bench --suite decoder``: the decoder layers of a 3D U-Net (32 base channels, four
levels, 96^3 volumes, batch 1), forward and forward+backward, conv3d against PyTorch.

Each level l = 0..3 halves the channels going up, from C = 512 / 2**l at the size S = 6 * 2**l:

* ``k2s2``: ``conv_transpose3d`` C -> C/2, kernel 2, stride 2 (the U-Net of the layers suite);
* ``k3s2``: ``conv_transpose3d`` C -> C/2, kernel 3, stride 2, padding 1, output_padding 1
  (the same output size 2S, with overlapping taps: the checkerboard-prone one);
* ``trilinear``: ``interpolate(scale_factor=2, mode='trilinear')`` of the C channels (the other
  way up: resize, then convolve).

Rows, checks and the summary table are those of the layers suite (``layers.py``). Every case is
the same float32 arrays for both libraries, PyTorch's output being the reference. A transposed
convolution's case also times one float32 BLAS GEMM with its multiplications, (K*taps, C) @
(C, voxels): the time a GEMM-based implementation cannot go below, so the summary can say where
a target asks for less than that.
"""
from __future__ import annotations

import math

import numpy as np

import conv3d.functional as F

from .cases import torch_module
from .harness import Case, Impl
from .layers import OURS, PEER, _step, ratio_table

BENCH = {False: "decoder forward", True: "decoder forward+backward"}
BASE, LEVELS, SMALLEST = 32, 4, 6  # channels of the top level, levels, the bottom's size


def decoder_layers() -> list[dict]:
    """The cases as dicts: name, op ('conv_transpose' or 'upsample'), x (the input shape at batch
    1), and w / stride / padding / output_padding for the transposed convolutions."""
    out = []
    for level in range(LEVELS):
        C, S = BASE * 2 ** (LEVELS - level), SMALLEST * 2 ** level
        x = [1, C, S, S, S]
        for k, p, op in ((2, 0, 0), (3, 1, 1)):
            out.append(dict(name=f"k{k}s2 {C}->{C // 2} at {S}^3", op="conv_transpose", x=x,
                            w=[C, C // 2, k, k, k], stride=2, padding=p, output_padding=op,
                            bias=True))
        out.append(dict(name=f"trilinear x2 {C} at {S}^3", op="upsample", x=x))
    return out


def describe(layer) -> str:
    if layer["op"] == "upsample":
        return f"interpolate trilinear x2 on {'x'.join(str(v) for v in layer['x'][1:])}"
    C, K, k = layer["w"][0], layer["w"][1], layer["w"][2]
    S = layer["x"][2]
    return (f"conv_transpose {C}->{K} k{k} s{layer['stride']} p{layer['padding']} "
            f"op{layer['output_padding']} on {S}^3")


def flops(layer, batch) -> float | None:
    """Forward FLOPs of a transposed convolution: every input voxel meets every tap of its
    C x K filters once (2 per multiply-add); None for upsampling."""
    if layer["op"] != "conv_transpose":
        return None
    return 2.0 * batch * math.prod(layer["x"][1:]) * math.prod(layer["w"][1:])


def _arrays(layer, batch, seed=0):
    """(x, weight, bias) in float32: x standard normal, weight scaled by 1/sqrt(C * taps), the
    number of products in a conv of the adjoint shape; (x, None, None) for upsampling."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal([batch] + layer["x"][1:], dtype=np.float32)
    if layer["op"] == "upsample":
        return x, None, None
    w = layer["w"]
    scale = np.float32(1 / math.sqrt(w[0] * math.prod(w[2:])))
    return (x, rng.standard_normal(w, dtype=np.float32) * scale,
            rng.standard_normal(w[1], dtype=np.float32))


def _kwargs(layer):
    if layer["op"] == "upsample":
        return dict(scale_factor=2, mode="trilinear", align_corners=False)
    return dict(stride=layer["stride"], padding=layer["padding"],
                output_padding=layer["output_padding"])


def _gemm_impl(layer, batch, backward):
    """A float32 GEMM with the transposed convolution's multiplications (3 GEMMs' worth of
    FLOPs for forward+backward, timed as one): the machine's GEMM rate on this layer's sizes."""
    C, K, taps = layer["w"][0], layer["w"][1], math.prod(layer["w"][2:])
    cols = batch * math.prod(layer["x"][2:])
    rng = np.random.default_rng(1)
    a = rng.standard_normal((K * taps, C), dtype=np.float32)
    bm = rng.standard_normal((C, cols), dtype=np.float32)
    return Impl(f"float32 GEMM {K * taps}x{C}x{cols} (NumPy BLAS)", lambda: [a @ bm],
                flops=2.0 * K * taps * C * cols, is_gemm=True, note="the machine's GEMM rate")


def decoder_case(layer, batch, backward) -> Case:
    """One (layer, pass) case: conv3d ``auto`` and PyTorch on the same float32 arrays."""
    arrays = _arrays(layer, batch)
    kwargs = _kwargs(layer)
    fl = flops(layer, batch)
    fl = fl and fl * (3 if backward else 1)
    ours = {"conv_transpose": F.conv_transpose3d, "upsample": F.interpolate}[layer["op"]]
    torch = torch_module()
    if not torch:  # PyTorch is both the peer and the check here: an unchecked row is no row
        skip = "torch not installed (this suite checks conv3d against PyTorch's output)"
        impls = [Impl(OURS, None, fl, skip=skip), Impl(PEER, None, fl, skip=skip, is_peer=True)]
        return Case(BENCH[backward], f"{layer['name']} N={batch}", impls, None,
                    detail=describe(layer))
    impls = [Impl(OURS, _step(None, ours, arrays, kwargs, backward), fl,
                  note="strategy chosen per shape")]
    tf = torch.nn.functional
    theirs = {"conv_transpose": tf.conv_transpose3d, "upsample": tf.interpolate}[layer["op"]]
    impls.append(Impl(PEER, _step(torch, theirs, arrays, kwargs, backward), fl, is_peer=True,
                      note="the reference of this case"))
    if layer["op"] == "conv_transpose":
        impls.append(_gemm_impl(layer, batch, backward))
    return Case(BENCH[backward], f"{layer['name']} N={batch}", impls, PEER,
                detail=describe(layer))


def summary(rows) -> str:
    """The table of best times and ratios, and which targets are met; a missed target that asks
    for less time than a BLAS GEMM of the layer's multiplications takes says so."""
    table = ratio_table(rows, BENCH, "Decoder layers: conv3d against PyTorch, best times",
                        "Targets: transposed convolution at most 0.5x, trilinear upsampling "
                        "at most 1.0x, forward and forward+backward.")
    if not table:
        return ""
    met, missed = 0, []
    for r in rows:
        if r["bench"] in BENCH.values() and r["impl"] == OURS and r["best_ratio"] is not None:
            limit = 1.0 if r["shape"].startswith("trilinear") else 0.5
            if r["best_ratio"] <= limit:
                met += 1
            else:
                missed.append(f"{r['shape']} {r['bench'].split()[-1]} {r['best_ratio']:.2f}x"
                              + _below_gemm(rows, r, limit))
    verdict = (f"**Targets met on {met} of {met + len(missed)} rows.**"
               + (" Missed: " + "; ".join(missed) + "." if missed else ""))
    return table + "\n" + verdict + "\n"


def _below_gemm(rows, ours, limit) -> str:
    """' (target X ms < GEMM floor Y ms)' when ``limit`` x PyTorch's best time is less than the
    row's FLOPs at the GEMM rate measured in the same case, else ''."""
    same = [r for r in rows if r["bench"] == ours["bench"] and r["shape"] == ours["shape"]]
    gemm = next((r for r in same if r.get("is_gemm") and r.get("gflops")), None)
    peer = next((r for r in same if r["impl"] == PEER and r.get("best_ms")), None)
    if gemm is None or peer is None or not ours.get("gflops") or not ours.get("ms"):
        return ""
    floor_ms = ours["gflops"] * ours["ms"] / gemm["gflops"]  # our FLOPs at the GEMM's rate
    target_ms = limit * peer["best_ms"]
    if target_ms >= floor_ms:
        return ""
    return f" (target {target_ms:.2f} ms < GEMM floor {floor_ms:.2f} ms)"
