"""Generate the block diagrams of the model-zoo pages (docs/figures/models/*.png).

Boxes and arrows, one figure per network: kernel sizes as (time x height x width), channel
counts as in the builders of ``conv3d.models`` and torchvision. The numbers that a rule computes
come from the library: C3D's sizes from ``conv3d.models.c3d`` (its pool table and shape
formula), the (2+1)D widths from ``conv3d.nn.mid_channels_rule``, I3D's reach of the time padding
from ``I3DResNet``'s rule.

    python docs/gen_model_figures.py               # all figures
    python docs/gen_model_figures.py c3d p3d_blocks  # some of them
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Circle, FancyBboxPatch, Rectangle  # noqa: E402

from conv3d.core.shapes import pool_output_size  # noqa: E402
from conv3d.models.c3d import C3D_CONVS, C3D_POOLS, POOL_AFTER  # noqa: E402
from conv3d.nn import mid_channels_rule  # noqa: E402

OUT = Path(__file__).resolve().parent / "figures" / "models"

#: one colour per kind of layer, the same in every figure
COLORS = {"conv3d": "#9ecae1", "spatial": "#a1d99b", "temporal": "#fdae6b", "pool": "#d9d9d9",
          "point": "#dadaeb", "fc": "#bcbddc", "io": "#ffffff", "concat": "#fee391"}
KIND_NAMES = {"conv3d": "full 3-D conv (t x k x k)", "spatial": "spatial conv (1 x k x k)",
              "temporal": "temporal conv (t x 1 x 1)", "point": "1 x 1 x 1 conv",
              "pool": "pooling", "fc": "fully connected"}


def _canvas(width, height, xlim, ylim):
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.axis("off")
    return fig, ax


def box(ax, x, y, text, kind="conv3d", w=2.6, h=0.62, fontsize=9):
    """A rounded box centred at (x, y); returns its (top, bottom, left, right) anchor points."""
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                                boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=COLORS[kind], edgecolor="black", linewidth=1.0))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)
    return {"top": (x, y + h / 2), "bottom": (x, y - h / 2), "left": (x - w / 2, y),
            "right": (x + w / 2, y)}


def arrow(ax, start, end, text=None, color="black", side="right", fontsize=8, style="-|>"):
    ax.annotate("", xy=end, xytext=start,
                arrowprops=dict(arrowstyle=style, color=color, lw=1.2, shrinkA=0, shrinkB=0))
    if text:
        mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
        dx = 0.12 if side == "right" else -0.12
        ax.text(mx + dx, my, text, fontsize=fontsize, ha="left" if side == "right" else "right",
                va="center", color="#333333", style="italic")


def path(ax, points, color="black"):
    """A polyline ending in an arrow head (for shortcuts that go around boxes)."""
    for a, b in zip(points[:-2], points[1:-1]):
        ax.plot([a[0], b[0]], [a[1], b[1]], color=color, lw=1.2)
    arrow(ax, points[-2], points[-1], color=color)


def plus(ax, x, y, r=0.22, sign="+"):
    ax.add_patch(Circle((x, y), r, facecolor="white", edgecolor="black", linewidth=1.2))
    ax.text(x, y, sign, ha="center", va="center", fontsize=12, fontweight="bold")
    return {"top": (x, y + r), "bottom": (x, y - r), "left": (x - r, y), "right": (x + r, y)}


def legend(ax, kinds, x, y, dx=2.6, fontsize=8):
    """Colour swatches with their meaning, in a row from (x, y), ``dx`` apart."""
    for i, kind in enumerate(kinds):
        ax.add_patch(Rectangle((x + i * dx, y - 0.12), 0.35, 0.24, facecolor=COLORS[kind],
                               edgecolor="black", linewidth=0.8))
        ax.text(x + i * dx + 0.5, y, KIND_NAMES[kind], fontsize=fontsize, va="center")


# ---- C3D ---------------------------------------------------------------------------------------

def fig_c3d():
    """C3D's 8 convs and 5 pools in two rows, with each layer's output (C, D, H, W)."""
    size, channels = (16, 112, 112), 3
    layers = [("input", "io", f"{channels} x {size[0]} x {size[1]} x {size[2]}", "clip")]
    for name, width in C3D_CONVS:
        channels = width
        layers.append((name, "conv3d", f"{channels} x {size[0]} x {size[1]} x {size[2]}",
                       "3x3x3, pad 1"))
        if name in POOL_AFTER:
            pool = POOL_AFTER[name]
            kernel, stride, padding = C3D_POOLS[pool]
            size = tuple(pool_output_size(i, k, s, p) for i, k, s, p in
                         zip(size, kernel, stride, padding))
            kernel_text = "x".join(map(str, kernel)) + ("" if not any(padding) else
                                                        "\npad " + ",".join(map(str, padding)))
            layers.append((pool, "pool", f"{channels} x {size[0]} x {size[1]} x {size[2]}",
                           f"max {kernel_text}"))
    features = channels * int(np.prod(size))
    layers += [("flatten", "io", f"{features}", "x".join(map(str, (channels, *size)))),
               ("fc6", "fc", "4096", "ReLU, dropout"), ("fc7", "fc", "4096", "ReLU, dropout"),
               ("fc8", "fc", "487", "logits")]
    per_row, dx, dy = 6, 2.0, 2.3
    fig, ax = _canvas(11, 6.4, (-1.0, per_row * dx - 1.0), (-2 * dy - 1.3, 0.9))
    positions = []
    for i, (name, kind, shape, note) in enumerate(layers):
        row, col = divmod(i, per_row)
        x, y = col * dx, -row * dy
        b = box(ax, x, y, f"{name}\n{note}", kind, w=1.6, h=1.0, fontsize=9)
        ax.text(x, y - 0.6, shape, ha="center", va="top", fontsize=9, color="#08306b")
        positions.append(b)
    for i in range(len(positions) - 1):
        if (i + 1) % per_row:
            arrow(ax, positions[i]["right"], positions[i + 1]["left"])
        else:  # wrap to the next row
            a, b = positions[i]["bottom"], positions[i + 1]["top"]
            mid = (a[1] + b[1]) / 2 - 0.25
            path(ax, [(a[0] + 0.8, a[1] + 0.5), (a[0] + 0.95, a[1] + 0.5), (a[0] + 0.95, mid),
                      (b[0] - 0.95, mid), (b[0] - 0.95, b[1] + 0.5), (b[0] - 0.8, b[1] + 0.5)])
    ax.set_title("C3D (Tran et al. 2015): every conv 3x3x3, stride 1, padding 1, ReLU; the pools "
                 "do the downsampling.\nBlue text: output (C x D x H x W) for a 3 x 16 x 112 x 112 "
                 "clip. pool1 keeps time; pool5's padding (0, 1, 1) makes 4 x 4, so fc6 takes 8192",
                 fontsize=10)
    return fig


# ---- P3D ---------------------------------------------------------------------------------------

def _p3d_panel(ax, x0, kind):
    """One P3D bottleneck (layer1's widths: 256 -> 64 -> 64 -> 256) drawn around x = x0."""
    y_in, y1 = 6.2, 5.1
    inp = box(ax, x0, y_in, "x  (256 channels)", "io", w=2.4, h=0.5)
    c1 = box(ax, x0, y1, "1x1x1 conv 256->64\nBN, ReLU", "point", w=2.4)
    arrow(ax, inp["bottom"], c1["top"])
    s_text, t_text = "S: 1x3x3 conv 64->64\nBN, ReLU", "T: 3x1x1 conv 64->64\nBN, ReLU"
    if kind == "A":
        s = box(ax, x0, 3.9, s_text, "spatial", w=2.4)
        t = box(ax, x0, 2.7, t_text, "temporal", w=2.4)
        arrow(ax, c1["bottom"], s["top"])
        arrow(ax, s["bottom"], t["top"])
        last, formula = t["bottom"], "T(S(x))"
    elif kind == "B":
        s = box(ax, x0 - 0.75, 3.6, "S: 1x3x3\n64->64\nBN, ReLU", "spatial", w=1.35, h=0.95)
        t = box(ax, x0 + 0.75, 3.6, "T: 3x1x1\n64->64\nBN, ReLU", "temporal", w=1.35, h=0.95)
        split = (x0, y1 - 0.55)
        ax.plot([x0, x0], [c1["bottom"][1], split[1]], color="black", lw=1.2)
        ax.plot([x0 - 0.75, x0 + 0.75], [split[1], split[1]], color="black", lw=1.2)
        arrow(ax, (x0 - 0.75, split[1]), s["top"])
        arrow(ax, (x0 + 0.75, split[1]), t["top"])
        p = plus(ax, x0, 2.55)
        path(ax, [s["bottom"], (x0 - 0.75, 2.55), p["left"]])
        path(ax, [t["bottom"], (x0 + 0.75, 2.55), p["right"]])
        last, formula = p["bottom"], "S(x) + T(x)"
    else:
        s = box(ax, x0 - 0.3, 3.95, s_text, "spatial", w=2.2)
        t = box(ax, x0 - 0.3, 2.95, t_text, "temporal", w=2.2)
        arrow(ax, (x0 - 0.3, c1["bottom"][1]), s["top"])
        arrow(ax, s["bottom"], t["top"])
        p = plus(ax, x0 - 0.3, 2.1)
        arrow(ax, t["bottom"], p["top"])
        branch_y = (s["bottom"][1] + t["top"][1]) / 2
        path(ax, [(x0 - 0.3, branch_y), (x0 + 1.05, branch_y), (x0 + 1.05, 2.1), p["right"]])
        last, formula = p["bottom"], "S(x) + T(S(x))"
        ax.text(x0 + 1.1, branch_y + 0.12, "S(x)", fontsize=8, style="italic")
    c4 = box(ax, x0, 1.15, "1x1x1 conv 64->256\nBN", "point", w=2.4)
    arrow(ax, (x0, last[1]) if kind != "C" else last, c4["top"] if kind != "C" else
          (x0 - 0.3, c4["top"][1]))
    add = plus(ax, x0, 0.25)
    arrow(ax, c4["bottom"], add["top"])
    # the residual shortcut, around the right of the block
    path(ax, [inp["right"], (x0 + 1.55, y_in), (x0 + 1.55, 0.25), add["right"]], color="#555555")
    ax.text(x0 + 1.6, 3.3, "shortcut", rotation=90, fontsize=8, color="#555555", va="center")
    out = box(ax, x0, -0.65, "ReLU -> 256 channels", "io", w=2.4, h=0.5)
    arrow(ax, add["bottom"], out["top"])
    ax.text(x0, 7.0, f"P3D-{kind}", ha="center", fontsize=12, fontweight="bold")
    ax.text(x0, 6.65, f"y = {formula}", ha="center", fontsize=9.5, style="italic")


def fig_p3d_blocks():
    fig, ax = _canvas(12, 6.8, (-1.7, 10.3), (-1.6, 7.3))
    for i, kind in enumerate("ABC"):
        _p3d_panel(ax, i * 3.9, kind)
    legend(ax, ["point", "spatial", "temporal"], 0.2, -1.35, dx=3.4)
    ax.set_title("P3D bottleneck blocks (Qiu et al. 2017), widths of layer1: S = 1x3x3 (space), "
                 "T = 3x1x1 (time).\nThe network cycles A, B, C, A, ... over all its blocks; "
                 "later stages double 64 and 256 and stride (1, 2, 2) in the first 1x1x1 conv",
                 fontsize=10)
    return fig


# ---- I3D ---------------------------------------------------------------------------------------

def fig_i3d_inflation():
    from conv3d.models.i3d import I3DResNet  # noqa: PLC0415 - only this figure needs it
    T = 3
    margin = I3DResNet(time_kernel=T).temporal_margin  # the reach of the time padding
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 5.2), gridspec_kw={"width_ratios": [1, 1.25]})
    for a in (ax, bx):
        a.axis("off")
    # left: the kernel rule w3[:, :, t] = w2 / T, drawn as slices
    ax.set_xlim(-0.3, 7.3)
    ax.set_ylim(-2.6, 4.9)
    ax.set_aspect("equal")
    w2 = np.array([[1, 2, 1], [0, 3, 0], [-1, 2, -1]])
    for (r, c), v in np.ndenumerate(w2):
        ax.add_patch(Rectangle((c * 0.6, 2.4 - r * 0.6), 0.6, 0.6, facecolor="#c6dbef",
                               edgecolor="black"))
        ax.text(c * 0.6 + 0.3, 2.7 - r * 0.6, f"{v}", ha="center", va="center", fontsize=9)
    ax.text(0.9, 3.25, "2-D kernel w2 (3x3)", ha="center", fontsize=10)
    arrow(ax, (2.1, 2.1), (3.7, 2.1))
    ax.text(2.9, 2.25, f"repeat T={T} times,\ndivide by T", ha="center", va="bottom",
            fontsize=8.5, style="italic")
    for t in range(T):
        ox, oy = 4.0 + t * 0.5, 1.1 + t * 0.45
        for (r, c), v in np.ndenumerate(w2):
            ax.add_patch(Rectangle((ox + c * 0.6, oy + 1.2 - r * 0.6), 0.6, 0.6,
                                   facecolor="#9ecae1", edgecolor="black"))
            if t == T - 1:
                ax.text(ox + c * 0.6 + 0.3, oy + 1.5 - r * 0.6, "0" if v == 0 else f"{v}/{T}",
                        ha="center", va="center", fontsize=8)
    ax.text(5.6, 4.1, f"3-D kernel w3 ({T}x3x3)\nw3[:, :, t] = w2 / {T}", ha="center",
            fontsize=10)
    ax.text(3.5, 0.5, "A static clip (one image T times) gives each slice the same input:\n"
            "sum over t of (w2/T) * x = w2 * x, the 2-D response.\n"
            f"Zero time padding breaks this near the ends: 17 convs of time\n"
            f"kernel {T} in a row, so frames closer than {margin} to an end are\n"
            "not exact (the center rule, w2 in the middle slice, is exact everywhere).",
            ha="center", va="top", fontsize=8.5)
    # right: torchvision resnet18 layer -> inflated layer
    bx.set_xlim(0, 10)
    bx.set_ylim(-0.6, 7.4)
    rows = [("conv1: 7x7, stride 2, 3->64", "3x7x7, stride (1,2,2), pad (1,3,3)", "conv3d"),
            ("bn1, ReLU", "BatchNorm3d (copied), ReLU", "point"),
            ("maxpool 3x3, stride 2", "1x3x3, stride (1,2,2)", "pool"),
            ("BasicBlock: 3x3 conv, BN, ReLU,\n3x3 conv, BN, + shortcut, ReLU",
             "3x3x3 convs, pad (1,1,1),\nBN copied, same sums", "conv3d"),
            ("downsample: 1x1 conv s2 + BN", "1x1x1 conv, stride (1,2,2) + BN", "point"),
            ("avgpool over H, W", "mean over D, H, W", "pool"),
            ("fc 512 -> classes", "fc (copied)", "fc")]
    bx.text(2.3, 7.1, "torchvision resnet18 (2-D)", ha="center", fontsize=10, fontweight="bold")
    bx.text(7.6, 7.1, "i3d_resnet18 (3-D), time_kernel=3", ha="center", fontsize=10,
            fontweight="bold")
    for i, (left, right, kind) in enumerate(rows):
        y = 6.3 - i * 1.0
        a = box(bx, 2.3, y, left, "io", w=4.2, h=0.78, fontsize=8.5)
        b = box(bx, 7.6, y, right, kind, w=4.4, h=0.78, fontsize=8.5)
        arrow(bx, a["right"], b["left"])
    bx.text(5.0, -0.45, "layer1..layer4: 2 blocks each, 64/128/256/512 channels, same names "
            "(weights2d= loads a torchvision state dict)", ha="center", fontsize=8.5)
    fig.suptitle("I3D: inflating a 2-D ResNet-18 to 3-D (Carreira & Zisserman 2017)",
                 fontsize=11)
    fig.tight_layout()
    return fig


