"""Write conv3d/bench/layers.json: every distinct convolution and pooling layer of r3d_18,
mc3_18, r2plus1d_18 and s3d (torchvision's definitions) at a 3x16x112x112 clip, and of a 3D U-Net
(Cicek et al. 2016 style) at a 1x96x96x96 volume. ``conv3d bench --suite layers`` reads the file;
it never imports torchvision. Dev-only (needs torch and an installed torchvision):

    python -m benchmarks.gen_layer_table            # rewrites conv3d/bench/layers.json

Each model runs one batch-1 input with a forward pre-hook on every Conv3d, MaxPool3d, AvgPool3d
and AdaptiveAvgPool3d, which records the layer's input shape and arguments. Layers with the same
input shape and arguments are one row, which keeps the list of (model, layer name) that use it.
A pooling layer whose window does not fit its input is left out with the reason (s3d's final
AvgPool3d((2, 7, 7)) is sized for 224x224 clips and fails at 112x112), and so are the U-Net's
transposed convolutions (this suite times conv3d and pooling layers only).
"""
from __future__ import annotations

import argparse
import json
import os

import torch
from torch import nn

from conv3d.bench.tvload import video_models

CLIP = (1, 3, 16, 112, 112)
VOLUME = (1, 1, 96, 96, 96)
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conv3d", "bench",
                   "layers.json")


def _triple(v):
    return list(v) if isinstance(v, (tuple, list)) else [v] * 3


class UNet3d(nn.Module):
    """3D U-Net after Cicek et al. (2016): at each level two 3x3x3 convolutions (+BN, ReLU),
    channels doubling per level from ``base``, 2x2x2 max pooling down; up by a 2x2x2 transposed
    convolution, concatenation with the skip, two 3x3x3 convolutions; a 1x1x1 convolution to the
    classes. Padding 1 keeps the sizes, so 96^3 runs through four poolings (96, 48, 24, 12, 6)."""

    def __init__(self, in_channels=1, base=32, levels=4, classes=3):
        super().__init__()
        chans = [base * 2 ** i for i in range(levels + 1)]

        def double(c_in, c_out):
            return nn.Sequential(nn.Conv3d(c_in, c_out, 3, padding=1), nn.BatchNorm3d(c_out),
                                 nn.ReLU(), nn.Conv3d(c_out, c_out, 3, padding=1),
                                 nn.BatchNorm3d(c_out), nn.ReLU())
        self.down = nn.ModuleList([double(in_channels, chans[0])] +
                                  [double(chans[i - 1], chans[i]) for i in range(1, levels + 1)])
        self.pool = nn.ModuleList([nn.MaxPool3d(2) for _ in range(levels)])
        self.up = nn.ModuleList([nn.ConvTranspose3d(chans[i + 1], chans[i], 2, stride=2)
                                 for i in reversed(range(levels))])
        self.merge = nn.ModuleList([double(2 * chans[i], chans[i])
                                    for i in reversed(range(levels))])
        self.head = nn.Conv3d(chans[0], classes, 1)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < len(self.pool):
                skips.append(x)
                x = self.pool[i](x)
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([skips.pop(), up(x)], dim=1))
        return self.head(x)


