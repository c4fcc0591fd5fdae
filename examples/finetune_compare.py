"""Where should the 3D convolutions go? Four video ResNet-18s at equal parameter count.

Tran et al. 2018 ("A Closer Look at Spatiotemporal Convolutions") compare, in one ResNet-18,

* R3D: 3x3x3 convolutions everywhere (``conv3d.models.r3d_18``);
* R(2+1)D: every 3x3x3 factorized into 1x3x3 then 3x1x1 (``r2plus1d_18``);
* MC3, "bottom-heavy": 3D in conv1 and stage 1, per-frame 2D (1x3x3) in stages 2-4 (``mc3_18``);
* rMC3, "top-heavy": 2D in conv1 and stage 1, 3D in stages 2-4 (built here from
  ``VideoResNet``'s public pieces with a 1x7x7 stem, ``Stem2D``).

Xie et al. 2018 (S3D) ask the same top-heavy / bottom-heavy question of I3D. Here the four are
trained from scratch (no pretrained weights: the widths are reduced, so Kinetics weights would not
fit) on ``conv3d.datasets.moving_shapes``, where only the order of the frames gives the class.

Equal parameter count: R3D gets ``--width`` (its ``base_width``); each other variant gets the
integer ``base_width`` whose parameter count (conv3d's own, the sum over ``model.parameters()``)
is closest to R3D's, and the run stops with an error if any is further than ``TOLERANCE``.
R(2+1)D uses the paper's mid-channel rule (``mid_channels='paper'``): torchvision's rule gives the
second conv of each stage's first block too few channels, about 6% fewer parameters in all.

Same data, initialization seeds, optimizer (Adam), epochs and batch size for every variant. The
gray clips are repeated to 3 channels, as gray video is fed to an RGB network.

Run:  python examples/finetune_compare.py [--quick] [--out FILE.md]   (see docs/models/finetune.md)
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time

import numpy as np

import conv3d
from conv3d import nn
from conv3d.datasets import moving_shapes
from conv3d.models.video_resnet import (BasicBlock, BasicStem, Conv2Plus1D, Conv3DNoTemporal,
                                        Conv3DSimple, R2Plus1dStem, VideoResNet)
from conv3d.optim import Adam
from conv3d.train import fit

VARIANTS = ("r3d", "r2plus1d", "mc3", "rmc3")
LABELS = {"r3d": "R3D (3D everywhere)",
          "r2plus1d": "R(2+1)D (factorized everywhere)",
          "mc3": "MC3, bottom-heavy (3D in conv1, stage 1)",
          "rmc3": "rMC3, top-heavy (3D in stages 2-4)"}
TOLERANCE = 0.03  # largest allowed |params - params(R3D)| / params(R3D)
NUM_CLASSES = 4


class Stem2D(nn.Sequential):
    """rMC3's conv1: a 1x7x7 conv, stride (1, 2, 2), padding (0, 3, 3) -> BN -> ReLU, i.e.
    ``BasicStem`` without its temporal extent: (N, 3, D, H, W) -> (N, width, D, H/2, W/2)."""

    def __init__(self, width: int = 64, dtype=np.float32):
        super().__init__(nn.Conv3d(3, width, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3),
                                   bias=False, dtype=dtype),
                         nn.BatchNorm3d(width, dtype=dtype), nn.ReLU())


def build(variant: str, base_width: int, dtype=np.float32) -> VideoResNet:
    """One of ``VARIANTS`` as a ``VideoResNet`` with ``NUM_CLASSES`` outputs."""
    makers, stem, rule = {
        "r3d": ([Conv3DSimple] * 4, BasicStem, "torchvision"),
        "r2plus1d": ([Conv2Plus1D] * 4, R2Plus1dStem, "paper"),
        "mc3": ([Conv3DSimple] + [Conv3DNoTemporal] * 3, BasicStem, "torchvision"),
        "rmc3": ([Conv3DNoTemporal] + [Conv3DSimple] * 3, Stem2D, "torchvision"),
    }[variant]
    return VideoResNet(BasicBlock, makers, [2, 2, 2, 2], stem, num_classes=NUM_CLASSES,
                       base_width=base_width, mid_channels=rule, dtype=dtype)


def count_params(model) -> int:
    return sum(int(p.size) for p in model.parameters())


def match_widths(width: int, tolerance: float = TOLERANCE) -> dict:
    """``{variant: (base_width, params)}``: R3D at ``width``, every other variant at the
    base width whose parameter count is closest to R3D's (counts grow with the width, so the
    search walks up until it passes R3D's count)."""
    if isinstance(width, bool) or not isinstance(width, int) or width < 2:
        raise ValueError(f"width must be an int >= 2 (R3D's base_width), got {width!r}")
    target = count_params(build("r3d", width))
    chosen = {"r3d": (width, target)}
    for variant in VARIANTS[1:]:
        best, w = None, 1
        while True:
            n = count_params(build(variant, w))
            if best is None or abs(n - target) < abs(best[1] - target):
                best = (w, n)
            if n >= target:
                break
            w += 1
        chosen[variant] = best
    worst = max(abs(n - target) / target for _, n in chosen.values())
    if worst > tolerance:
        counts = ", ".join(f"{v} at base_width {w}: {n:,}" for v, (w, n) in chosen.items())
        raise ValueError(f"--width {width}: no base widths give parameter counts within "
                         f"{tolerance:.0%} of R3D's ({counts}); integer widths are coarse, try "
                         f"--width 7, 10, 13 or 16")
    return chosen


