"""``conv3d bench --suite layers``: every distinct convolution and pooling layer of r3d_18,
mc3_18, r2plus1d_18, s3d (torchvision's definitions, 3x16x112x112 clips, batch 1 and 8) and of a
3D U-Net (1x96^3 volumes, batch 1), forward and forward+backward, conv3d against PyTorch.

The layer list is data: ``layers.json`` beside this module, written by
``benchmarks/gen_layer_table.py`` from torchvision's models (this module never imports
torchvision). The U-Net's transposed convolutions are not in it: ``--suite decoder``
(``decoder.py``) times them and trilinear upsampling.

Each (layer, batch, pass) is one case of ``harness.run_case`` with two rows, conv3d (``auto``)
and PyTorch (``torch.nn.functional.conv3d`` / ``max_pool3d`` / ``avg_pool3d`` with the same
arguments and the same float32 arrays). PyTorch's output is the reference every row is checked
against before timing; without PyTorch, conv3d's ``'reference'`` strategy is.
The summary compares the *best* time of each row (least disturbed by other work on the machine)
and gives the geometric mean of the ratios for forward and for forward+backward.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

import conv3d
import conv3d.functional as F
from conv3d.ops import fast

from .cases import conv_geometry, torch_module
from .harness import Case, Impl

TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "layers.json")
OURS, PEER = "conv3d auto", "PyTorch (peer)"
BENCH = {False: "layer forward", True: "layer forward+backward"}


def load_table(path=TABLE) -> dict:
    with open(path) as f:
        return json.load(f)


def select(table, batches=None, name_filter=None, max_layers=None):
    """[(layer, batch)] to run: each layer at the batches of the models that use it (or only
    those in ``batches``), layers whose users contain one of the comma-separated texts of
    ``name_filter``, the first ``max_layers`` of them."""
    texts = [t.strip() for t in name_filter.split(",")] if name_filter else []
    layers = [r for r in table["layers"]
              if not texts or any(t in u for t in texts for u in r["used_by"])]
    if max_layers is not None:
        layers = layers[:max_layers]
    out = []
    for layer in layers:
        sizes = sorted({b for u in layer["used_by"] for b in table["batches"][u.split()[0]]})
        out += [(layer, b) for b in sizes if batches is None or b in batches]
    return out


def describe(layer) -> str:
    """A short description of the computation, e.g. 'conv 64->128 k3x3x3 s2x2x2 p1x1x1 on
    16x56x56'."""
    def t(v):
        return "x".join(str(i) for i in v)
    size = t(layer["x"][2:])
    if layer["op"] == "conv":
        w = layer["w"]
        g = f" g{layer['groups']}" if layer["groups"] > 1 else ""
        return (f"conv {layer['x'][1]}->{w[0]} k{t(w[2:])} s{t(layer['stride'])} "
                f"p{t(layer['padding'])}{g} on {size}")
    kind = "adaptive avg_pool (1,1,1)" if layer.get("adaptive") else layer["op"]
    return (f"{kind} k{t(layer['kernel'])} s{t(layer['stride'])} p{t(layer['padding'])}"
            + (" ceil" if layer["ceil_mode"] else "") + f" on {layer['x'][1]}x{size}")


