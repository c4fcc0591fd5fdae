"""The table of model builders: ``conv3d.models.get_model("r3d_18", num_classes=10)``.

Each builder module registers its public functions with ``@register_model`` right below their
definition (as early tinygrad registers each op beside it), so the table and the code never drift.
"""
from __future__ import annotations

from typing import Callable

_MODELS: dict[str, Callable] = {}


def register_model(builder: Callable) -> Callable:
    """Add ``builder`` to the table under its function name; returns it unchanged."""
    if builder.__name__ in _MODELS:
        raise ValueError(f"register_model: a model named {builder.__name__!r} is already "
                         f"registered")
    _MODELS[builder.__name__] = builder
    return builder


def list_models() -> list[str]:
    """The registered model names, sorted."""
    return sorted(_MODELS)


def get_model(name: str, **kwargs):
    """Build the model registered as ``name``; ``kwargs`` go to its builder (``num_classes``,
    ``weights``, ...)."""
    if name not in _MODELS:
        raise ValueError(f"get_model: unknown model {name!r}; choose one of {list_models()}")
    return _MODELS[name](**kwargs)
