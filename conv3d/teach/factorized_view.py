"""(2+1)D, explained: a t×d×d convolution split into a 1×d×d spatial pass and a t×1×1 temporal pass.

R(2+1)D (Tran et al., 2018) replaces one full 3D convolution, weight (Cout, Cin, t, d, d), by

1. a spatial convolution, weight (M, Cin, 1, d, d): each frame filtered on its own;
2. a temporal convolution, weight (Cout, M, t, 1, 1): each pixel filtered along time;

with ``M`` middle channels chosen so both have about the same number of parameters:

    M = floor(t·d²·Cin·Cout / (d²·Cin + t·Cout))

(In a network a ReLU sits between the passes; this view leaves it out so that the worked numbers
are exactly ``conv(conv(x, w1), w2)``.)
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..core.shapes import conv_output_size
from .problem import fmt, make_problem, parse_triple, sum_of
from .report import Report


def mid_channels(t: int, d: int, cin: int, cout: int) -> int:
    """The R(2+1)D middle-channel rule: ``floor(t*d*d*Cin*Cout / (d*d*Cin + t*Cout))``."""
    return (t * d * d * cin * cout) // (d * d * cin + t * cout)


@dataclass
class FactorizedProblem:
    x: np.ndarray  # (Cin, T, H, W)
    w1: np.ndarray  # (M, Cin, 1, d, d) spatial
    w2: np.ndarray  # (Cout, M, t, 1, 1) temporal
    stride: tuple
    padding: tuple  # (pt, ph, pw), symmetric
    source: str = ""

    t = property(lambda self: self.w2.shape[2])
    d = property(lambda self: self.w1.shape[3])
    cin = property(lambda self: self.x.shape[0])
    mid = property(lambda self: self.w1.shape[0])
    cout = property(lambda self: self.w2.shape[0])

    def spatial_size(self):
        T, H, W = self.x.shape[1:]
        (_, sh, sw), (_, ph, pw) = self.stride, self.padding
        return (T, conv_output_size(H, self.d, sh, ph, ph), conv_output_size(W, self.d, sw, pw, pw))

    def out_size(self):
        T, H, W = self.spatial_size()
        return (conv_output_size(T, self.t, self.stride[0], self.padding[0], self.padding[0]), H, W)

    def mid_value(self, m: int, tt: int, h: int, w: int) -> tuple[float, list]:
        """One value of the middle volume: its d×d products over all input channels."""
        (_, sh, sw), (_, ph, pw) = self.stride, self.padding
        H, W = self.x.shape[2:]
        terms = []
        for c, i, j in itertools.product(range(self.cin), range(self.d), range(self.d)):
            hh, ww = h * sh - ph + i, w * sw - pw + j
            xv = float(self.x[c, tt, hh, ww]) if 0 <= hh < H and 0 <= ww < W else 0.0
            terms.append((c, hh, ww, xv, float(self.w1[m, c, 0, i, j])))
        return sum(a * b for *_, a, b in terms), terms

    def temporal_terms(self, k: int, to: int, h: int, w: int) -> list[dict]:
        """The t·M terms of output voxel (k, to, h, w): middle value times temporal weight."""
        T = self.x.shape[1]
        out = []
        for m, tau in itertools.product(range(self.mid), range(self.t)):
            tt = to * self.stride[0] - self.padding[0] + tau
            pad = not 0 <= tt < T
            mv = 0.0 if pad else self.mid_value(m, tt, h, w)[0]
            wv = float(self.w2[k, m, tau, 0, 0])
            out.append(dict(m=m, tau=tau, t=tt, pad=pad, mid=mv, w=wv, product=mv * wv))
        return out

    def value_at(self, k, to, h, w) -> float:
        return sum(t["product"] for t in self.temporal_terms(k, to, h, w))


def make_factorized_problem(args) -> FactorizedProblem:
    kernel = parse_triple(args.kernel or "3x3x3", "kernel", 1)
    if kernel[1] != kernel[2]:
        raise ValueError(f"--factorized needs a t×d×d kernel (square in space), got {kernel}")
    pr = make_problem(input_size=args.input, example=args.example,
                      input_file=args.input_file, seed=args.random, in_channels=args.in_channels)
    if str(args.padding).lower() in ("same", "valid"):
        raise ValueError("--factorized takes an int or TxHxW padding, not 'same'/'valid'")
    return build_factorized(pr.x[0], kernel[0], kernel[1], args.out_channels,
                            stride=parse_triple(args.stride or "1", "stride", 1),
                            padding=parse_triple(args.padding, "padding", 0),
                            seed=args.random or 0, source=pr.source)


def build_factorized(x, t, d, cout, stride=(1, 1, 1), padding=(0, 0, 0), seed=0, source=""):
    """A worked (2+1)D block over ``x`` (Cin, T, H, W) with random integer weights in -1..1."""
    x = np.asarray(x, dtype=np.float64)
    cin = x.shape[0]
    m = mid_channels(t, d, cin, cout)
    rng = np.random.default_rng(seed + 7)
    w1 = rng.integers(-1, 2, size=(m, cin, 1, d, d)).astype(np.float64)
    w2 = rng.integers(-1, 2, size=(cout, m, t, 1, 1)).astype(np.float64)
    return FactorizedProblem(x, w1, w2, tuple(stride), tuple(padding), source)


def positions(fp: FactorizedProblem) -> list[tuple]:
    return list(itertools.product(range(fp.cout), *(range(o) for o in fp.out_size())))


def explain_factorized(fp: FactorizedProblem, at, with_problem: bool = True) -> Report:
    at = tuple(int(v) for v in at)
    at = (0,) + at if len(at) == 3 else at[-4:]
    k, to, h, w = at
    if not (0 <= k < fp.cout and all(0 <= a < o for a, o in zip(at[1:], fp.out_size()))):
        raise ValueError(f"--at {at} is outside the (2+1)D output (Cout, T', H', W') = "
                         f"{(fp.cout,) + fp.out_size()}")
    t, d, cin, cout, m = fp.t, fp.d, fp.cin, fp.cout, fp.mid
    r = Report()
    r.heading(f"(2+1)D: a {t}×{d}×{d} convolution as a 1×{d}×{d} spatial pass, then a {t}×1×1 "
              f"temporal pass")
    if with_problem:
        num, den = t * d * d * cin * cout, d * d * cin + t * cout
        r.text(f"Mid-channel rule: M = floor(t·d²·Cin·Cout / (d²·Cin + t·Cout)) = "
               f"floor({t}·{d * d}·{cin}·{cout} / ({d * d}·{cin} + {t}·{cout})) = "
               f"floor({num}/{den}) = {m}")
        full = cout * cin * t * d * d
        p1, p2 = m * cin * d * d, cout * m * t
        r.table("Parameters (weights only; biases add Cout to the full conv, M + Cout to (2+1)D)",
                ["layer", "weight shape", "parameters"],
                [["full 3D conv", f"({cout}, {cin}, {t}, {d}, {d})", f"{full}"],
                 ["(2+1)D spatial pass", f"({m}, {cin}, 1, {d}, {d})", f"{p1}"],
                 ["(2+1)D temporal pass", f"({cout}, {m}, {t}, 1, 1)", f"{p2}"],
                 ["(2+1)D total", "", f"{p1 + p2}"]])
        r.text(f"(2+1)D / full 3D parameters = {p1 + p2}/{full} = {(p1 + p2) / full:.3f}; and a "
               f"network gets a second nonlinearity (a ReLU between the passes) for free.")
        T, H, W = fp.x.shape[1:]
        sT, sH, sW = fp.spatial_size()
        oT, oH, oW = fp.out_size()
        r.table("Shapes, pass by pass (C, T, H, W)", ["volume", "shape", "how"], [
            ["INPUT x", f"({cin}, {T}, {H}, {W})", fp.source],
            ["middle (after the spatial pass)", f"({m}, {sT}, {sH}, {sW})",
             f"H: floor(({H} + 2·{fp.padding[1]} - {d}) / {fp.stride[1]}) + 1 = {sH}; T unchanged"],
            ["OUTPUT y (after the temporal pass)", f"({cout}, {oT}, {oH}, {oW})",
             f"T: floor(({T} + 2·{fp.padding[0]} - {t}) / {fp.stride[0]}) + 1 = {oT}"]])
    terms = fp.temporal_terms(k, to, h, w)
    rows = [[f"m={tm['m']}, τ={tm['tau']}",
             f"mid[{tm['m']}, {tm['t']}, {h}, {w}]" + (" pad" if tm["pad"] else ""),
             f"{fmt(tm['mid'])} × {fmt(tm['w'])} = {fmt(tm['product'])}"] for tm in terms]
    r.table(f"Temporal pass for OUTPUT y[{k}, {to}, {h}, {w}]: {len(terms)} = M·t terms",
            ["(mid channel, time tap)", "middle value read", "mid × w2 = term"], rows)
    first = next((tm for tm in terms if not tm["pad"]), None)
    if first is not None:
        val, sp = fp.mid_value(first["m"], first["t"], h, w)
        r.text(f"Each middle value is a 1×{d}×{d} window of one INPUT frame, summed over the "
               f"{cin} input channel(s). For example mid[{first['m']}, {first['t']}, {h}, {w}] = "
               + " + ".join(f"({fmt(a)}×{fmt(b)})" for *_, a, b in sp) + f" = {fmt(val)}")
    total = sum(tm["product"] for tm in terms)
    r.text("sum of the temporal terms = " + sum_of([tm["product"] for tm in terms], total))
    r.text(f"OUTPUT y[{k}, {to}, {h}, {w}] = {fmt(total)}", style="bold green")
    r.code(f"mid = F.conv3d(x, w1, stride=(1, {fp.stride[1]}, {fp.stride[2]}), "
           f"padding=(0, {fp.padding[1]}, {fp.padding[2]}))  # spatial 1x{d}x{d}\n"
           f"y = F.conv3d(mid, w2, stride=({fp.stride[0]}, 1, 1), padding=({fp.padding[0]}, 0, 0))"
           f"  # temporal {t}x1x1")
    return r


__all__ = ["mid_channels", "FactorizedProblem", "build_factorized", "explain_factorized"]
