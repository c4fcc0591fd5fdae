"""Generate the figures of docs/teach/conv_transpose.md (docs/figures/*.png and the GIF
conv_transpose_steps.gif) with conv3d itself.

Every number drawn is computed by the engine (``F.conv_transpose3d``) or by
``conv3d.teach.transpose_view.checkerboard_demo``; nothing is drawn by hand.

    python docs/gen_transpose_figures.py                 # every figure
    python docs/gen_transpose_figures.py checkerboard    # one of them
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import conv3d  # noqa: E402
import conv3d.functional as F  # noqa: E402
from conv3d.teach.transpose_view import checkerboard_demo  # noqa: E402

OUT = Path(__file__).resolve().parent / "figures"
COLOURS = plt.get_cmap("tab10").colors


def _voxels(ax, filled, colours, title):
    """Draw a (D, H, W) mask with depth going up; ``colours`` (D, H, W, 4) RGBA."""
    ax.voxels(filled.transpose(2, 1, 0), facecolors=colours.transpose(2, 1, 0, 3),
              edgecolor=(0, 0, 0, 0.35), linewidth=0.4)
    ax.set_xlabel("w")
    ax.set_ylabel("h")
    ax.set_zlabel("d")
    ax.set_title(title, fontsize=10)
    n = max(filled.shape)
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
        axis.set_ticks(range(n + 1))
    ax.set_xlim(0, n)
    ax.set_ylim(0, n)
    ax.set_zlim(0, n)


def conv_transpose():
    """A 2x2x2 input, kernel 3, stride 2 -> a 5x5x5 output: one input's stamp, then all."""
    ones_in = conv3d.Tensor(np.ones((1, 1, 2, 2, 2)))
    ones_w = conv3d.Tensor(np.ones((1, 1, 3, 3, 3)))
    counts = F.conv_transpose3d(ones_in, ones_w, stride=2).numpy()[0, 0]   # (5, 5, 5)
    fig = plt.figure(figsize=(13, 4.4))

    ax = fig.add_subplot(1, 3, 1, projection="3d")
    filled = np.ones((2, 2, 2), bool)
    colours = np.zeros((2, 2, 2, 4))
    for idx, (d, h, w) in enumerate(np.ndindex(2, 2, 2)):
        colours[d, h, w] = (*COLOURS[idx], 0.9)
    _voxels(ax, filled, colours,
            "input x: 2x2x2 voxels\n(1, 0, 1) is the brown one, front top right")

    ax = fig.add_subplot(1, 3, 2, projection="3d")
    one = np.zeros((1, 1, 2, 2, 2))
    one[0, 0, 1, 0, 1] = 1  # input voxel (d, h, w) = (1, 0, 1)
    stamp = F.conv_transpose3d(conv3d.Tensor(one), ones_w, stride=2).numpy()[0, 0] > 0
    colours = np.zeros((5, 5, 5, 4))
    colours[stamp] = (*COLOURS[list(np.ndindex(2, 2, 2)).index((1, 0, 1))], 0.8)
    _voxels(ax, stamp, colours, "input (1, 0, 1) stamps the 3x3x3 kernel\n"
                                "at output (2, 0, 2) = i * stride")

    ax = fig.add_subplot(1, 3, 3, projection="3d")
    cmap = plt.get_cmap("viridis")
    colours = cmap((np.log2(counts) / 3.0))
    colours[..., 3] = np.where(counts > 1, 0.9, 0.06)  # single products faint: see inside
    _voxels(ax, counts > 0, colours, "all 8 stamps: products per output voxel\n"
                                     "(2, 4 or 8 where stamps overlap; 1 drawn faint)")
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=matplotlib.colors.Normalize(0, 3))
    bar = fig.colorbar(sm, ax=ax, shrink=0.6, pad=0.1, ticks=[0, 1, 2, 3])
    bar.ax.set_yticklabels(["1", "2", "4", "8"])
    fig.suptitle("conv_transpose3d, kernel 3, stride 2: each input voxel scatters the kernel "
                 "into a 5x5x5 output", fontsize=11)
    fig.tight_layout()
    fig.savefig(OUT / "conv_transpose.png", dpi=110)
    plt.close(fig)


