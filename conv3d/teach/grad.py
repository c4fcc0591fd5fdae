"""Backward, explained: which output gradients and weights add into one gradient entry.

With ``y[o] = Σ_k x[o*s - p + k*d] · w[k] + b`` (per axis, summed over channels), the chain rule
gives two sums that a student can check by hand:

* input gradient:  ``∂L/∂x[i] = Σ ∂L/∂y[o] · w[k]``  over every (o, k) with ``o*s - p + k*d = i``.
  Border voxels appear in fewer windows, so they collect fewer terms.
* weight gradient: ``∂L/∂w[k] = Σ ∂L/∂y[o] · x[o*s - p + k*d]``  over every output voxel o
  (padding cells contribute 0).

The upstream gradient ``∂L/∂y`` is all ones by default (the loss ``L = sum(y)``), or random
integers, so that each term is a product of small numbers.
"""
from __future__ import annotations

import itertools

import numpy as np

from .explain import describe_problem
from .problem import ConvProblem, fmt, sum_of
from .report import Report


def upstream_gradient(pr: ConvProblem, kind: str = "ones", seed: int = 0) -> np.ndarray:
    """``∂L/∂y`` of shape (N, K, OD, OH, OW): ``'ones'`` (L = sum(y)) or ``'random'`` ints -2..2."""
    shape = (pr.x.shape[0], pr.w.shape[0]) + pr.out_size
    if kind == "ones":
        return np.ones(shape)
    if kind == "random":
        return np.random.default_rng(seed + 1000).integers(-2, 3, size=shape).astype(np.float64)
    raise ValueError(f"grad_output must be 'ones' or 'random', got {kind!r}")


def _gy_text(kind: str) -> str:
    return ("∂L/∂y is all ones (the loss is L = sum of all outputs)" if kind == "ones" else
            "∂L/∂y is random integers -2..2 (as if some loss had sent them back)")


def check_input_index(pr: ConvProblem, at) -> tuple[int, int, int, int, int]:
    at = tuple(int(v) for v in at)
    at = (0, 0) + at if len(at) == 3 else at
    shape = pr.x.shape
    if len(at) != 5 or not all(0 <= v < s for v, s in zip(at, shape)):
        raise ValueError(f"--at must name an INPUT voxel d,h,w (or n,c,d,h,w) inside the input of "
                         f"shape (N, C, D, H, W) = {shape}; got {at}")
    return at


def check_weight_index(pr: ConvProblem, at) -> tuple[int, int, int, int, int]:
    at = tuple(int(v) for v in at)
    at = (0, 0) + at if len(at) == 3 else at
    shape = pr.w.shape
    if len(at) != 5 or not all(0 <= v < s for v, s in zip(at, shape)):
        raise ValueError(f"--at must name a WEIGHT kd,kh,kw (or k,c,kd,kh,kw) inside the weights "
                         f"of shape (K, C, kD, kH, kW) = {shape}; got {at}")
    return at


def input_grad_terms(pr: ConvProblem, at, gy: np.ndarray) -> list[dict]:
    """Every (output voxel, kernel tap) pair whose product lands on input voxel ``at``."""
    n, c, i_d, i_h, i_w = check_input_index(pr, at)
    terms = []
    for k in range(pr.w.shape[0]):
        for o in itertools.product(*(range(s) for s in pr.out_size)):
            for kk in itertools.product(*(range(s) for s in pr.kernel)):
                hit = all(o[a] * pr.stride[a] - pr.padding[a][0] + kk[a] * pr.dilation[a] == i
                          for a, i in enumerate((i_d, i_h, i_w)))
                if hit:
                    g, wv = float(gy[(n, k) + o]), float(pr.w[(k, c) + kk])
                    terms.append(dict(k=k, out=o, tap=kk, gy=g, w=wv, product=g * wv))
    return terms


