"""PyTorch layout: a conv3d model's weights load into the equivalent torch.nn model (built here by
hand, independently of conv3d.interop) and give the same outputs; and back."""
import numpy as np
import pytest

import conv3d
from conv3d.interop import load_torch_state_dict, name_map, to_torch_state_dict, torch_module

from _interop_models import article_model, r2plus1d_model, randomize

torch = pytest.importorskip("torch", reason="PyTorch is not installed: pip install conv3d[torch]")
tnn = torch.nn


def torch_article_model(in_channels=3):
    """The article's Keras model written in torch.nn (Keras BatchNormalization: eps 1e-3)."""
    return tnn.Sequential(
        tnn.Conv3d(in_channels, 32, 3), tnn.ReLU(), tnn.MaxPool3d(2),
        tnn.BatchNorm3d(32, eps=1e-3, momentum=0.01), tnn.Dropout(0.5),
        tnn.Conv3d(32, 64, 3), tnn.ReLU(), tnn.MaxPool3d(2),
        tnn.BatchNorm3d(64, eps=1e-3, momentum=0.01), tnn.Dropout(0.5),
        tnn.Flatten(), tnn.Linear(512, 256), tnn.ReLU(), tnn.Dropout(0.5), tnn.Linear(256, 10))


def torch_conv2plus1d(cin, cout, mid, stride=1, padding=1):
    """torchvision's Conv2Plus1D layout, written out."""
    return tnn.Sequential(
        tnn.Conv3d(cin, mid, (1, 3, 3), stride=(1, 1, 1), padding=(0, padding, padding),
                   bias=False),
        tnn.BatchNorm3d(mid), tnn.ReLU(),
        tnn.Conv3d(mid, cout, (3, 1, 1), stride=(stride, 1, 1), padding=(padding, 0, 0),
                   bias=False))


def torch_r2plus1d_model():
    mid1 = (3 * 9 * 1 * 8) // (9 * 1 + 3 * 8)     # the R(2+1)D rule, written out: 6
    mid2 = (3 * 9 * 8 * 16) // (9 * 8 + 3 * 16)   # 28
    return tnn.Sequential(
        torch_conv2plus1d(1, 8, mid1), tnn.BatchNorm3d(8), tnn.ReLU(), tnn.MaxPool3d((1, 2, 2)),
        torch_conv2plus1d(8, 16, mid2, stride=2), tnn.BatchNorm3d(16), tnn.ReLU(),
        tnn.AvgPool3d(2), tnn.Flatten(), tnn.Dropout(0.3), tnn.Linear(128, 4))


CASES = {
    "article": (article_model, torch_article_model, (4, 3, 16, 16, 16)),
    "r2plus1d": (r2plus1d_model, torch_r2plus1d_model, (3, 1, 8, 8, 8)),
}


def _eval_both(ours, theirs, x):
    ours.eval()
    theirs.eval()
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    return ours(conv3d.Tensor(x)).numpy(), expected


@pytest.mark.parametrize("case", CASES)
def test_conv3d_weights_load_into_the_torch_model_and_agree(case):
    make_ours, make_theirs, shape = CASES[case]
    ours, theirs = randomize(make_ours(), seed=1), make_theirs()
    state = to_torch_state_dict(ours)
    assert all(isinstance(v, np.ndarray) for v in state.values())
    # names and shapes exactly as torch.nn: a strict load succeeds
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    got, expected = _eval_both(ours, theirs, x)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_torch_weights_load_back_into_conv3d_and_agree(case):
    make_ours, make_theirs, shape = CASES[case]
    torch.manual_seed(3)
    theirs = make_theirs()
    with torch.no_grad():  # non-trivial running statistics too
        for m in theirs.modules():
            if isinstance(m, tnn.BatchNorm3d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    ours = make_ours()
    missing, unexpected = load_torch_state_dict(ours, theirs.state_dict())  # torch tensors in
    assert missing == [] and unexpected == []
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    got, expected = _eval_both(ours, theirs, x)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_round_trip_conv3d_to_torch_and_back_is_exact():
    ours = randomize(r2plus1d_model(), seed=5)
    back = r2plus1d_model()
    load_torch_state_dict(back, to_torch_state_dict(ours))
    for (k, a), (k2, b) in zip(ours.state_dict().items(), back.state_dict().items()):
        assert k == k2
        if not k.endswith("rng_state"):
            np.testing.assert_array_equal(a, b)


def test_the_mapping_documented_for_batchnorm_dropout_and_conv2plus1d():
    model = r2plus1d_model()
    state = to_torch_state_dict(model)
    tracked = state["1.num_batches_tracked"]
    assert tracked.dtype == np.int64 and tracked.ndim == 0
    assert not any("rng_state" in k for k in state)
    mapping = name_map(model)
    assert mapping["0.spatial.weight"] == "0.0.weight"
    assert mapping["0.bn.running_var"] == "0.1.running_var"
    assert mapping["0.temporal.weight"] == "0.3.weight"
    assert mapping["9.rng_state"] is None
    assert set(state) == set(torch_r2plus1d_model().state_dict())


def test_torch_module_builds_the_same_network():
    ours = randomize(article_model(in_channels=1), seed=6)
    theirs = torch_module(ours)
    assert [type(m).__name__ for m in theirs] == [type(m).__name__ for m in
                                                   torch_article_model(1)]
    x = np.random.default_rng(7).standard_normal((2, 1, 16, 16, 16)).astype(np.float32)
    got, expected = _eval_both(ours, theirs, x)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_wrong_architecture_gives_a_clear_error():
    with pytest.raises(KeyError, match="unexpected keys"):
        load_torch_state_dict(r2plus1d_model(), torch_article_model().state_dict())
    with pytest.raises(ValueError, match="shapes differ"):
        load_torch_state_dict(article_model(in_channels=1), torch_article_model(3).state_dict())
    with pytest.raises(TypeError, match="mapping"):
        load_torch_state_dict(article_model(), [1, 2])


def test_torch_module_refuses_what_pytorch_cannot_express():
    from conv3d import nn
    with pytest.raises(ValueError, match="'same' only with stride 1"):
        torch_module(nn.Sequential(nn.Conv3d(1, 2, 3, stride=2, padding="same")))

    class Custom(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(TypeError, match="no torch.nn equivalent is known for Custom"):
        torch_module(nn.Sequential(Custom()))


def test_same_padding_with_stride_one_maps_to_torch_same():
    from conv3d import nn
    ours = randomize(nn.Sequential(nn.Conv3d(2, 3, 3, padding="same"), nn.ReLU()), seed=8)
    theirs = torch_module(ours)
    x = np.random.default_rng(9).standard_normal((1, 2, 5, 6, 7)).astype(np.float32)
    got, expected = _eval_both(ours, theirs, x)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
