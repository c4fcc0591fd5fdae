"""conv3d.models c3d, p3d and i3d_resnet18 against independent torch models written here.

The torch twins below are typed from the papers / the public PyTorch ports (torch.nn layers, a
few lines each), not generated from the conv3d models, so a wrong layer, order, padding or name
in conv3d.models makes the strict state-dict load or the comparison fail.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import conv3d
import conv3d.functional as F
from conv3d import Tensor
from conv3d.interop import to_torch_state_dict
from conv3d.models import get_model, list_models

from _torchvision_oracle import torchvision_module

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


def _one_sgd_step_lowers_the_loss(model, x, labels):
    """Every gradient finite and non-zero, and one SGD step lowers the training loss.

    Random BatchNorm networks on a batch of 4 are steep (|g| in the hundreds), so the step size
    is set from the gradient: lr = 0.05 * loss / |g|^2 moves the loss by about -5% to first
    order; a wrong gradient is not a descent direction and the loss does not drop.
    """
    from conv3d.optim import SGD
    model.train()
    opt = SGD(model.parameters(), lr=1.0)
    opt.zero_grad()
    loss = F.cross_entropy(model(x), labels)
    loss.backward()
    grads = [np.asarray(p.grad) for p in model.parameters()]
    assert all(np.isfinite(g).all() for g in grads)
    assert all(np.abs(g).max() > 0 for g in grads)
    opt.lr = 0.05 * float(loss.numpy()) / sum(float((g.astype(np.float64) ** 2).sum())
                                              for g in grads)
    opt.step()
    assert float(F.cross_entropy(model(x), labels).numpy()) < float(loss.numpy())


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


@pytest.mark.slow  # the whole 8-conv C3D in both frameworks: about 7 s
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


# ---- P3D ---------------------------------------------------------------------------------------

class TorchP3DBlock(tnn.Module):
    """The paper's bottleneck with S = 1x3x3 and T = 3x1x1 (Qiu et al. 2017, Fig. 3 and 4)."""

    def __init__(self, c_in, planes, kind, stride):
        super().__init__()
        s = (1, stride, stride)
        self.kind = kind
        self.conv1 = tnn.Conv3d(c_in, planes, 1, stride=s, bias=False)
        self.bn1 = tnn.BatchNorm3d(planes)
        self.conv2 = tnn.Conv3d(planes, planes, (1, 3, 3), padding=(0, 1, 1), bias=False)
        self.bn2 = tnn.BatchNorm3d(planes)
        self.conv3 = tnn.Conv3d(planes, planes, (3, 1, 1), padding=(1, 0, 0), bias=False)
        self.bn3 = tnn.BatchNorm3d(planes)
        self.conv4 = tnn.Conv3d(planes, 4 * planes, 1, bias=False)
        self.bn4 = tnn.BatchNorm3d(4 * planes)
        self.downsample = None
        if stride != 1 or c_in != 4 * planes:
            self.downsample = tnn.Sequential(tnn.Conv3d(c_in, 4 * planes, 1, stride=s, bias=False),
                                             tnn.BatchNorm3d(4 * planes))

    def forward(self, x):
        S = lambda z: torch.relu(self.bn2(self.conv2(z)))  # noqa: E731
        T = lambda z: torch.relu(self.bn3(self.conv3(z)))  # noqa: E731
        h = torch.relu(self.bn1(self.conv1(x)))
        if self.kind == "A":
            h = T(S(h))
        elif self.kind == "B":
            h = S(h) + T(h)
        else:  # S + T(S), with S computed once (twice would update bn2's statistics twice)
            s = S(h)
            h = s + T(s)
        h = self.bn4(self.conv4(h))
        return torch.relu(h + (x if self.downsample is None else self.downsample(x)))


@pytest.mark.parametrize("kind, c_in, planes, stride", [
    ("A", 16, 4, 1), ("B", 8, 4, 2), ("C", 16, 4, 1), ("C", 6, 3, 2)])
