"""stack, split, chunk (the skip connections of encoder-decoders), GroupNorm, InstanceNorm3d and
LayerNorm: definitions by hand, finite differences, and torch as a peer (forward and gradients,
float64 and float32) over drawn shapes and options."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import conv3d
import conv3d.functional as F
from _torch_peer import assert_close, compare
from conv3d import Tensor, gradcheck

DTYPES = st.sampled_from([np.float64, np.float32])


# ---- stack, split, chunk ---------------------------------------------------------------------

def test_stack_split_chunk_by_hand_and_gradcheck():
    rng = np.random.default_rng(0)
    a, b = (Tensor(rng.standard_normal((2, 3)), requires_grad=True) for _ in range(2))
    s = F.stack([a, b], axis=1)
    np.testing.assert_array_equal(s.numpy()[:, 1], b.numpy())
    assert gradcheck(lambda a, b: F.stack([a, b], axis=-1) * 2.0, [a, b])
    x = Tensor(rng.standard_normal((5, 2)), requires_grad=True)
    pieces = F.split(x, [1, 4])
    np.testing.assert_array_equal(pieces[1].numpy(), x.numpy()[1:])
    assert gradcheck(lambda x: F.cat([p * float(i + 1) for i, p in enumerate(F.split(x, 2))],
                                     axis=0), [x])
    assert gradcheck(lambda x: F.chunk(x, 2, axis=1)[1], [x])


@settings(max_examples=25)
@given(st.integers(1, 7), st.integers(1, 4), st.integers(-3, 2), DTYPES, st.integers(0, 999))
def test_split_and_chunk_match_torch(n, size, axis, dtype, seed):
    torch = pytest.importorskip("torch")
    shape = [2, 3, 2]
    shape[axis % 3] = n
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal(8)

    def combine(pieces):  # every piece contributes, with its own weight
        return sum((p * float(weights[i])).sum() for i, p in enumerate(pieces))

    for ours_op, torch_op in ((F.split, torch.split), (F.chunk, torch.chunk)):
        ours = ours_op(np.zeros(shape), size, axis)
        theirs = torch_op(torch.zeros(shape), size, axis)
        assert [p.shape for p in ours] == [tuple(p.shape) for p in theirs]
        compare(torch, lambda x: combine(ours_op(x, size, axis)).reshape(1),
                lambda x: combine(torch_op(x, size, axis)).reshape(1), [rng.standard_normal(shape)],
                dtype, rng)


@settings(max_examples=15)
@given(st.integers(1, 4), st.integers(-4, 3), DTYPES, st.integers(0, 999))
def test_stack_matches_torch(count, axis, dtype, seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((2, 1, 3)) for _ in range(count)]
    compare(torch, lambda *t: F.stack(list(t), axis), lambda *t: torch.stack(list(t), axis),
            arrays, dtype, rng)


def test_shape_op_errors():
    with pytest.raises(ValueError, match="same shape"):
        F.stack([np.zeros(2), np.zeros(3)])
    with pytest.raises(ValueError, match="add up to the axis's size 5"):
        F.split(np.zeros(5), [2, 2])
    with pytest.raises(ValueError, match="chunks must be an int >= 1"):
        F.chunk(np.zeros(5), 0)


# ---- GroupNorm, InstanceNorm3d, LayerNorm ------------------------------------------------------

def test_group_norm_by_hand_and_gradcheck():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 2, 2, 3))
    g = x.reshape(2, 2, -1)
    expected = ((g - g.mean(2, keepdims=True)) / np.sqrt(g.var(2, keepdims=True) + 1e-5))
    np.testing.assert_allclose(F.group_norm(x, 2).numpy(), expected.reshape(x.shape), rtol=1e-12)
    xt = Tensor(x[:1, :, :, :2, :2], requires_grad=True)
    w, b = (Tensor(rng.standard_normal(4), requires_grad=True) for _ in range(2))
    assert gradcheck(lambda x, w, b: F.group_norm(x, 2, w, b), [xt, w, b])
    assert gradcheck(lambda x: F.instance_norm(x), [xt])
    assert gradcheck(lambda x, w: F.layer_norm(x, (2, 2), w), [xt, Tensor(
        rng.standard_normal((2, 2)), requires_grad=True)])


@settings(max_examples=20)
@given(st.sampled_from([1, 2, 4]), st.booleans(), DTYPES, st.integers(0, 999))
def test_group_norm_matches_torch(groups, affine, dtype, seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((2, 4, 2, 3, 2))]
    if affine:
        arrays += [rng.standard_normal(4), rng.standard_normal(4)]
    compare(torch, lambda x, *wb: F.group_norm(x, groups, *wb),
            lambda x, *wb: torch.nn.functional.group_norm(x, groups, *wb), arrays, dtype, rng)


@settings(max_examples=20)
@given(st.booleans(), DTYPES, st.integers(0, 999))
def test_layer_norm_matches_torch(affine, dtype, seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((2, 3, 2, 3, 4))]
    if affine:
        arrays += [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))]
    compare(torch, lambda x, *wb: F.layer_norm(x, (3, 4), *wb),
            lambda x, *wb: torch.nn.functional.layer_norm(x, (3, 4), *wb), arrays, dtype, rng)


@pytest.mark.parametrize("affine,track", [(False, False), (True, False), (False, True),
                                          (True, True)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_instance_norm_layer_matches_torch_in_both_modes(affine, track, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    theirs = torch.nn.InstanceNorm3d(3, affine=affine, track_running_stats=track,
                                     momentum=0.3).to(torch.float64 if dtype == np.float64
                                                      else torch.float32)
    ours = conv3d.nn.InstanceNorm3d(3, affine=affine, track_running_stats=track, momentum=0.3,
                                    dtype=dtype)
    if affine:  # not the initial ones and zeros, so the affine is really tested
        w, b = rng.standard_normal(3).astype(dtype), rng.standard_normal(3).astype(dtype)
        theirs.weight.data, theirs.bias.data = torch.from_numpy(w), torch.from_numpy(b)
        ours.weight.data, ours.bias.data = w.copy(), b.copy()
    for training in (True, True, False):  # two training steps move the running stats
        theirs.train(training)
        ours.train(training)
        x = rng.standard_normal((2, 3, 2, 3, 2)) * 3 + 1
        compare(torch, ours, theirs, [x], dtype, rng)
        if affine:
            assert_close(ours.weight.grad, theirs.weight.grad, dtype, "weight gradient")
        if track:
            assert_close(ours.running_mean, theirs.running_mean, dtype, "running_mean")
            assert_close(ours.running_var, theirs.running_var, dtype, "running_var")
            assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked)
        ours.zero_grad()
        theirs.zero_grad()


def test_norm_layers_state_and_errors():
    assert [k for k in conv3d.nn.GroupNorm(2, 4).state_dict()] == ["weight", "bias"]
    keys = set(conv3d.nn.InstanceNorm3d(3, affine=True, track_running_stats=True).state_dict())
    assert keys == {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
    assert conv3d.nn.LayerNorm((2, 3), bias=False).bias is None
    with pytest.raises(ValueError, match="num_groups=3 must divide num_channels=4"):
        conv3d.nn.GroupNorm(3, 4)
    with pytest.raises(ValueError, match="must equal the last axes"):
        F.layer_norm(np.zeros((2, 3)), (2,))
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        F.group_norm(np.zeros((1, 4, 2, 2, 2)), 2, np.ones(3))
    with pytest.raises(ValueError, match=r"expects \(N, 3, D, H, W\)"):
        conv3d.nn.InstanceNorm3d(3)(Tensor(np.zeros((1, 2, 2, 2, 2))))


def test_instance_norm_momentum_none_keeps_the_running_stats_as_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).standard_normal((2, 2, 2, 3, 2)) * 2 + 1
    ours = conv3d.nn.InstanceNorm3d(2, momentum=None, track_running_stats=True, dtype=np.float64)
    theirs = torch.nn.InstanceNorm3d(2, momentum=None, track_running_stats=True).double()
    ours(Tensor(x))
    theirs(torch.from_numpy(x))
    assert_close(ours.running_mean, theirs.running_mean, np.float64, "running_mean")
    np.testing.assert_array_equal(ours.running_var, [1.0, 1.0])
