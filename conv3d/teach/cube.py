"""The worked example: a 4x4x4 cube convolved with a 3x3x3 filter, checked voxel by voxel.

The data come from a figure in a published article (see ``source`` in the JSON). The figure
prints a 2x2x2 output; this module computes the true output with the engine, compares, and for
every voxel where the figure is wrong writes out the 27 products that give the true value.
"""
from __future__ import annotations

import json
from importlib import resources

import numpy as np

from .. import functional as F
from ..core.shapes import conv_output_size
from ..core.tensor import Tensor


def load_cube() -> dict:
    """The packaged worked example: 'input' (4, 4, 4), 'filter' (3, 3, 3) and
    'published_output' (2, 2, 2) as float64 arrays, plus 'name', 'source' and 'note'."""
    raw = json.loads(resources.files("conv3d").joinpath("data/cube4x4x4.json").read_text())
    cube = {k: raw[k] for k in ("name", "source", "layout", "note")}
    for key in ("input", "filter", "published_output"):
        cube[key] = np.asarray(raw[key], dtype=np.float64)
    return cube


def engine_output(cube: dict) -> np.ndarray:
    """The cube's output computed by ``F.conv3d`` (one sample, one channel in and out)."""
    x = Tensor(cube["input"][None, None])
    w = Tensor(cube["filter"][None, None])
    return F.conv3d(x, w).numpy()[0, 0]


def slice_products(cube: dict, at: tuple[int, int, int]) -> list[list[tuple[float, float]]]:
    """The (input, weight) pairs that make output voxel ``at``, one list per kernel depth slice."""
    d, h, w = at
    kD, kH, kW = cube["filter"].shape
    return [[(cube["input"][d + kd, h + kh, w + kw], cube["filter"][kd, kh, kw])
             for kh in range(kH) for kw in range(kW)] for kd in range(kD)]


def _num(v: float) -> str:
    return f"{v:g}" if v >= 0 else f"({v:g})"


def report(cube: dict | None = None) -> str:
    """The demo's text: the output beside the figure, then the arithmetic of every wrong voxel."""
    cube = cube or load_cube()
    out = engine_output(cube)
    pub = cube["published_output"]
    i, k = cube["input"].shape[0], cube["filter"].shape[0]
    o = conv_output_size(i, k)
    lines = [
        f"Worked example: {cube['name']}",
        f"Source: {cube['source']}",
        "Convention: cross-correlation (no kernel flip), output[d][h][w] = "
        "sum_{kd,kh,kw} input[d+kd][h+kh][w+kw] * filter[kd][kh][kw]",
        f"Output size per axis: o = floor((i + 2p - d(k-1) - 1)/s) + 1 = "
        f"floor(({i} + 2*0 - 1*({k}-1) - 1)/1) + 1 = {o}, so the output is {o}x{o}x{o}",
        "",
        f"{'voxel (d,h,w)':>14} {'engine':>8} {'figure':>8}  verdict",
    ]
    wrong = []
    for idx in np.ndindex(out.shape):
        ok = np.isclose(out[idx], pub[idx])
        if not ok:
            wrong.append(idx)
        verdict = "agree" if ok else f"FIGURE IS WRONG (off by {pub[idx] - out[idx]:+g})"
        lines.append(f"{str(idx):>14} {out[idx]:>8g} {pub[idx]:>8g}  {verdict}")
    lines.append("")
    if not wrong:
        lines.append("The published figure agrees with the engine on every voxel.")
    else:
        lines.append(f"The published figure is wrong at {len(wrong)} of {out.size} voxels: "
                     + ", ".join(str(w) for w in wrong) + ". The arithmetic:")
    for idx in wrong:
        lines.append("")
        lines.append(f"Output voxel {idx}: input window "
                     f"[{idx[0]}:{idx[0] + k}, {idx[1]}:{idx[1] + k}, {idx[2]}:{idx[2] + k}] "
                     f"times the filter, summed")
        total = 0.0
        for kd, pairs in enumerate(slice_products(cube, idx)):
            subtotal = float(sum(a * b for a, b in pairs))
            total += subtotal
            terms = " + ".join(f"{_num(a)}*{_num(b)}" for a, b in pairs)
            lines.append(f"  slice kd={kd} (input depth {idx[0] + kd}): {terms} = {subtotal:g}")
        subtotals = [float(sum(a * b for a, b in p)) for p in slice_products(cube, idx)]
        lines.append(f"  total = {' + '.join(_num(s) for s in subtotals)} = {total:g}"
                     f"   (the figure prints {pub[idx]:g}; the true value is {total:g})")
        if not np.isclose(total, out[idx]):  # the two computations are independent: say so loudly
            raise RuntimeError(f"voxel {idx}: hand arithmetic gives {total}, engine {out[idx]}")
    return "\n".join(lines)
