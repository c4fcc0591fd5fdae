"""Pooling, stepped through: which element wins a max-pool window, what an avg-pool window
divides by, and where each window's gradient goes.

Window of output voxel o, per axis: input indices ``o*s - p + k*d`` for ``k = 0 .. kernel-1``
(``d`` = dilation, max pooling only). Output size (PyTorch's rule, ceil_mode off):
``o = floor((i + 2p - d*(k-1) - 1) / s) + 1``.

* max: padding counts as -inf; on ties the FIRST maximum in (kd, kh, kw) scan order wins, as in
  PyTorch. Backward: the whole ``∂L/∂y[o]`` goes to the winner, every other cell gets 0.
* avg: the sum divided by the window's cell count: with ``count_include_pad`` the window clipped to
  the padded volume, without it only the real cells. Backward: every real cell gets
  ``∂L/∂y[o] / divisor``.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..core.geometry import PoolGeometry
from .problem import AXES, fmt, make_problem, parse_triple, sum_of
from .report import Report


@dataclass
class PoolProblem:
    x: np.ndarray  # (D, H, W)
    mode: str  # 'max' | 'avg'
    kernel: tuple
    stride: tuple
    padding: tuple  # symmetric (pd, ph, pw)
    dilation: tuple = (1, 1, 1)
    count_include_pad: bool = True
    source: str = ""

    def __post_init__(self):
        if self.mode not in ("max", "avg"):
            raise ValueError(f"pool mode must be 'max' or 'avg', got {self.mode!r}")
        if self.mode == "avg" and self.dilation != (1, 1, 1):
            raise ValueError(f"avg pooling has no dilation (PyTorch's avg_pool3d neither); got "
                             f"dilation {self.dilation}; drop --dilation")
        # the library's PoolGeometry checks the settings (PyTorch's rules) and gives the sizes
        self.geo = PoolGeometry.from_shape((1, 1) + self.x.shape, self.kernel, self.stride,
                                           self.padding, self.dilation)

    out_size = property(lambda self: self.geo.out_size)

    def window(self, at) -> list[dict]:
        """The cells of window ``at`` in (kd, kh, kw) scan order."""
        cells = []
        for kk in itertools.product(*(range(k) for k in self.kernel)):
            idx = tuple(o * s - p + t * d for o, s, p, t, d in
                        zip(at, self.stride, self.padding, kk, self.dilation))
            pad = not all(0 <= i < n for i, n in zip(idx, self.x.shape))
            val = (-math.inf if self.mode == "max" else 0.0) if pad else float(self.x[idx])
            cells.append(dict(tap=kk, idx=idx, pad=pad, value=val))
        return cells

    def divisor(self, at) -> int:
        """PyTorch's avg-pool divisor for window ``at``."""
        n_incl, n_real = 1, 1
        for o, s, p, k, i in zip(at, self.stride, self.padding, self.kernel, self.x.shape):
            start = o * s - p
            end = min(start + k, i + p)
            n_incl *= end - start
            n_real *= min(end, i) - max(start, 0)
        return n_incl if self.count_include_pad else n_real

    def winner(self, at) -> dict:
        best = None
        for c in self.window(at):
            if best is None or c["value"] > best["value"] or (
                    math.isnan(c["value"]) and not math.isnan(best["value"])):
                best = c
        return best

    def value_at(self, at) -> float:
        if self.mode == "max":
            return self.winner(at)["value"]
        return sum(c["value"] for c in self.window(at)) / self.divisor(at)

    def input_grad(self) -> np.ndarray:
        """∂L/∂x for L = sum of all pooled outputs, window by window."""
        g = np.zeros(self.x.shape)
        for at in positions(self):
            if self.mode == "max":
                g[self.winner(at)["idx"]] += 1.0
            else:
                share = 1.0 / self.divisor(at)
                for c in self.window(at):
                    if not c["pad"]:
                        g[c["idx"]] += share
        return g


def make_pool_problem(args) -> PoolProblem:
    """From the ``conv3d explain --pool`` arguments (the data sources are those of explain)."""
    pr = make_problem(input_size=args.input, example=args.example,
                      input_file=args.input_file, seed=args.random)
    kernel = parse_triple(args.kernel or "3x3x3", "kernel", 1)
    stride = parse_triple(args.stride, "stride", 1) if args.stride else kernel
    if str(args.padding).lower() in ("same", "valid"):
        raise ValueError("pooling takes an int or DxHxW padding, not 'same'/'valid'")
    return PoolProblem(x=pr.x[0, 0], mode=args.pool, kernel=kernel, stride=stride,
                       padding=parse_triple(args.padding, "padding", 0),
                       dilation=parse_triple(args.dilation, "dilation", 1),
                       count_include_pad=not getattr(args, "no_count_include_pad", False),
                       source=pr.source)


