"""Pictures of a segmentation: slices of a volume with a label map laid over them.

``overlay_figure(rows, slices, path)`` draws one row per ``(title, volume, labels)``: the
volume's slices in grey along one axis, each class but the background in its own colour at
partial opacity (``labels`` None: the volume alone). Rows of one figure can compare an input,
its true labels and a prediction, or show a scan with the mask a model drew on it.

Built with matplotlib's object API (``Figure``, no pyplot), as the other teaching pictures.
"""
from __future__ import annotations

import numpy as np

#: colours of classes 1, 2, ... (class 0, the background, is left clear)
CLASS_COLOURS = ("#ff7f0e", "#17becf", "#d62728", "#2ca02c", "#9467bd")


def overlay_figure(rows, slices, path=None, axis: int = 2, class_names=None, title=None,
                   alpha: float = 0.5):
    """A grid of ``len(rows)`` x ``len(slices)`` panels; returns the Figure (saved to ``path``
    as PNG when given).

    Args:
        rows: ``(title, volume (D, H, W), labels (D, H, W) ints or None)`` per row.
        slices: the indices along ``axis`` to show.
        axis: 0, 1 or 2, the axis the slices cut across.
        class_names: names of classes 0, 1, ... for the legend (default "class c").
        alpha: the opacity of the label colours.
    """
    from matplotlib.colors import ListedColormap  # noqa: PLC0415 - viz extra, imported when used
    from matplotlib.figure import Figure  # noqa: PLC0415
    from matplotlib.patches import Patch  # noqa: PLC0415

    if axis not in (0, 1, 2):
        raise ValueError(f"overlay_figure: axis must be 0, 1 or 2, got {axis!r}")
    rows, slices = list(rows), list(slices)
    if not rows or not slices:
        raise ValueError("overlay_figure: give at least one row and one slice")
    classes = 1 + max((int(np.max(lab)) for _, _, lab in rows if lab is not None), default=0)
    names = list(class_names) if class_names is not None else [f"class {c}" for c in
                                                                range(classes)]
    colours = ListedColormap(CLASS_COLOURS[:max(classes - 1, 1)])
    fig = Figure(figsize=(1.9 * len(slices) + 0.6, 2.0 * len(rows) + 0.9))
    axes = np.asarray(fig.subplots(len(rows), len(slices), squeeze=False))
    for r, (row_title, volume, labels) in enumerate(rows):
        volume = np.asarray(volume)
        if labels is not None and np.shape(labels) != volume.shape:
            raise ValueError(f"overlay_figure: row {row_title!r} has a volume of shape "
                             f"{volume.shape} but labels of shape {np.shape(labels)}")
        lo, hi = np.percentile(volume, [1, 99])
        for j, s in enumerate(slices):
            if not 0 <= s < volume.shape[axis]:
                raise ValueError(f"overlay_figure: slice {s} is outside axis {axis} of "
                                 f"{volume.shape}")
            ax = axes[r, j]
            # rot90: the first array axis runs across, the second up the panel
            ax.imshow(np.rot90(np.take(volume, s, axis=axis)), cmap="gray", vmin=lo, vmax=hi)
            if labels is not None:
                cut = np.rot90(np.take(np.asarray(labels), s, axis=axis))
                ax.imshow(np.ma.masked_equal(cut, 0), cmap=colours, vmin=1,
                          vmax=max(classes - 1, 1), alpha=alpha, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"slice {s} (axis {axis})", fontsize=8)
        axes[r, 0].set_ylabel(row_title, fontsize=8)
    if classes > 1:
        fig.legend(handles=[Patch(color=CLASS_COLOURS[c - 1], alpha=alpha, label=names[c])
                            for c in range(1, classes)], loc="lower center",
                   ncol=classes - 1, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.05 if classes > 1 else 0, 1, 1))
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig
