"""r3d_18, mc3_18 and r2plus1d_18 against torchvision's own (the oracle: torchvision's Python
source, see tests/_torchvision_oracle.py): same parameter count, strict loading of a randomly
initialized torchvision state dict, the same logits in eval mode (float32) and the same
gradients and running statistics after a training step (float64).

The whole networks take 5-15 s each here, so those tests are marked slow; the fast ones check
the same things on each block type and stem (every layer the networks are made of)."""
import numpy as np
import pytest

import conv3d.models as models
import conv3d.models.video_resnet as vr
from _torchvision_oracle import compare_training_step, randomize_batchnorm, rel_err, video_models
from conv3d import Tensor, no_grad
from conv3d.interop import load_torch_state_dict
from conv3d.nn import Sequential, mid_channels_rule

torch = pytest.importorskip("torch", reason="the torchvision parity tests need torch")

NAMES = ["r3d_18", "mc3_18", "r2plus1d_18"]
CLIP = (2, 3, 4, 32, 32)  # small: 32x32 -> 2x2 after the stem and three strided stages


def torchvision_model(name, seed, **kwargs):
    resnet, _ = video_models()
    torch.manual_seed(seed)
    return randomize_batchnorm(getattr(resnet, name)(**kwargs), seed)


WEIGHTS_ENUM = {"r3d_18": "R3D_18_Weights", "mc3_18": "MC3_18_Weights",
                "r2plus1d_18": "R2Plus1D_18_Weights"}


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_equals_torchvisions_published_count(name):
    resnet, _ = video_models()
    published = getattr(resnet, WEIGHTS_ENUM[name]).KINETICS400_V1.meta["num_params"]
    assert models.get_model(name).num_parameters(trainable_only=True) == published


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_equals_torchvision_model(name):
    theirs = sum(p.numel() for p in torchvision_model(name, 0).parameters())
    ours = models.get_model(name).num_parameters(trainable_only=True)
    assert ours == theirs


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_eval_logits_match_torchvision_float32(name):
    theirs = torchvision_model(name, 1, num_classes=10).eval()
    ours = models.get_model(name, num_classes=10, weights=theirs.state_dict()).eval()
    x = np.random.default_rng(2).standard_normal(CLIP).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    with no_grad():
        got = ours(Tensor(x))
    assert got.dtype == np.float32 and got.shape == (2, 10)
    err = rel_err(got.numpy(), expected)
    print(f"{name} eval logits, float32: max rel. error {err:.2e}")
    assert err < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_training_step_matches_torchvision_float64(name):
    theirs = torchvision_model(name, 3, num_classes=5)
    ours = models.get_model(name, num_classes=5, weights=theirs.state_dict())
    x = np.random.default_rng(4).standard_normal(CLIP)
    out_err, errors = compare_training_step(ours, theirs, x)
    worst = max(errors, key=errors.get)
    print(f"{name} training step, float64: logits {out_err:.2e}, worst of {len(errors)} "
          f"gradients/running stats {errors[worst]:.2e} ({worst})")
    n_params = sum(1 for _ in theirs.parameters())
    n_stats = sum(1 for k, _ in theirs.named_buffers() if k.endswith(("mean", "var")))
    assert len(errors) == n_params + n_stats
    assert out_err < 1e-6
    assert errors[worst] < 1e-6


MAKERS = ["Conv3DSimple", "Conv3DNoTemporal", "Conv2Plus1D"]


