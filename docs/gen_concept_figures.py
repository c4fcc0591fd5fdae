"""Generate the figures of the concept pages (docs/figures/*.png) with conv3d itself.

Every number drawn here is computed by the engine (``F.conv3d``, autograd, ``vol2col``, the
shape formulas, ``conv3d.nn`` layers, the CUDA launch configuration); nothing is drawn by hand.

    python docs/gen_concept_figures.py            # all figures
    python docs/gen_concept_figures.py cube im2col  # some of them

The teaching tools' own pictures (slice grids, voxel views, animations) are made by
``docs/make_figures.py`` into docs/images/.
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

import conv3d  # noqa: E402
import conv3d.functional as F  # noqa: E402
from conv3d.core.shapes import conv_output_size, same_padding  # noqa: E402

OUT = Path(__file__).resolve().parent / "figures"


def _grid(ax, values, title, cmap="Greys", vmin=None, vmax=None, fmt="{:g}", colors=None):
    """Draw a 2-D array as labelled cells with their values written in."""
    values = np.asarray(values)
    ax.imshow(values if colors is None else colors, cmap=cmap, vmin=vmin, vmax=vmax)
    for (r, c), v in np.ndenumerate(values):
        ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=9,
                color="black", fontweight="bold")
    ax.set_xticks(range(values.shape[1]))
    ax.set_yticks(range(values.shape[0]))
    ax.tick_params(labelsize=7, length=0)
    ax.set_title(title, fontsize=9)


def fig_cube():
    """The worked cube: input slices with one receptive field, the filter, the true output."""
    from conv3d.teach.cube import engine_output, load_cube
    cube = load_cube()
    out, pub = engine_output(cube), cube["published_output"]
    at = (0, 0, 1)
    fig, axes = plt.subplots(3, 4, figsize=(10, 8.2))
    for d in range(4):
        ax = axes[0, d]
        _grid(ax, cube["input"][d], f"input, depth slice d={d}", cmap="Blues", vmin=0, vmax=14)
        if at[0] <= d < at[0] + 3:
            ax.add_patch(Rectangle((at[2] - 0.5, at[1] - 0.5), 3, 3, fill=False, lw=3,
                                   ec="tab:orange"))
    for kd in range(3):
        _grid(axes[1, kd], cube["filter"][kd], f"filter, slice kd={kd}", cmap="coolwarm",
              vmin=-2, vmax=2)
    axes[1, 3].axis("off")
    axes[1, 3].text(0, 0.5, "output[d,h,w] =\n  sum over kd,kh,kw of\n  input[d+kd, h+kh, w+kw]\n"
                    "  x filter[kd, kh, kw]\n\norange box: the 27 inputs\nof output (0,0,1)",
                    fontsize=9, va="center", family="monospace")
    wrong = ~np.isclose(out, pub)
    for d in range(2):
        ax = axes[2, d]
        _grid(ax, out[d], f"true output, depth d={d}", colors=wrong[d].astype(float),
              cmap="Reds", vmin=0, vmax=2)
        for (h, w), bad in np.ndenumerate(wrong[d]):
            if bad:
                ax.text(w, h + 0.3, f"figure: {pub[d, h, w]:g}", ha="center", fontsize=7,
                        color="darkred")
    axes[2, 0].add_patch(Rectangle((at[2] - 0.5, at[1] - 0.5), 1, 1, fill=False, lw=3,
                                   ec="tab:orange"))
    for ax in axes[2, 2:]:
        ax.axis("off")
    axes[2, 2].text(0, 0.5, f"red: the published figure is wrong\n"
                    f"at {int(wrong.sum())} of 8 voxels\n" + "\n".join(
                        f"  {tuple(int(i) for i in idx)}: figure {pub[idx]:g}, true {out[idx]:g}"
                        for idx in zip(*np.nonzero(wrong))), fontsize=9, va="center")
    for ax in axes.flat:
        if ax.images:
            ax.set_xlabel("w", fontsize=7, labelpad=1)
            ax.set_ylabel("h", fontsize=7, labelpad=1)
    fig.suptitle("The worked cube: 4x4x4 input, 3x3x3 filter, 2x2x2 output (computed by F.conv3d)")
    return fig


def _axis_rows(ax, y, i, k, s, p_lo, p_hi, d, label):
    """One 1-D convolution setting: padded input cells, then each output's taps."""
    o = conv_output_size(i, k, s, p_lo, p_hi, d)
    n = i + p_lo + p_hi
    for j in range(n):
        pad = j < p_lo or j >= p_lo + i
        ax.add_patch(Rectangle((j, y), 0.9, 0.9, fc="white" if pad else "lightsteelblue",
                               ec="grey", hatch="///" if pad else None))
        ax.text(j + 0.45, y + 0.45, "pad" if pad else str(j - p_lo), ha="center",
                va="center", fontsize=6)
    for q in range(o):
        taps = [q * s + t * d for t in range(k)]
        yy = y - 0.5 - 0.45 * (q + 1)
        ax.plot([taps[0] + 0.45, taps[-1] + 0.45], [yy, yy], color="tab:orange", lw=1)
        ax.scatter([t + 0.45 for t in taps], [yy] * k, color="tab:orange", s=12, zorder=3)
        ax.text(-0.6, yy, f"out {q}", ha="right", va="center", fontsize=6)
    ax.text(-3.2, y + 0.45, label, ha="left", va="center", fontsize=8, fontweight="bold")
    ax.text(n + 0.4, y + 0.45,
            f"o = floor(({i} + {p_lo} + {p_hi} - {d}*({k}-1) - 1)/{s}) + 1 = {o}",
            va="center", fontsize=8, family="monospace")
    return y - 2.6 - 0.45 * o


