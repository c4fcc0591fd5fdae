"""``conv3d.summary``: a Keras-style table of a model, one row per layer.

A tool built *on top of* ``conv3d.nn`` (``conv3d.nn`` never imports it). It runs the model once
on zeros of shape (1, *input_shape) in eval mode, with a forward hook on every leaf module
(a module without submodules), and records what each one produced. So residual and branching
models work as Sequential ones do: what happens between the leaves (a residual sum, the
concatenation of Inception branches) has no parameters and no multiplications. ``depth=k``
gives one row per module k levels down instead (e.g. ``depth=2``: ``stem``, ``layer1.0``, ...),
with the parameters and MACs of everything inside it. Columns:

* **Output shape**, with ``None`` for the batch axis as Keras prints it.
* **Trainable** parameters (the layer's own ``Parameter``s) and **non-trainable** ones (its
  floating-point buffers: BatchNorm's running mean and variance, which Keras also counts).
* **MACs** (multiply-accumulates) per sample: Conv3d ``OD*OH*OW * K * C/groups*kD*kH*kW``;
  Linear ``out*in`` per row; BatchNorm one per output element (inference: x*scale + shift);
  pooling, ReLU, Dropout and reshapes count 0 (they compare, add or copy, but do not multiply).

Below the table: the totals, MACs for the batch, and an estimate of activation memory for
``batch_size``: the outputs of all rows (what the forward pass keeps for backward), times the
batch size and the dtype's size. Training roughly doubles it (a gradient per activation).
"""
from __future__ import annotations

import io
import textwrap

import numpy as np

from ..core.tensor import Tensor, no_grad
from .conv2plus1d import Conv2Plus1d
from .layers import BatchNorm3d, Conv3d, Linear
from .module import Module


def _macs(module: Module, out_shape: tuple) -> int:
    per_sample = int(np.prod(out_shape[1:])) if len(out_shape) > 1 else 1
    if isinstance(module, Conv3d):
        K = module.out_channels
        taps = module.in_channels // module.groups * int(np.prod(module.kernel_size))
        return per_sample // K * K * taps
    if isinstance(module, Linear):
        return per_sample * module.in_features
    if isinstance(module, BatchNorm3d):
        return per_sample
    return 0


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


