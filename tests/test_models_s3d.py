"""S3D against torchvision's (tests/_torchvision_oracle.py), and the ``cat`` op it needs.

The whole network needs clips of at least 14 x 224 x 224 (its final AvgPool3d((2, 7, 7))), which
takes tens of seconds here: those tests are marked slow. The fast ones load the whole
torchvision state dict strictly and compare the first six feature layers (the separable stem,
both pools, the 1x1x1 conv and the first Inception block) on a small clip, and one Inception
block of the upper network."""
import numpy as np
import pytest

import conv3d.models as models
from _torchvision_oracle import compare_training_step, randomize_batchnorm, rel_err, video_models
from conv3d import Tensor, no_grad
from conv3d.core.gradcheck import gradcheck
from conv3d.interop import load_torch_state_dict
from conv3d.models.s3d import SepInceptionBlock3D
from conv3d.ops.shape import cat

torch = pytest.importorskip("torch", reason="the torchvision parity tests need torch")


def torchvision_s3d(seed, **kwargs):
    _, s3d = video_models()
    torch.manual_seed(seed)
    return randomize_batchnorm(s3d.s3d(**kwargs), seed)


def test_cat_forward_and_gradient():
    rng = np.random.default_rng(0)
    xs = [Tensor(rng.standard_normal((2, c, 2, 3, 1)), requires_grad=True) for c in (1, 3, 2)]
    out = cat(xs, axis=1)
    assert np.array_equal(out.numpy(), np.concatenate([x.numpy() for x in xs], axis=1))
    assert gradcheck(lambda *t: cat(t, axis=1), xs)
    assert gradcheck(lambda *t: cat(t, axis=-1), [Tensor(rng.standard_normal((2, 2, k)),
                                                         requires_grad=True) for k in (1, 2)])
    with pytest.raises(ValueError, match="agree in every axis"):
        cat([xs[0], Tensor(np.zeros((2, 1, 3, 3, 1)))])
    with pytest.raises(TypeError, match="dtypes"):
        cat([xs[0], Tensor(np.zeros((2, 1, 2, 3, 1), np.float32))])


def test_parameter_count_equals_torchvision():
    theirs = sum(p.numel() for p in torchvision_s3d(0).parameters())
    assert models.s3d().num_parameters(trainable_only=True) == theirs


def test_batchnorm_settings_are_torchvisions():
    ours = {(m.eps, m.momentum) for m in models.s3d().modules()
            if type(m).__name__ == "BatchNorm3d"}
    theirs = {(m.eps, m.momentum) for m in torchvision_s3d(0).modules()
              if isinstance(m, torch.nn.BatchNorm3d)}
    assert ours == theirs == {(0.001, 0.001)}


def loaded_pair(seed, **kwargs):
    theirs = torchvision_s3d(seed, **kwargs)
    ours = models.s3d(weights=theirs.state_dict(), **kwargs)
    return ours, theirs


def test_first_feature_layers_match_torchvision_float32():
    ours, theirs = loaded_pair(1, num_classes=10)
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 16, 16)).astype(np.float32)
    with torch.no_grad():
        expected = theirs.features[:6].eval()(torch.from_numpy(x)).numpy()
    with no_grad():
        got = ours.features[:6].eval()(Tensor(x)).numpy()
    assert got.shape == expected.shape == (2, 256, 2, 2, 2)
    assert rel_err(got, expected) < 1e-4


def test_first_feature_layers_training_step_float64():
    ours, theirs = loaded_pair(3, num_classes=10)
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 16, 16))
    out_err, errors = compare_training_step(ours.features[:6], theirs.features[:6], x)
    assert len(errors) == sum(1 for _ in theirs.features[:6].parameters()) + 2 * sum(
        1 for m in theirs.features[:6].modules() if isinstance(m, torch.nn.BatchNorm3d))
    assert out_err < 1e-10 and max(errors.values()) < 1e-9


def test_upper_inception_block_training_step_float64():
    _, s3d = video_models()
    torch.manual_seed(5)
    bn = torch.nn.BatchNorm3d
    theirs = randomize_batchnorm(s3d.SepInceptionBlock3D(24, 8, 6, 10, 4, 6, 5, bn), 5)
    ours = SepInceptionBlock3D(24, 8, 6, 10, 4, 6, 5)
    load_torch_state_dict(ours, theirs.state_dict(), strict=True)
    for m in ours.modules():  # the oracle uses plain BatchNorm3d here: match its settings
        if type(m).__name__ == "BatchNorm3d":
            m.eps, m.momentum = 1e-5, 0.1
    x = np.random.default_rng(6).standard_normal((2, 24, 3, 5, 5))
    out_err, errors = compare_training_step(ours, theirs, x)
    assert out_err < 1e-10 and max(errors.values()) < 1e-9


def test_too_small_clip_is_refused_with_the_minimum():
    with pytest.raises(ValueError, match="14 x 224 x 224"):
        models.s3d(width_mult=0.05)(Tensor(np.zeros((1, 3, 4, 32, 32), np.float32)))


def test_reduced_width_channels():
    model = models.s3d(width_mult=0.125, num_classes=4)
    assert model.classifier[1].in_channels == 128  # 1024 / 8
    assert model.features[5].branch1[1][0][0].out_channels == 16  # 128 / 8
    assert model.features[6].branch0[0].in_channels == 32  # (64 + 128 + 32 + 32) / 8


@pytest.mark.slow
def test_reduced_width_runs():
    model = models.s3d(width_mult=0.125, num_classes=4).eval()
    with no_grad():
        out = model(Tensor(np.zeros((1, 3, 14, 224, 224), np.float32)))
    assert out.shape == (1, 4)


@pytest.mark.slow
def test_logits_match_torchvision_float32():
    ours, theirs = loaded_pair(7, num_classes=10)
    x = np.random.default_rng(8).standard_normal((1, 3, 16, 224, 224)).astype(np.float32)
    with torch.no_grad():
        expected = theirs.eval()(torch.from_numpy(x)).numpy()
    with no_grad():
        got = ours.eval()(Tensor(x)).numpy()
    err = rel_err(got, expected)
    print(f"s3d eval logits, float32: max rel. error {err:.2e}")
    assert err < 1e-4


@pytest.mark.slow
def test_training_step_matches_torchvision_float64():
    ours, theirs = loaded_pair(9, num_classes=10, dropout=0.0)  # no random masks to match
    x = np.random.default_rng(10).standard_normal((2, 3, 14, 224, 224))
    out_err, errors = compare_training_step(ours, theirs, x)
    worst = max(errors, key=errors.get)
    print(f"s3d training step, float64: logits {out_err:.2e}, worst of {len(errors)} "
          f"gradients/running stats {errors[worst]:.2e} ({worst})")
    assert out_err < 1e-6 and errors[worst] < 1e-6
