"""``weights=`` for every model builder: a PyTorch state-dict file, a ``.npz`` or a dict of arrays.

The library never downloads weights (the machine may be offline): users fetch a file themselves
(docs/models/index.md says how) and pass its path. Keys are PyTorch's (``layer1.0.conv1.0.weight``),
loaded strictly through ``conv3d.interop.load_torch_state_dict``, so a file saved from the
matching torchvision model loads as it is.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from ..interop import load_torch_state_dict
from ..nn import Module

#: files written by ``torch.save`` (the C3D port ships its weights as ``c3d.pickle``)
TORCH_SUFFIXES = (".pth", ".pt", ".pickle", ".pkl")
#: keys under which training scripts commonly nest the state dict inside a checkpoint
NESTED_KEYS = ("state_dict", "model_state_dict", "model")


def read_state_dict(weights) -> Mapping:
    """The state dict in ``weights``: a mapping (returned as is) or a ``.pth``/``.pt``/``.npz``
    path. A ``.pth`` needs PyTorch; it is read with ``weights_only=True`` (tensors, no code)."""
    if isinstance(weights, Mapping):
        return weights
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"weights must be None, a mapping of names to arrays, or a path to a "
                        f".pth/.pt/.npz file, got {type(weights).__name__}")
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights: no such file {path!r}")
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    if path.endswith(TORCH_SUFFIXES):
        try:
            import torch  # noqa: PLC0415 - optional dependency
        except ImportError as exc:
            raise ImportError(f"reading {path!r} needs PyTorch: pip install 'conv3d[torch]', or "
                              f"convert the file to .npz where torch is installed",
                              name="torch") from exc
        state = torch.load(path, map_location="cpu", weights_only=True)
        for key in NESTED_KEYS:
            if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
                state = state[key]
        return state
    raise ValueError(f"weights: {path!r} is neither a torch.save file ({'/'.join(TORCH_SUFFIXES)}) "
                     f"nor .npz (NumPy)")


def load_weights(model: Module, weights) -> Module:
    """Load ``weights`` (see ``read_state_dict``) into ``model`` strictly; None leaves it as is."""
    if weights is not None:
        load_torch_state_dict(model, read_state_dict(weights), strict=True)
    return model