def macs_per_clip(model, frames: int, size: int) -> int:
    """The total of ``conv3d.summary``'s MACs column for one clip (3, frames, size, size)."""
    text = conv3d.summary(model, (3, frames, size, size), print_fn=None)
    return int(re.search(r"MACs per sample: ([\d,]+)", text).group(1).replace(",", ""))


class StepTimer(nn.Module):
    """Wraps a model so that a training step, forward through ``optimizer.step()``, is timed:
    the clock starts when a forward runs in training mode and ``stop()`` (called by
    ``TimedAdam.step``) records the elapsed time. Evaluation forwards are not timed."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.times: list[float] = []
        self._t0 = None

    def forward(self, x):
        if self.training:
            self._t0 = time.perf_counter()
        return self.net(x)

    def stop(self) -> None:
        if self._t0 is not None:
            self.times.append(time.perf_counter() - self._t0)
            self._t0 = None


class TimedAdam(Adam):
    """Adam that tells a ``StepTimer`` when each update is done."""

    def __init__(self, params, timer: StepTimer, **kwargs):
        super().__init__(params, **kwargs)
        self.timer = timer

    def step(self):
        super().step()
        self.timer.stop()


def run(n_train=800, n_test=400, epochs=3, width=10, frames=8, size=16, seeds=(0, 1),
        batch_size=32, lr=2e-3, data_seed=0, progress=False, log=print) -> dict:
    """Train every variant once per seed on the same clips; return the settings and one row
    per variant (accuracy per seed, params, MACs, median step time, load averages)."""
    widths = match_widths(width)
    x, y = moving_shapes(n_train, frames=frames, size=size, seed=data_seed + 1)
    xt, yt = moving_shapes(n_test, frames=frames, size=size, seed=data_seed + 2)
    x, xt = np.repeat(x, 3, axis=1), np.repeat(xt, 3, axis=1)  # gray -> 3 channels
    rows = []
    t_start = time.perf_counter()
    for variant in VARIANTS:
        base_width, params = widths[variant]
        row = dict(variant=variant, base_width=base_width, params=params, accuracy=[],
                   first_epoch_accuracy=[], train_accuracy=[], step_times=[], load=[],
                   seconds=0.0)
        for seed in seeds:
            nn.init.manual_seed(seed)
            net = build(variant, base_width)
            if count_params(net) != params:
                raise RuntimeError(f"{variant}: rebuilt model has {count_params(net)} "
                                   f"parameters, the width search saw {params}")
            row.setdefault("macs", macs_per_clip(net, frames, size))
            timer = StepTimer(net)
            opt = TimedAdam(net.parameters(), timer, lr=lr)
            t0 = time.perf_counter()
            # the test clips are evaluated after every epoch (fit's val_data; not timed)
            hist = fit(timer, (x, y), (xt, yt), epochs=epochs, batch_size=batch_size,
                       optimizer=opt, seed=seed, progress=progress, verbose=progress,
                       name=f"{variant} seed {seed}")
            row["seconds"] += time.perf_counter() - t0
            row["load"].append(os.getloadavg()[0])
            row["accuracy"].append(hist["val_accuracy"][-1])
            row["first_epoch_accuracy"].append(hist["val_accuracy"][0])
            row["train_accuracy"].append(hist["accuracy"][-1])
            row["step_times"] += timer.times
            curve = ", ".join(f"{a:.1%}" for a in hist["val_accuracy"])
            log(f"{variant:9s} seed {seed}: base_width {base_width}, {params:,} params, test acc "
                f"by epoch {curve}, train acc {hist['accuracy'][-1]:.1%}, median step "
                f"{np.median(timer.times):.3f} s, load {row['load'][-1]:.1f}")
        rows.append(row)
    return dict(rows=rows, n_train=n_train, n_test=n_test, epochs=epochs, width=width,
                frames=frames, size=size, seeds=list(seeds), batch_size=batch_size, lr=lr,
                data_seed=data_seed, wall_seconds=time.perf_counter() - t_start)


def _mean_and_seeds(values) -> str:
    return f"{np.mean(values):.1%} ({', '.join(f'{v:.1%}' for v in values)})"


def report(result: dict, command: str = "") -> str:
    """The result of ``run`` as a Markdown page fragment: settings, machine, table."""
    r = result
    ref = r["rows"][0]["params"]
    loads = [v for row in r["rows"] for v in row["load"]]
    lines = [
        f"Moving shapes, {r['frames']} frames of {r['size']}x{r['size']} (gray, repeated to 3 "
        f"channels), 4 classes (chance 25%): {r['n_train']} training clips, {r['n_test']} test "
        f"clips; {r['epochs']} epochs, batch {r['batch_size']}, Adam lr {r['lr']:g}; seeds "
        f"{', '.join(map(str, r['seeds']))} (initialization and batch order; data seed "
        f"{r['data_seed']}).",
        "",
    ]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, NumPy {np.__version__}; 1-minute load average after "
        f"each training run {min(loads):.1f} to {max(loads):.1f} (the machine was shared with "
        f"other work: the times are not speed measurements). Wall time "
        f"{r['wall_seconds'] / 60:.1f} min.",
        "",
        "| variant | base width | params | vs R3D | MACs per clip | test accuracy after "
        "epoch 1, mean (per seed) | test accuracy at the end, mean (per seed) | final train "
        "accuracy, mean | median step (s) |",
        "|---|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    for row in r["rows"]:
        first, last = (_mean_and_seeds(row[k]) for k in ("first_epoch_accuracy", "accuracy"))
        lines.append(
            f"| {LABELS[row['variant']]} | {row['base_width']} | {row['params']:,} | "
            f"{(row['params'] - ref) / ref:+.1%} | {row['macs']:,} | {first} | {last} | "
            f"{np.mean(row['train_accuracy']):.1%} | {np.median(row['step_times']):.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=800)
    parser.add_argument("--n-test", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--width", type=int, default=10, help="R3D's base_width (default 10)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0, help="the first initialization seed")
    parser.add_argument("--data-seed", type=int, default=None,
                        help="the clips' seed (default: --seed)")
    parser.add_argument("--seeds", type=int, default=2, help="number of seeds (default 2)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: width 7, 4 frames of 12x12, 8 clips (one step), 1 seed")
    parser.add_argument("--progress", action="store_true", help="tqdm bars and epoch lines")
    parser.add_argument("--out", help="also write the table (Markdown) to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.width, args.frames, args.size = 7, 4, 12
        args.n_train, args.n_test, args.epochs, args.seeds, args.batch_size = 8, 8, 1, 1, 8
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    result = run(args.n_train, args.n_test, args.epochs, args.width, args.frames, args.size,
                 seeds=tuple(range(args.seed, args.seed + args.seeds)),
                 batch_size=args.batch_size, lr=args.lr,
                 data_seed=args.seed if args.data_seed is None else args.data_seed,
                 progress=args.progress)
    command = "python examples/finetune_compare.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    text = report(result, command.strip())
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