def weight_grad_terms(pr: ConvProblem, at, gy: np.ndarray) -> list[dict]:
    """Every (sample, output voxel) whose input value times ∂L/∂y adds into weight ``at``."""
    k, c, kd, kh, kw = check_weight_index(pr, at)
    terms = []
    for n in range(pr.x.shape[0]):
        for o in itertools.product(*(range(s) for s in pr.out_size)):
            idx = tuple(o[a] * pr.stride[a] - pr.padding[a][0] + t * pr.dilation[a]
                        for a, t in enumerate((kd, kh, kw)))
            pad = not all(0 <= i < s for i, s in zip(idx, pr.in_size))
            xv = 0.0 if pad else float(pr.x[(n, c) + idx])
            g = float(gy[(n, k) + o])
            terms.append(dict(n=n, out=o, idx=idx, pad=pad, gy=g, x=xv, product=g * xv))
    return terms


def explain_input_grad(pr: ConvProblem, at, gy_kind: str = "ones", seed: int = 0,
                       with_problem: bool = True):
    n, c, i_d, i_h, i_w = check_input_index(pr, at)
    gy = upstream_gradient(pr, gy_kind, seed)
    terms = input_grad_terms(pr, (n, c, i_d, i_h, i_w), gy)
    r = Report()
    r.heading(f"INPUT GRADIENT ∂L/∂x[{n}, {c}, {i_d}, {i_h}, {i_w}]: which output gradients and "
              f"weights add into it")
    if with_problem:
        describe_problem(pr, r)
    r.text(_gy_text(gy_kind) + ".")
    r.text("Rule: ∂L/∂x[i] = Σ ∂L/∂y[o] × w[k] over every output voxel o and kernel tap k with "
           "o*s - p_lo + k*d = i on each axis (the windows that covered this input voxel).")
    rows = [[f"y[{n}, {t['k']}, {', '.join(map(str, t['out']))}]",
             f"w[{t['k']}, {c}, {', '.join(map(str, t['tap']))}]",
             f"{fmt(t['gy'])} × {fmt(t['w'])} = {fmt(t['product'])}"] for t in terms]
    r.table(f"{len(terms)} terms (this input voxel sat under {len(terms)} kernel positions)",
            ["OUTPUT voxel o", "WEIGHT tap k", "∂L/∂y[o] × w[k] = term"], rows)
    total = sum(t["product"] for t in terms)
    r.text("∂L/∂x = " + sum_of([t["product"] for t in terms], total,
                               "0 (no window covers this voxel)"))
    r.text(f"INPUT GRADIENT ∂L/∂x[{n}, {c}, {i_d}, {i_h}, {i_w}] = {fmt(total)}", style="bold green")
    return r


def explain_weight_grad(pr: ConvProblem, at, gy_kind: str = "ones", seed: int = 0,
                        with_problem: bool = True):
    k, c, kd, kh, kw = check_weight_index(pr, at)
    gy = upstream_gradient(pr, gy_kind, seed)
    terms = weight_grad_terms(pr, (k, c, kd, kh, kw), gy)
    r = Report()
    r.heading(f"WEIGHT GRADIENT ∂L/∂w[{k}, {c}, {kd}, {kh}, {kw}]: one term per output voxel")
    if with_problem:
        describe_problem(pr, r)
    r.text(_gy_text(gy_kind) + ".")
    r.text("Rule: ∂L/∂w[k] = Σ over output voxels o of ∂L/∂y[o] × x[o*s - p_lo + k*d] (the input "
           "value this tap read at each kernel position; padding reads 0).")
    rows = []
    for t in terms:
        xi = f"x[{t['n']}, {c}, {', '.join(map(str, t['idx']))}]" + (" pad" if t["pad"] else "")
        rows.append([f"y[{t['n']}, {k}, {', '.join(map(str, t['out']))}]", xi,
                     f"{fmt(t['gy'])} × {fmt(t['x'])} = {fmt(t['product'])}"])
    r.table(f"{len(terms)} terms (one per output voxel)",
            ["OUTPUT voxel o", "INPUT voxel read", "∂L/∂y[o] × x = term"], rows)
    total = sum(t["product"] for t in terms)
    r.text("∂L/∂w = " + sum_of([t["product"] for t in terms], total))
    r.text(f"WEIGHT GRADIENT ∂L/∂w[{k}, {c}, {kd}, {kh}, {kw}] = {fmt(total)}", style="bold green")
    return r


def input_positions(pr: ConvProblem) -> list[tuple]:
    return list(itertools.product(*(range(s) for s in pr.x.shape)))


def weight_positions(pr: ConvProblem) -> list[tuple]:
    return list(itertools.product(*(range(s) for s in pr.w.shape)))