def scatter_steps():
    """A GIF, one frame per input voxel of the 2x2x2 input (kernel 3, stride 2): the running sum
    of the stamps so far, the newest one outlined in its voxel's colour, then the whole sum."""
    from matplotlib.animation import PillowWriter  # noqa: PLC0415

    ones_w = conv3d.Tensor(np.ones((1, 1, 3, 3, 3)))
    inputs = list(np.ndindex(2, 2, 2))
    cmap = plt.get_cmap("viridis")
    fig = plt.figure(figsize=(6.4, 5.2))
    writer = PillowWriter(fps=1)
    with writer.saving(fig, OUT / "conv_transpose_steps.gif", dpi=80):
        for step in range(len(inputs) + 1):
            fig.clear()
            ax = fig.add_subplot(projection="3d")
            x = np.zeros((1, 1, 2, 2, 2))
            for d, h, w in inputs[:step + 1]:
                x[0, 0, d, h, w] = 1
            counts = F.conv_transpose3d(conv3d.Tensor(x), ones_w, stride=2).numpy()[0, 0]
            colours = cmap(np.log2(np.maximum(counts, 1)) / 3.0)
            colours[..., 3] = np.where(counts > 1, 0.9, 0.25)
            if step < len(inputs):
                newest = np.zeros((1, 1, 2, 2, 2))
                newest[(0, 0) + inputs[step]] = 1
                stamp = F.conv_transpose3d(conv3d.Tensor(newest), ones_w,
                                           stride=2).numpy()[0, 0] > 0
                colours[stamp] = (*COLOURS[step], 0.85)
                title = (f"step {step + 1} of 8: input {inputs[step]} adds its 3x3x3 stamp at "
                         f"output {tuple(2 * i for i in inputs[step])}\n(its colour); "
                         f"the others show products so far (1 faint, 2/4/8 in viridis)")
            else:
                title = ("all 8 stamps: 1 product (faint), 2, 4 or 8 where they overlap\n"
                         "= the uneven coverage behind the checkerboard")
            _voxels(ax, counts > 0, colours, title)
            ax.title.set_fontsize(8)
            writer.grab_frame()
    plt.close(fig)


def checkerboard():
    """The middle depth slice of both upsamplings of a constant volume (checkerboard_demo)."""
    demo = checkerboard_demo(size=6)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
    titles = {"transposed": "conv_transpose3d (k=3, s=2, p=1, output_padding=1)",
              "resize_conv": "nearest resize x2, then conv3d (k=3, p=1)"}
    for ax, (name, result) in zip(axes, demo.items()):
        y = result["y"][5]  # depth slice 5 of 12: an odd slice, in the interior
        ax.imshow(y, cmap="magma", vmin=0, vmax=y.max())  # each panel on its own scale
        for (r, c), v in np.ndenumerate(y):
            ax.text(c, r, f"{v:g}", ha="center", va="center", fontsize=6.5,
                    color="white" if v < y.max() / 2 else "black")
        ax.set_title(f"{titles[name]}\n3-D interior max/min = {result['max']:g}/{result['min']:g}"
                     f" = {result['ratio']:g}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("A constant input of ones (6x6x6), all-ones 3x3x3 weights, upsampled to "
                 "12x12x12: depth slice 5", fontsize=10)
    fig.tight_layout()
    fig.savefig(OUT / "checkerboard.png", dpi=110)
    plt.close(fig)


FIGURES = {"conv_transpose": conv_transpose, "checkerboard": checkerboard,
           "conv_transpose_steps": scatter_steps}

if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for name in sys.argv[1:] or FIGURES:
        FIGURES[name]()
        print(f"wrote {OUT / name}" + (".gif" if name.endswith("steps") else ".png"))
