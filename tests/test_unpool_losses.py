"""max_pool3d(return_indices=True) with max_unpool3d / nn.MaxUnpool3d, avg_pool3d's
divisor_override, and the segmentation losses (per-voxel cross-entropy, binary cross-entropy on
logits, soft Dice): hand-computed values, finite differences and torch as a peer."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import conv3d
import conv3d.functional as F
from _torch_peer import compare
from conv3d import Tensor, gradcheck

DTYPES = st.sampled_from([np.float64, np.float32])


# ---- max_pool3d indices, max_unpool3d, divisor_override ---------------------------------------

@settings(max_examples=20)
@given(st.sampled_from([(2, 2, 0), (3, 2, 1), (2, 1, 0), ((1, 2, 3), (1, 2, 2), (0, 1, 1))]),
       st.booleans(), DTYPES, st.integers(0, 999))
def test_indices_and_unpool_match_torch(kst, use_output_size, dtype, seed):
    torch = pytest.importorskip("torch")
    k, s, p = kst
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2, 5, 4, 6)).astype(dtype)
    y, idx = F.max_pool3d(x, k, s, p, return_indices=True)
    ty, tidx = torch.nn.functional.max_pool3d(torch.from_numpy(x), k, s, p, return_indices=True)
    np.testing.assert_array_equal(idx, tidx.numpy())
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    triple = (lambda v: v if isinstance(v, tuple) else (v,) * 3)
    default = tuple((o - 1) * ss - 2 * pp + kk for o, ss, pp, kk in
                    zip(y.shape[2:], triple(s), triple(p), triple(k)))
    # the flat indices address the pooled input's volume: without output_size the default
    # size must be that volume's, or the indices would land elsewhere (in torch too)
    size = x.shape[2:] if use_output_size or default != x.shape[2:] else None
    # overlapping windows may pick one voxel twice: both copies hold its value, so the
    # scatter is still well defined
    compare(torch, lambda t: F.max_unpool3d(t, idx, k, s, p, size),
            lambda t: torch.nn.functional.max_unpool3d(t, tidx, k, s, p, size),
            [y.numpy()], dtype, rng)


def test_unpool_by_hand_gradcheck_and_layers():
    x = np.array([4.0, 1, 7, 3, 2, 9]).reshape(1, 1, 1, 1, 6)
    pool = conv3d.nn.MaxPool3d((1, 1, 2), return_indices=True)
    y, idx = pool(Tensor(x))
    np.testing.assert_array_equal(idx.ravel(), [0, 2, 5])
    back = conv3d.nn.MaxUnpool3d((1, 1, 2))(y, idx)
    np.testing.assert_array_equal(back.numpy().ravel(), [4, 0, 7, 0, 0, 9])
    t = Tensor(np.random.default_rng(0).standard_normal((1, 1, 1, 1, 3)), requires_grad=True)
    assert gradcheck(lambda t: F.max_unpool3d(t, idx, (1, 1, 2)), [t])
    with pytest.raises(ValueError, match="indices must have the input's shape"):
        F.max_unpool3d(y, idx[..., :2], (1, 1, 2))
    with pytest.raises(ValueError, match="must lie strictly between"):
        F.max_unpool3d(y, idx, (1, 1, 2), output_size=(1, 1, 9))
    with pytest.raises(TypeError, match="integer array"):
        F.max_unpool3d(y, idx.astype(float), (1, 1, 2))


@settings(max_examples=20)
@given(st.integers(1, 9), st.booleans(), st.integers(0, 1), DTYPES, st.integers(0, 999))
def test_divisor_override_matches_torch(divisor, ceil_mode, padding, dtype, seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    compare(torch, lambda t: F.avg_pool3d(t, 2, 2, padding, ceil_mode, divisor_override=divisor),
            lambda t: torch.nn.functional.avg_pool3d(t, 2, 2, padding, ceil_mode,
                                                     divisor_override=divisor),
            [rng.standard_normal((1, 2, 5, 4, 3))], dtype, rng)


def test_divisor_override_by_hand_and_layer():
    x = Tensor(np.ones((1, 1, 2, 2, 2)), requires_grad=True)
    assert F.avg_pool3d(x, 2, divisor_override=4).item() == 2.0   # sum 8 over 4
    layer = conv3d.nn.AvgPool3d(2, divisor_override=2)
    assert layer(x).item() == 4.0
    assert gradcheck(lambda t: F.avg_pool3d(t, 2, 1, 1, divisor_override=3),
                     [Tensor(np.random.default_rng(0).standard_normal((1, 1, 2, 3, 2)),
                             requires_grad=True)])
    with pytest.raises(ValueError, match="divisor_override must be an int >= 1"):
        F.avg_pool3d(x, 2, divisor_override=0)


# ---- losses -----------------------------------------------------------------------------------

@settings(max_examples=20)
@given(st.sampled_from(["mean", "sum", "none"]), st.booleans(), st.floats(0, 0.3), DTYPES,
       st.integers(0, 999))
def test_cross_entropy_over_volumes_matches_torch(reduction, weighted, smoothing, dtype, seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=(2, 2, 3, 2))
    labels[0, 0, 0, 0] = -100  # one ignored voxel
    weight = rng.uniform(0.5, 2, 3).astype(dtype) if weighted else None
    compare(torch,
            lambda z: F.cross_entropy(z, labels, weight, reduction=reduction,
                                      label_smoothing=smoothing),
            lambda z: torch.nn.functional.cross_entropy(
                z, torch.from_numpy(labels), None if weight is None else torch.from_numpy(weight),
                reduction=reduction, label_smoothing=smoothing),
            [rng.standard_normal((2, 3, 2, 3, 2))], dtype, rng)


def test_cross_entropy_volume_gradcheck_and_shape_error():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, size=(1, 2, 2, 1))
    z = Tensor(rng.standard_normal((1, 2, 2, 2, 1)), requires_grad=True)
    assert gradcheck(lambda z: F.cross_entropy(z, labels), [z])
    with pytest.raises(ValueError, match=r"labels must have shape \(1, 2, 2, 1\)"):
        F.cross_entropy(z, labels[:, :1])


@settings(max_examples=20)
@given(st.sampled_from(["mean", "sum", "none"]), st.booleans(), st.booleans(), DTYPES,
       st.integers(0, 999))
def test_bce_with_logits_matches_torch(reduction, weighted, pos_weighted, dtype, seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, 2, 2)) * 4
    t = rng.uniform(0, 1, x.shape)
    w = rng.uniform(0.5, 2, (2, 2)).astype(dtype) if weighted else None
    pw = rng.uniform(0.5, 3, (2,)).astype(dtype) if pos_weighted else None
    torch_of = (lambda a: None if a is None else torch.from_numpy(a))
    compare(torch, lambda x, t: F.binary_cross_entropy_with_logits(x, t, w, reduction, pw),
            lambda x, t: torch.nn.functional.binary_cross_entropy_with_logits(
                x, t, torch_of(w), reduction=reduction, pos_weight=torch_of(pw)),
            [x, t], dtype, rng)


def test_bce_large_logits_gradcheck_and_layer():
    x = Tensor(np.array([-800.0, -1.0, 0.0, 2.0, 800.0]), requires_grad=True)
    t = np.array([1.0, 0.0, 1.0, 0.5, 0.0])
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none").numpy()
    np.testing.assert_allclose(loss, [800.0, np.log1p(np.exp(-1.0)), np.log(2),
                                      np.log1p(np.exp(-2.0)) + 1.0, 800.0])
    small = Tensor(np.array([-3.0, 0.5, 2.0]), requires_grad=True)
    target = Tensor(np.array([0.2, 1.0, 0.0]), requires_grad=True)
    assert gradcheck(lambda x, t: F.binary_cross_entropy_with_logits(
        x, t, pos_weight=np.array([2.0, 1.0, 0.5])), [small, target])
    layer = conv3d.nn.BCEWithLogitsLoss(pos_weight=np.array([3.0]))
    assert set(layer.state_dict()) == {"pos_weight"}
    assert layer(Tensor(np.zeros(2)), np.ones(2)).item() == pytest.approx(3 * np.log(2))


def torch_dice(torch, p, t, smooth):
    axes = tuple(range(2, p.ndim))
    return 1 - (2 * (p * t).sum(axes) + smooth) / (p.sum(axes) + t.sum(axes) + smooth)


@settings(max_examples=20)
@given(st.floats(0, 2), st.sampled_from(["mean", "sum", "none"]), st.booleans(), DTYPES,
       st.integers(0, 999))
def test_dice_matches_the_formula_in_torch(smooth, reduction, int_labels, dtype, seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((2, 3, 2, 3, 2))
    labels = rng.integers(0, 3, size=(2, 2, 3, 2))
    onehot = np.moveaxis(np.eye(3)[labels], -1, 1)
    target = labels if int_labels else onehot.astype(dtype)
    reduce = {"mean": lambda v: v.mean(), "sum": lambda v: v.sum(), "none": lambda v: v}
    compare(torch, lambda z: F.dice_loss(F.softmax(z, dim=1), target, smooth, reduction),
            lambda z: reduce[reduction](torch_dice(torch, torch.softmax(z, 1),
                                                   torch.from_numpy(onehot.astype(dtype)),
                                                   smooth)),
            [logits], dtype, rng)


def test_dice_by_hand_gradcheck_and_layer():
    p = Tensor(np.array([0.25, 0.75]).reshape(1, 1, 1, 1, 2), requires_grad=True)
    t = np.array([0.0, 1.0]).reshape(1, 1, 1, 1, 2)
    # 1 - (2*0.75 + 1) / (1 + 1 + 1) = 1 - 2.5/3
    assert F.dice_loss(p, t).item() == pytest.approx(1 - 2.5 / 3)
    z = Tensor(np.random.default_rng(2).standard_normal((1, 2, 2, 1, 2)), requires_grad=True)
    labels = np.array([[[[0, 1]], [[1, 1]]]])
    assert gradcheck(lambda z: conv3d.nn.DiceLoss(smooth=0.5, softmax=True)(z, labels), [z])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\]"):
        F.dice_loss(F.softmax(z, dim=1), labels + 1)
    with pytest.raises(ValueError, match="smooth must be a number >= 0"):
        F.dice_loss(p, t, smooth=-1)
