"""Write the results: a Markdown page (with machine, threads, command, date) and a bar chart."""
from __future__ import annotations

import json
import os

from .harness import LONG_CALL, PAUSE, WARM_CALLS, WARM_TIME

DEFAULT = "conv3d auto"  # the implementation a user gets without choosing: blue in the charts


def _fmt_bytes(b):
    if b is None or isinstance(b, str):
        return b or "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if b < 1024 or unit == "GiB":
            return f"{b:.0f} {unit}" if unit == "B" else f"{b:.1f} {unit}"
        b /= 1024


def _f(v, spec, suffix=""):
    return "-" if v is None else f"{v:{spec}}{suffix}"


def _load(values):
    return ", ".join(f"{v:.1f}" for v in values) if values else "-"


def _in_table(r):
    """Rows of the per-case table (the layer suite has its own summary table)."""
    return not r["bench"].startswith("layer ")


def markdown(rows, info, command, title="conv3d benchmarks") -> str:
    lines = [f"# {title}", "",
             f"- **Command:** `{command}`",
             f"- **Date:** {info['date']}",
             f"- **Machine:** {info['cpu']}, {info['cores']} cores"
             + (f" (load average at start {_load(info.get('load_average'))}, at the end "
                f"{_load(info.get('load_average_after'))})" if info.get("load_average") else "")
             + (f"; {info['seconds']:.0f} s in all" if info.get("seconds") else ""),
             f"- **Threads:** {info['blas_threads']} BLAS threads, {info['numba_threads']} numba "
             f"threads; PyTorch: {info['torch'] or 'not installed'}",
             f"- **BLAS:** {info['blas']}"
             + (f"; environment {info['env']}" if info.get("env") else ""),
             f"- **Versions:** Python {info['python']}, NumPy {info['numpy']}, "
             f"numba {info['numba']}",
             "",
             "Float32. Each row: the median (and the best) of its *rounds* timed rounds; the "
             "implementations of one case run interleaved (a new random order every round), "
             "after an agreement check against the case's reference (the readable reference "
             "path; PyTorch's output in the layers and models suites) and a warm-up call; each "
             f"timed call follows a {PAUSE} s pause and untimed calls of the same "
             f"implementation: {WARM_CALLS}, or as many as fit in {WARM_TIME * 1e3:.0f} ms, at "
             f"least one (calls of {LONG_CALL} s or more: none, the check is their warm-up). "
             "Under a "
             "time budget (the layers suite) each case gets the time left divided by the cases "
             "left, and as many rounds of that as fit, at least three when a round takes at most "
             "1 s, else at least one. *vs torch* is time / "
             "PyTorch's time in the same case (below 1 is faster). *of GEMM* is the row's "
             "GFLOP/s over the GEMM row of the "
             "same case (a float32 NumPy/BLAS GEMM the size of the layer's im2col product). "
             "*workspace* is the peak scratch memory of the fast path (measured), or the whole "
             "im2col matrix of the reference path (its size); '-' where not tracked. "
             "*forward+backward* computes y = conv3d(x, w, b) and then the gradients of x, w "
             "and b for a random gy (3x the forward FLOPs). Shapes: a1 (N=128, C=3, 16^3 -> "
             "K=32, 3^3), a2 (N=128, C=32, 7^3 -> K=64, 3^3), b (N=4, C=64, 16x56x56 -> K=128, "
             "3^3, padding 1), cube (the 4x4x4 worked example, per-call overhead). What the "
             "strategies are and how to read the numbers: [notes.md](notes.md).",
             ""]
    header = ("| case | shape | implementation | ms | best ms | rounds | GFLOP/s | vs torch "
              "| of GEMM | workspace | note |")
    current = None
    for r in filter(_in_table, rows):
        key = (r["bench"], r["shape"])
        if key != current:
            lines += ["", f"### {r['bench']} — {r['shape']}", ""]
            lines += [r["detail"], ""] if r.get("detail") else []
            lines += [header,
                      "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
            current = key
        ms = _f(r["ms"], ".2f") if r["ms"] is not None else r["status"]
        note = r["note"] if r["status"] == "ok" else ""
        lines.append(f"| {r['bench']} | {r['shape']} | {r['impl']} | {ms} | "
                     f"{_f(r.get('best_ms'), '.2f')} | {r.get('rounds') or '-'} | "
                     f"{_f(r['gflops'], '.3g')} | {_f(r['ratio'], '.2f', 'x')} | "
                     f"{_f(r['frac_gemm'], '.0%')} | {_fmt_bytes(r['workspace'])} | {note} |")
    return "\n".join(lines) + "\n"


def bar_chart(rows, path, title, cap=4.0):
    """Horizontal bars, one panel per timed case: time relative to PyTorch in the same case
    (linear, 1 = as fast as PyTorch; bars beyond ``cap`` are cut and labelled), or milliseconds
    when PyTorch is not installed."""
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    cases = []
    for r in filter(_in_table, rows):
        key = (r["bench"], r["shape"])
        if not cases or cases[-1][0] != key:
            cases.append((key, []))
        if r["ms"] is not None and not r["is_gemm"]:
            cases[-1][1].append(r)
    cases = [c for c in cases if c[1]]
    if not cases:
        return False
    fig, axes = plt.subplots(len(cases), 1, figsize=(9, 0.2 * sum(len(c[1]) for c in cases)
                                                     + 0.7 * len(cases) + 0.6), squeeze=False)
    for ax, ((bench, shape), rs) in zip(axes[:, 0], cases):
        relative = all(r["ratio"] is not None for r in rs)
        values = [r["ratio"] if relative else r["ms"] for r in rs]
        limit = cap if relative else max(values) * 1.05
        colors = ["tab:orange" if r["is_peer"] else "tab:blue" if r["impl"].startswith(DEFAULT)
                  else "tab:gray" for r in rs]
        ax.barh(range(len(rs)), [min(v, limit) for v in values], color=colors)
        ax.set_yticks(range(len(rs)), [r["impl"] for r in rs], fontsize=6)
        ax.invert_yaxis()
        ax.set_xlim(0, limit * 1.25)
        if relative:
            ax.axvline(1.0, color="black", linewidth=0.6)
        ax.set_title(f"{bench}, {shape}", fontsize=8, loc="left")
        ax.tick_params(axis="x", labelsize=6)
        for i, (r, v) in enumerate(zip(rs, values)):
            text = f" {r['ms']:.3g} ms" + (f" ({r['ratio']:.2f}x)" if r["ratio"] else "")
            ax.text(min(v, limit), i, text, va="center", fontsize=5.5)
    axes[-1, 0].set_xlabel("time / PyTorch's time in the same case (orange: PyTorch, "
                           f"blue: {DEFAULT}, the default; grey: the others; bars cut at "
                           f"{cap:g}x)", fontsize=7)
    fig.suptitle(title, fontsize=9)
    # leave the suptitle its own strip: tight_layout alone lets the first panel's title run into it
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(rows, info, command, out_dir, name="README", title="conv3d benchmarks", extra=""):
    """Write ``<name>.md``, ``<name>.png`` (the chart, where matplotlib is installed and some
    case has timed rows) and ``<name>.json`` under ``out_dir``; ``extra`` (Markdown) goes
    before the notes. Returns the paths of the page and the chart (None if none)."""
    os.makedirs(out_dir, exist_ok=True)
    md = os.path.join(out_dir, f"{name}.md")
    png = os.path.join(out_dir, f"{name}.png")
    try:
        drawn = bar_chart(rows, png, f"{title} ({info['date']}, {info['blas_threads']} threads)")
        chart = f"\n![time per implementation]({name}.png)\n" if drawn else ""
    except ImportError:
        drawn, chart = False, "\n(No chart: pip install 'conv3d[viz]' for matplotlib.)\n"
    head, sep, rest = markdown(rows, info, command, title).partition("\nFloat32.")
    with open(md, "w") as f:
        f.write(head + ("\n" + extra if extra else "") + sep + rest + chart)
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump({"info": info, "command": command, "rows": rows}, f, indent=1, default=str)
    return md, png if drawn else None
