"""``conv3d train``: run the training experiments from the command line.

    conv3d train keras-3d-mnist [--epochs N] [--quick] [--checkpoint F [--resume]] [--kaggle H5]
    conv3d train motion         [--epochs N] [--quick]
    conv3d train segmentation   [--epochs N] [--quick] [--checkpoint F [--resume]]
                                [--upsample transpose|trilinear] [--norm group|batch]

The same code as examples/keras_3d_mnist.py and examples/motion_2d_vs_3d.py
(``conv3d.train.recipes``); segmentation is the 3D U-Net on synthetic ellipsoids and tubes
(``conv3d.train.segmentation``).
"""
from __future__ import annotations

import os
import sys

from ._args import count

DEFAULTS = {  # (n_train, n_test, epochs) of a full run and of --quick
    "keras-3d-mnist": ((6000, 1000, 25), (1000, 300, 2)),
    "motion": ((2000, 1000, 4), (600, 400, 2)),
    "segmentation": ((96, 16, 30), (16, 4, 2)),
}
#: the experiments that write --checkpoint files (and can --resume from them)
CHECKPOINTED = ("keras-3d-mnist", "segmentation")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train the Keras 3D-MNIST model, the motion models (2D vs (2+1)D vs 3D) "
                      "or the 3D U-Net (segmentation)",
        description="Train one of the example experiments and print its results.")
    parser.add_argument("experiment", choices=sorted(DEFAULTS),
                        help="keras-3d-mnist: the article's 3D CNN on voxel digits; motion: "
                             "late-fusion 2D vs (2+1)D vs 3D CNNs on moving shapes; "
                             "segmentation: a 3D U-Net on synthetic ellipsoids and tubes, "
                             "scored by the held-out Dice")
    parser.add_argument("--epochs", type=count(0), default=None,
                        help="number of epochs (the total: a resumed run trains the missing ones)")
    parser.add_argument("--n-train", type=count(1), default=None, help="training samples")
    parser.add_argument("--n-test", type=count(1), default=None, help="test samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a small, fast smoke run")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--checkpoint", default=None,
                        help="keras-3d-mnist, segmentation: write an .npz checkpoint after "
                             "every epoch")
    parser.add_argument("--resume", action="store_true",
                        help="keras-3d-mnist, segmentation: continue from --checkpoint")
    parser.add_argument("--kaggle", default=None,
                        help="keras-3d-mnist: train on Kaggle's full_dataset_vectors.h5")
    parser.add_argument("--upsample", choices=("transpose", "trilinear"), default=None,
                        help="segmentation: the decoder's upsampling (default transpose)")
    parser.add_argument("--norm", choices=("group", "batch"), default=None,
                        help="segmentation: GroupNorm or BatchNorm3d (default group)")
    parser.add_argument("--device", choices=("cpu", "cuda", "cuda-emu"), default="cpu",
                        help="keras-3d-mnist: where to train: cpu (NumPy), cuda (CuPy on an "
                             "NVIDIA GPU) or cuda-emu (the CUDA kernels, emulated on the CPU; "
                             "slow, for checking)")
    parser.set_defaults(func=run)


def check_args(args) -> str | None:
    """The first contradiction among the options, as an error message, or None."""
    if args.experiment not in CHECKPOINTED:
        for flag in ("checkpoint", "resume"):
            if getattr(args, flag) not in (None, False):
                return (f"argument --{flag}: only {' and '.join(CHECKPOINTED)} take it, not "
                        f"{args.experiment}")
    if args.experiment != "keras-3d-mnist" and args.device != "cpu":
        return f"argument --device: only keras-3d-mnist takes it, not {args.experiment}"
    if args.experiment != "keras-3d-mnist" and args.kaggle is not None:
        return f"argument --kaggle: only keras-3d-mnist takes it, not {args.experiment}"
    if args.experiment != "segmentation":
        for flag in ("upsample", "norm"):
            if getattr(args, flag) is not None:
                return f"argument --{flag}: only segmentation takes it, not {args.experiment}"
    if args.resume and args.checkpoint is None:
        return "argument --resume: needs --checkpoint F (the file to continue from)"
    if args.checkpoint is not None:
        folder = os.path.dirname(os.path.abspath(args.checkpoint))
        if not os.path.isdir(folder):
            return (f"argument --checkpoint: the folder {folder} does not exist; create it "
                    f"first (mkdir -p {folder}) or pick another path")
    if args.kaggle is not None and not os.path.isfile(args.kaggle):
        return (f"argument --kaggle: no such file: {args.kaggle} (download "
                f"full_dataset_vectors.h5 from Kaggle's 3D MNIST page)")
    if args.kaggle is not None and (args.n_train is not None or args.n_test is not None):
        return "argument --kaggle: the file fixes the sample counts; drop --n-train/--n-test"
    return None


def run(args) -> int:
    from ..train import recipes  # noqa: PLC0415 - keeps `conv3d --help` fast

    error = check_args(args)
    if error:
        print(f"conv3d train: error: {error}", file=sys.stderr)
        return 2
    n_train, n_test, epochs = DEFAULTS[args.experiment][1 if args.quick else 0]
    # `is not None`, not `or`: an explicit value is used as given (argparse has checked it)
    n_train = args.n_train if args.n_train is not None else n_train
    n_test = args.n_test if args.n_test is not None else n_test
    epochs = args.epochs if args.epochs is not None else epochs
    progress = not args.no_progress
    if args.experiment == "motion":
        results = recipes.run_motion(n_train, n_test, epochs=epochs, seed=args.seed,
                                     progress=progress)
        print(recipes.motion_report(results, n_train, n_test, epochs))
        return 0
    if args.experiment == "segmentation":
        return _run_segmentation(args, n_train, n_test, epochs, progress)
    try:
        r = recipes.run_keras_3d_mnist(n_train, n_test, epochs=epochs, seed=args.seed,
                                       progress=progress, checkpoint=args.checkpoint,
                                       resume=args.resume, kaggle=args.kaggle,
                                       device=args.device)
    except (OSError, KeyError, RuntimeError) as err:  # unreadable file; 'cuda' without a GPU
        print(f"conv3d train: error: {err}", file=sys.stderr)
        return 2
    print(recipes.keras_report(r))
    return 0


def _run_segmentation(args, n_train, n_test, epochs, progress) -> int:
    from ..train import segmentation  # noqa: PLC0415 - keeps `conv3d --help` fast

    try:
        r = segmentation.run_segmentation(
            n_train, n_test, epochs=epochs, seed=args.seed, progress=progress,
            checkpoint=args.checkpoint, resume=args.resume,
            upsample=args.upsample or "transpose", norm=args.norm or "group")
    except (OSError, KeyError, ValueError) as err:  # an unreadable or mismatched checkpoint
        print(f"conv3d train: error: {err}", file=sys.stderr)
        return 2
    print(segmentation.segmentation_report(r))
    if args.checkpoint is not None:
        print(f"model and optimizer state in {args.checkpoint} (conv3d.train.load(model, path) "
              f"reads the model)")
    return 0