# ---- R3D, MC3, R(2+1)D -------------------------------------------------------------------------

def _basic_block(ax, x0, conv_text_1, conv_text_2, kinds, title, shortcut_text):
    inp = box(ax, x0, 6.0, "x  (C channels)", "io", w=3.0, h=0.5)
    c1 = box(ax, x0, 4.9, conv_text_1, kinds[0], w=3.0, h=0.8)
    c2 = box(ax, x0, 3.5, conv_text_2, kinds[1], w=3.0, h=0.8)
    arrow(ax, inp["bottom"], c1["top"])
    arrow(ax, c1["bottom"], c2["top"])
    add = plus(ax, x0, 2.45)
    arrow(ax, c2["bottom"], add["top"])
    path(ax, [inp["right"], (x0 + 2.0, 6.0), (x0 + 2.0, 2.45), add["right"]], color="#555555")
    ax.text(x0 + 2.1, 4.2, shortcut_text, fontsize=8, color="#555555", va="center")
    out = box(ax, x0, 1.5, "ReLU -> K channels", "io", w=3.0, h=0.5)
    arrow(ax, add["bottom"], out["top"])
    ax.text(x0, 6.7, title, ha="center", fontsize=11, fontweight="bold")


def fig_r3d_block():
    fig, ax = _canvas(8.5, 5.0, (-2.4, 6.8), (0.9, 7.1))
    _basic_block(ax, 0.5, "3x3x3 conv C->K, stride s\nBN, ReLU", "3x3x3 conv K->K\nBN",
                 ("conv3d", "conv3d"), "R3D BasicBlock",
                 "identity, or\n1x1x1 conv C->K\nstride s, + BN\n(when C != K or s > 1)")
    ax.text(4.6, 5.4, "r3d_18 (Tran et al. 2018):\n\nstem: 3x7x7 conv 3->64,\n"
            "stride (1,2,2), BN, ReLU\n\nlayer1..4: 2 blocks each,\nK = 64, 128, 256, 512;\n"
            "layer2-4 start with s = 2\n(time, height and width)\n\nmean over D, H, W; fc",
            fontsize=8.5, va="top")
    ax.set_title("R3D: a 2-D ResNet-18 with every conv made 3x3x3", fontsize=10)
    return fig


