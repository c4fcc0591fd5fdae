"""torch_module and the ONNX export of the decoder and normalization layers (issue 20):
ConvTranspose3d, Upsample, GroupNorm, InstanceNorm3d, LayerNorm, Conv3d's padding modes and
AvgPool3d's divisor_override. Each layer, with random weights (and running statistics), gives
this engine's eval output in torch (a peer implementation) and in onnxruntime (float32, 1e-4),
and every exported file passes onnx.checker; what ONNX cannot express is refused by name."""
import numpy as np
import pytest

from conv3d import nn
from conv3d.core.tensor import Tensor, no_grad
from conv3d.interop import torch_module

from _interop_models import randomize

torch = pytest.importorskip("torch", reason="torch is not installed: pip install conv3d[torch]")

#: name -> (layer builder, input shape); shapes small, every case well under a second
LAYERS = {
    "convT_k2s2": (lambda: nn.ConvTranspose3d(4, 3, 2, stride=2), (2, 4, 3, 4, 2)),
    "convT_pad_outpad": (lambda: nn.ConvTranspose3d(4, 6, 3, stride=2, padding=1,
                                                    output_padding=1), (2, 4, 3, 4, 5)),
    "convT_groups_dilation": (lambda: nn.ConvTranspose3d(4, 6, (2, 3, 2), stride=(1, 2, 3),
                                                         padding=(0, 1, 1), dilation=(2, 1, 2),
                                                         groups=2, bias=False), (1, 4, 3, 4, 3)),
    "up_nearest_x2": (lambda: nn.Upsample(scale_factor=2), (2, 3, 2, 3, 4)),
    "up_nearest_fractional": (lambda: nn.Upsample(scale_factor=(1.5, 2, 1.3)), (1, 2, 4, 3, 6)),
    "up_nearest_size": (lambda: nn.Upsample(size=(5, 2, 7)), (2, 2, 3, 4, 3)),
    "up_trilinear_x2": (lambda: nn.Upsample(scale_factor=2, mode="trilinear"), (2, 3, 2, 3, 4)),
    "up_trilinear_fractional": (lambda: nn.Upsample(scale_factor=(1.5, 1.3, 0.6),
                                                    mode="trilinear"), (1, 2, 4, 2, 5)),
    "up_trilinear_corners_scale": (lambda: nn.Upsample(scale_factor=2, mode="trilinear",
                                                       align_corners=True), (1, 2, 3, 2, 4)),
    "up_trilinear_corners_size": (lambda: nn.Upsample(size=(7, 3, 5), mode="trilinear",
                                                      align_corners=True), (1, 2, 3, 4, 2)),
    "up_trilinear_size_down": (lambda: nn.Upsample(size=(2, 1, 3), mode="trilinear"),
                               (2, 2, 5, 4, 7)),
    "up_trilinear_recompute": (lambda: nn.Upsample(scale_factor=1.7, mode="trilinear",
                                                   recompute_scale_factor=True), (1, 2, 3, 4, 5)),
    "groupnorm": (lambda: nn.GroupNorm(2, 6), (2, 6, 3, 4, 5)),
    "groupnorm_one_group_no_affine": (lambda: nn.GroupNorm(1, 4, affine=False), (2, 4, 3, 2, 5)),
    "groupnorm_per_channel_eps": (lambda: nn.GroupNorm(4, 4, eps=1e-2), (1, 4, 2, 3, 4)),
    "instancenorm": (lambda: nn.InstanceNorm3d(3), (2, 3, 3, 4, 5)),
    "instancenorm_affine": (lambda: nn.InstanceNorm3d(3, affine=True), (2, 3, 3, 4, 5)),
    "instancenorm_running": (lambda: nn.InstanceNorm3d(3, affine=True, track_running_stats=True),
                             (2, 3, 3, 4, 5)),
    "layernorm_last_two": (lambda: nn.LayerNorm((4, 5)), (2, 3, 3, 4, 5)),
    "layernorm_no_affine": (lambda: nn.LayerNorm(5, elementwise_affine=False), (2, 3, 3, 4, 5)),
    "layernorm_no_bias": (lambda: nn.LayerNorm(5, eps=1e-3, bias=False), (2, 3, 3, 4, 5)),
    "conv_reflect": (lambda: nn.Conv3d(2, 3, 3, padding=1, padding_mode="reflect"),
                     (2, 2, 4, 5, 6)),
    "conv_replicate": (lambda: nn.Conv3d(2, 3, 3, padding=(2, 1, 0), stride=(1, 2, 1),
                                         padding_mode="replicate"), (1, 2, 4, 5, 6)),
    "conv_circular": (lambda: nn.Conv3d(2, 3, 3, padding=(2, 1, 1), padding_mode="circular"),
                      (2, 2, 4, 5, 6)),
    "conv_reflect_same_even_kernel": (lambda: nn.Conv3d(2, 2, (2, 4, 3), padding="same",
                                                        padding_mode="reflect", bias=False),
                                      (1, 2, 4, 5, 6)),
    "conv_circular_same_even_kernel": (lambda: nn.Conv3d(2, 2, (4, 2, 3), padding="same",
                                                         padding_mode="circular"),
                                       (2, 2, 4, 5, 6)),
    "avgpool_divisor": (lambda: nn.AvgPool3d(2, stride=1, padding=1, divisor_override=3),
                        (2, 2, 3, 4, 5)),
}


def _engine(model, x):
    model.eval()
    with no_grad():
        return model(Tensor(x)).numpy()


