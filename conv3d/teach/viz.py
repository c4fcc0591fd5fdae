"""Pictures of a 3D convolution: slice grids, voxel views, a GIF of the kernel sliding, and one
self-contained interactive HTML page.

* ``draw_slice_grid``: the cs231n layout turned 3D. Three columns: the INPUT's depth slices (one
  row each, padding drawn grey), the WEIGHTS' depth slices, the OUTPUT's depth slices. The cells the
  kernel covers are outlined in red on every input slice it reaches, the slice of the kernel that
  reads each one carries the same colour, and the output voxel they produce is outlined in red.
* ``draw_voxels``: the same moment in 3D (matplotlib voxels): the input cube with the receptive
  field lit up, the kernel, and the output cube with its one voxel lit up.
* ``animate``: one GIF frame per output voxel (matplotlib's PillowWriter: no ffmpeg needed).
* ``interactive_html``: the explorer page (``conv3d.teach.explorer``) with this problem fixed: a
  step slider, Play/Pause and hovering; one self-contained file that works offline.

Figures are built with matplotlib's object API (``matplotlib.figure.Figure``), never pyplot:
nothing needs a display, no global backend is switched, and a notebook still shows the figure a
function returns.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .explain import all_positions
from .problem import ConvProblem, fmt

MAX_FRAMES = 216  # a 6x6x6 output; each frame is a full matplotlib figure
SLICE_COLOURS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"]


def _grid(ax, values, title, pad_mask=None, cmap="Blues", vmin=None, vmax=None, fontsize=9,
          origin=(0, 0)):
    """One 2D slice as a table of numbered cells (row 0 at the top).

    ``origin`` is the (h, w) index of the top-left cell: (-1, -1) when one cell of padding
    surrounds the input, so the tick labels are the input's own indices.
    """
    rows, cols = values.shape
    shown = np.where(pad_mask, np.nan, values) if pad_mask is not None else values
    ax.imshow(shown, cmap=cmap, vmin=vmin, vmax=vmax, alpha=0.55)
    for (i, j), v in np.ndenumerate(values):
        if pad_mask is not None and pad_mask[i, j]:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="#dddddd", edgecolor="none",
                                   hatch="//", zorder=0.5))
            ax.text(j, i, "0", ha="center", va="center", fontsize=fontsize - 1, color="#777777")
        else:
            ax.text(j, i, fmt(v), ha="center", va="center", fontsize=fontsize)
    ax.set_xticks(range(cols), [str(j + origin[1]) for j in range(cols)])
    ax.set_yticks(range(rows), [str(i + origin[0]) for i in range(rows)])
    ax.tick_params(length=0, labelsize=7)
    ax.set_xticks(np.arange(-0.5, cols), minor=True)
    ax.set_yticks(np.arange(-0.5, rows), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_xlabel("w (width)", fontsize=7, labelpad=1)
    ax.set_ylabel("h (height)", fontsize=7, labelpad=1)
    ax.set_title(title, fontsize=9)


def draw_slice_grid(fig, pr: ConvProblem, at) -> None:
    """Draw the slice-grid picture of output voxel ``at`` into ``fig`` (cleared first)."""
    n, k = pr.check_at(at)[:2]
    fig.clf()
    _slice_grid_moment(fig, pr, at, _slice_grid_base(fig, pr, n, k))


def _slice_grid_base(fig, pr: ConvProblem, n: int, k: int) -> dict:
    """The part of the picture that is the same for every output voxel: the numbered slices of
    the padded input, the weights and the output. Returns the axes for ``_slice_grid_moment``."""
    xpad = pr.padded_input()[n, 0]
    (pd, _), (ph, _), (pw, _) = pr.padding
    Dp, Hp, Wp = xpad.shape
    pad_mask = np.ones(xpad.shape, dtype=bool)
    D, H, W = pr.in_size
    pad_mask[pd:pd + D, ph:ph + H, pw:pw + W] = False
    w = pr.w[k, 0]
    kD = w.shape[0]
    y = pr.output()[n, k]
    OD = y.shape[0]
    rows = max(Dp, kD, OD)
    gs = fig.add_gridspec(rows, 3, width_ratios=[1, 1, 1], hspace=0.5, wspace=0.35, top=0.86,
                          bottom=0.03, left=0.04, right=0.98)
    lo, hi = float(min(xpad.min(), 0)), float(xpad.max())
    base = dict(n=n, k=k, y=y, inputs=[], weights=[], outputs=[])
    for dp in range(Dp):
        ax = fig.add_subplot(gs[dp, 0])
        d_in = dp - pd
        label = f"INPUT x  depth d={d_in}" + ("  (padding)" if not 0 <= d_in < D else "")
        _grid(ax, xpad[dp], label, pad_mask[dp], "Blues", lo, hi, origin=(-ph, -pw))
        base["inputs"].append((ax, d_in, label))
    wl, wh = float(min(w.min(), -1)), float(max(w.max(), 1))
    for kd in range(kD):
        ax = fig.add_subplot(gs[kd, 1])
        colour = SLICE_COLOURS[kd % len(SLICE_COLOURS)]
        _grid(ax, w[kd], f"WEIGHTS w  kd={kd}", None, "RdBu", wl, wh)
        ax.title.set_color(colour)
        for spine in ax.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(2.5)
        base["weights"].append(ax)
    ylo, yhi = float(y.min()), float(y.max())
    for o in range(OD):
        ax = fig.add_subplot(gs[o, 2])
        _grid(ax, y[o], f"OUTPUT y  depth od={o}", None, "Oranges", ylo, yhi)
        base["outputs"].append(ax)
    for xpos, sign in ((0.345, "×"), (0.685, "Σ →")):
        fig.text(xpos, 0.5, sign, fontsize=26, ha="center", va="center", color="#444444")
    return base


def _slice_grid_moment(fig, pr: ConvProblem, at, base: dict) -> list:
    """The part that belongs to output voxel ``at``: the kernel's footprint outlined on the input
    slices it reaches, the titles, the red output box. Returns the outlines it added (a GIF
    removes them before the next frame: redrawing every slice per frame is what made it slow)."""
    n, k, od, oh, ow = pr.check_at(at)
    (pd, _), (ph, _), (pw, _) = pr.padding
    y = base["y"]
    rf = pr.receptive_field(od, oh, ow)
    taps = pr.taps((n, k, od, oh, ow))
    added = []
    for ax, d_in, label in base["inputs"]:
        ax.set_title(label, fontsize=9, color="black", fontweight="normal")
        if d_in not in rf[0]:
            continue
        kd = rf[0].index(d_in)
        colour = SLICE_COLOURS[kd % len(SLICE_COLOURS)]
        if pr.dilation[1:] != (1, 1):  # dilated: the taps are not neighbours, box each one
            for i_h in rf[1]:
                for i_w in rf[2]:
                    added.append(ax.add_patch(Rectangle((i_w + pw - 0.45, i_h + ph - 0.45), 0.9,
                                                        0.9, fill=False, edgecolor=colour,
                                                        linewidth=3)))
        hs = [i + ph for i in rf[1]]
        ws = [i + pw for i in rf[2]]
        added.append(ax.add_patch(Rectangle(
            (min(ws) - 0.5, min(hs) - 0.5), max(ws) - min(ws) + 1, max(hs) - min(hs) + 1,
            fill=False, edgecolor=colour, clip_on=False,
            **(dict(linewidth=4) if pr.dilation[1:] == (1, 1) else
               dict(linewidth=1.2, linestyle="--")))))
        sub = sum(t["product"] for t in taps if t["kd"] == kd)
        ax.set_title(label + f"\nread by kernel slice kd={kd}: subtotal {fmt(sub)}", fontsize=9,
                     color=colour, fontweight="bold")
    for kd, ax in enumerate(base["weights"]):
        ax.set_title(f"WEIGHTS w  kd={kd}\nreads input d={rf[0][kd]}", fontsize=9,
                     color=SLICE_COLOURS[kd % len(SLICE_COLOURS)])
    for o, ax in enumerate(base["outputs"]):
        ax.set_title(f"OUTPUT y  depth od={o}" + (f"\nred box: y[{od}, {oh}, {ow}]" if o == od
                                                   else ""), fontsize=9)
        if o == od:
            added.append(ax.add_patch(Rectangle((ow - 0.5, oh - 0.5), 1, 1, fill=False,
                                                edgecolor="#d62728", linewidth=4, clip_on=False)))
    value = sum(t["product"] for t in taps) + float(pr.b[k])
    bias = f" + bias {fmt(pr.b[k])}" if pr.b[k] else ""
    chan = "" if pr.x.shape[1] == 1 else f"  (channel 0 of {pr.x.shape[1]} shown)"
    pub = pr.published
    if pub is not None and pub.shape == y.shape and abs(float(pub[od, oh, ow]) - value) > 1e-9:
        chan += (f"\nThe published figure prints {fmt(pub[od, oh, ow])} here: an arithmetic slip "
                 f"(add up the subtotals yourself)")
    fig.suptitle(f"OUTPUT y[{od}, {oh}, {ow}] = sum of the {len(taps)} products (input × weight) "
                 f"inside the outlined cells{bias} = {fmt(value)}\n"
                 f"Rows are depth slices. Each coloured kernel slice multiplies the input slice "
                 f"outlined in the same colour; grey hatched cells are zero padding.{chan}",
                 fontsize=10)
    return added


def slice_grid(pr: ConvProblem, at, path=None):
    rows = max(pr.padded_input().shape[2], pr.kernel[0], pr.out_size[0])
    fig = Figure(figsize=(10, 2.4 * rows + 1.0))
    draw_slice_grid(fig, pr, at)
    return _save(fig, path)


def _save(fig, path):
    if path is not None:
        fig.savefig(path, dpi=110)
        return path
    return fig


def _cubes(ax, filled, colours, title, shape, labels=True):
    """matplotlib voxels want (x, y, z); we draw x = width, y = height, z = depth (d=0 on top)."""
    f = np.transpose(filled, (2, 1, 0))[:, :, ::-1]
    c = np.transpose(colours, (2, 1, 0, 3))[:, :, ::-1]
    ax.voxels(f, facecolors=c, edgecolor=(0.2, 0.2, 0.2, 0.35), linewidth=0.4)
    D, H, W = shape
    ax.set_xlabel("width w")
    ax.set_ylabel("height h")
    ax.set_zlabel("depth d")
    ax.set_xticks(np.arange(W) + 0.5, [str(i) for i in range(W)])
    ax.set_yticks(np.arange(H) + 0.5, [str(i) for i in range(H)])
    ax.set_zticks(np.arange(D) + 0.5, [str(D - 1 - i) for i in range(D)])
    ax.tick_params(labelsize=7, pad=0)
    ax.set_box_aspect((W, H, D))
    ax.view_init(elev=22, azim=-60)
    ax.set_title(title, fontsize=10)


def voxel_view(pr: ConvProblem, at, path=None):
    """Input with the receptive field lit, the kernel, and the output with the voxel lit, in 3D."""
    n, k, od, oh, ow = pr.check_at(at)
    xpad = pr.padded_input()[n, 0]
    (pd, _), (ph, _), (pw, _) = pr.padding
    D, H, W = pr.in_size
    rf = pr.receptive_field(od, oh, ow)
    inside = np.zeros(xpad.shape, dtype=bool)
    inside[pd:pd + D, ph:ph + H, pw:pw + W] = True
    col = np.zeros(xpad.shape + (4,))
    col[inside] = (0.55, 0.70, 0.90, 0.12)
    col[~inside] = (0.75, 0.75, 0.75, 0.08)
    for i_d in rf[0]:
        for i_h in rf[1]:
            for i_w in rf[2]:
                col[i_d + pd, i_h + ph, i_w + pw] = (0.95, 0.45, 0.05, 0.85)
    w = pr.w[k, 0]
    wcol = np.zeros(w.shape + (4,))
    wcol[w > 0] = (0.84, 0.15, 0.16, 0.45)
    wcol[w < 0] = (0.12, 0.47, 0.71, 0.45)
    wcol[w == 0] = (0.8, 0.8, 0.8, 0.3)
    y_shape = pr.out_size
    ycol = np.zeros(y_shape + (4,))
    ycol[...] = (0.99, 0.75, 0.45, 0.15)
    ycol[od, oh, ow] = (0.84, 0.15, 0.16, 0.95)
    value = pr.value_at((n, k, od, oh, ow))
    fig = Figure(figsize=(15, 5.4))
    pad_note = " (grey shell: padding)" if xpad.shape != (D, H, W) else ""
    _cubes(fig.add_subplot(1, 3, 1, projection="3d"), np.ones(xpad.shape, bool), col,
           f"INPUT x {D}×{H}×{W}{pad_note}\norange: the {len(rf[0]) * len(rf[1]) * len(rf[2])} "
           f"voxels the kernel covers", xpad.shape)
    _cubes(fig.add_subplot(1, 3, 2, projection="3d"), np.ones(w.shape, bool), wcol,
           f"WEIGHTS w {'×'.join(map(str, w.shape))}\nred: positive, blue: negative", w.shape)
    _cubes(fig.add_subplot(1, 3, 3, projection="3d"), np.ones(y_shape, bool), ycol,
           f"OUTPUT y {'×'.join(map(str, y_shape))}\nred: y[{od}, {oh}, {ow}] = {fmt(value)}",
           y_shape)
    fig.suptitle("One step of a 3D convolution: multiply the orange input voxels by the weights "
                 "cell by cell, add the products up, and write the sum into the red output voxel",
                 fontsize=11)
    fig.subplots_adjust(left=0.0, right=0.97, top=0.85, bottom=0.02, wspace=0.05)
    return _save(fig, path)


def animate(pr: ConvProblem, path, fps: float = 1.5, n: int = 0, k: int = 0) -> int:
    """Write a GIF with one frame per output voxel of sample n, channel k; returns the frames."""
    from matplotlib.animation import FuncAnimation, PillowWriter  # noqa: PLC0415
    steps = [p for p in all_positions(pr) if p[0] == n and p[1] == k]
    if len(steps) > MAX_FRAMES:
        raise ValueError(f"the output has {len(steps)} voxels, so the GIF would have {len(steps)} "
                         f"frames (at most {MAX_FRAMES}); use a smaller --input, a larger "
                         f"--stride, or the interactive page (--html)")
    rows = max(pr.padded_input().shape[2], pr.kernel[0], pr.out_size[0])
    fig = Figure(figsize=(10, 2.4 * rows + 1.0), dpi=60)
    base = _slice_grid_base(fig, pr, n, k)  # the numbered slices, drawn once for every frame
    step_label = fig.text(0.01, 0.995, "", va="top", fontsize=13, fontweight="bold",
                          color="#d62728")
    added = []

    def frame(i):
        for artist in added:
            artist.remove()
        added[:] = _slice_grid_moment(fig, pr, steps[i], base)
        step_label.set_text(f"step {i + 1}/{len(steps)}")

    anim = FuncAnimation(fig, frame, frames=len(steps), interval=1000 / fps, repeat=True)
    anim.save(str(path), writer=PillowWriter(fps=fps))
    return len(steps)


def interactive_html(pr: ConvProblem, path, n: int = 0) -> int:
    """Write the explorer page with this problem's numbers and settings fixed (sample n).

    One self-contained file (``conv3d.teach.explorer``: hand-written canvas and HTML, nothing
    loaded from the network): a step slider and Play/Pause over every output voxel of every
    output channel, hover or click to pick a voxel, its products and subtotals, and the backward
    view. Returns the number of steps (K * OD * OH * OW).
    """
    from .explorer import write_explorer  # noqa: PLC0415
    write_explorer(path, pr)
    return pr.w.shape[0] * int(np.prod(pr.out_size))


def gif_filmstrip(gif_path, png_path, columns: int = 4, max_frames: int = 4):
    """Tile the first frames of a GIF into one PNG (a still of the animation for documents)."""
    from PIL import Image  # noqa: PLC0415
    with Image.open(gif_path) as im:
        frames = []
        for i in range(min(im.n_frames, max_frames)):
            im.seek(i)
            frames.append(im.convert("RGB").copy())
    w, h = frames[0].size
    cols = min(columns, len(frames))
    rows = -(-len(frames) // cols)
    sheet = Image.new("RGB", (cols * w, rows * h), "white")
    for i, fr in enumerate(frames):
        sheet.paste(fr, ((i % cols) * w, (i // cols) * h))
    sheet.save(png_path)
    return png_path


def html_preview(pr: ConvProblem, at, path=None):
    """A still of the interactive page's scene, drawn with matplotlib.

    The page itself draws on a canvas in a browser; a PNG of it would need a headless browser, so
    this draws the same content: the INPUT voxels with their values, the receptive field in red, and
    the OUTPUT cube to the right with the current voxel in red.
    """
    n, k, od, oh, ow = pr.check_at(at)
    D, H, W = pr.in_size
    y = pr.output()[n, k]
    gap = W + pr.padding[2][0] + 3
    fig = Figure(figsize=(10, 6.5))
    ax = fig.add_subplot(projection="3d")
    xi = np.indices((D, H, W)).reshape(3, -1).T
    vals = pr.x[n, 0][tuple(xi.T)]
    ax.scatter(xi[:, 2], xi[:, 1], -xi[:, 0], s=160, c=vals, cmap="Blues", alpha=0.35,
               label="INPUT x (value in each marker)")
    for (a, b, c), v in zip(xi, vals):
        ax.text(c, b, -a, fmt(v), fontsize=7, ha="center", va="center")
    rf = pr.receptive_field(od, oh, ow)
    cells = np.array([(a, b, c) for a in rf[0] for b in rf[1] for c in rf[2]])
    ax.scatter(cells[:, 2], cells[:, 1], -cells[:, 0], s=330, c="red", alpha=0.3, marker="s",
               label="kernel position (receptive field)")
    yi = np.indices(y.shape).reshape(3, -1).T
    ax.scatter(yi[:, 2] + gap, yi[:, 1], -yi[:, 0], s=160, c="orange", alpha=0.35,
               label="OUTPUT y")
    for (a, b, c) in yi:
        ax.text(c + gap, b, -a, fmt(y[a, b, c]), fontsize=7, ha="center", va="center")
    ax.scatter([ow + gap], [oh], [-od], s=420, c="red", alpha=0.85, marker="s",
               label=f"this output voxel y[{od}, {oh}, {ow}] = {fmt(y[od, oh, ow])}")
    ax.set_xlabel("width w")
    ax.set_ylabel("height h")
    ax.set_zlabel("-depth d")
    ax.view_init(elev=18, azim=-70)
    ax.legend(loc="upper left", fontsize=8)
    fig.suptitle("The interactive page (conv3d animate --html): drag the step slider or press "
                 "Play\nto move the red kernel through the INPUT; its sum lights up in the OUTPUT "
                 "(still image, drawn with matplotlib)", fontsize=10)
    return _save(fig, path)