def _arrays(layer, batch, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal([batch] + layer["x"][1:], dtype=np.float32)
    if layer["op"] != "conv":
        return x, None, None
    w = layer["w"]
    weight = (rng.standard_normal(w, dtype=np.float32) / np.sqrt(math.prod(w[1:]))).astype(
        np.float32)
    bias = rng.standard_normal(w[0], dtype=np.float32) if layer["bias"] else None
    return x, weight, bias


def _kwargs(layer):
    if layer["op"] == "conv":
        return dict(stride=tuple(layer["stride"]), padding=tuple(layer["padding"]),
                    dilation=tuple(layer["dilation"]), groups=layer["groups"])
    kw = dict(kernel_size=tuple(layer["kernel"]), stride=tuple(layer["stride"]),
              padding=tuple(layer["padding"]), ceil_mode=layer["ceil_mode"])
    if layer["op"] == "max_pool":
        kw["dilation"] = tuple(layer["dilation"])
    else:
        kw["count_include_pad"] = layer["count_include_pad"]
    return kw


def _step(lib, op, arrays, kwargs, backward):
    """run() for conv3d (``lib`` None) or torch: y = op(x, ...), then the gradients of the inputs
    for a fixed random gy. Returns [y] or [y, dx, (dw, db)] as NumPy arrays."""
    x, w, b = arrays
    gy = []

    def ours():
        ts = [conv3d.Tensor(a, requires_grad=backward) if a is not None else None for a in arrays]
        if not backward:
            with conv3d.no_grad():
                return [op(*[t for t in ts if t is not None], **kwargs).numpy()]
        y = op(*[t for t in ts if t is not None], **kwargs)
        if not gy:
            gy.append(np.random.default_rng(1).standard_normal(y.shape, dtype=np.float32))
        y.backward(gy[0])
        return [y.numpy()] + [np.asarray(t.grad) for t in ts if t is not None]

    def theirs():
        ts = [lib.from_numpy(a).requires_grad_(backward) if a is not None else None
              for a in arrays]
        if not backward:
            with lib.no_grad():
                return [op(*[t for t in ts if t is not None], **kwargs).numpy()]
        y = op(*[t for t in ts if t is not None], **kwargs)
        if not gy:
            gy.append(np.random.default_rng(1).standard_normal(tuple(y.shape), dtype=np.float32))
        y.backward(lib.from_numpy(gy[0]))
        return [y.detach().numpy()] + [t.grad.numpy() for t in ts if t is not None]
    return theirs if lib else ours


def flops(layer, batch) -> float | None:
    """Forward FLOPs of a convolution layer (None for pooling)."""
    if layer["op"] != "conv":
        return None
    return conv_geometry([batch] + layer["x"][1:], layer["w"], layer["stride"], layer["padding"],
                    layer["dilation"]).flops()


def layer_case(layer, batch, backward) -> Case:
    arrays = _arrays(layer, batch)
    kwargs = _kwargs(layer)
    ops = {"conv": F.conv3d, "max_pool": F.max_pool3d, "avg_pool": F.avg_pool3d}
    fl = flops(layer, batch)
    fl = fl and fl * (3 if backward else 1)
    impls = [Impl(OURS, _step(None, ops[layer["op"]], arrays, kwargs, backward), fl,
                  note="strategy chosen per shape")]
    torch = torch_module()
    if torch:
        tf = torch.nn.functional
        top = {"conv": tf.conv3d, "max_pool": tf.max_pool3d, "avg_pool": tf.avg_pool3d}
        impls.append(Impl(PEER, _step(torch, top[layer["op"]], arrays, kwargs, backward), fl,
                          is_peer=True, note="the reference of this case"))
        reference = PEER
    else:
        impls.append(Impl(PEER, None, fl, skip="torch not installed", is_peer=True))
        run = impls[0].run

        def reference():
            with fast.use_strategy("reference"):
                return run()
    # float32 sums of up to ~10^7 terms (weight gradients of the big layers): 2e-3 of the
    # largest magnitude leaves room for summation order, and catches any wrong index
    return Case(BENCH[backward], f"{layer['name']} N={batch}", impls, reference,
                detail=describe(layer))


def summary(rows) -> str:
    """The per-layer table of best times and ratios, and the geometric means of the ratios."""
    return ratio_table(rows, BENCH, "Layers: conv3d against PyTorch, best times",
                       "The U-Net's transposed convolutions and upsampling are in "
                       "`--suite decoder`.")


def ratio_table(rows, benches, title, footer) -> str:
    """Best times of conv3d and PyTorch per case for the ``benches`` {False: forward name,
    True: forward+backward name}, their ratios and the geometric means, under ``## title``."""
    cases = {}
    for r in rows:
        if r["bench"] in benches.values():
            cases.setdefault(r["shape"], {})[(r["bench"], r["impl"])] = r
    if not cases:
        return ""
    lines = [f"## {title}", "",
             "| layer, batch | computation | conv3d fwd ms | torch fwd ms | fwd ratio | conv3d fwd+bwd ms | "
             "torch fwd+bwd ms | fwd+bwd ratio | rounds |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    ratios = {b: [] for b in benches.values()}

    def cell(d, bench, impl):
        r = d.get((bench, impl))
        if r is None:
            return "-"
        return f"{r['best_ms']:.2f}" if r["best_ms"] is not None else r["status"]
    for shape, d in cases.items():
        cells, rounds = [next(iter(d.values())).get("detail") or "-"], set()
        for bench in benches.values():
            ours = d.get((bench, OURS))
            ratio = ours and ours["best_ratio"]
            if ratio is not None:
                ratios[bench].append(ratio)
            rounds |= {r["rounds"] for k, r in d.items() if k[0] == bench and r["rounds"]}
            cells += [cell(d, bench, OURS), cell(d, bench, PEER),
                      "-" if ratio is None else f"{ratio:.2f}x"]
        lines.append(f"| {shape} | " + " | ".join(cells) + f" | "
                     f"{'/'.join(str(n) for n in sorted(rounds)) or '-'} |")
    lines += ["", "| geometric mean of the ratios (conv3d / PyTorch, best times) | layers | "
              "ratio |", "|---|---:|---:|"]
    for bench, rs in ratios.items():
        gm = math.exp(sum(math.log(r) for r in rs) / len(rs)) if rs else None
        lines.append(f"| {bench} | {len(rs)} | {'-' if gm is None else f'{gm:.2f}x'} |")
    lines += ["", "Ratio below 1: conv3d is faster. Every conv3d row was checked against "
              "PyTorch's output (or conv3d's readable reference without PyTorch) before it was "
              f"timed. {footer}", ""]
    return "\n".join(lines)