def summary(model: Module, input_shape, batch_size: int = 1, dtype=np.float32,
            print_fn=print, style: str = "plain", depth: int | None = None,
            width: int = 80) -> str:
    """Print (with ``print_fn``; None to stay silent) and return the model's summary table.

    Args:
        model: a ``conv3d.nn.Module``.
        input_shape: one sample's shape without the batch axis, e.g. (1, 16, 16, 16).
        batch_size: used for the MACs of a batch and the activation-memory estimate.
        dtype: the input's dtype (float32 or float64; sets the bytes per activation).
        style: 'plain' (text) or 'rich' (a rich table, rendered to text).
        depth: None for a row per leaf layer; k for a row per module k levels down (leaves
            above that depth keep their own row), its counts summed over its submodules.
        width: the plain table's line width; a row whose label does not fit puts the label on
            a line of its own.
    """
    if not isinstance(model, Module):
        raise TypeError(f"summary expects a conv3d.nn.Module, got {type(model).__name__}")
    input_shape = tuple(int(s) for s in input_shape)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if style not in ("plain", "rich"):
        raise ValueError(f"style must be 'plain' or 'rich', got {style!r}")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int)
                              or depth < 1):
        raise ValueError(f"depth must be None (every leaf layer) or an int >= 1, got {depth!r}")
    leaves, grouped, handles = [], [], []
    for name, m in model.named_modules():
        level = name.count(".") + 1 if name else 0
        is_leaf = next(m.children(), None) is None
        if is_leaf:
            def hook(module, inputs, out, name=name):
                leaves.append((name, module, tuple(out.shape)))
            handles.append(m.register_forward_hook(hook))
        if depth is not None and (level == depth or (is_leaf and level < depth)):
            def group_hook(module, inputs, out, name=name):
                grouped.append((name, module, tuple(out.shape)))
            handles.append(m.register_forward_hook(group_hook))
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            x = Tensor(np.zeros((1,) + input_shape, dtype=dtype))
            x = x.to(model.device)
            model(x)
    except Exception as exc:
        raise ValueError(f"summary: the model failed on an input of shape {(1,) + input_shape} "
                         f"({type(exc).__name__}: {exc}); check input_shape (channels first: "
                         f"(C, D, H, W))") from exc
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    leaf_macs = [(name, _macs(m, shape)) for name, m, shape in leaves]
    table = []
    totals = dict(trainable=0, frozen=0, macs=0, activations=0)
    for name, m, shape in leaves:
        totals["trainable"] += _own_counts(m)[0]
        totals["frozen"] += _own_counts(m)[1]
        totals["activations"] += int(np.prod(shape[1:]))
    totals["macs"] = sum(macs for _, macs in leaf_macs)
    for name, m, shape in (leaves if depth is None else grouped):
        if depth is None:
            (trainable, frozen), macs = _own_counts(m), _macs(m, shape)
        else:
            trainable, frozen = (sum(_own_counts(sub)[i] for sub in m.modules()) for i in (0, 1))
            macs = sum(n for leaf, n in leaf_macs if leaf == name or leaf.startswith(name + "."))
        label = f"{name} ({type(m).__name__})" if name else type(m).__name__
        table.append((label, str((None,) + shape[1:]), f"{trainable:,}", f"{frozen:,}",
                      f"{macs:,}"))

    itemsize = np.dtype(dtype).itemsize
    act_bytes = totals["activations"] * batch_size * itemsize
    total_params = totals["trainable"] + totals["frozen"]
    footer = [
        f"Total params: {total_params:,} ({_human_bytes(total_params * itemsize)})",
        f"Trainable params: {totals['trainable']:,}",
        f"Non-trainable params: {totals['frozen']:,}",
        f"MACs per sample: {totals['macs']:,}; for a batch of {batch_size}: "
        f"{totals['macs'] * batch_size:,}",
        f"Activation memory (forward outputs, batch of {batch_size}, {np.dtype(dtype).name}): "
        f"{_human_bytes(act_bytes)}; training keeps about twice that (activations + gradients)",
    ]
    blocks = [(name or "model", m) for name, m in model.named_modules()
              if isinstance(m, Conv2Plus1d)]
    if len(blocks) > 4:  # a network of them: one line for all
        ours = sum(m.conv_weight_count() for _, m in blocks)
        full = sum(m.full_conv_weight_count() for _, m in blocks)
        footer.append(f"{len(blocks)} (2+1)D blocks: conv weights {ours:,} vs {full:,} for "
                      f"the full Conv3ds")
    for name, m in blocks if len(blocks) <= 4 else ():
        t, kh, kw = m.kernel_size
        footer.append(f"{name}: (2+1)D block, mid_channels={m.mid_channels}: conv "
                      f"weights {m.conv_weight_count():,} vs {m.full_conv_weight_count():,} "
                      f"for the full {t}x{kh}x{kw} Conv3d")
    header = ("Layer (type)", "Output shape", "Trainable", "Non-trainable", "MACs")
    if style == "rich":
        text = _render_rich(type(model).__name__, header, table, footer)
    else:
        text = _render_plain(type(model).__name__, header, table, footer, width)
    if print_fn is not None:
        print_fn(text)
    return text


def _own_counts(m: Module) -> tuple[int, int]:
    """(trainable, non-trainable) entries of ``m`` itself: its Parameters, its float buffers."""
    trainable = sum(int(p.size) for p in m._parameters.values() if p is not None)
    frozen = sum(int(b.size) for b in m._buffers.values() if b is not None and b.dtype.kind == "f")
    return trainable, frozen


def _render_plain(title, header, table, footer, width: int = 80) -> str:
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    # the label column takes what the others leave of ``width``; longer labels get a line
    widths[0] = max(len(header[0]), min(widths[0], width - sum(widths[1:]) - 2 * len(widths[1:])))
    align = ["<", "<", ">", ">", ">"]

    def line(cells):
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip()

    rule = "=" * len(line(header))
    body = [f'Model: "{title}"', rule, line(header), rule]
    for r in table:
        if len(r[0]) > widths[0]:
            body += [r[0], line(("",) + tuple(r[1:]))]
        else:
            body.append(line(r))
    body += [rule, *(_wrap(f, max(width, len(rule))) for f in footer), rule]
    return "\n".join(body)


def _wrap(text: str, width: int) -> str:
    """Break a footer line at spaces to fit ``width``; continuation lines are indented."""
    return textwrap.fill(text, width, subsequent_indent="  ", break_long_words=False,
                         break_on_hyphens=False)


def _render_rich(title, header, table, footer) -> str:
    from rich.console import Console  # noqa: PLC0415 - rich is a dependency, loaded on demand
    from rich.table import Table  # noqa: PLC0415

    t = Table(title=f'Model: "{title}"', caption="\n".join(footer), caption_justify="left")
    for i, h in enumerate(header):
        t.add_column(h, justify="left" if i < 2 else "right")
    for r in table:
        t.add_row(*r)
    buffer = io.StringIO()
    Console(file=buffer, width=120, color_system=None).print(t)
    return buffer.getvalue().rstrip()