def test_p3d_block_forward_and_every_gradient_match_torch_float64(kind, c_in, planes, stride):
    from conv3d.models.p3d import P3DBottleneck
    block = _randomize(P3DBottleneck(c_in, planes, kind, stride, dtype=np.float64), seed=3)
    theirs = _load_into_torch(TorchP3DBlock(c_in, planes, kind, stride).double(), block)
    assert (block.downsample is None) == (theirs.downsample is None)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, c_in, 5, 7, 6))
    gy = rng.standard_normal((2, 4 * planes, 5, (7 - 1) // stride + 1, (6 - 1) // stride + 1))
    for training in (True, False):
        block.train(training), theirs.train(training)
        xs, xt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        for p in block.parameters():
            p.grad = None
        theirs.zero_grad()
        ys, yt = block(xs), theirs(xt)
        np.testing.assert_allclose(ys.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
        ys.backward(gy)
        yt.backward(torch.from_numpy(gy))
        np.testing.assert_allclose(xs.grad.numpy() if hasattr(xs.grad, "numpy") else xs.grad,
                                   xt.grad.numpy(), rtol=1e-9, atol=1e-10)
        ours = dict(block.named_parameters())
        for name, p in theirs.named_parameters():
            g = ours[name].grad
            g = g.numpy() if hasattr(g, "numpy") else g
            assert np.abs(p.grad.numpy()).max() > 0, name
            np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-9, atol=1e-10, err_msg=name)
    # training mode updated the running statistics the same way
    for name, value in theirs.state_dict().items():
        if "running" in name:
            np.testing.assert_allclose(block.state_dict()[name], value.numpy(), rtol=1e-12)


def test_p3d_blocks_cycle_a_b_c_across_stages_and_the_shapes_are_the_ports():
    model = get_model("p3d", num_classes=5, layers=(2, 2, 1, 1), width=4).eval()
    kinds = [b.kind for stage in (model.layer1, model.layer2, model.layer3, model.layer4)
             for b in stage]
    assert kinds == ["A", "B", "C", "A", "B", "C"]
    assert model.fc.in_features == 4 * 8 * 4
    # 16 frames: stem pool 8, then the time pools after layer1-3: 4, 2, 1; 32 px: 16, 8, 8, 4, 2, 1
    assert tuple(model.features(Tensor(np.zeros((1, 3, 16, 32, 32), np.float32))).shape) == \
        (1, 128, 1, 1, 1)
    blocks199 = get_model("p3d199", num_classes=2, width=2).layers
    assert blocks199 == (3, 8, 36, 3)


def test_p3d_trains_a_step_and_prints_its_summary():
    model = get_model("p3d", num_classes=3, layers=(1, 1, 1, 1), width=4, time_pools=1,
                      dropout=0.0)
    _randomize(model, seed=5)  # deterministic weights: the step below is the same every run
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((4, 3, 4, 16, 16)).astype(np.float32))
    labels = np.array([0, 1, 2, 1])
    _one_sgd_step_lowers_the_loss(model, x, labels)
    text = conv3d.summary(model, (3, 4, 16, 16), print_fn=None)
    trainable = sum(int(p.size) for p in model.parameters())
    assert f"Trainable params: {trainable:,}" in text
    assert "layer4.0.conv3 (Conv3d)" in text and "(None, 3)" in text


# ---- I3D ResNet-18 -----------------------------------------------------------------------------

def _resnet18_2d(num_classes, seed=0):
    """torchvision's resnet18 with random weights AND BatchNorm statistics, in eval mode."""
    resnet = torchvision_module("models.resnet")  # the 2-D reference network
    torch.manual_seed(seed)
    net = resnet.resnet18(num_classes=num_classes)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, tnn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0, 0.1, generator=g)
                m.running_mean.normal_(0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
    return net.eval()


@pytest.fixture(scope="module")
def resnet2d():
    """One random 2-D resnet18 (10 classes) for the I3D tests: building it is the slow part."""
    return _resnet18_2d(num_classes=10)


def _features_2d(net, image):
    with torch.no_grad():
        h = net.maxpool(net.relu(net.bn1(net.conv1(image))))
        h = net.layer4(net.layer3(net.layer2(net.layer1(h))))
        return h.numpy(), net.fc(torch.flatten(net.avgpool(h), 1)).numpy()


def _static_clip(image, frames):
    return np.repeat(image[:, :, None], frames, axis=2)  # (N, C, H, W) -> (N, C, T, H, W)


@pytest.mark.slow  # a 35-frame clip through the 3-D ResNet-18 (about 10-20 s on a loaded CPU)
def test_i3d_boring_video_interior_frames_are_the_2d_features_and_the_ends_are_not(resnet2d):
    net = resnet2d
    model = get_model("i3d_resnet18", num_classes=10, weights2d=net.state_dict()).eval()
    margin = 17 * (3 // 2)  # stem + 2 convs in each of 8 blocks, one frame each for kT = 3
    assert model.temporal_margin == margin
    T = 2 * margin + 1  # one frame in the middle is out of reach of both ends
    # 16 x 16 keeps the 35-frame clip cheap; the center test below covers 32 x 32
    image = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    want, logits_2d = _features_2d(net, torch.from_numpy(image))
    got = model.features(Tensor(_static_clip(image, T))).numpy()  # (1, 512, T, 1, 1)
    assert got.shape == (1, 512, T) + want.shape[2:]
    scale = np.abs(want).max()
    assert scale > 1e-2
    for t in range(margin, T - margin):
        np.testing.assert_allclose(got[:, :, t], want, rtol=1e-4, atol=1e-4 * scale,
                                   err_msg=f"frame {t}")
    # the zero time padding reaches the frames nearer the ends (its effect decays towards the
    # margin, which is a bound: near it the difference can fall below float32 rounding)
    for t in (0, 1, T - 2, T - 1):
        assert np.abs(got[:, :, t] - want).max() > 1e-3 * scale, f"frame {t}"
    logits = model(Tensor(_static_clip(image, T))).numpy()
    assert not np.allclose(logits, logits_2d, rtol=1e-4, atol=1e-4)


def test_i3d_center_inflation_gives_the_2d_logits_on_every_frame(resnet2d):
    net = resnet2d
    model = get_model("i3d_resnet18", num_classes=10, weights2d=net.state_dict(), center=True)
    model.eval()
    images = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    want, logits_2d = _features_2d(net, torch.from_numpy(images))
    clip = _static_clip(images, 4)
    feats = model.features(Tensor(clip)).numpy()
    scale = np.abs(want).max()
    for t in range(4):
        np.testing.assert_allclose(feats[:, :, t], want, rtol=1e-4, atol=1e-4 * scale)
    np.testing.assert_allclose(model(Tensor(clip)).numpy(), logits_2d, rtol=1e-4,
                               atol=1e-4 * np.abs(logits_2d).max())


@pytest.mark.slow  # inflates a whole ResNet-18 with a 5-frame kernel: about 6 s
def test_i3d_inflation_is_the_mean_rule_and_copies_batchnorm_and_fc(resnet2d):
    net = resnet2d
    model = get_model("i3d_resnet18", num_classes=10, weights2d=net.state_dict(), time_kernel=5)
    sd = to_torch_state_dict(model)
    w2 = net.layer2[0].conv1.weight.detach().numpy()
    assert sd["layer2.0.conv1.weight"].shape == (128, 64, 5, 3, 3)
    for t in range(5):  # written here as the rule says: w3[:, :, t] = w2 / T
        np.testing.assert_allclose(sd["layer2.0.conv1.weight"][:, :, t], w2 / 5, rtol=1e-6)
    assert sd["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1, 1)
    np.testing.assert_array_equal(sd["layer3.1.bn2.running_var"],
                                  net.layer3[1].bn2.running_var.numpy())
    np.testing.assert_array_equal(sd["fc.weight"], net.fc.weight.detach().numpy())


@pytest.mark.slow  # builds three ResNet-18s
def test_i3d_loads_weights2d_from_pth_and_npz_files_and_rejects_mismatches(tmp_path, resnet2d):
    net = resnet2d
    torch.save(net.state_dict(), tmp_path / "resnet18.pth")
    np.savez(tmp_path / "resnet18.npz", **{k: v.numpy() for k, v in net.state_dict().items()})
    a = get_model("i3d_resnet18", num_classes=10, weights2d=tmp_path / "resnet18.pth")
    b = get_model("i3d_resnet18", num_classes=10, weights2d=str(tmp_path / "resnet18.npz"))
    for key, value in a.state_dict().items():
        np.testing.assert_array_equal(value, b.state_dict()[key], err_msg=key)
    with pytest.raises((KeyError, ValueError), match="fc"):  # 1000 classes vs 10
        get_model("i3d_resnet18", num_classes=1000, weights2d=net.state_dict())
    with pytest.raises(ValueError, match="not both"):
        get_model("i3d_resnet18", weights2d=net.state_dict(), weights=net.state_dict())
    with pytest.raises(ValueError, match="odd"):
        get_model("i3d_resnet18", time_kernel=2)


@pytest.mark.slow  # forward, backward and summary of the 11.7M-weight 3-D ResNet-18
def test_i3d_trains_a_step_and_prints_its_summary():
    model = _randomize(get_model("i3d_resnet18", num_classes=3, time_kernel=3), seed=6)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 2, 16, 16)).astype(np.float32))
    labels = np.array([0, 2])
    _one_sgd_step_lowers_the_loss(model, x, labels)
    text = conv3d.summary(model, (3, 2, 16, 16), print_fn=None)
    assert f"Trainable params: {sum(int(p.size) for p in model.parameters()):,}" in text
    assert "layer4.1.conv2 (Conv3d)" in text


def test_the_three_builders_are_registered():
    assert {"c3d", "p3d", "p3d199", "i3d_resnet18"} <= set(list_models())


def test_the_model_pages_figures_are_pngs_written_by_the_figure_script():
    import re
    docs = Path(__file__).resolve().parents[1] / "docs"
    script = (docs / "gen_model_figures.py").read_text()
    page = docs / "models" / "c3d-p3d-i3d.md"
    images = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", page.read_text())
    assert len(images) == 3
    for rel in images:
        png = (page.parent / rel).resolve()
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", rel
        assert f'"{png.stem}"' in script, f"{png.name} is not in docs/gen_model_figures.py"
    # all seven networks' figures exist (the other four are shown on the other model pages)
    for name in ("c3d", "p3d_blocks", "i3d_inflation", "r3d_block", "mc3", "r2plus1d_block",
                 "s3d_block"):
        assert (docs / "figures" / "models" / f"{name}.png").exists(), name
