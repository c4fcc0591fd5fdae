"""The forward of the conv3d blocks that are not a ``Sequential``, written once for both exporters.

``torch_module`` and ``conv3d.onnx.export`` walk the module tree. A ``Sequential`` (and every
layer with a one-node mapping) needs no description; a block whose forward adds, concatenates,
flattens or calls children in its own order does, and it is written here as a *plan*: its forward
again, against a small set of operations ``ops``:

* ``ops.call(name, x)``: the child ``name`` (itself walked: a layer, a Sequential or a planned
  block; a child may be called more than once, as a shared ReLU is). A
  ``MaxPool3d(return_indices=True)`` gives back ``(y, indices)``, and
  ``ops.call(name, y, indices)`` runs a ``MaxUnpool3d``;
* ``ops.add(a, b)``, ``ops.cat(xs)`` (channels), ``ops.flatten(x)`` (to (N, rest)),
  ``ops.mean(x, axes)``.

The torch side runs a plan on tensors; the ONNX side emits a node per operation. A block whose
type has no plan and no layer mapping is refused with its name and path, never approximated;
the lookup is by exact type, because a subclass may change the forward.

The model classes are looked up when a plan is first asked for: ``conv3d.models`` loads
PyTorch-layout weights through this package, so importing it at the top would be a circle.
"""
from __future__ import annotations


def _shortcut(ops, m, x):
    """The residual branch of a block: ``downsample(x)`` where the block has one, else ``x``."""
    return x if m._modules.get("downsample") is None else ops.call("downsample", x)


def _residual(ops, m, x, main):
    out = x
    for name in main:
        out = ops.call(name, out)
    return ops.call("relu", ops.add(out, _shortcut(ops, m, x)))


def _basic_block(ops, m, x):  # video_resnet.BasicBlock: relu(conv2(conv1(x)) + shortcut(x))
    return _residual(ops, m, x, ("conv1", "conv2"))


def _bottleneck(ops, m, x):  # video_resnet.Bottleneck
    return _residual(ops, m, x, ("conv1", "conv2", "conv3"))


def _video_resnet(ops, m, x):
    for name in ("stem", "layer1", "layer2", "layer3", "layer4", "avgpool"):
        x = ops.call(name, x)
    return ops.call("fc", ops.flatten(x))


def _inception(ops, m, x):  # s3d.SepInceptionBlock3D: four branches joined on the channels
    return ops.cat([ops.call(f"branch{i}", x) for i in range(4)])


def _s3d(ops, m, x):
    x = ops.call("classifier", ops.call("avgpool", ops.call("features", x)))
    return ops.mean(x, (2, 3, 4))


def _c3d(ops, m, x):
    from ..models.c3d import C3D_CONVS, POOL_AFTER  # noqa: PLC0415 - see the module docstring
    for name, _ in C3D_CONVS:
        x = ops.call("relu", ops.call(name, x))
        if name in POOL_AFTER:
            x = ops.call(POOL_AFTER[name], x)
    x = ops.call("flatten", x)
    x = ops.call("dropout", ops.call("relu", ops.call("fc6", x)))
    x = ops.call("dropout", ops.call("relu", ops.call("fc7", x)))
    return ops.call("fc8", x)


def _i3d_block(ops, m, x):  # i3d.BasicBlock3d
    out = ops.call("relu", ops.call("bn1", ops.call("conv1", x)))
    out = ops.call("bn2", ops.call("conv2", out))
    return ops.call("relu", ops.add(out, _shortcut(ops, m, x)))


def _i3d(ops, m, x):
    x = ops.call("maxpool", ops.call("relu", ops.call("bn1", ops.call("conv1", x))))
    for name in ("layer1", "layer2", "layer3", "layer4", "avgpool", "fc"):
        x = ops.call(name, x)
    return x


def _p3d_block(ops, m, x):  # p3d.P3DBottleneck, kinds A (serial), B (parallel), C (both)
    def spatial(v):
        return ops.call("relu", ops.call("bn2", ops.call("conv2", v)))

    def temporal(v):
        return ops.call("relu", ops.call("bn3", ops.call("conv3", v)))

    out = ops.call("relu", ops.call("bn1", ops.call("conv1", x)))
    if m.kind == "A":
        out = temporal(spatial(out))
    elif m.kind == "B":
        out = ops.add(spatial(out), temporal(out))
    else:
        s = spatial(out)
        out = ops.add(s, temporal(s))
    out = ops.call("bn4", ops.call("conv4", out))
    return ops.call("relu", ops.add(out, _shortcut(ops, m, x)))


def _p3d(ops, m, x):
    x = ops.call("maxpool", ops.call("relu", ops.call("bn1", ops.call("conv1", x))))
    for stage in range(4):
        x = ops.call(f"layer{stage + 1}", x)
        if stage < m.time_pools:
            x = ops.call("time_pool", x)
    return ops.call("fc", ops.call("dropout", ops.call("avgpool", x)))


def _unet3d(ops, m, x):  # unet3d.UNet3D: encoder levels, bottleneck, decoder levels with skips
    skips = []
    for i in range(1, m.depth + 1):
        x = ops.call(f"encoder{i}", x)
        skips.append(x)
        x = ops.call(f"pool{i}", x)
    x = ops.call("bottleneck", x)
    for i in range(m.depth, 0, -1):
        x = ops.call(f"decoder{i}", ops.cat([ops.call(f"upconv{i}", x), skips[i - 1]]))
    return ops.call("conv", x)


_PLANS: dict = {}


def _load_plans() -> dict:
    if not _PLANS:
        # the builder functions shadow the module names in conv3d.models: import the classes
        from ..models.c3d import C3D  # noqa: PLC0415 - see the module docstring
        from ..models.i3d import BasicBlock3d, I3DResNet  # noqa: PLC0415
        from ..models.p3d import P3D, P3DBottleneck  # noqa: PLC0415
        from ..models.s3d import S3D, SepInceptionBlock3D  # noqa: PLC0415
        from ..models.unet3d import UNet3D  # noqa: PLC0415
        from ..models.video_resnet import BasicBlock, Bottleneck, VideoResNet  # noqa: PLC0415
        _PLANS.update({BasicBlock: _basic_block, Bottleneck: _bottleneck,
                       VideoResNet: _video_resnet, SepInceptionBlock3D: _inception, S3D: _s3d,
                       C3D: _c3d, BasicBlock3d: _i3d_block, I3DResNet: _i3d,
                       P3DBottleneck: _p3d_block, P3D: _p3d, UNet3D: _unet3d})
    return _PLANS


def plan_of(module):
    """The plan ``plan(ops, module, x)`` of ``module``'s forward, or None when it has none (a
    plain layer, a Sequential, or a block neither exporter can express)."""
    return _load_plans().get(type(module))
