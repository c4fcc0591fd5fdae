"""Explain one output voxel of a 3D convolution, product by product.

``explain_voxel(problem, at)`` builds a report that shows, for output voxel ``y[n, k, od, oh, ow]``:

1. which map is which: INPUT x, WEIGHTS w, OUTPUT y, with their shapes;
2. the output-size formula per axis, with the real numbers filled in;
3. the receptive field: the input indices ``o*s - p_lo + k*d`` that each kernel tap reads;
4. one table per kernel slice (one per input channel c and kernel depth kd): every
   ``x * w = product``, padding cells marked ``pad``, and the slice subtotal;
5. the total of the slice subtotals, plus the bias: the output voxel;
6. the same voxel as one NumPy slicing expression.

``step_through`` walks every output voxel in order (forward with ``n``, back with ``p``).
"""
from __future__ import annotations

import itertools
import sys

from .problem import ConvProblem, fmt, sum_of
from .report import Report, render

KEYS_HELP = "n / Enter: next   p: previous   q: quit"


def _shape(t) -> str:
    return str(tuple(int(v) for v in t))


def describe_problem(pr: ConvProblem, report: Report) -> None:
    """The labelled cast: input, weights, output, and how each output size comes about."""
    N, C = pr.x.shape[:2]
    K = pr.w.shape[0]
    pads = ", ".join(f"{lo}+{hi}" for lo, hi in pr.padding)
    report.text(f"INPUT   x: shape (N, C, D, H, W) = {_shape((N, C) + pr.in_size)}   data: {pr.source}")
    report.text(f"WEIGHTS w: shape (K, C, kD, kH, kW) = {_shape(pr.w.shape)}   bias b: {_shape(pr.b.shape)}")
    report.text(f"OUTPUT  y: shape (N, K, OD, OH, OW) = {_shape((N, K) + pr.out_size)}")
    report.text(f"stride {_shape(pr.stride)}, padding before+after per axis ({pads}), dilation "
                f"{_shape(pr.dilation)}; cross-correlation (the deep-learning convention: no kernel flip)")
    rows = []
    for r in pr.size_formulas():
        note = "" if r["exact"] else f"  (not a whole number: the last {r['span'] % r['s']} row(s) are never visited)"
        rows.append([r["axis"], r["i"], r["k"], r["s"], f"{r['p_lo']}+{r['p_hi']}", r["d"],
                     r["text"] + note])
    report.table("Output size per axis: o = floor((i + p_lo + p_hi - d*(k-1) - 1) / s) + 1",
                 ["axis", "i", "k", "s", "p", "d", "o = ..."], rows)


def explain_voxel(pr: ConvProblem, at, with_problem: bool = True) -> Report:
    """The full explanation of output voxel ``at`` = (od, oh, ow) or (n, k, od, oh, ow)."""
    n, k, od, oh, ow = pr.check_at(at)
    r = Report()
    r.heading(f"OUTPUT y[{n}, {k}, {od}, {oh}, {ow}]: one output voxel, product by product")
    if with_problem:
        describe_problem(pr, r)
    rf = pr.receptive_field(od, oh, ow)
    r.heading("Receptive field (which input voxels this output voxel sees)", 2)
    for ax, name, o, idx, size in zip(range(3), ("depth", "height", "width"), (od, oh, ow), rf,
                                      pr.in_size):
        s, d, lo = pr.stride[ax], pr.dilation[ax], pr.padding[ax][0]
        pads = [i for i in idx if not 0 <= i < size]
        r.text(f"{name}: i = o*s - p_lo + k*d = {o}*{s} - {lo} + k*{d} for k = 0..{len(idx) - 1}"
               f" -> input {name} indices {idx}"
               + (f"  ({len(pads)} of them PADDING, outside 0..{size - 1})" if pads else ""))
    taps = pr.taps(at)
    ntaps = len(taps)
    r.heading(f"The {ntaps} products, one table per kernel slice (rows kh, columns kw)", 2)
    r.text("Each cell: input value × weight = product.  'pad' marks a padding cell (value 0, "
           "outside the input).")
    subtotals = []
    C, kD, kH, kW = pr.w.shape[1:]
    for c in range(C):
        for kd in range(kD):
            cell = {(t["kh"], t["kw"]): t for t in taps if t["c"] == c and t["kd"] == kd}
            i_d = rf[0][kd]
            depth_pad = not 0 <= i_d < pr.in_size[0]
            rows = []
            for kh in range(kH):
                i_h = rf[1][kh]
                label = f"kh={kh} (input h={i_h}{' pad' if not 0 <= i_h < pr.in_size[1] else ''})"
                row = [label]
                for kw in range(kW):
                    t = cell[(kh, kw)]
                    xs = f"pad {fmt(t['x'])}" if t["pad"] else fmt(t["x"])
                    row.append(f"{xs} × {fmt(t['w'])} = {fmt(t['product'])}")
                rows.append(row)
            cols = ["INPUT x × WEIGHT w"] + [
                f"kw={kw} (input w={rf[2][kw]}{' pad' if not 0 <= rf[2][kw] < pr.in_size[2] else ''})"
                for kw in range(kW)]
            sub = sum(t["product"] for t in cell.values())
            subtotals.append(((c, kd), sub))
            ch = f"c={c}, " if C > 1 else ""
            r.table(f"Kernel slice {ch}kd={kd} over input depth d={i_d}"
                    + ("  (PADDING: the whole slice is outside the input)" if depth_pad else ""),
                    cols, rows)
            r.text(f"subtotal {ch}kd={kd}: " + " + ".join(
                f"({fmt(cell[(kh, kw)]['product'])})" for kh in range(kH) for kw in range(kW))
                   + f" = {fmt(sub)}")
    total = sum(s for _, s in subtotals)
    bias = float(pr.b[k])
    r.heading("Sum", 2)
    r.text("sum of slice subtotals = " + sum_of([s for _, s in subtotals], total))
    r.text(f"plus bias b[{k}] = {fmt(bias)}: {fmt(total)} + {fmt(bias)} = {fmt(total + bias)}")
    r.text(f"OUTPUT y[{n}, {k}, {od}, {oh}, {ow}] = {fmt(total + bias)}", style="bold green")
    r.heading("The same voxel in NumPy", 2)
    r.code(pr.numpy_expression(at))
    if pr.published is not None and with_problem:
        r.extend(check_published(pr))
    return r


