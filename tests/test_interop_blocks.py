"""torch_module and the ONNX export of the residual blocks and video ResNets (issue 20): each
matches this engine's eval output (float32, rtol 1e-4) in torch and in onnxruntime; a model whose
forward has no plan is refused with its name, never exported as a different network."""
import numpy as np
import pytest

from conv3d import models, nn
from conv3d.core.tensor import Tensor, no_grad
from conv3d.interop import torch_module
from conv3d.interop.onnx_export import to_onnx
from conv3d.models.video_resnet import (BasicBlock, Bottleneck, Conv2Plus1D, Conv3DNoTemporal,
                                        Conv3DSimple)

from conv3d.models.i3d import BasicBlock3d
from conv3d.models.p3d import P3DBottleneck
from conv3d.models.s3d import SepInceptionBlock3D

from _interop_models import randomize

torch = pytest.importorskip("torch", reason="torch is not installed: pip install conv3d[torch]")


def _engine(model, x):
    model.eval()
    with no_grad():
        return model(Tensor(x)).numpy()


def _torch(model, x):
    with torch.no_grad():
        return torch_module(model).eval()(torch.from_numpy(x)).numpy()


def _onnxruntime(model, x):
    pytest.importorskip("onnx", reason="onnx is not installed: pip install 'conv3d[interop]'")
    ort = pytest.importorskip("onnxruntime",
                              reason="onnxruntime is not installed: pip install 'conv3d[interop]'")
    proto = to_onnx(model, x.shape)  # passes onnx.checker.check_model(full_check=True)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def _close(got, want):
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def _downsample(cin, cout, stride):
    return nn.Sequential(nn.Conv3d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm3d(cout))


BLOCKS = {
    "basic_identity": lambda: BasicBlock(4, 4, Conv3DSimple),
    "basic_downsample": lambda: BasicBlock(4, 6, Conv3DNoTemporal, 2, _downsample(4, 6, (1, 2, 2))),
    "basic_2plus1d": lambda: BasicBlock(4, 4, Conv2Plus1D),
    "bottleneck": lambda: Bottleneck(4, 2, Conv3DSimple, 2, _downsample(4, 8, 2)),
    "inception_concat": lambda: SepInceptionBlock3D(4, 2, 2, 3, 2, 3, 2),
    "i3d_block": lambda: BasicBlock3d(4, 6, stride=2),
    "p3d_A": lambda: P3DBottleneck(4, 2, "A", stride=2),
    "p3d_B": lambda: P3DBottleneck(4, 1, "B"),
    "p3d_C": lambda: P3DBottleneck(4, 2, "C"),
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_residual_block_matches_in_torch_and_onnxruntime(name):
    block = randomize(BLOCKS[name](), seed=1)
    x = np.random.default_rng(2).standard_normal((2, 4, 4, 6, 6)).astype(np.float32)
    want = _engine(block, x)
    _close(_torch(block, x), want)
    _close(_onnxruntime(block, x), want)


def test_torch_module_keeps_the_state_dict_names_and_the_missing_shortcut():
    block = randomize(BasicBlock(4, 4, Conv3DSimple))
    tm = torch_module(block)
    assert sorted(tm.state_dict()) == sorted(block.state_dict())  # the same keys as conv3d's
    assert getattr(tm, "downsample", None) is None


#: every model of conv3d.models at a small input: (builder kwargs, input shape)
ZOO = {
    "r3d_18": ({}, (1, 3, 4, 16, 16)),
    "mc3_18": ({}, (1, 3, 4, 16, 16)),
    "r2plus1d_18": ({}, (1, 3, 4, 16, 16)),
    "c3d": (dict(input_size=(16, 32, 32)), (1, 3, 16, 32, 32)),
    "i3d_resnet18": ({}, (1, 3, 4, 32, 32)),
    "p3d": (dict(layers=(1, 1, 1, 1), width=8, time_pools=1), (1, 3, 4, 32, 32)),
    "p3d199": (dict(width=4, time_pools=1), (1, 3, 4, 32, 32)),
    "s3d": (dict(width_mult=0.25), (1, 3, 14, 224, 224)),  # S3D's smallest clip
    "unet3d": (dict(base_channels=4, depth=2), (1, 1, 8, 8, 8)),
}
FAST = {"p3d", "unet3d"}  # well under a second: the whole-model walk stays in the default run


def test_every_model_of_the_zoo_has_a_case():
    assert sorted(ZOO) == sorted(models.list_models())


@pytest.mark.parametrize("name", [pytest.param(n, marks=[] if n in FAST else pytest.mark.slow)
                                  for n in sorted(ZOO)])
def test_model_matches_in_torch_and_onnxruntime(name):
    kwargs, shape = ZOO[name]
    model = randomize(models.get_model(name, num_classes=5, **kwargs), seed=3)
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    want = _engine(model, x)
    _close(_torch(model, x), want)
    _close(_onnxruntime(model, x), want)


class _Twice(nn.Module):
    """A block whose forward is not a chain of its children: it has no plan."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(2, 2, 1)

    def forward(self, x):
        return self.conv(x) + x


def test_a_block_without_a_plan_is_refused_by_name():
    model = nn.Sequential(nn.ReLU(), _Twice())
    with pytest.raises(TypeError, match="_Twice"):
        torch_module(model)
    pytest.importorskip("onnx", reason="onnx is not installed: pip install 'conv3d[interop]'")
    with pytest.raises(TypeError, match=r"_Twice \(at 1\)"):
        to_onnx(model, (1, 2, 3, 3, 3))