def block_pair(maker, seed, inplanes=8, planes=16, stride=2):
    """torchvision's BasicBlock with a downsample shortcut, and ours loaded from it."""
    resnet, _ = video_models()
    torch.manual_seed(seed)
    t_maker = getattr(resnet, maker)
    t_down = torch.nn.Sequential(
        torch.nn.Conv3d(inplanes, planes, 1, stride=t_maker.get_downsample_stride(stride),
                        bias=False), torch.nn.BatchNorm3d(planes))
    theirs = randomize_batchnorm(resnet.BasicBlock(inplanes, planes, t_maker, stride, t_down),
                                 seed)
    o_maker = getattr(vr, maker)
    o_down = Sequential(vr.Conv3d(inplanes, planes, 1,
                                  stride=o_maker.get_downsample_stride(stride), bias=False),
                        vr.BatchNorm3d(planes))
    ours = vr.BasicBlock(inplanes, planes, o_maker, stride, o_down)
    load_torch_state_dict(ours, theirs.state_dict(), strict=True)
    return ours, theirs


@pytest.mark.parametrize("maker", MAKERS)
def test_block_eval_matches_torchvision_float32(maker):
    ours, theirs = block_pair(maker, 5)
    x = np.random.default_rng(6).standard_normal((2, 8, 4, 8, 8)).astype(np.float32)
    with torch.no_grad():
        expected = theirs.eval()(torch.from_numpy(x)).numpy()
    with no_grad():
        got = ours.eval()(Tensor(x)).numpy()
    assert rel_err(got, expected) < 1e-5


@pytest.mark.parametrize("maker", MAKERS)
def test_block_training_step_matches_torchvision_float64(maker):
    ours, theirs = block_pair(maker, 7)
    x = np.random.default_rng(8).standard_normal((2, 8, 4, 8, 8))
    out_err, errors = compare_training_step(ours, theirs, x)
    assert len(errors) == sum(1 for _ in theirs.parameters()) + 2 * sum(
        1 for m in theirs.modules() if isinstance(m, torch.nn.BatchNorm3d))
    assert out_err < 1e-10 and max(errors.values()) < 1e-9


def test_bottleneck_training_step_matches_torchvision_float64():
    resnet, _ = video_models()
    torch.manual_seed(11)
    t_down = torch.nn.Sequential(torch.nn.Conv3d(8, 16, 1, stride=2, bias=False),
                                 torch.nn.BatchNorm3d(16))
    theirs = randomize_batchnorm(
        resnet.Bottleneck(8, 4, resnet.Conv2Plus1D, 2, t_down), 11)
    o_down = Sequential(vr.Conv3d(8, 16, 1, stride=2, bias=False), vr.BatchNorm3d(16))
    ours = vr.Bottleneck(8, 4, vr.Conv2Plus1D, 2, o_down)
    load_torch_state_dict(ours, theirs.state_dict(), strict=True)
    x = np.random.default_rng(12).standard_normal((2, 8, 4, 6, 6))
    out_err, errors = compare_training_step(ours, theirs, x)
    assert out_err < 1e-10 and max(errors.values()) < 1e-9


def test_zero_init_residual_zeroes_the_last_batchnorm_of_each_bottleneck():
    model = vr.VideoResNet(vr.Bottleneck, [vr.Conv3DSimple] * 4, [1, 1, 1, 1], vr.BasicStem,
                           num_classes=2, base_width=2, zero_init_residual=True)
    blocks = [m for m in model.modules() if isinstance(m, vr.Bottleneck)]
    assert len(blocks) == 4 and model.fc.weight.shape == (2, 8 * 2 * 4)
    for block in blocks:
        assert not block.conv3[1].weight.numpy().any()
        assert block.conv2[1].weight.numpy().all()


@pytest.mark.parametrize("stem", ["BasicStem", "R2Plus1dStem"])
def test_stem_training_step_matches_torchvision_float64(stem):
    resnet, _ = video_models()
    torch.manual_seed(9)
    theirs = randomize_batchnorm(getattr(resnet, stem)(), 9)
    ours = getattr(vr, stem)()
    load_torch_state_dict(ours, theirs.state_dict(), strict=True)
    x = np.random.default_rng(10).standard_normal((2, 3, 3, 12, 12))
    out_err, errors = compare_training_step(ours, theirs, x)
    assert out_err < 1e-10 and max(errors.values()) < 1e-9


