"""``conv3d predict``: the five most probable classes of a video clip.

    conv3d predict --model r2plus1d_18 --weights r2plus1d_18.pth video.mp4
    conv3d predict --model r3d_18 --weights r3d_18.npz --labels kinetics400 --sampling uniform clip.avi

The clip is made as torchvision's Kinetics-400 video weights expect (16 frames resized to 128x171,
center-cropped to 112x112, normalized with Kinetics' mean and std; docs/models/predict.md explains
every number). Class names come from the weights file (``categories`` saved beside the state
dict), from --labels, or are printed as indices.
"""
from __future__ import annotations

import sys


def _size(text: str) -> tuple[int, int]:
    """'112' -> (112, 112); '128,171' -> (128, 171)."""
    import argparse  # noqa: PLC0415
    try:
        parts = [int(p) for p in text.replace("x", ",").split(",")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive size N or H,W, got {text!r}")
    return parts[0], parts[1]


def register(subparsers) -> None:
    import argparse  # noqa: PLC0415
    p = subparsers.add_parser(
        "predict", help="classify a video file with a Kinetics-style model (top-5 classes)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit code: 0, or 2 for bad input (missing or undecodable video, too few frames, "
               "weights that do not fit the model).")
    p.add_argument("video", help="the video file (anything FFmpeg decodes: .mp4, .avi, .webm, ...)")
    p.add_argument("--model", required=True, help="a name from conv3d.models.list_models(), "
                                                  "e.g. r2plus1d_18")
    p.add_argument("--weights", required=True,
                   help="a .pth (PyTorch, needs torch) or .npz state dict in PyTorch's names, "
                        "optionally saved as {'state_dict': ..., 'categories': [...]}")
    p.add_argument("--num-classes", type=int, default=400,
                   help="the number of classes the weights were trained for (default 400, "
                        "Kinetics-400)")
    p.add_argument("--labels", default=None,
                   help="class names: 'kinetics400' (torchvision's list, for its Kinetics-400 "
                        "weights), a .json list or a text file with one name per line; default: "
                        "those saved in the weights file, else class indices")
    p.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    p.add_argument("--sampling", choices=("first", "uniform"), default="first",
                   help="first: the first FRAMES consecutive frames (torchvision's docs example, "
                        "the default); uniform: the middle frame of FRAMES equal segments")
    p.add_argument("--resize", type=_size, default=None, metavar="H,W",
                   help="resize every frame to H,W before cropping (default: that of "
                        "torchvision's weights for the model, 256,256 for s3d, else 128,171)")
    p.add_argument("--crop", type=_size, default=None, metavar="H,W",
                   help="center crop (default 224,224 for s3d, else 112,112)")
    p.add_argument("--antialias", action="store_true",
                   help="resize with an antialiasing filter, as torchvision's reference "
                        "evaluation script does (the weights' own preset does not)")
    p.add_argument("--top", type=int, default=5, help="how many classes to print (default 5)")
    p.set_defaults(func=run)


# Networks in conv3d.models that label voxels instead of classifying a clip: predict refuses them
# before reading any file, and says where segmentation is done.
SEGMENTATION_MODELS = ("unet3d",)


def _fail(message: str) -> int:
    print(f"conv3d predict: error: {message}", file=sys.stderr)
    return 2


def run(args) -> int:
    from .. import models  # noqa: PLC0415 - keeps `conv3d --help` fast
    from ..datasets.video import VideoClassification, read_frames  # noqa: PLC0415
    from ..models.clip import (format_predictions, load_clip_weights, predict_clip,  # noqa: PLC0415
                               preset_sizes, read_checkpoint, read_labels)

    if args.model not in models.list_models():
        known = ", ".join(models.list_models()) or "none registered"
        return _fail(f"unknown model {args.model!r}; conv3d.models has: {known}")
    if args.model in SEGMENTATION_MODELS:
        classifiers = ", ".join(m for m in models.list_models() if m not in SEGMENTATION_MODELS)
        return _fail(f"--model {args.model} segments volumes (a label per voxel), it does not "
                     f"classify clips; segment a scan with "
                     f"conv3d.train.segmentation.segment_volume (docs/tutorials/segmentation.md), "
                     f"or pick a clip classifier: {classifiers}")
    if args.num_classes < 1 or args.frames < 1 or args.top < 1:
        return _fail(f"--num-classes, --frames and --top must be positive, got "
                     f"{args.num_classes}, {args.frames}, {args.top}")
    try:
        crop, resize = preset_sizes(args.model)
        transform = VideoClassification(args.crop or crop, args.resize or resize,
                                        antialias=args.antialias)
        clip = transform(read_frames(args.video, args.frames, args.sampling))
        state, categories = read_checkpoint(args.weights)
        model = models.get_model(args.model, num_classes=args.num_classes)
        try:
            load_clip_weights(model, state)
        except ValueError as err:
            return _fail(f"{err} (--num-classes is {args.num_classes})")
        source = "the weights file carries"
        if args.labels is not None:
            categories, source = read_labels(args.labels), f"--labels {args.labels} has"
        if categories is not None and len(categories) != args.num_classes:
            return _fail(f"{source} {len(categories)} class names but the model has "
                         f"{args.num_classes} classes (--num-classes); the names must belong to "
                         f"these weights")
        predictions = predict_clip(model, clip, categories, k=min(args.top, args.num_classes))
    except (OSError, ValueError, ImportError) as err:
        return _fail(str(err))
    print(format_predictions(predictions))
    return 0
