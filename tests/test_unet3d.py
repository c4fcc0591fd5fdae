"""The 3D U-Net (conv3d.models.unet3d), the synthetic segmentation volumes, the Dice score and
the segmentation training: shapes and names by hand, the forward and gradients against a U-Net
written independently in torch, the dataset's documented laws, Dice on hand-counted masks."""
from collections import OrderedDict

import numpy as np
import pytest

from conv3d import models, nn
from conv3d.core.tensor import Tensor, no_grad
from conv3d.datasets import SEGMENTATION_CLASSES, segmentation_volumes
from conv3d.models import UNet3D
from conv3d.train.segmentation import (HELD_OUT_SEED_OFFSET, dice_score, run_segmentation,
                                       segmentation_loss, segmentation_report)


def _forward(model, x):
    model.eval()
    with no_grad():
        return model(Tensor(x)).numpy()


@pytest.mark.parametrize("upsample", ["transpose", "trilinear"])
@pytest.mark.parametrize("norm", ["group", "batch"])
def test_output_keeps_the_size_and_has_one_channel_per_class(upsample, norm):
    model = UNet3D(2, 3, base_channels=4, depth=2, upsample=upsample, norm=norm)
    x = np.random.default_rng(0).standard_normal((1, 2, 8, 4, 12)).astype(np.float32)
    out = _forward(model, x)
    assert out.shape == (1, 3, 8, 4, 12) and out.dtype == np.float32


def test_parameter_names_and_widths_follow_the_torch_layout():
    model = models.get_model("unet3d", num_classes=3, base_channels=4, depth=2)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    # level i has 4 * 2**(i-1) channels, the bottleneck 16; 3x3x3 convs without bias
    assert shapes["encoder1.conv1.weight"] == (4, 1, 3, 3, 3)
    assert shapes["encoder2.conv2.weight"] == (8, 8, 3, 3, 3)
    assert shapes["bottleneck.conv1.weight"] == (16, 8, 3, 3, 3)
    assert shapes["upconv2.weight"] == (16, 8, 2, 2, 2)  # ConvTranspose3d: (C_in, C_out, k...)
    assert shapes["decoder2.conv1.weight"] == (8, 16, 3, 3, 3)  # 8 up + 8 skip channels in
    assert shapes["decoder1.norm2.weight"] == (4,)
    assert shapes["conv.weight"] == (3, 4, 1, 1, 1) and shapes["conv.bias"] == (3,)
    assert "encoder1.conv1.bias" not in shapes
    trilinear = UNet3D(1, 2, base_channels=4, depth=1, upsample="trilinear")
    assert trilinear.state_dict()["upconv1.conv.weight"].shape == (4, 8, 1, 1, 1)
    assert "unet3d" in models.list_models()


def test_bad_settings_and_inputs_name_the_argument():
    with pytest.raises(ValueError, match="upsample must be one of"):
        UNet3D(upsample="bilinear")
    with pytest.raises(ValueError, match="norm must be one of"):
        UNet3D(norm="layer")
    with pytest.raises(ValueError, match="depth must be an int >= 1"):
        UNet3D(depth=0)
    model = UNet3D(1, 2, base_channels=2, depth=2)
    with pytest.raises(ValueError, match=r"divisible by 2\*\*depth = 4.*\(1, 1, 8, 8, 6\)"):
        model(Tensor(np.zeros((1, 1, 8, 8, 6), np.float32)))


def _torch_unet(torch, in_channels, out_channels, base, depth, upsample, norm, groups):
    """The same network written with torch.nn only (not derived from the conv3d model)."""
    tnn = torch.nn

    def block(c_in, c_out):
        layers = OrderedDict()
        for i, (a, b) in enumerate(((c_in, c_out), (c_out, c_out)), start=1):
            layers[f"conv{i}"] = tnn.Conv3d(a, b, 3, padding=1, bias=False)
            layers[f"norm{i}"] = tnn.GroupNorm(groups, b) if norm == "group" else \
                tnn.BatchNorm3d(b)
            layers[f"relu{i}"] = tnn.ReLU()
        return tnn.Sequential(layers)

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            w = [base * 2 ** i for i in range(depth + 1)]
            c = in_channels
            for i in range(1, depth + 1):
                setattr(self, f"encoder{i}", block(c, w[i - 1]))
                setattr(self, f"pool{i}", tnn.MaxPool3d(2, 2))
                c = w[i - 1]
            self.bottleneck = block(c, w[depth])
            for i in range(depth, 0, -1):
                up = tnn.ConvTranspose3d(w[i], w[i - 1], 2, stride=2) if upsample == "transpose" \
                    else tnn.Sequential(OrderedDict(
                        upsample=tnn.Upsample(scale_factor=2, mode="trilinear",
                                              align_corners=False),
                        conv=tnn.Conv3d(w[i], w[i - 1], 1)))
                setattr(self, f"upconv{i}", up)
                setattr(self, f"decoder{i}", block(2 * w[i - 1], w[i - 1]))
            self.conv = tnn.Conv3d(w[0], out_channels, 1)

        def forward(self, x):
            skips = []
            for i in range(1, depth + 1):
                x = getattr(self, f"encoder{i}")(x)
                skips.append(x)
                x = getattr(self, f"pool{i}")(x)
            x = self.bottleneck(x)
            for i in range(depth, 0, -1):
                x = getattr(self, f"upconv{i}")(x)
                x = getattr(self, f"decoder{i}")(torch.cat([x, skips[i - 1]], dim=1))
            return self.conv(x)

    return Net().double()


