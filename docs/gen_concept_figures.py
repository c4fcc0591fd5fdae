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


def fig_factorized():
    """(2+1)D versus full 3D: weights of each part, with the mid-channel rule."""
    from conv3d import nn
    cases = [(3, 64), (64, 64), (64, 128), (128, 256)]
    fig, ax = plt.subplots(figsize=(9, 4.2))
    for i, (C, K) in enumerate(cases):
        block, full = nn.Conv2Plus1d(C, K, 3), nn.Conv3d(C, K, 3, bias=False)
        sp, tp = block.spatial.weight.size, block.temporal.weight.size
        ax.bar(i - 0.2, full.weight.size, 0.38, color="tab:gray",
               label="full 3x3x3 Conv3d" if i == 0 else None)
        ax.bar(i + 0.2, sp, 0.38, color="tab:blue",
               label="spatial 1x3x3 (C -> M)" if i == 0 else None)
        ax.bar(i + 0.2, tp, 0.38, bottom=sp, color="tab:orange",
               label="temporal 3x1x1 (M -> K)" if i == 0 else None)
        ax.text(i + 0.2, sp + tp, f"M={block.mid_channels}\n{sp + tp:,}", ha="center",
                va="bottom", fontsize=8)
        ax.text(i - 0.2, full.weight.size, f"{full.weight.size:,}", ha="center", va="bottom",
                fontsize=8)
    ax.set_xticks(range(len(cases)), [f"C={C}, K={K}" for C, K in cases])
    ax.set_ylabel("weights (no bias)")
    ax.set_yscale("log")
    ax.set_ylim(1e3, 3e6)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Conv2Plus1d keeps the weight count of the full conv: M = floor(t d^2 C K / "
                 "(d^2 C + t K))", fontsize=10)
    return fig


def fig_inflation():
    """A 2-D edge kernel inflated to 3-D, and its response on a static clip."""
    from conv3d import nn
    w2 = np.array([[[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]]], dtype=np.float64)  # Sobel, (1,1,3,3)
    frame = np.zeros((8, 8))
    frame[2:6, 3:7] = 1.0  # a bright square
    clip = np.repeat(frame[None], 5, axis=0)  # the same frame 5 times: a static clip
    y2 = F.conv3d(conv3d.Tensor(frame[None, None, None]),
                  conv3d.Tensor(w2[:, :, None]), padding=(0, 1, 1)).numpy()[0, 0, 0]
    w3 = nn.inflate(w2, 3)
    y3 = F.conv3d(conv3d.Tensor(clip[None, None]), conv3d.Tensor(w3),
                  padding=(1, 1, 1)).numpy()[0, 0]
    fig, axes = plt.subplots(2, 4, figsize=(12, 6))
    for t in range(3):
        _grid(axes[0, t], w3[0, 0, t], f"inflated kernel, time slice {t} (= 2-D / 3)",
              cmap="coolwarm", vmin=-1, vmax=1, fmt="{:.2f}")
    _grid(axes[0, 3], w2[0, 0], "the 2-D kernel (Sobel)", cmap="coolwarm", vmin=-2, vmax=2)
    panels = [(frame, "one frame of the static clip"), (y2, "2-D conv of the frame"),
              (y3[2], "3-D conv, middle frame t=2:\nequal to the 2-D response"),
              (y3[0], "3-D conv, first frame t=0 (time\npadding 1): 2/3 of the 2-D response")]
    for ax, (img, title) in zip(axes[1], panels):
        ax.imshow(img, cmap="RdBu_r" if img is not frame else "Greys", vmin=-4 if img is not frame
                  else 0, vmax=4 if img is not frame else 1)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("I3D inflation with nn.inflate(w2d, time=3): repeat over time, divide by T. "
                 "A clip that does not move gives the image network's answer.", fontsize=10)
    fig.tight_layout()
    return fig


def _layer_costs(model, input_shape, batch):
    """Per leaf layer: name, parameters, MACs per sample, output bytes (batch), im2col bytes."""
    from conv3d import nn
    rows = []

    def hook(module, inputs, out):
        x = inputs[0]
        params = sum(int(p.size) for p in module._parameters.values() if p is not None)
        macs, cols = 0, 0
        if isinstance(module, nn.Conv3d):
            taps = module.in_channels // module.groups * int(np.prod(module.kernel_size))
            macs = int(np.prod(out.shape[1:])) * taps
            cols = batch * module.in_channels * int(np.prod(module.kernel_size)) * int(
                np.prod(out.shape[2:])) * x.data.itemsize
        elif isinstance(module, nn.Linear):
            macs = module.in_features * module.out_features
        rows.append((type(module).__name__, params, macs,
                     batch * int(np.prod(out.shape[1:])) * out.data.itemsize, cols))

    handles = [m.register_forward_hook(hook) for m in model.modules() if not m._modules]
    model.eval()
    with conv3d.no_grad():
        model(conv3d.Tensor(np.zeros((1,) + input_shape, dtype=np.float32)))
    for h in handles:
        h.remove()
    return rows