def _close(got, want):
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def _onnx_session(model, shape):
    """An onnxruntime session of ``to_onnx(model, shape)``; skips without onnx/onnxruntime."""
    pytest.importorskip("onnx", reason="onnx is not installed: pip install 'conv3d[interop]'")
    ort = pytest.importorskip("onnxruntime",
                              reason="onnxruntime is not installed: pip install 'conv3d[interop]'")
    from conv3d.onnx import to_onnx

    proto = to_onnx(model, shape)  # passes onnx.checker.check_model(full_check=True)
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def _case(name):
    build, shape = LAYERS[name]
    layer = randomize(build(), seed=5)
    x = np.random.default_rng(6).standard_normal(shape).astype(np.float32)
    return layer, x


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_matches_in_torch(name):
    layer, x = _case(name)
    want = _engine(layer, x)
    tm = torch_module(layer)
    assert sorted(tm.state_dict()) == sorted(layer.state_dict())  # torch's names are conv3d's
    with torch.no_grad():
        _close(tm.eval()(torch.from_numpy(x)).numpy(), want)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_matches_in_onnxruntime(name):
    layer, x = _case(name)
    want = _engine(layer, x)
    session = _onnx_session(layer, x.shape)
    _close(session.run(None, {"input": x})[0], want)
    if x.shape[0] == 2:  # the batch axis stays symbolic: one sample runs in the same graph
        _close(session.run(None, {"input": x[:1]})[0], want[:1])


def test_a_decoder_stage_matches_in_torch_and_onnxruntime():
    """The layers of a U-Net decoder in a row: upsample, conv, group norm, relu, and again."""
    model = randomize(nn.Sequential(
        nn.ConvTranspose3d(6, 4, 2, stride=2), nn.GroupNorm(2, 4), nn.ReLU(),
        nn.Upsample(scale_factor=2, mode="trilinear"), nn.Conv3d(4, 2, 3, padding=1),
        nn.InstanceNorm3d(2, affine=True), nn.ReLU()), seed=7)
    x = np.random.default_rng(8).standard_normal((2, 6, 2, 3, 2)).astype(np.float32)
    want = _engine(model, x)
    with torch.no_grad():
        _close(torch_module(model).eval()(torch.from_numpy(x)).numpy(), want)
    session = _onnx_session(model, x.shape)
    _close(session.run(None, {"input": x})[0], want)


@pytest.mark.parametrize("layer, option", [
    (lambda: nn.AvgPool3d(2, divisor_override=3, ceil_mode=True), "ceil_mode=True"),
    (lambda: nn.MaxPool3d(2, return_indices=True), "return_indices=True"),
    (lambda: nn.MaxUnpool3d(2), "MaxUnpool3d"),
], ids=["divisor_ceil", "return_indices", "unpool"])
def test_what_onnx_cannot_express_is_refused_by_layer_and_option(layer, option):
    pytest.importorskip("onnx", reason="onnx is not installed: pip install 'conv3d[interop]'")
    from conv3d.onnx import to_onnx

    model = nn.Sequential(nn.ReLU(), layer())
    with pytest.raises(ValueError, match=rf"1.*{option}.*cannot express"):
        to_onnx(model, (1, 2, 5, 5, 5))


def test_max_unpool3d_reaches_torch_with_the_indices():
    """MaxUnpool3d takes two inputs; torch's, fed torch's pooling indices, puts the maxima
    where conv3d's does (the indices agree: both are flat per (n, c) volume)."""
    pool, unpool = nn.MaxPool3d(2, return_indices=True), nn.MaxUnpool3d(2)
    x = np.random.default_rng(9).standard_normal((2, 3, 4, 4, 6)).astype(np.float32)
    y, where = pool(Tensor(x))
    want = unpool(y, where).numpy()
    tpool, tunpool = torch_module(pool), torch_module(unpool)
    ty, twhere = tpool(torch.from_numpy(x))
    np.testing.assert_array_equal(twhere.numpy(), where)
    np.testing.assert_array_equal(tunpool(ty, twhere).numpy(), want)


class _PoolConvUnpool(nn.Module):
    """A SegNet-style block: max-pool keeping the indices, convolve, unpool to where the maxima
    came from."""

    def __init__(self):
        super().__init__()
        self.pool = nn.MaxPool3d(2, stride=(1, 2, 2), padding=(0, 1, 0), return_indices=True)
        self.conv = nn.Conv3d(3, 3, 1)
        self.unpool = nn.MaxUnpool3d(2, stride=(1, 2, 2), padding=(0, 1, 0))

    def forward(self, x):
        y, where = self.pool(x)
        return self.unpool(self.conv(y), where)


def _pool_conv_unpool_plan(ops, m, x):
    y, where = ops.call("pool", x)
    return ops.call("unpool", ops.call("conv", y), where)


def test_pooling_indices_and_unpooling_in_a_planned_block(monkeypatch):
    """In a block's plan the indices travel from MaxPool3d to MaxUnpool3d: torch's and
    onnxruntime's outputs (the maxima, convolved, put back at their places) equal conv3d's.
    ONNX counts the indices over the whole tensor, so a wrong conversion puts every sample
    but the first in the wrong place: the batch of 2 and the 3 channels catch it."""
    from conv3d.interop import structure

    monkeypatch.setitem(structure._load_plans(), _PoolConvUnpool, _pool_conv_unpool_plan)
    block = randomize(_PoolConvUnpool(), seed=10)
    x = np.random.default_rng(11).standard_normal((2, 3, 3, 4, 6)).astype(np.float32)
    want = _engine(block, x)
    assert np.count_nonzero(want) > 0
    with torch.no_grad():
        _close(torch_module(block).eval()(torch.from_numpy(x)).numpy(), want)
    session = _onnx_session(block, x.shape)
    _close(session.run(None, {"input": x})[0], want)
    _close(session.run(None, {"input": x[1:]})[0], want[1:])  # the batch axis stays symbolic
