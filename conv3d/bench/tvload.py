"""torchvision's pure-Python modules (the video models, the presets) without ``import torchvision``.

``import torchvision`` runs its ``__init__``, which loads compiled operators (``torchvision::nms``)
that a torchvision wheel built for another torch cannot register: beside a CPU-only torch it
raises ``RuntimeError: operator torchvision::nms does not exist``. The video models and the
presets are plain Python on ``torch.nn``, so while one of those files is imported, empty package
modules with the right ``__path__`` stand in for ``torchvision``, ``torchvision.models``,
``torchvision.models.video`` and ``torchvision.ops`` (their ``__init__`` never runs). Afterwards
every ``torchvision*`` entry of ``sys.modules`` is put back as it was, so no other code sees a
half-imported torchvision. A torchvision that is already imported for real is used as it is.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
import types

STUBBED = ("torchvision", "torchvision.models", "torchvision.models.video", "torchvision.ops")


class _StubPackage(types.ModuleType):
    """A package module whose ``__init__`` never runs (only its ``__path__`` is used)."""


def _is_torchvision(name: str) -> bool:
    return name == "torchvision" or name.startswith("torchvision.")


@functools.lru_cache(maxsize=None)
def _load(name: str):
    """The module ``torchvision.<name>``, or the ImportError saying why it cannot be loaded
    (cached either way: the answer does not change within one process)."""
    try:
        import torch  # noqa: F401, PLC0415 - torchvision's modules are torch.nn code
    except ImportError:
        return ImportError("torchvision's models need PyTorch: pip install 'conv3d[torch]'",
                           name="torch")
    real = sys.modules.get("torchvision")
    if real is not None and not isinstance(real, _StubPackage):
        try:  # imported for real elsewhere: use it
            return importlib.import_module(f"torchvision.{name}")
        except Exception as exc:  # noqa: BLE001 - any failure is the reason, reported
            return ImportError(f"torchvision is imported but torchvision.{name} fails: {exc!r}",
                               name="torchvision")
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return ImportError("torchvision is not installed: pip install --no-deps torchvision",
                           name="torchvision")
    root = list(spec.submodule_search_locations)[0]
    saved = {k: v for k, v in sys.modules.items() if _is_torchvision(k)}
    try:
        for package in STUBBED:
            stub = _StubPackage(package)
            stub.__path__ = [os.path.join(root, *package.split(".")[1:])]
            sys.modules[package] = stub
        return importlib.import_module(f"torchvision.{name}")
    except Exception as exc:  # noqa: BLE001 - any failure is the reason, reported
        return ImportError(f"torchvision.{name} does not import from {root} even with its C "
                           f"extension bypassed: {type(exc).__name__}: {exc}", name="torchvision")
    finally:
        for key in [k for k in sys.modules if _is_torchvision(k)]:
            del sys.modules[key]
        sys.modules.update(saved)


def torchvision_module(name: str):
    """``torchvision.<name>`` (e.g. ``"models.video.resnet"``, ``"transforms._presets"``),
    imported as the module docstring says. Raises ImportError (``name`` set to the missing
    package) with the reason."""
    loaded = _load(name)
    if isinstance(loaded, ImportError):  # a fresh error each time: the cached one keeps no traceback
        raise ImportError(str(loaded), name=loaded.name)
    return loaded


def video_models() -> dict:
    """{'r3d_18': builder, 'mc3_18': ..., 'r2plus1d_18': ..., 's3d': ...}, each building the
    untrained torchvision model. Raises ImportError as ``torchvision_module`` does."""
    resnet = torchvision_module("models.video.resnet")
    s3d = torchvision_module("models.video.s3d")
    return {"r3d_18": resnet.r3d_18, "mc3_18": resnet.mc3_18,
            "r2plus1d_18": resnet.r2plus1d_18, "s3d": s3d.s3d}