@pytest.mark.slow
def test_strict_loading_rejects_another_network():
    theirs = torchvision_model("r3d_18", 0)
    with pytest.raises(KeyError, match="missing keys"):
        models.r2plus1d_18(weights=theirs.state_dict())


def test_mc3_uses_1x3x3_kernels_above_stage_1():
    model = models.mc3_18(base_width=8, num_classes=3)
    assert model.layer1[0].conv1[0].kernel_size == (3, 3, 3)
    for stage in (model.layer2, model.layer3, model.layer4):
        assert stage[0].conv1[0].kernel_size == (1, 3, 3)
        assert stage[0].downsample[0].stride == (1, 2, 2)  # no temporal striding


def test_mid_channel_rules():
    # torchvision: one M per block from (inplanes, planes), used by both of its convs;
    # the paper: the rule per conv. At the published width, layer2.0 maps 64 -> 128:
    # M = 64*128*27 // (64*9 + 3*128) = 221184 // 960 = 230 for conv1 under both rules, and
    # for conv2 (128 -> 128) torchvision keeps 230, the paper gives 128*128*27 // (128*9 + 384)
    assert vr.block_mid_channels(64, 128, "torchvision") == (221184 // 960,) * 2 == (230, 230)
    assert vr.block_mid_channels(64, 128, "paper") == (230, 442368 // 1536) == (230, 288)
    assert mid_channels_rule(128, 128, 3) == 288
    # the built networks use them: at base_width 8, layer2.0 maps 8 -> 16
    tv = models.r2plus1d_18(num_classes=2, base_width=8)
    paper = models.r2plus1d_18(num_classes=2, base_width=8, mid_channels="paper")
    m_tv, m_paper = 8 * 16 * 27 // (8 * 9 + 3 * 16), 16 * 16 * 27 // (16 * 9 + 3 * 16)
    assert (m_tv, m_paper) == (28, 36)
    assert tv.layer2[0].conv1[0].mid_channels == tv.layer2[0].conv2[0].mid_channels == m_tv
    assert paper.layer2[0].conv1[0].mid_channels == m_tv
    assert paper.layer2[0].conv2[0].mid_channels == m_paper
    # where inplanes == planes both rules agree
    assert paper.layer3[1].conv2[0].mid_channels == tv.layer3[1].conv2[0].mid_channels
    with pytest.raises(ValueError, match="mid_channels"):
        models.r2plus1d_18(mid_channels="wide")


@pytest.mark.parametrize("name", NAMES)
def test_reduced_width(name):
    model = models.get_model(name, base_width=8, num_classes=7)
    assert model.layer4[1].conv2[1].num_features == 64   # 8 * 2**3
    assert model.fc.weight.shape == (7, 64)
    out = model.eval()(Tensor(np.zeros((1, 3, 4, 32, 32), np.float32)))
    assert out.shape == (1, 7)


def test_registered_and_bad_input():
    assert {"r3d_18", "mc3_18", "r2plus1d_18", "s3d"} <= set(models.list_models())
    with pytest.raises(ValueError, match="base_width"):
        models.r3d_18(base_width=0)
    with pytest.raises(ValueError, match=r"\(N, 3, D, H, W\)"):
        models.r3d_18(base_width=4)(Tensor(np.zeros((1, 1, 4, 32, 32), np.float32)))


def test_loading_torchvision_files_leaves_sys_modules_as_it_was():
    """tvload stubs torchvision's packages only while it imports a file: a stub left behind
    would make a later real ``import torchvision`` find an empty package."""
    import sys

    from conv3d.bench import tvload

    def torchvision_entries():
        return {k: id(v) for k, v in sys.modules.items() if k.split(".")[0] == "torchvision"}

    before = torchvision_entries()
    try:
        tvload.video_models()
    except ImportError as exc:
        pytest.skip(str(exc))
    assert torchvision_entries() == before