def article_model():
    """The article's Keras 3D-MNIST model (3 input channels), built with conv3d.nn."""
    from conv3d import nn
    return nn.Sequential(
        nn.Conv3d(3, 32, 3), nn.ReLU(), nn.MaxPool3d(2), nn.BatchNorm3d(32), nn.Dropout(0.5),
        nn.Conv3d(32, 64, 3), nn.ReLU(), nn.MaxPool3d(2), nn.BatchNorm3d(64), nn.Dropout(0.5),
        nn.Flatten(), nn.Linear(512, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10))


def fig_cost():
    """Where the parameters, the MACs and the memory of the article's model are."""
    rows = [r for r in _layer_costs(article_model(), (3, 16, 16, 16), 128)
            if r[0] in ("Conv3d", "Linear", "MaxPool3d", "BatchNorm3d")]
    names = [f"{i}:{r[0]}" for i, r in enumerate(rows)]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    series = [([r[1] for r in rows], "parameters", "tab:blue"),
              ([r[2] / 1e6 for r in rows], "MACs per sample (millions)", "tab:orange")]
    for ax, (vals, title, color) in zip(axes, series):
        ax.barh(names, vals, color=color)
        ax.set_title(title, fontsize=10)
        ax.invert_yaxis()
        for j, v in enumerate(vals):
            ax.text(v, j, f" {v:,.0f}" if title == "parameters" else f" {v:.2f}", va="center",
                    fontsize=8)
    axes[0].set_xticks([0, 50000, 100000, 150000], ["0", "50k", "100k", "150k"])
    ax = axes[2]
    ax.barh(names, [r[3] / 2**20 for r in rows], color="tab:green", label="output activations")
    ax.barh(names, [r[4] / 2**20 for r in rows], left=[r[3] / 2**20 for r in rows],
            color="tab:red", label="im2col workspace")
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    ax.set_title("memory for a batch of 128, float32 (MiB)", fontsize=10)
    fig.suptitle("The article's model on 3x16x16x16 input: the dense layer holds the parameters, "
                 "the convolutions do the work and fill the memory", fontsize=10)
    fig.tight_layout()
    return fig


def fig_cuda():
    """Which thread computes which output: conv3d_direct (1-D) and conv3d_tiled (3-D tiles)."""
    from conv3d.core.geometry import ConvGeometry
    from conv3d.cuda.launch import conv3d_direct_config, conv3d_tiled_config
    geo = ConvGeometry(N=1, C=1, D=6, H=10, W=10, K=2, kernel=(3, 3, 3))  # output 2 x 4x8x8
    direct = conv3d_direct_config(geo)
    K, (OD, OH, OW) = geo.K, geo.out_size
    threads_per_block = direct.block[0]
    t = np.arange(K * OD * OH * OW).reshape(K, OD, OH, OW)  # row-major flat index = thread id
    geo2 = ConvGeometry(N=1, C=1, D=8, H=14, W=14, K=2, kernel=(3, 3, 3))  # output 6x12x12
    tiled = conv3d_tiled_config(geo2)
    TW, TH, TD = tiled.block
    OD2, OH2, OW2 = geo2.out_size
    tiles_w, tiles_h = -(-OW2 // TW), -(-OH2 // TH)
    d, h, w = np.meshgrid(range(OD2), range(OH2), range(OW2), indexing="ij")
    bx = (d // TD) * tiles_w * tiles_h + (h // TH) * tiles_w + w // TW
    fig, axes = plt.subplots(2, 4, figsize=(13, 6.6))
    for j, od in enumerate((0, 3)):
        for k in range(K):
            ax = axes[0, 2 * j + k]
            blocks = t[k, od] // threads_per_block
            ax.imshow(blocks, cmap="tab10", vmin=0, vmax=9)
            for (r, c), v in np.ndenumerate(t[k, od] % threads_per_block):
                ax.text(c, r, str(v), ha="center", va="center", fontsize=6)
            ax.set_title(f"direct: y[0, k={k}, od={od}]\ncolour = blockIdx.x, "
                         f"number = threadIdx.x", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    for j, od in enumerate((0, 3, 4, 5)):
        ax = axes[1, j]
        ax.imshow(bx[od], cmap="tab10", vmin=0, vmax=9)
        for (r, c), v in np.ndenumerate(bx[od]):
            if r % TH == 0 and c % TW == 0:
                ax.text(c, r, f"bx={v}", fontsize=7, va="top", ha="left")
        ax.set_title(f"tiled: output depth od={od}\ncolour = blockIdx.x (tile "
                     f"{TD}x{TH}x{TW})", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"Top: conv3d_direct, grid {direct.grid}, block {direct.block}: one thread per "
                 f"output element, in row-major order.\nBottom: conv3d_tiled on a 6x12x12 output, "
                 f"grid {tiled.grid}, block {tiled.block}: one block per tile, partial tiles at "
                 f"the edges; each thread keeps {tiled.extra['out_ch/blk']} output channels.",
                 fontsize=9)
    fig.tight_layout()
    return fig


FIGURES = {"cube": fig_cube, "output-size": fig_output_size, "im2col": fig_im2col,
           "backward": fig_backward, "factorized": fig_factorized, "inflation": fig_inflation,
           "cost": fig_cost, "cuda": fig_cuda}


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
