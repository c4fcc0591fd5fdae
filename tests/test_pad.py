"""F.pad: constant values and gradients against torch.nn.functional.pad over drawn amounts
(negative = crop) in float32 and float64, the reflect, replicate and circular modes (by hand,
finite differences, torch), Conv3d(padding_mode=...) against torch, errors, and I3D's "same"
max pool (pad then max_pool3d) against the same composition in torch. Torch tests skip without
torch."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import conv3d
import conv3d.functional as F
from _torch_peer import compare
from conv3d.core.gradcheck import gradcheck


def test_by_hand_and_gradcheck():
    x = conv3d.Tensor(np.arange(6.0).reshape(1, 1, 1, 2, 3), requires_grad=True)
    y = F.pad(x, (1, -1, 0, 1), value=9.0)  # W: one before, crop one after; H: one after
    np.testing.assert_array_equal(y.numpy()[0, 0, 0], [[9, 0, 1], [9, 3, 4], [9, 9, 9]])
    gradcheck(lambda t: F.pad(t, (2, -1, 1, 0, 0, 1)), [x])


def test_errors():
    x = conv3d.Tensor(np.zeros((1, 1, 2, 2, 2)))
    with pytest.raises(ValueError, match="even number of ints"):
        F.pad(x, (1, 2, 3))
    with pytest.raises(ValueError, match="mode must be one of"):
        F.pad(x, (1, 1), mode="mirror")
    with pytest.raises(ValueError, match="can add at most 1 voxels on axis 4"):
        F.pad(x, (2, 0), mode="reflect")
    with pytest.raises(ValueError, match="needs amounts >= 0"):
        F.pad(x, (-1, 0), mode="circular")
    with pytest.raises(ValueError, match="removes more than the axis holds"):
        F.pad(x, (-2, -1))
    with pytest.raises(ValueError, match="pad 6 axes but the input has 5"):
        F.pad(x, (0,) * 12)


@settings(max_examples=30)
@given(st.lists(st.integers(-4, 3), min_size=2, max_size=6).filter(lambda p: len(p) % 2 == 0),
       st.sampled_from([np.float32, np.float64]), st.integers(0, 2**31 - 1))
def test_matches_torch(amounts, dtype, seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2, 3, 4, 5)).astype(dtype)
    a, t = conv3d.Tensor(x.copy(), requires_grad=True), torch.tensor(x, requires_grad=True)
    try:
        ty = torch.nn.functional.pad(t, tuple(amounts), value=-0.5)
    except RuntimeError:  # a crop larger than the axis: torch refuses, and so must we
        with pytest.raises(ValueError, match="removes more than the axis holds"):
            F.pad(a, tuple(amounts))
        return
    y = F.pad(a, tuple(amounts), value=-0.5)
    assert y.shape == tuple(ty.shape) and y.dtype == dtype
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    gy = rng.standard_normal(y.shape).astype(dtype)
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    np.testing.assert_array_equal(a.grad, t.grad.numpy())


def test_i3d_same_max_pool_matches_torch():
    """pytorch-i3d's MaxPool3dSamePadding: pad so the output is ceil(i / s), the larger half
    after the data, then max_pool3d."""
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(4).standard_normal((1, 2, 5, 7, 8))
    amounts = (0, 1, 1, 1, 0, 0)  # kernel (1, 3, 3), stride (1, 2, 2) on (5, 7, 8) -> (5, 4, 4)
    a, t = conv3d.Tensor(x.copy(), requires_grad=True), torch.tensor(x, requires_grad=True)
    y = F.max_pool3d(F.pad(a, amounts), (1, 3, 3), (1, 2, 2))
    ty = torch.nn.functional.max_pool3d(torch.nn.functional.pad(t, amounts), (1, 3, 3), (1, 2, 2))
    assert y.shape == (1, 2, 5, 4, 4)
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_array_equal(a.grad, t.grad.numpy())


def test_modes_by_hand_and_gradcheck():
    x = conv3d.Tensor(np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 1, 1, 4))
    expected = {"reflect": [3, 2, 1, 2, 3, 4, 3, 2], "replicate": [1, 1, 1, 2, 3, 4, 4, 4],
                "circular": [3, 4, 1, 2, 3, 4, 1, 2]}
    for mode, values in expected.items():
        np.testing.assert_array_equal(F.pad(x, (2, 2), mode=mode).numpy().ravel(), values)
    rng = np.random.default_rng(0)
    t = conv3d.Tensor(rng.standard_normal((1, 2, 2, 3, 3)), requires_grad=True)
    for mode in expected:
        assert gradcheck(lambda a: F.pad(a, (2, 1, 0, 2, 1, 1), mode=mode), [t])


@settings(max_examples=30)
@given(st.sampled_from(["reflect", "replicate", "circular"]),
       st.lists(st.integers(0, 3), min_size=6, max_size=6),
       st.sampled_from([np.float32, np.float64]), st.integers(0, 2**31 - 1))
def test_modes_match_torch(mode, amounts, dtype, seed):
    torch = pytest.importorskip("torch")
    shape = (2, 2, 4, 4, 5)  # reflect needs every amount < the axis's size
    rng = np.random.default_rng(seed)
    compare(torch, lambda a: F.pad(a, tuple(amounts), mode=mode),
            lambda a: torch.nn.functional.pad(a, tuple(amounts), mode=mode),
            [rng.standard_normal(shape)], dtype, rng)


@settings(max_examples=20)
@given(st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
       st.sampled_from([1, 2, (1, 0, 2), "same"]), st.integers(0, 2**31 - 1))
def test_conv3d_padding_mode_matches_torch(mode, padding, seed):
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed % 1000)
    theirs = torch.nn.Conv3d(2, 3, 3, padding=padding, padding_mode=mode).double()
    ours = conv3d.nn.Conv3d(2, 3, 3, padding=padding, padding_mode=mode, dtype=np.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(seed).standard_normal((1, 2, 4, 5, 3))
    a, t = conv3d.Tensor(x.copy(), requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = ours(a), theirs(t)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-6, atol=1e-9)
    gy = np.random.default_rng(seed + 1).standard_normal(y.shape)
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    np.testing.assert_allclose(a.grad, t.grad.numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-6,
                               atol=1e-9)


def test_conv3d_padding_mode_error_and_repr():
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        conv3d.nn.Conv3d(1, 1, 3, padding_mode="mirror")
    assert "padding_mode='circular'" in repr(conv3d.nn.Conv3d(1, 1, 3, padding=1,
                                                              padding_mode="circular"))