# the first call of a layer compiles its numba kernels (about 10 s on a loaded 2-core machine,
# once per process): the ConvTranspose3d + GroupNorm case and the training steps are slow tests
@pytest.mark.parametrize("upsample,norm", [
    pytest.param("transpose", "group", marks=pytest.mark.slow), ("trilinear", "batch")])
def test_forward_and_gradients_match_a_torch_unet(upsample, norm):
    torch = pytest.importorskip("torch", reason="torch is not installed: pip install "
                                                "conv3d[torch]")
    model = UNet3D(2, 3, base_channels=4, depth=2, upsample=upsample, norm=norm, num_groups=2,
                   dtype=np.float64)
    rng = np.random.default_rng(1)
    state = {k: rng.standard_normal(v.shape) * 0.3 if not k.endswith("num_batches_tracked")
             else v for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    peer = _torch_unet(torch, 2, 3, 4, 2, upsample, norm, groups=2)
    # strict: every name and shape of conv3d's state dict is one of torch's (the running
    # statistics are random too, but training mode normalizes with the batch's own)
    peer.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
    x = rng.standard_normal((2, 2, 8, 8, 4))
    r = rng.standard_normal((2, 3, 8, 8, 4))  # a random direction for the gradients
    xt = Tensor(x, requires_grad=True)
    out = model(xt)  # training mode: BatchNorm uses the batch's statistics, as torch's does
    (out * Tensor(r)).sum().backward()
    xp = torch.from_numpy(x).requires_grad_(True)
    out_peer = peer.train()(xp)
    (out_peer * torch.from_numpy(r)).sum().backward()
    np.testing.assert_allclose(out.numpy(), out_peer.detach().numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(xt.grad, xp.grad.numpy(), rtol=1e-6, atol=1e-9)
    peer_params = dict(peer.named_parameters())
    for name in ("encoder1.conv1.weight", "bottleneck.norm2.weight", "conv.bias",
                 "upconv2.weight" if upsample == "transpose" else "upconv2.conv.weight"):
        got = dict(model.named_parameters())[name].grad
        np.testing.assert_allclose(got, peer_params[name].grad.numpy(), rtol=1e-6, atol=1e-9,
                                   err_msg=name)


def test_volumes_are_seeded_and_follow_the_documented_intensities():
    x, y = segmentation_volumes(4, size=16, seed=3, noise=0.0)
    x2, y2 = segmentation_volumes(4, size=16, seed=3, noise=0.0)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(y, segmentation_volumes(4, size=16, seed=4, noise=0.0)[1])
    assert x.shape == (4, 1, 16, 16, 16) and y.shape == (4, 16, 16, 16)
    assert y.dtype == np.int64 and set(np.unique(y)) <= {0, 1, 2}
    v = x[:, 0]
    # background: a ramp g * (v . p) / size with g <= 0.2 and |p| <= sqrt(3) * 7.5
    assert np.abs(v[y == 0]).max() <= 0.2 * np.sqrt(3) * 7.5 / 16 + 1e-6
    # objects: one brightness each, uniform in [0.6, 1.0]
    assert v[y > 0].min() >= 0.6 and v[y > 0].max() <= 1.0
    for n in range(4):  # tubes are painted last: every volume has some
        assert (y[n] == 2).any()
    assert len(SEGMENTATION_CLASSES) == 3


def test_noise_has_the_requested_standard_deviation():
    clean, _ = segmentation_volumes(2, size=16, seed=5, noise=0.0, dtype=np.float64)
    noisy, _ = segmentation_volumes(2, size=16, seed=5, noise=0.25, dtype=np.float64)
    assert abs(np.std(noisy - clean) - 0.25) < 0.01  # 8192 draws: std error ~ 0.002


def test_dataset_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        segmentation_volumes(0)
    with pytest.raises(ValueError, match="size must be an int >= 8"):
        segmentation_volumes(1, size=4)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        segmentation_volumes(1, size=8, dtype=np.int32)


def test_dice_score_on_hand_counted_masks():
    target = np.array([[0, 1, 1, 2, 2, 2]])
    pred = np.array([[0, 1, 2, 2, 2, 0]])
    # class 0: P={0,5}, T={0}: 2*1/3; class 1: P={1}, T={1,2}: 2*1/3; class 2: P={2,3,4},
    # T={3,4,5}: 2*2/6
    np.testing.assert_allclose(dice_score(pred, target, 3), [[2 / 3, 2 / 3, 2 / 3]])
    # a class absent from both scores 1
    np.testing.assert_allclose(dice_score(np.zeros((1, 4)), np.zeros((1, 4)), 2), [[1.0, 1.0]])
    with pytest.raises(ValueError, match="argmax"):
        dice_score(np.zeros((1, 3, 4)), np.zeros((1, 4)), 3)


@pytest.mark.slow
def test_a_few_training_steps_lower_the_loss():
    x, y = segmentation_volumes(2, size=8, seed=0)
    nn.init.manual_seed(0)
    model = UNet3D(1, 3, base_channels=4, depth=1)
    from conv3d.optim import Adam
    opt = Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        loss = segmentation_loss(model(Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.slow
def test_short_training_run_segments_held_out_volumes_well_above_chance():
    r = run_segmentation(n_train=32, n_test=4, size=24, epochs=8, batch_size=4, base_channels=8,
                         depth=2, progress=False)
    _, yt = segmentation_volumes(4, size=24, seed=HELD_OUT_SEED_OFFSET)
    chance = np.mean([(yt == c).mean() for c in (1, 2)])  # Dice of a random guess ~ frequency
    assert r["test_dice"] > max(0.3, 10 * chance), r["class_dice"]  # about 0.47 measured
    assert r["history"]["loss"][-1] < r["history"]["loss"][0]


def test_segment_volume_pads_any_size_and_crops_back():
    from conv3d.train.segmentation import segment_volume
    nn.init.manual_seed(2)
    model = UNet3D(1, 3, base_channels=2, depth=2)
    v = np.random.default_rng(3).standard_normal((8, 4, 12)).astype(np.float32)
    # a size that is already a multiple of 4: the labels are the forward's argmax
    np.testing.assert_array_equal(segment_volume(model, v), _forward(model, v[None, None])[0]
                                  .argmax(axis=0))
    odd = segment_volume(model, v[:7, :3, :9])
    assert odd.shape == (7, 3, 9) and odd.dtype.kind == "i"
    with pytest.raises(ValueError, match=r"\(D, H, W\) or \(C, D, H, W\)"):
        segment_volume(model, np.zeros((2, 2)))


def test_overlay_figure_writes_a_png_and_checks_the_shapes(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed: pip install "
                                             "'conv3d[viz]'")
    from conv3d.teach.segment_view import overlay_figure
    x, y = segmentation_volumes(1, size=16, seed=0)
    fig = overlay_figure([("input", x[0, 0], None), ("labels", x[0, 0], y[0])], slices=[4, 8],
                         path=tmp_path / "o.png", class_names=SEGMENTATION_CLASSES)
    assert (tmp_path / "o.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fig.axes) == 4
    with pytest.raises(ValueError, match="labels of shape"):
        overlay_figure([("bad", x[0, 0], y[0, :8])], slices=[0])
    with pytest.raises(ValueError, match="slice 16 is outside"):
        overlay_figure([("v", x[0, 0], None)], slices=[16])


def test_a_resumed_run_reports_the_time_of_every_epoch_not_only_its_own(tmp_path):
    # Two epochs, then a resumed call for a third: the report's training time is the sum of the
    # three epochs' recorded times, and the resumed call's own time is shown beside it.
    ckpt = str(tmp_path / "unet.npz")
    small = dict(n_train=2, n_test=1, size=8, batch_size=2, base_channels=2, depth=1,
                 progress=False, checkpoint=ckpt)
    run_segmentation(epochs=2, **small)
    # the first two epochs as a long earlier run would have recorded them (500 s each), so that
    # the comparison of this run's own time with the total does not depend on the machine's load
    with np.load(ckpt) as saved:
        arrays = dict(saved)
    arrays["history/time"] = np.array([500.0, 500.0])
    np.savez(ckpt, **arrays)
    resumed = run_segmentation(epochs=3, resume=True, **small)
    times = resumed["history"]["time"]
    assert len(times) == 3 and times[:2] == [500.0, 500.0]
    assert resumed["train_seconds"] == pytest.approx(sum(times))
    assert times[2] <= resumed["run_seconds"] < 1000.0  # its own epoch, not the earlier ones
    assert f"{sum(times):.0f} s of training" in segmentation_report(resumed)
    # an hour-long run resumed for its last 12 s says both
    long_run = dict(resumed, train_seconds=3600.0, run_seconds=12.0)
    assert "3600 s of training (12 s in this run, resumed" in segmentation_report(long_run)
    fresh = dict(resumed, run_seconds=resumed["train_seconds"])  # a run that was not resumed
    assert "in this run" not in segmentation_report(fresh)