def fig_mc3():
    stages = [("stem", "3x7x7 conv 3->64\nstride (1,2,2)", "conv3d"),
              ("layer1", "2 blocks of\n3x3x3 convs, 64", "conv3d"),
              ("layer2", "2 blocks of\n1x3x3 convs, 128\nstride (1,2,2)", "spatial"),
              ("layer3", "2 blocks of\n1x3x3 convs, 256\nstride (1,2,2)", "spatial"),
              ("layer4", "2 blocks of\n1x3x3 convs, 512\nstride (1,2,2)", "spatial"),
              ("head", "mean over\nD, H, W; fc", "fc")]
    fig, ax = _canvas(12, 3.4, (-1.0, 6 * 2.0 - 0.6), (-1.7, 1.7))
    prev = None
    for i, (name, text, kind) in enumerate(stages):
        b = box(ax, i * 2.0, 0, text, kind, w=1.7, h=1.2, fontsize=8.5)
        ax.text(i * 2.0, 0.8, name, ha="center", fontsize=10, fontweight="bold")
        ax.text(i * 2.0, -0.85, {"conv3d": "3-D: mixes time", "spatial": "2-D: frame by frame",
                                 "fc": ""}[kind], ha="center", fontsize=8.5, style="italic")
        if prev:
            arrow(ax, prev["right"], b["left"])
        prev = b
    legend(ax, ["conv3d", "spatial", "fc"], 0.0, -1.4, dx=3.6)
    ax.set_title("MC3 (mc3_18, Tran et al. 2018): 3-D convolutions in the stem and layer1, "
                 "2-D (1x3x3) convolutions in layers 2-4;\nthe blocks are R3D's BasicBlocks "
                 "(conv, BN, ReLU, conv, BN, + shortcut, ReLU)", fontsize=10)
    return fig


