"""The forward of the conv3d blocks that are not a ``Sequential``, described once for both exporters.

``torch_module`` and ``conv3d.onnx.export`` walk the module tree. A ``Sequential`` (and every
layer with a one-node mapping) needs no description; a block whose forward adds or concatenates
does, and it is written here as a *plan*: the children in the order its forward calls them and
how their results combine. A block with no plan is refused with its name and path, never
approximated.

==================  ==========================================================================
block               plan
==================  ==========================================================================
BasicBlock,         ``relu(chain(conv1, conv2[, conv3])(x) + shortcut(x))``, the shortcut being
Bottleneck          ``downsample`` or ``x`` itself
VideoResNet         ``fc(flatten(avgpool(layer4(...(stem(x))))))``
==================  ==========================================================================

The model classes are looked up when a plan is first asked for: ``conv3d.models`` itself loads
PyTorch-layout weights through this package, so importing it at the top would be a circle.
"""
from __future__ import annotations

from typing import NamedTuple


class Residual(NamedTuple):
    """``post(chain(main)(x) + shortcut(x))``; ``shortcut`` None means x itself."""
    main: tuple
    shortcut: str
    post: str


class Chain(NamedTuple):
    """``chain(before)``, then ``flatten(1)``, then ``chain(after)``."""
    before: tuple
    after: tuple


_PLANS: dict = {}


def _load_plans() -> dict:
    if not _PLANS:
        from ..models.video_resnet import BasicBlock, Bottleneck, VideoResNet  # noqa: PLC0415
        _PLANS[BasicBlock] = lambda m: Residual(("conv1", "conv2"), "downsample", "relu")
        _PLANS[Bottleneck] = lambda m: Residual(("conv1", "conv2", "conv3"), "downsample", "relu")
        _PLANS[VideoResNet] = lambda m: Chain(("stem", "layer1", "layer2", "layer3", "layer4",
                                               "avgpool"), ("fc",))
    return _PLANS


def plan_of(module):
    """The plan of ``module``'s forward, or None when it has none (a plain layer, a Sequential,
    or a block neither exporter can express)."""
    for cls, make in _load_plans().items():
        if type(module) is cls:  # a subclass may change forward: it needs its own plan
            return make(module)
    return None
