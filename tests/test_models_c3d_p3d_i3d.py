"""conv3d.models c3d, p3d and i3d_resnet18 against independent torch models written here.

The torch twins below are typed from the papers / the public PyTorch ports (torch.nn layers, a
few lines each), not generated from the conv3d models, so a wrong layer, order, padding or name
in conv3d.models makes the strict state-dict load or the comparison fail.
"""
from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import conv3d
import conv3d.functional as F
from conv3d import Tensor, nn
from conv3d.interop import to_torch_state_dict
from conv3d.models import get_model, list_models

torch = pytest.importorskip("torch", reason="the reference models are written in torch.nn")
tnn = torch.nn


def _randomize(model, seed=0):
    """Random parameters AND BatchNorm statistics, so a dropped or swapped entry shows."""
    rng = np.random.default_rng(seed)
    state = model.state_dict()
    for key, value in state.items():
        if value.dtype.kind != "f":
            continue
        if key.endswith("running_var"):
            state[key] = rng.uniform(0.5, 2.0, value.shape).astype(value.dtype)
        elif key.endswith(("running_mean", "bias")):
            state[key] = (0.1 * rng.standard_normal(value.shape)).astype(value.dtype)
        elif key.endswith("weight") and value.ndim == 1:  # BatchNorm gamma
            state[key] = rng.uniform(0.5, 1.5, value.shape).astype(value.dtype)
        else:
            fan_in = int(np.prod(value.shape[1:]))
            state[key] = (rng.standard_normal(value.shape) / np.sqrt(fan_in)).astype(value.dtype)
    model.load_state_dict(state)
    return model


def _load_into_torch(torch_model, model):
    torch_model.load_state_dict({k: torch.from_numpy(v)
                                 for k, v in to_torch_state_dict(model).items()})
    return torch_model


# ---- C3D ---------------------------------------------------------------------------------------

class TorchC3D(tnn.Module):
    """The PyTorch port of the Sports-1M C3D (names as in its c3d.pickle), returning logits."""

    def __init__(self, num_classes, fc6_in):
        super().__init__()
        conv = lambda c, k: tnn.Conv3d(c, k, kernel_size=(3, 3, 3), padding=(1, 1, 1))  # noqa: E731
        self.conv1, self.pool1 = conv(3, 64), tnn.MaxPool3d((1, 2, 2), (1, 2, 2))
        self.conv2, self.pool2 = conv(64, 128), tnn.MaxPool3d((2, 2, 2), (2, 2, 2))
        self.conv3a, self.conv3b = conv(128, 256), conv(256, 256)
        self.pool3 = tnn.MaxPool3d((2, 2, 2), (2, 2, 2))
        self.conv4a, self.conv4b = conv(256, 512), conv(512, 512)
        self.pool4 = tnn.MaxPool3d((2, 2, 2), (2, 2, 2))
        self.conv5a, self.conv5b = conv(512, 512), conv(512, 512)
        self.pool5 = tnn.MaxPool3d((2, 2, 2), (2, 2, 2), padding=(0, 1, 1))
        self.fc6, self.fc7 = tnn.Linear(fc6_in, 4096), tnn.Linear(4096, 4096)
        self.fc8 = tnn.Linear(4096, num_classes)
        self.fc6_in = fc6_in

    def forward(self, x):
        r = torch.relu
        h = self.pool1(r(self.conv1(x)))
        h = self.pool2(r(self.conv2(h)))
        h = self.pool3(r(self.conv3b(r(self.conv3a(h)))))
        h = self.pool4(r(self.conv4b(r(self.conv4a(h)))))
        h = self.pool5(r(self.conv5b(r(self.conv5a(h)))))
        h = h.view(-1, self.fc6_in)
        return self.fc8(r(self.fc7(r(self.fc6(h)))))  # eval mode: dropout is the identity


def _check_c3d(input_size, fc6_in, batch):
    torch.manual_seed(0)
    theirs = TorchC3D(7, fc6_in).eval()
    # the port's state dict loads strictly through weights=: a renamed or reshaped layer raises
    model = get_model("c3d", num_classes=7, input_size=input_size, weights=theirs.state_dict())
    model.eval()
    x = np.random.default_rng(1).standard_normal((batch, 3) + input_size).astype(np.float32)
    with torch.no_grad():
        want = theirs(torch.from_numpy(x)).numpy()
    got = model(Tensor(x)).numpy()
    assert got.shape == (batch, 7)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert np.abs(want).max() > 1e-3  # the logits are not all (near) zero


def test_c3d_small_clip_matches_the_torch_port():
    # 16 x 16 x 16: pools give 16x8x8, 8x4x4, 4x2x2, 2x1x1, then pool5 (padding 0,1,1) 1x1x1
    _check_c3d((16, 16, 16), 512, batch=2)


@pytest.mark.slow
def test_c3d_paper_clip_matches_the_torch_port_with_8192_fc6_features():
    _check_c3d((16, 112, 112), 8192, batch=1)


def test_c3d_rejects_a_clip_of_another_size_and_a_too_short_one():
    model = get_model("c3d", num_classes=3, input_size=(16, 16, 16))
    with pytest.raises(ValueError, match="input_size"):
        model(Tensor(np.zeros((1, 3, 16, 32, 32), np.float32)))
    with pytest.raises(ValueError, match="too small"):
        get_model("c3d", input_size=(8, 112, 112))
