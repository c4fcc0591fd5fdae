"""ONNX export: the article's model and a (2+1)D model go through conv3d.onnx.export, pass
onnx.checker, run in onnxruntime and match this engine's output (rtol 1e-4)."""
import numpy as np
import pytest

import conv3d
from conv3d import nn

from _interop_models import article_model, r2plus1d_model, randomize

import conv3d.onnx as conv3d_onnx  # importable without onnx: export raises a clear ImportError


def test_missing_onnx_gives_an_install_hint(monkeypatch, tmp_path):
    import sys
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'conv3d\[interop\]'"):
        conv3d_onnx.export(article_model(), (1, 3, 16, 16, 16), tmp_path / "m.onnx")


@pytest.fixture(autouse=True)
def _needs_onnx(request):
    if request.node.name.startswith("test_missing_onnx"):
        return
    global onnx, ort
    onnx = pytest.importorskip("onnx",
                               reason="onnx is not installed: pip install 'conv3d[interop]'")
    ort = pytest.importorskip("onnxruntime",
                              reason="onnxruntime is not installed: pip install 'conv3d[interop]'")


onnx = ort = None


def _run(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def _engine(model, x):
    model.eval()
    with conv3d.no_grad():
        return model(conv3d.Tensor(x)).numpy()


@pytest.mark.parametrize("make, shape", [(article_model, (2, 3, 16, 16, 16)),
                                         (r2plus1d_model, (2, 1, 8, 8, 8))],
                         ids=["article", "r2plus1d"])
def test_model_runs_in_onnxruntime_like_the_engine(make, shape, tmp_path):
    model = randomize(make(), seed=11)
    path = tmp_path / "model.onnx"
    proto = conv3d_onnx.export(model, shape, path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    ops = [n.op_type for n in proto.graph.node]
    x = np.random.default_rng(12).standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(_run(path, x), _engine(model, x), rtol=1e-4, atol=1e-5)
    # the batch axis is symbolic: another batch size runs through the same file
    x5 = np.random.default_rng(13).standard_normal((5,) + shape[1:]).astype(np.float32)
    np.testing.assert_allclose(_run(path, x5), _engine(model, x5), rtol=1e-4, atol=1e-5)
    assert "Conv" in ops and "BatchNormalization" in ops and "Dropout" in ops


def test_article_graph_uses_the_documented_operators(tmp_path):
    proto = conv3d_onnx.export(article_model(), (1, 3, 16, 16, 16), tmp_path / "a.onnx")
    ops = [n.op_type for n in proto.graph.node]
    assert ops == ["Conv", "Relu", "MaxPool", "BatchNormalization", "Dropout", "Conv", "Relu",
                   "MaxPool", "BatchNormalization", "Dropout", "Flatten", "Gemm", "Relu",
                   "Dropout", "Gemm", "Identity"]
    conv = {a.name: list(a.ints) for a in proto.graph.node[0].attribute}
    assert conv["kernel_shape"] == [3, 3, 3] and conv["pads"] == [0] * 6


def test_conv2plus1d_becomes_its_two_convs_with_bn_and_relu_between(tmp_path):
    block = nn.Conv2Plus1d(2, 4, (3, 3, 3), padding=1)
    proto = conv3d_onnx.export(block, (1, 2, 4, 5, 5), tmp_path / "b.onnx")
    nodes = proto.graph.node
    assert [n.op_type for n in nodes] == ["Conv", "BatchNormalization", "Relu", "Conv", "Identity"]
    kernels = [list(a.ints) for n in nodes if n.op_type == "Conv"
               for a in n.attribute if a.name == "kernel_shape"]
    assert kernels == [[1, 3, 3], [3, 1, 1]]


def test_every_layer_type_and_asymmetric_same_padding(tmp_path):
    model = randomize(nn.Sequential(
        nn.Conv3d(2, 4, 3, stride=2, padding="same"), nn.ReLU(),
        nn.MaxPool3d(2, stride=1, padding=1, dilation=(1, 2, 1), ceil_mode=True),
        nn.AvgPool3d(2, padding=1, count_include_pad=False), nn.Conv3d(4, 4, 1, groups=2),
        nn.Linear(3, 5), nn.GlobalAvgPool3d(), nn.Linear(4, 3), nn.Dropout(0.9)), seed=14)
    shape = (2, 2, 7, 6, 5)
    path = tmp_path / "all.onnx"
    proto = conv3d_onnx.export(model, shape, path)
    pads = [list(a.ints) for a in proto.graph.node[0].attribute if a.name == "pads"][0]
    assert pads == [1, 0, 1, 1, 1, 1]  # 'same' with stride 2 on sizes 7, 6, 5: lo+hi = 2, 1, 2
    assert "MatMul" in [n.op_type for n in proto.graph.node]  # Linear on a 5-D tensor
    x = np.random.default_rng(15).standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(_run(path, x), _engine(model, x), rtol=1e-4, atol=1e-5)


def test_export_restores_training_mode_and_rejects_unknown_layers(tmp_path):
    model = article_model()
    model.train()
    conv3d_onnx.export(model, (1, 3, 16, 16, 16), tmp_path / "m.onnx")
    assert model.training

    class Custom(nn.Module):
        def forward(self, x):
            return x * 2

    with pytest.raises(TypeError, match="no ONNX mapping for Custom"):
        conv3d_onnx.export(nn.Sequential(Custom()), (1, 1, 2, 2, 2), tmp_path / "c.onnx")
    with pytest.raises(ValueError, match="input_shape must hold the batch size"):
        conv3d_onnx.export(article_model(), (3,), tmp_path / "d.onnx")


def test_adaptive_pools_with_equal_bins_and_identity_export(tmp_path):
    model = nn.Sequential(nn.Conv3d(2, 3, 3, padding=1), nn.AdaptiveMaxPool3d((None, 2, 3)),
                          nn.Identity(), nn.AdaptiveAvgPool3d(1), nn.Flatten())
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 6, 9)).astype(np.float32)
    conv3d_onnx.export(model, x.shape, tmp_path / "m.onnx")
    np.testing.assert_allclose(_run(tmp_path / "m.onnx", x), _engine(model, x), rtol=1e-4,
                               atol=1e-5)
    with pytest.raises(ValueError, match="only an output size that divides"):
        conv3d_onnx.export(nn.Sequential(nn.AdaptiveAvgPool3d(2)), (1, 1, 3, 4, 4),
                           tmp_path / "bad.onnx")