def fig_output_size():
    """Padding, stride, dilation and 'same' along one axis, with the formula filled in."""
    fig, ax = plt.subplots(figsize=(11, 7.5))
    y = 0.0
    settings = [("k=3", 7, 3, 1, 0, 0, 1), ("k=3, p=1", 7, 3, 1, 1, 1, 1),
                ("k=3, s=2, p=1", 7, 3, 2, 1, 1, 1), ("k=3, d=2", 7, 3, 1, 0, 0, 2)]
    for label, i, k, s, lo, hi, d in settings:
        y = _axis_rows(ax, y, i, k, s, lo, hi, d, label)
    lo, hi = same_padding(6, 3, 2)
    y = _axis_rows(ax, y, 6, 3, 2, lo, hi, 1, f"'same', s=2\n(pad {lo},{hi})")
    ax.set_xlim(-3.3, 22)
    ax.set_ylim(y + 0.5, 1.3)
    ax.axis("off")
    ax.set_title("One axis of a 3D convolution: input cells (blue), padding (hatched), and the "
                 "taps each output reads (orange)", fontsize=10)
    return fig


def fig_im2col():
    """The column matrix of a small volume: one column per output voxel, one row per tap."""
    from conv3d.ops.im2col import vol2col
    x = np.arange(1, 1 + 3 * 3 * 4, dtype=np.float32).reshape(1, 1, 3, 3, 4)
    col = vol2col(x, (2, 2, 2), (1, 1, 1), ((0, 0),) * 3, (1, 1, 1))
    OD, OH, OW = col.shape[5:]
    mat = col.reshape(8, OD * OH * OW)
    fig = plt.figure(figsize=(11, 5.2))
    ax = fig.add_axes([0.07, 0.12, 0.9, 0.7])
    _grid(ax, mat, "", cmap="Blues", vmin=0, vmax=40, fmt="{:.0f}")
    ax.set_yticks(range(8), [f"(c0,{a},{b},{c})" for a in range(2) for b in range(2)
                             for c in range(2)], fontsize=7)
    ax.set_xticks(range(mat.shape[1]), [f"{d}{h}{w}" for d in range(OD) for h in range(OH)
                                        for w in range(OW)], fontsize=7)
    ax.set_xlabel("column = output voxel (od oh ow)")
    ax.set_ylabel("row = kernel tap (c, kd, kh, kw)")
    fig.suptitle(f"vol2col of x = 1..36 shaped (1,1,3,3,4), kernel 2x2x2: columns "
                 f"{mat.shape[0]}x{mat.shape[1]}\nconv = weight (K, {mat.shape[0]}) @ columns "
                 f"({mat.shape[0]}, {mat.shape[1]}) -> y (K, {mat.shape[1]}) = (K, {OD}, {OH}, "
                 f"{OW});  each input value is copied once per window that covers it", fontsize=10)
    return fig


def fig_backward():
    """Where gradients go: conv3d's input gradient (a 'full' correlation) and max pooling's."""
    x = conv3d.Tensor(np.zeros((1, 1, 5, 5, 5)), requires_grad=True)
    w = conv3d.Tensor(np.ones((1, 1, 3, 3, 3)))
    F.conv3d(x, w).sum().backward()  # dL/dy = 1 everywhere
    rng = np.random.default_rng(3)
    xp = conv3d.Tensor(rng.integers(0, 10, size=(1, 1, 1, 4, 4)).astype(np.float64),
                       requires_grad=True)
    F.max_pool3d(xp, (1, 2, 2)).sum().backward()
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.8))
    _grid(axes[0], x.grad[0, 0, 0], "conv: x.grad, depth 0", cmap="Oranges", vmin=0, vmax=27,
          fmt="{:.0f}")
    _grid(axes[1], x.grad[0, 0, 2], "conv: x.grad, depth 2", cmap="Oranges", vmin=0, vmax=27,
          fmt="{:.0f}")
    _grid(axes[2], xp.data[0, 0, 0], "max pool input (2x2 windows)", cmap="Blues", vmin=0,
          vmax=12, fmt="{:.0f}")
    for r in (0, 2):
        for c in (0, 2):
            axes[2].add_patch(Rectangle((c - 0.5, r - 0.5), 2, 2, fill=False, lw=2, ec="k"))
    _grid(axes[3], xp.grad[0, 0, 0], "max pool: x.grad", cmap="Oranges", vmin=0, vmax=1.5,
          fmt="{:.0f}")
    fig.suptitle("Backward with dL/dy = 1. Conv (5^3 input, 3^3 ones kernel): each input voxel "
                 "gets one gradient per window that read it (27 at the centre, 1 at a corner).\n"
                 "Max pooling: the whole gradient of a window goes to its winner; the others "
                 "get 0.", fontsize=9)
    fig.tight_layout()
    return fig


FIGURES = {"cube": fig_cube, "output-size": fig_output_size, "im2col": fig_im2col,
           "backward": fig_backward}


def main(names=None) -> None:
    OUT.mkdir(exist_ok=True)
    for name in names or FIGURES:
        fig = FIGURES[name]()
        path = OUT / f"{name}.png"
        fig.savefig(path, dpi=90, bbox_inches="tight")
        plt.close(fig)
        print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
