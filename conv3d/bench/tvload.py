"""torchvision's video models (r3d_18, mc3_18, r2plus1d_18, s3d) without ``import torchvision``.

``import torchvision`` runs its ``__init__``, which loads compiled operators (``torchvision::nms``)
that a torchvision wheel built for another torch cannot register: beside a CPU-only torch it
raises ``RuntimeError: operator torchvision::nms does not exist``. The video models themselves are
plain Python on ``torch.nn``, so this module puts empty package modules with the right
``__path__`` into ``sys.modules`` for ``torchvision``, ``torchvision.models``,
``torchvision.models.video`` and ``torchvision.ops`` (their ``__init__`` never runs) and imports
the two model files directly. A real, working torchvision import is used instead when one is
already loaded.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types

STUBS = ("torchvision", "torchvision.models", "torchvision.models.video", "torchvision.ops")


def video_models() -> dict:
    """{'r3d_18': builder, 'mc3_18': ..., 'r2plus1d_18': ..., 's3d': ...}, each building the
    untrained torchvision model. Raises ImportError (``name`` set) naming what is missing."""
    try:
        import torch  # noqa: F401, PLC0415 - the models are torch.nn modules
    except ImportError as exc:
        raise ImportError("torchvision's models need PyTorch: pip install 'conv3d[torch]'",
                          name="torch") from exc
    if "torchvision" not in sys.modules:
        spec = importlib.util.find_spec("torchvision")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("torchvision is not installed: pip install torchvision",
                              name="torchvision")
        root = list(spec.submodule_search_locations)[0]
        for name in STUBS:
            module = types.ModuleType(name)
            module.__path__ = [os.path.join(root, *name.split(".")[1:])]
            sys.modules[name] = module
    resnet = importlib.import_module("torchvision.models.video.resnet")
    s3d = importlib.import_module("torchvision.models.video.s3d")
    return {"r3d_18": resnet.r3d_18, "mc3_18": resnet.mc3_18,
            "r2plus1d_18": resnet.r2plus1d_18, "s3d": s3d.s3d}