def fig_r2plus1d_block():
    fig, ax = _canvas(11, 5.0, (-3.4, 9.6), (0.7, 6.9))
    inp = box(ax, 0.6, 6.0, "x  (C channels)", "io", w=3.2, h=0.5)
    s = box(ax, 0.6, 4.8, "spatial: 1x3x3 conv C->M\nstride (1,s,s), pad (0,1,1)", "spatial",
            w=3.2, h=0.8)
    bn = box(ax, 0.6, 3.7, "BN, ReLU  (M channels)", "point", w=3.2, h=0.5)
    t = box(ax, 0.6, 2.6, "temporal: 3x1x1 conv M->K\nstride (s,1,1), pad (1,0,0)", "temporal",
            w=3.2, h=0.8)
    out = box(ax, 0.6, 1.4, "y  (K channels)", "io", w=3.2, h=0.5)
    for a, b in [(inp, s), (s, bn), (bn, t), (t, out)]:
        arrow(ax, a["bottom"], b["top"])
    ax.text(-1.1, 3.7, "replaces one\n3x3x3 conv\nC->K", fontsize=8.5, style="italic", va="center",
            ha="right")
    ax.text(0.6, 6.6, "(2+1)D convolution", ha="center", fontsize=11, fontweight="bold")
    # the mid-channel rule and its values for the r2plus1d_18 stages
    ax.text(3.2, 6.3, "M keeps the weight count of the full conv:\n"
            "t*d*d*C*K = M*(d*d*C + t*K)\n=>  M = floor(t*d*d*C*K / (d*d*C + t*K))",
            fontsize=9.5, va="top")
    pairs = [(64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512), (512, 512)]
    lines = ["C -> K      M     weights: (2+1)D vs 3x3x3"]
    for C, K in pairs:
        M = mid_channels_rule(C, K, 3)
        lines.append(f"{C:>3} -> {K:<4} {M:>5}   {M * (9 * C + 3 * K):>9,} vs {27 * C * K:>9,}")
    ax.text(3.2, 5.0, "\n".join(lines), fontsize=8.5, va="top", family="monospace")
    ax.text(3.2, 2.3, "r2plus1d_18: every 3x3x3 conv of R3D's BasicBlocks becomes this pair "
            "(M from the block's C and K);\nits stem is 1x7x7 conv 3->45, BN, ReLU, "
            "3x1x1 conv 45->64, BN, ReLU\n(M = floor(...) rounds down, so the pair has at most "
            "as many weights)", fontsize=8.5, va="top")
    ax.set_title("R(2+1)D (Tran et al. 2018): space and time factorized, with a ReLU between "
                 "them", fontsize=10)
    return fig


