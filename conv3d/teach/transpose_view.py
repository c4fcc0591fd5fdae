"""Transposed convolution, explained: where one input voxel scatters, and what one output gathers.

``conv_transpose3d`` is the adjoint of ``conv3d`` (``conv3d.ops.conv_transpose``). Per axis, with
stride s, padding p and dilation d, input position i and kernel tap t meet at output position

    o = i*s - p + t*d                    (kept when 0 <= o < O, else cropped by the padding)

and every such meeting adds ``x[c, i] * w[c, k, t]`` into ``y[k, o]``. Read forwards, that is a
*scatter*: input voxel i stamps the kernel, times its value, onto the output at i*s - p. Read
backwards, it is a *gather*: output o collects the taps t with ``(o + p - t*d)`` a multiple of s
(then i = (o + p - t*d) / s). How many taps reach o depends on o mod s, so with kernel 3 and
stride 2 interior outputs get 2 taps per axis on one parity and 1 on the other: 8, 4, 2 or 1
products in 3D. That uneven count is the checkerboard (``checkerboard_demo``).

Everything here is plain loops over those formulas, written to be read; the tests check them
against ``conv3d.functional.conv_transpose3d`` and an independent naive loop.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..core.geometry import AXES
from ..ops.conv_transpose import transposed_output_size
from .problem import fmt, parse_triple, sum_of
from .report import Report


@dataclass
class TransposeProblem:
    """x (N, C_in, D, H, W), w (C_in, C_out, kD, kH, kW) (torch's layout), one group, no bias."""

    x: np.ndarray
    w: np.ndarray
    stride: tuple = (1, 1, 1)
    padding: tuple = (0, 0, 0)
    output_padding: tuple = (0, 0, 0)
    dilation: tuple = (1, 1, 1)
    source: str = ""

    def __post_init__(self):
        if self.x.ndim != 5 or self.w.ndim != 5 or self.x.shape[1] != self.w.shape[0]:
            raise ValueError(f"x must be (N, C_in, D, H, W) and w (C_in, C_out, kD, kH, kW) with "
                             f"the same C_in; got shapes {self.x.shape} and {self.w.shape}")
        for ax, op, s, d in zip(AXES, self.output_padding, self.stride, self.dilation):
            if op >= max(s, d):
                raise ValueError(f"--output-padding {op} on the {ax} axis must be smaller than "
                                 f"the stride {s} or the dilation {d}")
        if min(self.out_size) < 1:
            raise ValueError(f"the output would be empty: size {self.out_size}; use less padding")

    in_size = property(lambda self: tuple(self.x.shape[2:]))
    kernel = property(lambda self: tuple(self.w.shape[2:]))

    @property
    def out_size(self) -> tuple:
        return tuple(transposed_output_size(i, k, s, p, d, op) for i, k, s, p, d, op in zip(
            self.in_size, self.kernel, self.stride, self.padding, self.dilation,
            self.output_padding))

    def landing(self, axis: int, i: int, t: int) -> int:
        """Output position where input i and tap t meet on one axis: ``i*s - p + t*d``."""
        return i * self.stride[axis] - self.padding[axis] + t * self.dilation[axis]

    def check_voxel(self, at, shape, what: str, names) -> tuple:
        at = tuple(int(v) for v in at)
        at = (0, 0) + at if len(at) == 3 else at
        if len(at) != 5 or not all(0 <= v < s for v, s in zip(at, shape)):
            raise ValueError(f"{what} must name a voxel d,h,w (or {names}) inside shape {shape}; "
                             f"got {at}")
        return at

    def scatter_terms(self, at) -> list[dict]:
        """Every (output channel, tap) of input voxel ``at``: where it lands, x, w, product."""
        n, c, *i = self.check_voxel(at, self.x.shape, "--at (the input voxel)", "n,c,d,h,w")
        xv = float(self.x[(n, c, *i)])
        terms = []
        for k in range(self.w.shape[1]):
            for tap in itertools.product(*(range(s) for s in self.kernel)):
                o = tuple(self.landing(a, i[a], tap[a]) for a in range(3))
                inside = all(0 <= v < s for v, s in zip(o, self.out_size))
                wv = float(self.w[(c, k, *tap)])
                terms.append(dict(k=k, tap=tap, out=o, inside=inside, x=xv, w=wv,
                                  product=xv * wv))
        return terms

    def axis_gather(self, axis: int, o: int) -> list[dict]:
        """On one axis, every tap t with its input position (o + p - t*d) / s, if any."""
        s, p, d = self.stride[axis], self.padding[axis], self.dilation[axis]
        rows = []
        for t in range(self.kernel[axis]):
            num = o + p - t * d
            i = num // s if num % s == 0 else None
            rows.append(dict(t=t, num=num, i=i, hit=i is not None and 0 <= i < self.in_size[axis]))
        return rows

    def gather_terms(self, at) -> list[dict]:
        """Every (input channel, input voxel, tap) that adds into output voxel ``at``."""
        shape = (self.x.shape[0], self.w.shape[1]) + self.out_size
        n, k, *o = self.check_voxel(at, shape, "--output-at (the output voxel)", "n,k,d,h,w")
        per_axis = [[r for r in self.axis_gather(a, o[a]) if r["hit"]] for a in range(3)]
        terms = []
        for c in range(self.x.shape[1]):
            for rd, rh, rw in itertools.product(*per_axis):
                i, tap = (rd["i"], rh["i"], rw["i"]), (rd["t"], rh["t"], rw["t"])
                xv, wv = float(self.x[(n, c, *i)]), float(self.w[(c, k, *tap)])
                terms.append(dict(c=c, idx=i, tap=tap, x=xv, w=wv, product=xv * wv))
        return terms


def make_transpose_problem(input_size="2x2x2", kernel="3x3x3", stride="2", padding="0",
                           output_padding="0", dilation="1", seed: int | None = None,
                           in_channels: int = 1, out_channels: int = 1) -> TransposeProblem:
    """Random small integers (input 1..4, weights -1..2, seed 0 by default), so that every
    product is exact and easy to check by hand."""
    rng = np.random.default_rng(0 if seed is None else seed)
    size = parse_triple(input_size, "input", 1)
    ksize = parse_triple(kernel, "kernel", 1)
    x = rng.integers(1, 5, size=(1, in_channels) + size).astype(np.float64)
    w = rng.integers(-1, 3, size=(in_channels, out_channels) + ksize).astype(np.float64)
    return TransposeProblem(x, w, parse_triple(stride, "stride", 1),
                            parse_triple(padding, "padding", 0),
                            parse_triple(output_padding, "output-padding", 0),
                            parse_triple(dilation, "dilation", 1),
                            f"random integers 1..4, weights -1..2 "
                            f"(seed {0 if seed is None else seed})")


def _v(idx) -> str:
    return ", ".join(map(str, idx))


def describe(tp: TransposeProblem, r: Report) -> None:
    r.text(f"INPUT   x: shape (N, C_in, D, H, W) = {tp.x.shape}   data: {tp.source}")
    r.text(f"WEIGHTS w: shape (C_in, C_out, kD, kH, kW) = {tp.w.shape}  (torch's layout)")
    y_shape = (tp.x.shape[0], tp.w.shape[1]) + tp.out_size
    r.text(f"OUTPUT  y: shape (N, C_out, OD, OH, OW) = {y_shape}")
    rows = []
    for a, ax in enumerate(AXES):
        i, k, s, p, d, op = (tp.in_size[a], tp.kernel[a], tp.stride[a], tp.padding[a],
                             tp.dilation[a], tp.output_padding[a])
        rows.append([ax, i, k, s, p, d, op, f"({i} - 1)*{s} - 2*{p} + {d}*({k} - 1) + {op} + 1 "
                                            f"= {tp.out_size[a]}"])
    r.table("Output size per axis: o = (i - 1)*s - 2p + d*(k - 1) + output_padding + 1",
            ["axis", "i", "k", "s", "p", "d", "output_padding", "o = ..."], rows)
    r.text("Rule: input position i and kernel tap t meet at output o = i*s - p + t*d on each axis "
           "and add x[c, i] × w[c, k, t] into y[k, o]; no kernel flip (the adjoint of conv3d's "
           "cross-correlation).")


def explain_transpose(tp: TransposeProblem, at=(0, 0, 0), output_at=None) -> Report:
    """The scatter of input voxel ``at`` and the gather into output voxel ``output_at``
    (default: the middle of the output)."""
    if output_at is None:
        output_at = tuple(o // 2 for o in tp.out_size)
    r = Report()
    r.heading("conv_transpose3d: scatter one input voxel, gather one output voxel")
    describe(tp, r)
    n, c, *i = tp.check_voxel(at, tp.x.shape, "--at (the input voxel)", "n,c,d,h,w")
    terms = tp.scatter_terms(at)
    inside = [t for t in terms if t["inside"]]
    r.heading(f"SCATTER: input x[{n}, {c}, {_v(i)}] = {fmt(terms[0]['x'])} stamps the kernel onto "
              f"the output at o = i*s - p + t*d", 2)
    r.text(" ; ".join(f"{ax}: o = {i[a]}*{tp.stride[a]} - {tp.padding[a]} + t*{tp.dilation[a]}"
                      for a, ax in enumerate(AXES)))
    r.table(f"{len(inside)} products land inside the output"
            + (f" ({len(terms) - len(inside)} more are cropped by the padding)"
               if len(inside) < len(terms) else ""),
            ["OUTPUT voxel y[n, k, od, oh, ow]", "tap w[c, k, kd, kh, kw]", "x × w = product"],
            [[f"y[{n}, {t['k']}, {_v(t['out'])}]", f"w[{c}, {t['k']}, {_v(t['tap'])}]",
              f"{fmt(t['x'])} × {fmt(t['w'])} = {fmt(t['product'])}"] for t in inside])
    n2, k, *o = tp.check_voxel(output_at, (tp.x.shape[0], tp.w.shape[1]) + tp.out_size,
                               "--output-at (the output voxel)", "n,k,d,h,w")
    r.heading(f"GATHER: output y[{n2}, {k}, {_v(o)}] collects the taps t with o + p - t*d a "
              f"multiple of s (input i = (o + p - t*d) / s)", 2)
    for a, ax in enumerate(AXES):
        parts = []
        for row in tp.axis_gather(a, o[a]):
            if row["i"] is None:
                parts.append(f"t={row['t']}: {row['num']} not a multiple of {tp.stride[a]}")
            elif not row["hit"]:
                parts.append(f"t={row['t']}: i={row['i']} outside the input")
            else:
                parts.append(f"t={row['t']}: i={row['num']}/{tp.stride[a]}={row['i']}")
        hits = sum(row["hit"] for row in tp.axis_gather(a, o[a]))
        r.text(f"{ax} o={o[a]}: {hits} tap(s) -- " + "; ".join(parts))
    gathered = tp.gather_terms(output_at)
    r.table(f"{len(gathered)} products add into this output voxel",
            ["INPUT voxel x[n, c, d, h, w]", "tap w[c, k, kd, kh, kw]", "x × w = product"],
            [[f"x[{n2}, {t['c']}, {_v(t['idx'])}]", f"w[{t['c']}, {k}, {_v(t['tap'])}]",
              f"{fmt(t['x'])} × {fmt(t['w'])} = {fmt(t['product'])}"] for t in gathered])
    total = sum(t["product"] for t in gathered)
    r.text("sum = " + sum_of([t["product"] for t in gathered], total, "0 (no input reaches it)"))
    r.text(f"OUTPUT y[{n2}, {k}, {_v(o)}] = {fmt(total)}", style="bold green")
    return r


def parity_class_means(y: np.ndarray, margin: int = 1) -> dict:
    """Mean of ``y`` (D, H, W) over its interior (``margin`` voxels cut from every side), per
    parity class (od % 2, oh % 2, ow % 2) of the full volume's indices."""
    od, oh, ow = np.indices(y.shape)
    inner = np.zeros(y.shape, bool)
    inner[margin:-margin, margin:-margin, margin:-margin] = True
    return {cls: float(y[inner & (od % 2 == cls[0]) & (oh % 2 == cls[1]) & (ow % 2 == cls[2])]
                       .mean()) for cls in itertools.product((0, 1), repeat=3)}


def checkerboard_demo(size: int = 6, dtype=np.float64) -> dict:
    """Upsample a constant volume of ones (1, 1, size, size, size) by 2 in two ways, both with
    all-ones 3x3x3 weights, and measure the interior (one voxel cut from every side):

    * ``'transposed'``: conv_transpose3d, kernel 3, stride 2, padding 1, output_padding 1;
    * ``'resize_conv'``: nearest resize by 2, then conv3d, kernel 3, padding 1.

    Returns, per way: the output ``y`` (2*size)^3, the interior's ``max``, ``min``, their
    ``ratio`` and the ``means`` per parity class. A constant input should give a constant
    output; the transposed convolution's parity classes get 8, 4, 2 or 1 products instead.
    """
    from .. import functional as F  # noqa: PLC0415 - teach is the top layer
    from ..core.tensor import Tensor  # noqa: PLC0415

    x = Tensor(np.ones((1, 1, size, size, size), dtype=dtype))
    w = Tensor(np.ones((1, 1, 3, 3, 3), dtype=dtype))
    ways = {"transposed": F.conv_transpose3d(x, w, stride=2, padding=1, output_padding=1),
            "resize_conv": F.conv3d(F.interpolate(x, scale_factor=2, mode="nearest"), w,
                                    padding=1)}
    result = {}
    for name, y in ways.items():
        y = y.numpy()[0, 0]
        inner = y[1:-1, 1:-1, 1:-1]
        result[name] = dict(y=y, max=float(inner.max()), min=float(inner.min()),
                            ratio=float(inner.max() / inner.min()), means=parity_class_means(y))
    return result
