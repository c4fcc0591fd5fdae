"""The optional readers of ``conv3d.io`` (nibabel, pydicom) are imported when first needed."""
from __future__ import annotations

import importlib


def require(module: str, purpose: str):
    """``import module``, or an ImportError that says what needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{purpose} needs {module}: pip install 'conv3d[medical]' (or pip "
                          f"install {module})", name=module) from exc