def check_published(pr: ConvProblem) -> Report:
    """Compare each voxel of a published answer with the arithmetic, and say which are wrong."""
    r = Report()
    r.heading("Checking the published figure, voxel by voxel", 2)
    pub = pr.published
    if pub.shape != pr.out_size or pr.x.shape[:2] != (1, 1) or pr.w.shape[0] != 1:
        r.text(f"(The published output has shape {pub.shape}; this run's output has shape "
               f"{pr.out_size} with N={pr.x.shape[0]}, K={pr.w.shape[0]}, so they are not "
               f"comparable: run without --stride/--padding/--dilation to compare.)")
        return r
    rows, wrong = [], []
    for idx in sorted(itertools.product(*(range(s) for s in pub.shape))):
        got = pr.value_at((0, 0) + idx)
        ok = abs(got - float(pub[idx])) < 1e-9
        rows.append([str(idx), fmt(pub[idx]), fmt(got), "agrees" if ok else "WRONG"])
        if not ok:
            wrong.append((idx, float(pub[idx]), got))
    r.table("Published figure vs the arithmetic", ["OUTPUT voxel (od, oh, ow)", "published",
                                                     "computed (sum of products)", "verdict"],
            rows, highlight={(i, 3) for i, row in enumerate(rows) if row[3] == "WRONG"})
    for idx, p, g in wrong:
        r.text(f"The published figure's {fmt(p)} at output {idx} is wrong: the products sum "
               f"to {fmt(g)} (run --at {','.join(map(str, idx))} to see all of them).",
               style="bold red")
    if not wrong:
        r.text("Every published voxel agrees with the arithmetic.")
    else:
        flipped = ConvProblem(pr.x, pr.w[:, :, ::-1, ::-1, ::-1].copy(), pr.b, pr.stride,
                              pr.padding, pr.dilation)
        if all(abs(flipped.value_at((0, 0) + idx) - p) > 1e-9 for idx, p, _ in wrong):
            r.text("Flipping the kernel (true convolution instead of cross-correlation) does not "
                   "produce the published numbers either: they are arithmetic slips in the figure.")
    return r


def all_positions(pr: ConvProblem) -> list[tuple]:
    """Every output voxel (n, k, od, oh, ow) in row-major order: the order --step walks."""
    N, K = pr.x.shape[0], pr.w.shape[0]
    return list(itertools.product(range(N), range(K), *(range(o) for o in pr.out_size)))


def _read_key(stdin) -> str:
    """One key press from a terminal (no Enter needed where termios exists), else a line."""
    try:
        import termios  # noqa: PLC0415
        import tty  # noqa: PLC0415
        fd = stdin.fileno()
        old = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            ch = stdin.read(1)
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)
        return ch
    except Exception:  # not a real terminal (or no termios): read a line instead
        line = stdin.readline()
        return line[:1] if line else "q"


def step_through(positions, build, fmt_name: str = "rich", file=None, stdin=None,
                 interactive: bool | None = None, width: int | None = None) -> int:
    """Show ``build(position) -> Report`` for each position.

    Interactive (stdin is a terminal): keys n/Enter (next), p (previous), q (quit). Otherwise
    every position is printed in order, each under a "step i/N" heading. Returns the number of
    steps shown.
    """
    stdin = stdin if stdin is not None else sys.stdin
    if interactive is None:
        interactive = hasattr(stdin, "isatty") and stdin.isatty()
    total = len(positions)
    if not interactive:
        for i, pos in enumerate(positions):
            rep = Report().heading(f"step {i + 1}/{total}")
            render(rep.extend(build(pos)), fmt_name, file, width)
        return total
    i, shown = 0, 0
    while True:
        rep = Report().heading(f"step {i + 1}/{total}").extend(build(positions[i]))
        rep.text(KEYS_HELP, style="dim")
        render(rep, fmt_name, file, width)
        shown += 1
        key = _read_key(stdin).lower()
        if key == "q":
            return shown
        if key == "p":
            i = max(i - 1, 0)
        elif i == total - 1:
            return shown
        else:
            i += 1