# ---- S3D ---------------------------------------------------------------------------------------

def fig_s3d_block():
    C, b0, b1m, b1, b2m, b2, b3 = 192, 64, 96, 128, 16, 32, 32  # Mixed_3b of S3D
    fig, ax = _canvas(12, 6.0, (-1.0, 13.0), (-0.9, 7.4))
    xs = [1.2, 4.4, 7.6, 10.8]
    inp = box(ax, 6.0, 6.6, f"x  ({C} channels)", "io", w=3.0, h=0.5)
    tops = []
    for x in xs:
        ax.plot([6.0, 6.0], [inp["bottom"][1], 5.9], color="black", lw=1.2)
        tops.append(x)
    ax.plot([xs[0], xs[-1]], [5.9, 5.9], color="black", lw=1.2)

    def sep_conv(x, y, cin, cout):
        s = box(ax, x, y, f"1x3x3 conv {cin}->{cout}\nBN, ReLU", "spatial", w=2.8, h=0.7)
        t = box(ax, x, y - 1.05, f"3x1x1 conv {cout}->{cout}\nBN, ReLU", "temporal", w=2.8,
                h=0.7)
        arrow(ax, s["bottom"], t["top"])
        return s, t

    b0box = box(ax, xs[0], 5.1, f"1x1x1 conv {C}->{b0}\nBN, ReLU", "point", w=2.8, h=0.7)
    arrow(ax, (xs[0], 5.9), b0box["top"])
    ends = [b0box["bottom"]]
    for x, mid, outc in ((xs[1], b1m, b1), (xs[2], b2m, b2)):
        p = box(ax, x, 5.1, f"1x1x1 conv {C}->{mid}\nBN, ReLU", "point", w=2.8, h=0.7)
        arrow(ax, (x, 5.9), p["top"])
        s, t = sep_conv(x, 3.9, mid, outc)
        arrow(ax, p["bottom"], s["top"])
        ends.append(t["bottom"])
    mp = box(ax, xs[3], 5.1, "3x3x3 max pool\nstride 1, pad 1", "pool", w=2.8, h=0.7)
    arrow(ax, (xs[3], 5.9), mp["top"])
    p3 = box(ax, xs[3], 3.9, f"1x1x1 conv {C}->{b3}\nBN, ReLU", "point", w=2.8, h=0.7)
    arrow(ax, mp["bottom"], p3["top"])
    ends.append(p3["bottom"])
    cat = box(ax, 6.0, 0.9, f"concatenate channels: {b0} + {b1} + {b2} + {b3} = "
              f"{b0 + b1 + b2 + b3}", "concat", w=12.4, h=0.6)
    for x, end in zip(xs, ends):
        arrow(ax, end, (x, cat["top"][1]))
    for x, name in zip(xs, ("branch0", "branch1", "branch2", "branch3")):
        ax.text(x + 0.1, 5.68, name, ha="left", fontsize=8, style="italic", color="#333333")
    legend(ax, ["point", "spatial", "temporal", "pool"], 0.0, -0.3, dx=3.2)
    ax.set_title("S3D separable inception block (Xie et al. 2018; Mixed_3b's widths): every 3x3x3 "
                 "conv of I3D's inception block\nbecomes 1x3x3 then 3x1x1 (each with BN, ReLU); "
                 "S3D's stem starts with such a pair, 1x7x7 then 7x1x1, 3->64", fontsize=10)
    return fig


FIGURES = {"c3d": fig_c3d, "p3d_blocks": fig_p3d_blocks, "i3d_inflation": fig_i3d_inflation,
           "r3d_block": fig_r3d_block, "mc3": fig_mc3, "r2plus1d_block": fig_r2plus1d_block,
           "s3d_block": fig_s3d_block}


def main(names=None) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name in names or FIGURES:
        fig = FIGURES[name]()
        path_png = OUT / f"{name}.png"
        # no timestamp in the metadata: the same code writes the same bytes
        fig.savefig(path_png, dpi=100, bbox_inches="tight", metadata={"Software": None})
        plt.close(fig)
        print(f"wrote {path_png}")


if __name__ == "__main__":
    main(sys.argv[1:])
