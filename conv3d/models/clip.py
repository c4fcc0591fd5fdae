"""Classify a video file with a Kinetics-style model: ``classify_clip(model, "video.mp4")``.

The clip is made as torchvision's video weights expect (``conv3d.datasets.video``: 16 RGB frames,
resized to 128x171, center-cropped to 112x112, scaled and normalized with Kinetics-400's mean and
std, laid out (C, T, H, W)); the model's logits become probabilities by a softmax, and the top
five come back with their class names when the names are known.

Class names come only from where they are stated: a checkpoint saved as
``{'state_dict': ..., 'categories': [...]}`` (``.pth``) or a ``.npz`` with a ``categories`` array,
a labels file, or ``kinetics400_categories()`` (torchvision's list, shipped as
``conv3d/data/kinetics400.json``) when the user says the weights are torchvision's Kinetics-400
ones. Weights whose classes nobody named are reported by index.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from importlib import resources
from typing import NamedTuple

import numpy as np

from ..core.tensor import Tensor, no_grad
from ..datasets.video import VideoClassification, read_frames
from ..interop import load_torch_state_dict, to_torch_state_dict
from ..nn import Module
from ._weights import NESTED_KEYS, read_state_dict


#: (crop_size, resize_size) of the preprocessing that torchvision's Kinetics-400 weights carry
#: (``torchvision/models/video/resnet.py`` and ``s3d.py``); other models get the first one
PRESETS = {"r3d_18": ((112, 112), (128, 171)), "mc3_18": ((112, 112), (128, 171)),
           "r2plus1d_18": ((112, 112), (128, 171)), "s3d": ((224, 224), (256, 256))}


def preset_sizes(model_name: str):
    """(crop_size, resize_size) for the model named ``model_name``: torchvision's for its video
    models, else the 112-pixel one the ResNet-style Kinetics models share."""
    return PRESETS.get(model_name, PRESETS["r2plus1d_18"])


class Prediction(NamedTuple):
    rank: int               # 1 for the most probable class
    index: int              # the class's output index
    label: str | None       # its name, when the categories are known
    probability: float      # softmax of the logits


def kinetics400_categories() -> list[str]:
    """The 400 Kinetics-400 class names in the order of torchvision's video weights
    (``torchvision.models._meta._KINETICS400_CATEGORIES``, BSD 3-Clause)."""
    raw = resources.files("conv3d").joinpath("data/kinetics400.json").read_text()
    return list(json.loads(raw)["categories"])


def read_labels(spec) -> list[str]:
    """Class names from ``spec``: ``"kinetics400"``, a ``.json`` file (a list of names, or an
    object with a ``categories`` list) or a text file with one name per line."""
    if spec == "kinetics400":
        return kinetics400_categories()
    path = os.fspath(spec)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"labels: no such file {path!r}; pass a .json list, a text file "
                                f"with one class name per line, or 'kinetics400'")
    with open(path, encoding="utf-8") as f:
        if path.endswith(".json"):
            names = json.load(f)
            names = names.get("categories") if isinstance(names, dict) else names
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ValueError(f"labels: {path!r} must hold a JSON list of class names (or an "
                                 f"object whose 'categories' is one)")
            return names
        return [line.strip() for line in f if line.strip()]


def read_checkpoint(path) -> tuple[Mapping, list[str] | None]:
    """The state dict in a ``.pth``/``.npz`` weights file and the class names saved with it, if
    any (key ``categories`` beside the state dict, or under ``meta``)."""
    path = os.fspath(path)
    if not path.endswith(".pth") and not path.endswith(".pt"):
        if path.endswith(".npz") and os.path.isfile(path):
            with np.load(path, allow_pickle=False) as archive:
                state = {key: archive[key] for key in archive.files}
            categories = state.pop("categories", None)
            return state, None if categories is None else [str(c) for c in categories.tolist()]
        return read_state_dict(path), None  # its errors: missing file, unknown extension
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights: no such file {path!r}")
    try:
        import torch  # noqa: PLC0415 - optional dependency
    except ImportError:
        return read_state_dict(path), None  # raises its ImportError naming the package
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    categories = None
    if isinstance(checkpoint, Mapping):
        meta = checkpoint.get("meta")
        categories = checkpoint.get("categories") or (
            meta.get("categories") if isinstance(meta, Mapping) else None)
    state = checkpoint
    for key in NESTED_KEYS:
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    return state, None if categories is None else [str(c) for c in categories]


def load_clip_weights(model: Module, state_dict: Mapping) -> Module:
    """Load a PyTorch-layout state dict into ``model`` strictly, first naming any tensor whose
    shape differs (most often the classifier: weights for another number of classes)."""
    ours = to_torch_state_dict(model)
    for key, value in state_dict.items():
        if key in ours and tuple(np.shape(value)) != ours[key].shape:
            raise ValueError(f"weights: {key!r} has shape {tuple(np.shape(value))} but the model "
                             f"has {ours[key].shape}; the weights are for another number of "
                             f"classes (or another architecture): build the model with the "
                             f"weights' num_classes")
    try:
        load_torch_state_dict(model, state_dict, strict=True)
    except KeyError as err:
        raise ValueError(f"weights do not fit the model: {err.args[0]}") from None
    return model


def top_k(logits: np.ndarray, k: int = 5, categories=None) -> list[Prediction]:
    """The ``k`` most probable classes of one clip's logits (num_classes,), by softmax
    ``exp(z - max z) / sum exp(z - max z)`` in float64."""
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    if categories is not None and len(categories) != z.size:
        raise ValueError(f"there are {len(categories)} class names for a model with {z.size} "
                         f"outputs; pass the labels that belong to these weights")
    p = np.exp(z - z.max())
    p /= p.sum()
    order = np.argsort(-p, kind="stable")[:k]
    return [Prediction(r + 1, int(i), None if categories is None else categories[i], float(p[i]))
            for r, i in enumerate(order)]


def predict_clip(model: Module, clip: np.ndarray, categories=None, k: int = 5) -> list[Prediction]:
    """The top ``k`` classes of ``model`` (run in eval mode, without gradients) for one
    preprocessed clip (3, T, H, W)."""
    if np.ndim(clip) != 4:
        raise ValueError(f"clip must be one preprocessed clip (3, T, H, W), got shape "
                         f"{np.shape(clip)}")
    model.eval()
    with no_grad():
        logits = np.asarray(model(Tensor(np.asarray(clip)[None])))    # (1, num_classes)
    if logits.ndim != 2 or logits.shape[0] != 1:
        raise ValueError(f"the model should map a (1, 3, T, H, W) clip to (1, num_classes) "
                         f"logits, got shape {logits.shape}")
    return top_k(logits[0], k, categories)


def classify_clip(model: Module, path, num_frames: int = 16, sampling: str = "first",
                  transform: VideoClassification | None = None, categories=None,
                  k: int = 5) -> list[Prediction]:
    """Read ``num_frames`` frames of the video at ``path`` (``sampling`` ``"first"`` or
    ``"uniform"``, see ``conv3d.datasets.video.sample_indices``), preprocess them with
    ``transform`` (default: torchvision's Kinetics preset, 128x171 then 112x112) and return the
    top ``k`` classes of ``model`` for the (3, T, 112, 112) clip."""
    transform = VideoClassification() if transform is None else transform
    return predict_clip(model, transform(read_frames(path, num_frames, sampling)), categories, k)


def format_predictions(predictions: list[Prediction], width: int = 80) -> str:
    """One line per class, ``rank  class  probability``, no line wider than ``width``."""
    names = [p.label if p.label is not None else f"class {p.index}" for p in predictions]
    room = width - len("99  ") - len("  0.0000")
    names = [n if len(n) <= room else n[:room - 3] + "..." for n in names]
    column = max(len(n) for n in names)
    return "\n".join(f"{p.rank:>2}  {n:<{column}}  {p.probability:.4f}"
                     for p, n in zip(predictions, names))