def _record(module, shape):
    """The layer's key fields (everything that decides the computation) for an input shape."""
    if isinstance(module, nn.Conv3d):
        if isinstance(module.padding, str):
            raise ValueError(f"string padding {module.padding!r} is not recorded")
        return dict(op="conv", x=shape, w=list(module.weight.shape), stride=_triple(module.stride),
                    padding=_triple(module.padding), dilation=_triple(module.dilation),
                    groups=module.groups, bias=module.bias is not None)
    if isinstance(module, nn.MaxPool3d):
        return dict(op="max_pool", x=shape, kernel=_triple(module.kernel_size),
                    stride=_triple(module.stride), padding=_triple(module.padding),
                    dilation=_triple(module.dilation), ceil_mode=bool(module.ceil_mode))
    if isinstance(module, nn.AvgPool3d):
        return dict(op="avg_pool", x=shape, kernel=_triple(module.kernel_size),
                    stride=_triple(module.stride), padding=_triple(module.padding),
                    ceil_mode=bool(module.ceil_mode),
                    count_include_pad=bool(module.count_include_pad))
    # AdaptiveAvgPool3d to (1, 1, 1): the mean over the whole clip, an avg_pool3d whose window
    # is the input; conv3d times it as that avg_pool3d
    if tuple(_triple(module.output_size)) != (1, 1, 1):
        raise ValueError(f"AdaptiveAvgPool3d({module.output_size}) is not recorded")
    return dict(op="avg_pool", x=shape, kernel=shape[2:], stride=shape[2:], padding=[0, 0, 0],
                ceil_mode=False, count_include_pad=True, adaptive=True)


def _fits(rec):
    if rec["op"] == "conv":
        return None
    for size, k, p in zip(rec["x"][2:], rec["kernel"], rec["padding"]):
        if size + 2 * p < k:
            return f"window {rec['kernel']} larger than the padded input {rec['x'][2:]}"
    return None


def layers_of(model_name, model, shape):
    """[(layer name, record)] in call order, and [(layer name, reason)] left out."""
    kinds = (nn.Conv3d, nn.MaxPool3d, nn.AvgPool3d, nn.AdaptiveAvgPool3d)
    found, left_out, handles = [], [], []
    for name, module in model.named_modules():
        if isinstance(module, nn.ConvTranspose3d):
            left_out.append((name, "ConvTranspose3d: the layers suite times conv3d and pooling only"))
        elif isinstance(module, kinds):
            def hook(mod, args, name=name):
                rec = _record(mod, list(args[0].shape))
                reason = _fits(rec)
                if reason:
                    left_out.append((name, f"{type(mod).__name__}: {reason}"))
                    raise _Stop
                found.append((name, rec))
            handles.append(module.register_forward_pre_hook(hook))
    model.eval()
    with torch.no_grad():
        try:
            model(torch.zeros(shape))
        except _Stop:
            pass
    for h in handles:
        h.remove()
    return found, left_out


class _Stop(Exception):
    """A layer cannot run at this input size: stop the forward there."""


def build_table():
    torch.manual_seed(0)
    models = {name: (build(), CLIP) for name, build in video_models().items()}
    models["unet3d"] = (UNet3d(), VOLUME)
    rows, left_out = {}, []
    for model_name, (model, shape) in models.items():
        found, skipped = layers_of(model_name, model, shape)
        left_out += [dict(model=model_name, layer=n, reason=r) for n, r in skipped]
        for name, rec in found:
            key = json.dumps(rec, sort_keys=True)
            rows.setdefault(key, dict(rec, used_by=[]))["used_by"].append(f"{model_name} {name}")
    table = list(rows.values())
    for row in table:
        extra = len(row["used_by"]) - 1
        row["name"] = row["used_by"][0] + (f" (+{extra} more)" if extra else "")
    return dict(
        about="Distinct conv/pool layers of torchvision's r3d_18, mc3_18, r2plus1d_18, s3d at "
              f"input {CLIP[1:]} and a 3D U-Net (1 channel, 32 base channels) at {VOLUME[1:]}; "
              "shapes at batch 1. Written by benchmarks/gen_layer_table.py; do not edit.",
        batches={"r3d_18": [1, 8], "mc3_18": [1, 8], "r2plus1d_18": [1, 8], "s3d": [1, 8],
                 "unet3d": [1]},
        layers=table, left_out=left_out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=OUT)
    args = parser.parse_args(argv)
    table = build_table()
    with open(args.out, "w") as f:
        json.dump(table, f, indent=1)
        f.write("\n")
    print(f"wrote {args.out}: {len(table['layers'])} distinct layers, "
          f"{len(table['left_out'])} left out")


if __name__ == "__main__":
    main()
