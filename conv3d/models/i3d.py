"""I3D ResNet-18: torchvision's 2-D ResNet-18 inflated to 3-D (Carreira & Zisserman 2017).

Every layer of the image network gets a time axis, keeping torchvision's layout and names
(conv1 7x7 stride 2, bn1, maxpool 3x3 stride 2, layer1..layer4 of two BasicBlocks each with
downsample.0/.1 where the shape changes, fc), so a torchvision ``resnet18`` state dict inflates
key by key:

* a k x k conv becomes ``time_kernel`` x k x k, temporal stride 1, temporal padding
  ``time_kernel // 2`` (the clip keeps its length); its 2-D weight is inflated with
  ``conv3d.nn.inflate``: repeated over time and divided by ``time_kernel`` (or, ``center=True``,
  put in the middle slice);
* 1x1 convs (the shortcuts' downsample.0) become 1x1x1, the max pool 1x3x3, BatchNorm and fc
  are copied; the head averages over time, height and width.

The boring-video check (a clip that repeats one image T times gives the image network's
output) and where it is exact: with ``center=True`` every 3-D conv is the 2-D conv applied frame
by frame, so every frame of ``features`` and the logits are the 2-D ones. With the mean rule
(the default), a frame whose temporal windows all lie inside the clip sees time_kernel copies
of the same input times 1/time_kernel: exactly the 2-D response. Each of the 17 inflated convs
on the longest path (the stem and two per block) lets the zero padding at the clip's ends reach
``time_kernel // 2`` frames further in, so the frames ``temporal_margin <= t < T -
temporal_margin`` of ``features`` (layer4, before pooling) are exact. Nearer the ends they are
not guaranteed: the end frames are far off, and the difference shrinks frame by frame inwards
(below float32 rounding well before the margin, with typical weights). The logits average all
frames and so are close to, not equal to, the 2-D logits.
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np

from ..interop import to_torch_state_dict
from ..nn import (BatchNorm3d, Conv3d, GlobalAvgPool3d, Linear, MaxPool3d, Module, ReLU,
                  Sequential, inflate)
from ._registry import register_model
from ._weights import load_weights, read_state_dict


def _time_conv(in_channels, out_channels, k, stride, time_kernel, dtype):
    """The inflated k x k conv: (time_kernel, k, k), stride (1, s, s), 'same' size in time."""
    return Conv3d(in_channels, out_channels, (time_kernel, k, k), stride=(1, stride, stride),
                  padding=(time_kernel // 2, k // 2, k // 2), bias=False, dtype=dtype)


class BasicBlock3d(Module):
    """torchvision's BasicBlock with inflated 3x3 convs: conv-BN-ReLU-conv-BN, + shortcut, ReLU.

    Shapes: (N, C, D, H, W) -> (N, planes, D, OH, OW), ``o = floor((i - 1)/s) + 1``.
    """

    def __init__(self, in_channels: int, planes: int, stride: int = 1, time_kernel: int = 3,
                 dtype=np.float32):
        super().__init__()
        self.conv1 = _time_conv(in_channels, planes, 3, stride, time_kernel, dtype)
        self.bn1 = BatchNorm3d(planes, dtype=dtype)
        self.relu = ReLU()
        self.conv2 = _time_conv(planes, planes, 3, 1, time_kernel, dtype)
        self.bn2 = BatchNorm3d(planes, dtype=dtype)
        if stride != 1 or in_channels != planes:
            self.downsample = Sequential(
                Conv3d(in_channels, planes, 1, stride=(1, stride, stride), bias=False,
                       dtype=dtype),
                BatchNorm3d(planes, dtype=dtype))
        else:
            self.downsample = None

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class I3DResNet(Module):
    """An inflated 2-D ResNet of BasicBlocks; see the module docstring.

    Args:
        layers: blocks per stage ((2, 2, 2, 2) is ResNet-18).
        num_classes: size of ``fc`` (1000 to load torchvision's ImageNet weights).
        time_kernel: temporal size of every inflated conv, odd (1 gives a frame-by-frame 2-D
            network).
    """

    def __init__(self, layers=(2, 2, 2, 2), num_classes: int = 1000, time_kernel: int = 3,
                 in_channels: int = 3, dtype=np.float32):
        super().__init__()
        if isinstance(time_kernel, bool) or not isinstance(time_kernel, numbers.Integral) \
                or time_kernel < 1 or time_kernel % 2 == 0:
            raise ValueError(f"I3DResNet: time_kernel must be an odd int >= 1 (padding "
                             f"time_kernel // 2 on each side keeps the clip's length), got "
                             f"{time_kernel!r}")
        self.time_kernel = int(time_kernel)
        self.conv1 = _time_conv(in_channels, 64, 7, 2, self.time_kernel, dtype)
        self.bn1 = BatchNorm3d(64, dtype=dtype)
        self.relu = ReLU()
        self.maxpool = MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        channels = 64
        for stage, blocks in enumerate(layers):
            planes = 64 * 2 ** stage
            stage_layers = Sequential()
            for b in range(blocks):
                stride = 2 if stage > 0 and b == 0 else 1
                stage_layers.append(BasicBlock3d(channels, planes, stride, self.time_kernel,
                                                 dtype=dtype))
                channels = planes
            setattr(self, f"layer{stage + 1}", stage_layers)
        self.avgpool = GlobalAvgPool3d()
        self.fc = Linear(channels, num_classes, dtype=dtype)
        # the stem and two convs per block lie on the longest path, each reaching
        # time_kernel // 2 frames further in from a clip end
        self.temporal_margin = (1 + 2 * sum(layers)) * (self.time_kernel // 2)

    def features(self, x):
        """The layer4 output, (N, 512, D, H/32, W/32), before the pooling over D, H, W."""
        if x.ndim != 5:
            raise ValueError(f"I3DResNet expects clips (N, C, D, H, W), got shape "
                             f"{tuple(x.shape)}; an image batch (N, C, H, W) needs a time axis: "
                             f"x[:, :, None] repeated over D frames")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x):
        return self.fc(self.avgpool(self.features(x)))


def _as_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def inflate_state_dict(model: Module, state_2d: Mapping, center: bool = False) -> dict:
    """The 2-D network's ``state_2d`` (torch names) turned into a state dict for ``model``.

    Every 4-D conv weight (K, C, kH, kW) whose key is a 5-D weight (K, C, T, kH, kW) in ``model``
    is inflated to that T with ``conv3d.nn.inflate(w, T, center)``; everything else (BatchNorm,
    fc) is copied, in the model's dtype. Keys are not checked here: loading the result strictly
    reports missing and unexpected ones.
    """
    targets = to_torch_state_dict(model)
    out = {}
    for key, value in state_2d.items():
        value = _as_numpy(value)
        target = targets.get(key)
        if target is not None and target.dtype.kind == "f":
            value = value.astype(target.dtype)
        if target is not None and target.ndim == 5 and value.ndim == 4:
            value = inflate(value, target.shape[2], center=center)
        out[key] = value
    return out


@register_model
def i3d_resnet18(num_classes: int = 1000, weights2d=None, weights=None, time_kernel: int = 3,
                 center: bool = False, dtype=np.float32) -> I3DResNet:
    """I3D from torchvision's ResNet-18 (see ``conv3d.models.i3d``).

    Args:
        weights2d: None, or a torchvision ``resnet18`` state dict (a mapping, a .pth or a .npz
            of the 2-D weights, e.g. ``torch.save(torchvision.models.resnet18(
            weights="IMAGENET1K_V1").state_dict(), "resnet18.pth")``), inflated and loaded
            strictly; ``num_classes`` must then match its fc (1000 for ImageNet).
        weights: None, or a 3-D state dict saved from this model (not with ``weights2d``).
        time_kernel: temporal size of the inflated convs (odd).
        center: inflate into the middle time slice instead of the mean over time.
    """
    if weights2d is not None and weights is not None:
        raise ValueError("i3d_resnet18: pass weights2d (a 2-D resnet18 state dict, inflated) or "
                         "weights (this 3-D model's own), not both")
    model = I3DResNet((2, 2, 2, 2), num_classes, time_kernel, dtype=dtype)
    if weights2d is not None:
        weights = inflate_state_dict(model, read_state_dict(weights2d), center=center)
    return load_weights(model, weights)
