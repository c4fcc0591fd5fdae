"""interpolate / nn.Upsample: hand-computed values, finite differences, and torch as a peer over
drawn sizes, scale factors (including ones whose float rounding matters for nearest) and both
align_corners settings, in float64 and float32."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import conv3d
import conv3d.functional as F
from _torch_peer import assert_close, compare
from conv3d import Tensor, gradcheck
from conv3d.ops.resample import nearest_indices


def test_trilinear_by_hand():
    x = Tensor(np.array([0.0, 4.0, 8.0]).reshape(1, 1, 1, 1, 3))
    # align_corners=False, scale 3/5 = 0.6: src = max((o + 0.5)*0.6 - 0.5, 0)
    #   = 0, 0.4, 1.0, 1.6, 2.2 -> values 4*src, the last clamped to x[2]: 0, 1.6, 4, 6.4, 8
    y = F.interpolate(x, size=(1, 1, 5), mode="trilinear").numpy().ravel()
    np.testing.assert_allclose(y, [0.0, 1.6, 4.0, 6.4, 8.0], atol=1e-12)
    # align_corners=True: src = o * 2/4 -> 0, 0.5, 1, 1.5, 2 -> 0, 2, 4, 6, 8
    y = F.interpolate(x, size=(1, 1, 5), mode="trilinear", align_corners=True).numpy().ravel()
    np.testing.assert_allclose(y, [0.0, 2.0, 4.0, 6.0, 8.0], atol=1e-12)


def test_nearest_by_hand():
    x = Tensor(np.arange(3.0).reshape(1, 1, 1, 1, 3))
    # size 7: scale 3/7, floor(o * 3/7) = 0 0 0 1 1 2 2
    y = F.interpolate(x, size=(1, 1, 7)).numpy().ravel()
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 1, 2, 2])
    # downsampling 3 -> 2: floor(0 * 1.5), floor(1.5) = 0, 1
    np.testing.assert_array_equal(F.interpolate(x, size=(1, 1, 2)).numpy().ravel(), [0, 1])


def test_gradcheck_both_modes():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((1, 2, 2, 3, 2)), requires_grad=True)
    assert gradcheck(lambda t: F.interpolate(t, scale_factor=(2, 1.5, 2), mode="trilinear"), [x])
    assert gradcheck(lambda t: F.interpolate(t, size=(3, 2, 5), mode="trilinear",
                                             align_corners=True), [x])
    assert gradcheck(lambda t: F.interpolate(t, size=(3, 5, 3)), [x])


@st.composite
def resize_cases(draw):
    size = tuple(draw(st.integers(1, 5)) for _ in range(3))
    mode = draw(st.sampled_from(["nearest", "trilinear"]))
    align = draw(st.sampled_from([None, False, True])) if mode == "trilinear" else None
    if draw(st.booleans()):
        out = tuple(draw(st.integers(1, 7)) for _ in range(3))
        kwargs = dict(size=out)
    else:
        factors = tuple(draw(st.sampled_from([0.5, 0.7, 1.0, 1.3, 1.5, 2.0, 2.2, 2.6, 3.7]))
                        for _ in range(3))
        if any(int(i * f) < 1 for i, f in zip(size, factors)):
            factors = tuple(max(f, 1.0) for f in factors)
        kwargs = dict(scale_factor=factors,
                      recompute_scale_factor=draw(st.sampled_from([None, True])))
    if mode == "trilinear":
        kwargs["align_corners"] = align
    return (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + size, mode, kwargs, \
        draw(st.integers(0, 2**31 - 1))


def torch_nearest_backward_differs(in_size, kwargs):
    """Whether torch's nearest backward is not the gradient of its forward here: with a
    scale_factor its forward indexes by floor(o / factor) on every axis, but its backward keeps
    the shortcuts "O = I: copy" and "O = 2I: o // 2" (torch 2.x)."""
    factors = kwargs.get("scale_factor")
    if factors is None or kwargs.get("recompute_scale_factor"):
        return False
    for i, f in zip(in_size, factors):
        o = int(np.floor(i * f))
        shortcut = np.arange(o) if o == i else (np.arange(o) // 2 if o == 2 * i else None)
        if shortcut is not None and (nearest_indices(i, o, f) != shortcut).any():
            return True
    return False


@settings(max_examples=40)
@given(resize_cases(), st.sampled_from([np.float64, np.float32]))
def test_matches_torch(case, dtype):
    torch = pytest.importorskip("torch")
    shape, mode, kwargs, seed = case
    rng = np.random.default_rng(seed)
    if mode == "nearest" and torch_nearest_backward_differs(shape[2:], kwargs):
        x = rng.standard_normal(shape).astype(dtype)  # the forward still matches
        assert_close(F.interpolate(x, mode=mode, **kwargs).numpy(),
                     torch.nn.functional.interpolate(torch.from_numpy(x), mode=mode, **kwargs),
                     dtype, "forward")
        return
    compare(torch, lambda x: F.interpolate(x, mode=mode, **kwargs),
            lambda x: torch.nn.functional.interpolate(x, mode=mode, **kwargs),
            [rng.standard_normal(shape)], dtype, rng)


@pytest.mark.parametrize("size,factor", [(11, 3.7), (16, 2.6), (2, 1.3), (3, 2.2), (7, 1.7),
                                         (6, 0.6)])
def test_nearest_indices_match_torch_where_rounding_or_shortcuts_matter(size, factor):
    torch = pytest.importorskip("torch")
    x = np.arange(float(size)).reshape(1, 1, 1, 1, size)
    ours = F.interpolate(x, scale_factor=(1, 1, factor)).numpy()
    theirs = torch.nn.functional.interpolate(torch.from_numpy(x), scale_factor=(1, 1, factor))
    np.testing.assert_array_equal(ours, theirs.numpy())


def test_upsample_layer():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal((1, 2, 3, 2, 4)).astype(np.float32)
    for kwargs in (dict(scale_factor=2), dict(size=(4, 5, 6), mode="trilinear",
                                              align_corners=True)):
        ours = conv3d.nn.Upsample(**kwargs)(Tensor(x)).numpy()
        theirs = torch.nn.Upsample(**kwargs)(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert "scale_factor=2" in repr(conv3d.nn.Upsample(scale_factor=2))


def test_errors():
    x = np.zeros((1, 1, 2, 2, 2))
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="align_corners can only be set"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match="mode must be one of"):
        F.interpolate(x, scale_factor=2, mode="bicubic")
    with pytest.raises(ValueError, match="empty output"):
        F.interpolate(x, scale_factor=0.2)
    with pytest.raises(ValueError, match="input must be 5-D"):
        F.interpolate(np.zeros((2, 2, 2)), scale_factor=2)
    with pytest.raises(ValueError, match="exactly one"):
        conv3d.nn.Upsample()


def test_nearest_gradient_is_the_adjoint_where_torchs_is_not():
    """scale_factor=1.3 on 2 voxels: O = 2, and torch's forward copies voxel 0 twice (floor(o /
    1.3) = 0, 0) while its backward routes as if O = I meant a copy. conv3d's gradient is the
    forward's own: both output gradients land on voxel 0."""
    x = Tensor(np.array([5.0, 7.0]).reshape(1, 1, 1, 1, 2), requires_grad=True)
    y = F.interpolate(x, scale_factor=(1, 1, 1.3))
    np.testing.assert_array_equal(y.numpy().ravel(), [5.0, 5.0])
    y.backward(np.array([1.0, 2.0]).reshape(y.shape))
    np.testing.assert_array_equal(x.grad.ravel(), [3.0, 0.0])
    assert gradcheck(lambda t: F.interpolate(t, scale_factor=(1, 1, 1.3)),
                     [Tensor(np.array([1.0, 2.0]).reshape(1, 1, 1, 1, 2), requires_grad=True)])


def test_trilinear_copies_an_axis_whose_size_stays_as_torch():
    torch = pytest.importorskip("torch")
    x = np.arange(1.0, 5.0).reshape(1, 1, 2, 1, 2)
    kwargs = dict(scale_factor=(2, 1, 1.3), mode="trilinear")  # W: floor(2 * 1.3) = 2 = I
    y = F.interpolate(x, **kwargs).numpy()
    np.testing.assert_array_equal(y[0, 0, :, 0], [[1, 2], [1.5, 2.5], [2.5, 3.5], [3, 4]])
    np.testing.assert_array_equal(
        y, torch.nn.functional.interpolate(torch.from_numpy(x), **kwargs).numpy())
