"""Shape and receptive-field calculator for a stack of 3D conv and pooling layers.

Per layer and per axis:

* output size ``o = floor((i + 2p - d*(k-1) - 1) / s) + 1`` (flagged when the division is not
  exact, so the last rows are never visited, and when ``o < 1``, which is an error);
* receptive field ``r_out = r_in + (d*(k-1)) * j_in`` (how many input voxels one output voxel sees);
* jump ``j_out = j_in * s`` (the distance, in input voxels, between neighbouring outputs).

A spec is a string such as ``"input=16x16x16; conv k=3 s=1 p=0; pool k=2; conv k=3"``: layers
separated by ``;``, each ``conv`` or ``pool`` (also ``maxpool``/``avgpool``) with ``k=`` (kernel),
``s=`` (stride; a pool's default is its kernel), ``p=`` (padding; ``same`` for conv), ``d=``
(dilation), ``c=`` (output channels, optional: gives the parameter count) and ``b=0`` (a conv
without bias). Every value is an int or DxHxW. ``input=`` may also carry channels, e.g.
``input=3x16x112x112``. Model names: ``c3d`` (a spec), and the project's own models
``keras-3d-mnist``, ``motion-2d``, ``motion-2plus1d``, ``motion-3d``, read layer by layer from
``conv3d.train.recipes``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..core.shapes import same_padding
from .problem import AXES, parse_triple
from .report import Report

SPECS = {
    # C3D (Tran et al., 2015): 16 frames of 112x112, 3x3x3 convolutions throughout.
    "c3d": "input=3x16x112x112; conv k=3 p=1 c=64; pool k=1x2x2; conv k=3 p=1 c=128; pool k=2; "
           "conv k=3 p=1 c=256; conv k=3 p=1 c=256; pool k=2; conv k=3 p=1 c=512; "
           "conv k=3 p=1 c=512; pool k=2; conv k=3 p=1 c=512; conv k=3 p=1 c=512; pool k=2 p=0x1x1",
}
# The project's own models (conv3d.train.recipes), read layer by layer: name -> (input, builder).
MODEL_INPUTS = {"keras-3d-mnist": (1, 16, 16, 16), "motion-2d": (1, 8, 16, 16),
                "motion-2plus1d": (1, 8, 16, 16), "motion-3d": (1, 8, 16, 16)}
MODELS = sorted(set(SPECS) | set(MODEL_INPUTS))


def _build_model(name: str):
    from ..train import recipes  # noqa: PLC0415 - teach sits above train
    if name == "keras-3d-mnist":
        return recipes.keras_3d_mnist_model()
    return recipes.motion_models()[{"motion-2d": "2d late fusion", "motion-2plus1d": "(2+1)d",
                                    "motion-3d": "3d"}[name]]


def _x(t) -> str:
    return "x".join(str(v) for v in t)


def spec_from_model(model, input_shape) -> str:
    """A spec string for the conv and pool layers of an ``nn.Sequential`` (the dense head after
    Flatten / global pooling is left out: its sizes do not depend on the input's shape)."""
    from .. import nn  # noqa: PLC0415

    def v(t) -> str:  # 3 for (3, 3, 3), 1x3x3 otherwise
        return str(t[0]) if len(set(t)) == 1 else _x(t)

    def opts(m, default_stride):
        out = [f"k={v(m.kernel_size)}"]
        if tuple(m.stride) != tuple(default_stride):
            out.append(f"s={v(m.stride)}")
        pad = m.padding
        if isinstance(pad, str):
            if pad == "same":
                out.append("p=same")
        elif any(pad):
            out.append(f"p={v(pad)}")
        if any(d != 1 for d in getattr(m, "dilation", (1, 1, 1))):
            out.append(f"d={v(m.dilation)}")
        return " ".join(out)

    def conv(m):
        return f"conv {opts(m, (1, 1, 1))} c={m.out_channels}" + ("" if m.bias is not None else " b=0")

    parts = [f"input={_x(input_shape)}"]
    for m in model:
        if isinstance(m, nn.Conv3d):
            parts.append(conv(m))
        elif isinstance(m, nn.Conv2Plus1d):
            parts += [conv(m.spatial), conv(m.temporal)]
        elif isinstance(m, nn.MaxPool3d):
            parts.append(f"maxpool {opts(m, m.kernel_size)}")
        elif isinstance(m, nn.AvgPool3d):
            parts.append(f"avgpool {opts(m, m.kernel_size)}")
        elif isinstance(m, (nn.Flatten, nn.GlobalAvgPool3d, nn.Linear)):
            break
    return "; ".join(parts)


def resolve(spec: str) -> str:
    """A model name -> its spec string; anything else is returned unchanged."""
    key = spec.strip().lower()
    if key in SPECS:
        return SPECS[key]
    if key in MODEL_INPUTS:
        return spec_from_model(_build_model(key), MODEL_INPUTS[key])
    return spec


@dataclass
class Layer:
    kind: str  # 'conv' | 'pool'
    text: str
    k: tuple
    s: tuple
    p: object  # a triple, or 'same'
    d: tuple
    c: int | None = None
    bias: bool = True
    rows: list = field(default_factory=list)


def parse_spec(spec: str) -> tuple[tuple, int | None, list[Layer]]:
    """``spec`` (or a model name from ``MODELS``) -> (input size, input channels, layers)."""
    spec = resolve(spec)
    parts = [p.strip() for p in re.split(r"[;\n]+", spec) if p.strip()]
    if not parts or not parts[0].lower().startswith("input"):
        raise ValueError(f"a spec starts with input=DxHxW (e.g. 'input=16x16x16; conv k=3'), or is "
                         f"one of the model names {sorted(MODELS)}; got {spec!r}")
    dims = [int(v) for v in re.split(r"[x,]", parts[0].split("=", 1)[1].strip())]
    if len(dims) not in (1, 3, 4) or min(dims) < 1:
        raise ValueError(f"input= needs D, DxHxW or CxDxHxW positive sizes, got {parts[0]!r}")
    channels = dims[0] if len(dims) == 4 else None
    size = tuple(dims[-3:]) if len(dims) >= 3 else (dims[0],) * 3
    layers = []
    for text in parts[1:]:
        words = text.split()
        kind = words[0].lower()
        if kind not in ("conv", "pool", "maxpool", "avgpool"):
            raise ValueError(f"layer {text!r}: the first word must be conv, pool, maxpool or avgpool")
        opts = {}
        for wd in words[1:]:
            if "=" not in wd:
                raise ValueError(f"layer {text!r}: expected key=value (k=3, s=2, p=1, d=1, c=16), "
                                 f"got {wd!r}")
            key, val = wd.split("=", 1)
            opts[key.lower()] = val
        unknown = set(opts) - {"k", "s", "p", "d", "c", "b"}
        if unknown or "k" not in opts:
            raise ValueError(f"layer {text!r}: needs k= and accepts only k, s, p, d, c, b "
                             f"(unknown: {sorted(unknown)})")
        k = parse_triple(opts["k"], "k", 1)
        is_pool = kind != "conv"
        s = parse_triple(opts["s"], "s", 1) if "s" in opts else (k if is_pool else (1, 1, 1))
        p = "same" if opts.get("p", "").lower() == "same" else parse_triple(opts.get("p", "0"), "p", 0)
        if p == "same" and is_pool:
            raise ValueError(f"layer {text!r}: p=same is for conv layers")
        layers.append(Layer("pool" if is_pool else "conv", text, k, s, p,
                            parse_triple(opts.get("d", "1"), "d", 1),
                            int(opts["c"]) if "c" in opts else None, opts.get("b", "1") != "0"))
    return size, channels, layers


def compute(spec: str) -> tuple[list[dict], bool]:
    """Per layer: output size, filled-in formulas, receptive field, jump, flags. Returns (rows, ok)."""
    size, channels, layers = parse_spec(spec)
    rf, jump, ok = [1, 1, 1], [1, 1, 1], True
    rows = [dict(name="input", size=size, channels=channels, formulas=[], rf=tuple(rf),
                 jump=tuple(jump), flags=[], params=None)]
    for n, L in enumerate(layers, 1):
        pads = (tuple(same_padding(i, k, s, d) for i, k, s, d in zip(size, L.k, L.s, L.d))
                if L.p == "same" else tuple((v, v) for v in L.p))
        out, formulas, flags = [], [], []
        for a in range(3):
            i, k, s, d, (lo, hi) = size[a], L.k[a], L.s[a], L.d[a], pads[a]
            span = i + lo + hi - d * (k - 1) - 1
            o = span // s + 1
            ptxt = f"2*{lo}" if lo == hi else f"{lo}+{hi}"
            formulas.append(f"floor(({i} + {ptxt} - {d}*({k}-1) - 1) / {s}) + 1 = "
                            f"floor({span}/{s}) + 1 = {o}")
            if o < 1:
                flags.append((AXES[a][0].upper(), f"output {o} < 1 (kernel larger than the padded "
                                                  f"input)"))
            elif span % s:
                flags.append((AXES[a][0].upper(), f"{span}/{s} is not a whole number: the last "
                                                  f"{span % s} input row(s) are never visited"))
            out.append(o)
            rf[a] += d * (k - 1) * jump[a]
            jump[a] *= s
        flags = [",".join(ax for ax, m in flags if m == msg) + ": " + msg
                 for msg in dict.fromkeys(m for _, m in flags)]  # one line per distinct message
        params = None
        if L.kind == "conv" and L.c is not None and channels is not None:
            params = L.c * channels * L.k[0] * L.k[1] * L.k[2] + (L.c if L.bias else 0)
        if L.kind == "conv" and L.c is not None:
            channels = L.c
        if any("< 1" in f for f in flags):
            ok = False
        rows.append(dict(name=f"{n}: {L.kind}", spec=L.text, size=tuple(out), channels=channels,
                         formulas=formulas, rf=tuple(rf), jump=tuple(jump), flags=flags,
                         params=params))
        if not ok:
            break
        size = tuple(out)
    return rows, ok


def shapes_report(spec: str) -> tuple[Report, bool]:
    rows, ok = compute(spec)
    r = Report()
    name = spec if spec.strip().lower() in MODELS else "spec"
    r.heading(f"Shapes and receptive fields: {name}")
    if spec.strip().lower() in MODEL_INPUTS:
        r.text(f"read from the model conv3d.train.recipes builds: {resolve(spec)}")
    r.text("o = floor((i + 2p - d*(k-1) - 1) / s) + 1;  receptive field r += d*(k-1)*jump;  "
           "jump *= s  (per axis: depth, height, width)")
    table = []
    for row in rows:
        f = row["formulas"]
        ftxt = ("all axes: " + f[0]) if f and len(set(f)) == 1 else "; ".join(
            f"{a[0].upper()}: {t}" for a, t in zip(AXES, f))
        ch = "" if row["channels"] is None else f"{row['channels']}x"
        table.append([row["name"], row.get("spec", ""), ch + _x(row["size"]), ftxt,
                      _x(row["rf"]), _x(row["jump"]),
                      "" if row["params"] is None else str(row["params"]),
                      "; ".join(row["flags"]) or "ok"])
    r.table("Per layer: OUTPUT size (C x D x H x W), formula, receptive field (RF) and jump",
            ["layer", "spec", "output", "formula", "RF", "jump", "params", "flags"], table,
            highlight={(i, 7) for i, row in enumerate(rows) if row["flags"]})
    if not ok:
        r.text("ERROR: a layer's output is smaller than 1 voxel; the stack stops there.",
               style="bold red")
    elif any(row["flags"] for row in rows):
        r.text("WARNING: some divisions are not whole numbers (see flags): those layers ignore the "
               "input's last rows.", style="yellow")
    return r, ok