def positions(pp: PoolProblem) -> list[tuple]:
    return list(itertools.product(*(range(o) for o in pp.out_size)))


def explain_pool(pp: PoolProblem, at, with_problem: bool = True) -> Report:
    at = tuple(int(v) for v in at)[-3:]
    if not all(0 <= a < o for a, o in zip(at, pp.out_size)):
        raise ValueError(f"--at {at} is outside the pooled output of shape {pp.out_size}")
    r = Report()
    r.heading(f"OUTPUT y[{', '.join(map(str, at))}] of {pp.mode} pooling: one window, cell by cell")
    if with_problem:
        r.text(f"INPUT x: shape (D, H, W) = {pp.x.shape}   data: {pp.source}")
        r.text(f"OUTPUT y: shape (OD, OH, OW) = {pp.out_size}   window {pp.kernel}, stride "
               f"{pp.stride}, padding {pp.padding}" + (f", dilation {pp.dilation}" if pp.mode == "max"
                                                      else f", count_include_pad={pp.count_include_pad}"))
        rows = []
        for ax, i, k, s, p, d, o in zip(AXES, pp.x.shape, pp.kernel, pp.stride, pp.padding,
                                        pp.dilation, pp.out_size):
            rows.append([ax, f"floor(({i} + 2*{p} - {d}*({k}-1) - 1) / {s}) + 1 = {o}"])
        r.table("Output size per axis: o = floor((i + 2p - d*(k-1) - 1) / s) + 1", ["axis", "o"], rows)
    cells = pp.window(at)
    win = pp.winner(at) if pp.mode == "max" else None
    kD, kH, kW = pp.kernel
    D, H, W = pp.x.shape
    for kd in range(kD):
        sl = [c for c in cells if c["tap"][0] == kd]
        rows, hl = [], set()
        for kh in range(kH):
            row = [f"kh={kh} (input h={sl[kh * kW]['idx'][1]})"]
            for kw in range(kW):
                c = sl[kh * kW + kw]
                text = ("pad " if c["pad"] else "") + fmt(c["value"])
                if win is not None and c["tap"] == win["tap"]:
                    text += " WINNER"
                    hl.add((kh, kw + 1))
                row.append(text)
            rows.append(row)
        r.table(f"INPUT window slice kd={kd} (input depth d={sl[0]['idx'][0]})",
                ["INPUT x"] + [f"kw={kw} (input w={sl[kw]['idx'][2]})" for kw in range(kW)],
                rows, highlight=hl)
    pos = ", ".join(map(str, at))
    if pp.mode == "max":
        flat = win["idx"][0] * H * W + win["idx"][1] * W + win["idx"][2]
        r.text(f"max over the {len(cells)} cells: the first largest in scan order is "
               f"x[{', '.join(map(str, win['idx']))}] = {fmt(win['value'])} "
               f"(flat index d*H*W + h*W + w = {flat}, what return_indices gives)")
        r.text(f"OUTPUT y[{pos}] = {fmt(win['value'])}", style="bold green")
        r.text(f"Backward: ∂L/∂y[{pos}] goes entirely to x[{', '.join(map(str, win['idx']))}]; the "
               f"other {len(cells) - 1} cells of this window get 0 from it.")
    else:
        real = [c for c in cells if not c["pad"]]
        total = sum(c["value"] for c in real)
        div = pp.divisor(at)
        rule = ("window cells inside the padded volume (count_include_pad=True)"
                if pp.count_include_pad else "real input cells only (count_include_pad=False)")
        r.text("sum = " + sum_of([c["value"] for c in real], total))
        r.text(f"divisor = {div} ({rule}); {fmt(total)} / {div} = {fmt(total / div)}")
        r.text(f"OUTPUT y[{pos}] = {fmt(total / div)}", style="bold green")
        r.text(f"Backward: each of the {len(real)} real cells gets ∂L/∂y[{pos}] / {div}; "
               f"padding cells are not inputs and get nothing.")
    if with_problem:
        g = pp.input_grad()
        r.heading("Where the gradient of L = sum(y) lands, per input voxel", 2)
        for d in range(D):
            r.table(f"∂L/∂x, INPUT depth slice d={d}", ["h \\ w"] + [f"w={w}" for w in range(W)],
                    [[f"h={h}"] + [fmt(g[d, h, w]) for w in range(W)] for h in range(H)])
    return r
