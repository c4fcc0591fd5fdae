"""Strategy 'winograd' (conv3d/ops/fast/winograd.py) against the float64 naive loops of
tests/reference.py: forward and both gradients over random stride-1 3x3x3 shapes, paddings from
0 to 2 on each side (asymmetric, and 'same'), odd output sizes, float32 and float64; the out=
and workspace-limit contract of the other strategies; and where 'auto' takes it.

Tolerance in float32: Winograd's transforms add and halve, so its rounding error is a few
times that of a plain dot product, not orders of magnitude; measured against the float64
reference it is within 2x of float32 im2col's (docs/benchmarks/notes.md, "3D Winograd"). The
tests allow 2e-5 of the largest output magnitude, well above both and far below any wrong
index or transform coefficient (those give errors of order 1).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import conv3d
from conv3d.core.geometry import ConvGeometry
from conv3d.ops import fast
from conv3d.ops.fast import winograd
from reference import (naive_conv3d, naive_conv3d_backward_input, naive_conv3d_backward_weight,
                       ref_same_padding)

REL = {np.float32: 2e-5, np.float64: 1e-12}


def _close(got, want, dtype):
    assert got.dtype == dtype and got.shape == want.shape  # nothing upcasts
    scale = max(float(np.max(np.abs(want))), 1e-30)
    assert float(np.max(np.abs(got - want))) <= REL[dtype] * scale


@st.composite
def cases(draw):
    same = draw(st.booleans())
    kernel = (draw(st.sampled_from([3, 1])), 3, 3)  # 3x3x3, or (1, 3, 3): F(2x2, 3x3)
    size = tuple(draw(st.integers(1, 7)) for _ in range(3))
    if same:
        padding = tuple(ref_same_padding(i, k, 1, 1) for i, k in zip(size, kernel))
    else:
        padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) if k == 3 else (0, 0)
                        for k in kernel)
        size = tuple(max(i, k - lo - hi) for i, k, (lo, hi) in zip(size, kernel, padding))
    return dict(N=draw(st.integers(1, 3)), C=draw(st.integers(1, 4)), K=draw(st.integers(1, 4)),
                size=size, padding=padding, same=same, kernel=kernel,
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                seed=draw(st.integers(0, 2**16)))


def _arrays(case):
    rng = np.random.default_rng(case["seed"])
    dt = case["dtype"]
    x = rng.standard_normal((case["N"], case["C"]) + case["size"]).astype(dt)
    w = rng.standard_normal((case["K"], case["C"]) + case["kernel"]).astype(dt)
    b = rng.standard_normal(case["K"]).astype(dt)
    args = ((1, 1, 1), case["padding"], (1, 1, 1), 1)
    y_ref = naive_conv3d(x, w, b, *args)
    gy = rng.standard_normal(y_ref.shape).astype(dt)
    return x, w, b, gy, args, y_ref


@settings(max_examples=30, deadline=None)
@given(case=cases(), mask=st.sampled_from([(True, True), (True, False), (False, True)]))
def test_winograd_matches_naive_loops(case, mask):
    x, w, b, gy, args, y_ref = _arrays(case)
    padding = "same" if case["same"] else case["padding"]
    with fast.use_strategy("winograd"):
        y = conv3d.functional.conv3d(conv3d.Tensor(x), conv3d.Tensor(w), conv3d.Tensor(b),
                                     padding=padding).numpy()
        assert fast.last_choice["forward"] == "winograd"
        grads = fast.provider.conv3d_backward(gy, x, w, *args, output_mask=mask)
    _close(y, y_ref, case["dtype"])
    refs = (naive_conv3d_backward_input(gy, w, x.shape, *args),
            naive_conv3d_backward_weight(gy, x, w.shape, *args))
    for got, want, wanted in zip(grads, refs, mask):
        if wanted:
            _close(got, want, case["dtype"])
        else:
            assert got is None


@pytest.mark.parametrize("kD", [3, 1])
def test_odd_output_sizes_and_one_tile_cropped_to_one_voxel(kD):
    rng = np.random.default_rng(5)
    for size, padding in [((5, 7, 3), ((1, 1),) * 3), ((3, 3, 3), ((0, 0),) * 3),
                          ((1, 2, 1), ((1, 1), (2, 0), (0, 2)))]:
        padding = padding if kD == 3 else ((0, 0),) + padding[1:]
        x = rng.standard_normal((2, 3) + size)
        w = rng.standard_normal((2, 3, kD, 3, 3))
        args = ((1, 1, 1), padding, (1, 1, 1), 1)
        _close(winograd.forward(x, w, None, *args), naive_conv3d(x, w, None, *args), np.float64)


def test_results_written_into_out_leave_nothing_of_its_old_contents():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 5, 4, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3, 3)).astype(np.float32)
    args = ((1, 1, 1), ((1, 2), (0, 1), (2, 2)), (1, 1, 1), 1)
    y_ref = naive_conv3d(x, w, None, *args)
    gy = rng.standard_normal(y_ref.shape).astype(np.float32)
    y = winograd.forward(x, w, None, *args, out=np.full(y_ref.shape, np.nan, np.float32))
    gx, _ = winograd.backward(gy, x, w, *args, (True, False),
                              out=np.full(x.shape, np.nan, np.float32))
    _close(y, y_ref, np.float32)
    _close(gx, naive_conv3d_backward_input(gy, w, x.shape, *args), np.float32)


@pytest.mark.parametrize("kD", [3, 1])
def test_chunks_give_the_same_results_and_respect_the_limit(kD):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4, 8, 6, 5))
    w = rng.standard_normal((5, 4, kD, 3, 3))
    args = ((1, 1, 1), ((kD // 2,) * 2, (1, 0), (2, 1)), (1, 1, 1), 1)
    fast.reset_peak_workspace()
    whole = winograd.forward(x, w, None, *args)
    unchunked = fast.peak_workspace()
    y_ref = naive_conv3d(x, w, None, *args)
    for limit in (unchunked // 2, unchunked // 7):  # fewer samples; then depth tiles of one
        fast.reset_peak_workspace()
        chunked = winograd.forward(x, w, None, *args, workspace_limit=limit)
        assert 0 < fast.peak_workspace() <= limit < unchunked
        np.testing.assert_allclose(chunked, whole, rtol=1e-12, atol=1e-12)
        _close(chunked, y_ref, np.float64)
    with pytest.raises(fast.WorkspaceLimitError, match=r"winograd.*smallest chunk"):
        winograd.forward(x, w, None, *args, workspace_limit=unchunked // 100)


def test_refuses_what_it_does_not_apply_to():
    x, w = np.ones((1, 2, 5, 5, 5)), np.ones((2, 2, 3, 3, 3))
    for stride, padding, dilation in [(2, 1, 1), (1, 1, 2), (1, 3, 1)]:
        with pytest.raises(ValueError, match=r"Winograd .* needs a 3x3x3 kernel \(or \(1, 3, 3\) without depth padding\), stride 1"):
            winograd.forward(x, w, None, stride, padding, dilation, 1)
    with pytest.raises(ValueError, match="needs a 3x3x3 kernel"):
        winograd.forward(x, np.ones((2, 2, 3, 1, 3)), None, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="without depth padding"):  # (1, 3, 3) padded in depth
        winograd.forward(x, np.ones((2, 2, 1, 3, 3)), None, 1, 1, 1, 1)


@pytest.mark.parametrize("x_shape,w_shape,stride,forward,backward", [
    ((1, 64, 16, 56, 56), (64, 64, 3, 3, 3), 1, "winograd", "im2col-planes"),
    ((8, 256, 4, 14, 14), (256, 256, 3, 3, 3), 1, "winograd", "winograd"),  # short planes
    ((1, 512, 2, 7, 7), (512, 512, 3, 3, 3), 1, "im2col", "im2col"),      # 98 outputs only
    ((1, 32, 48, 48, 48), (32, 32, 3, 3, 3), 1, "winograd", "im2col-planes"),
    ((1, 16, 48, 48, 48), (32, 16, 3, 3, 3), 1, "im2col-planes", "im2col-planes"),  # thin
    ((1, 64, 48, 48, 48), (32, 64, 3, 3, 3), 1, "winograd", "im2col-planes"),  # 32 filters
    ((1, 64, 48, 48, 48), (16, 64, 3, 3, 3), 1, "im2col-planes", "im2col-planes"),  # 16
    ((1, 64, 16, 56, 56), (128, 64, 3, 3, 3), 2, "im2col", "im2col"),               # strided
    ((1, 64, 16, 56, 56), (64, 64, 1, 3, 3), 1, "im2col-planes", "im2col-planes"),  # (2+1)D
    ((128, 32, 7, 7, 7), (64, 32, 3, 3, 3), 1, "channels-last", "channels-last"),  # 5^3 each
])
def test_auto_takes_winograd_for_the_forward_of_wide_stride_1_3x3x3_layers(
        x_shape, w_shape, stride, forward, backward):
    geo = ConvGeometry.from_shapes(x_shape, w_shape, stride, 1, 1, 1)
    assert fast.choose(geo, "forward") == forward
    assert fast.choose(geo, "backward") == backward


@pytest.mark.parametrize("x_shape,w_shape,forward", [
    ((1, 64, 16, 56, 56), (144, 64, 1, 3, 3), "winograd"),  # r2plus1d_18's spatial layer1 conv
    ((8, 256, 4, 14, 14), (576, 256, 1, 3, 3), "winograd"),
    ((1, 256, 4, 14, 14), (576, 256, 1, 3, 3), "im2col"),    # 784 outputs only
    ((8, 16, 8, 14, 14), (32, 16, 1, 3, 3), "channels-last"),  # too thin for Winograd
])
def test_auto_takes_winograd_for_wide_stride_1_1x3x3_layers_without_depth_padding(
        x_shape, w_shape, forward):
    geo = ConvGeometry.from_shapes(x_shape, w_shape, 1, (0, 1, 1), 1, 1)
    assert fast.choose(geo, "forward") == forward
    padded = ConvGeometry.from_shapes(x_shape, w_shape, 1, 1, 1, 1)
    assert fast.choose(padded, "forward") != "winograd"  # depth padding: winograd refuses


def test_winograd_set_runs_auto_where_it_does_not_apply():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, 2, 5, 6, 6)).astype(np.float32)
    w = rng.standard_normal((3, 2, 1, 3, 3)).astype(np.float32)
    with fast.use_strategy("winograd"):
        y = fast.provider.conv3d_forward(x, w, None, (1, 2, 2), ((0, 0),) * 3, (1, 1, 1), 1)
        assert fast.last_choice["forward"] not in ("winograd", "auto")
    want = naive_conv3d(x, w, None, (1, 2, 2), ((0, 0),) * 3, (1, 1, 1), 1)
    _close(y, want, np.float32)


def test_one_sample_runs_on_two_threads_over_depth_tiles():
    """A single sample large enough to split (``SPLIT_MIN_FLOPS``) runs its chunks of depth tiles
    on two threads; each writes its own output planes."""
    from conv3d.ops import cpu_reference
    rng = np.random.default_rng(10)
    x = rng.standard_normal((1, 24, 11, 12, 9))
    w = rng.standard_normal((24, 24, 3, 3, 3))
    args = ((1, 1, 1), ((1, 1), (0, 2), (1, 1)), (1, 1, 1), 1)
    geo = ConvGeometry.from_shapes(x.shape, w.shape, *args)
    with fast.num_threads(2):
        assert len(winograd._split(geo, x.itemsize, None)[0]) == 2
        y = winograd.forward(x, w, None, *args, out=np.full(geo.y_shape, np.nan))
    with fast.num_threads(1):
        assert len(winograd._split(geo, x.itemsize, None)[0]) == 1
    _close(y, cpu_reference.conv3d_forward(x, w, None, *args), np.float64)


def test_one_chunk_shares_its_gemms_out_over_two_threads():
    """One depth tile of one sample (r3d layer4's shape, fewer channels): nothing to cut into
    chunks, so the two threads take half of the 64 positions of the weight transform and of
    the GEMMs each."""
    from conv3d.ops import cpu_reference
    rng = np.random.default_rng(12)
    x = rng.standard_normal((1, 96, 2, 7, 7)).astype(np.float32)
    w = rng.standard_normal((96, 96, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(96).astype(np.float32)
    args = ((1, 1, 1), ((1, 1),) * 3, (1, 1, 1), 1)
    geo = ConvGeometry.from_shapes(x.shape, w.shape, *args)
    with fast.num_threads(2):
        parts, _, T = winograd._split(geo, x.itemsize, None)
        assert len(parts) == 1 and T == 2
        y = winograd.forward(x, w, b, *args)
    want = cpu_reference.conv3d_forward(x.astype(np.float64), w.astype(np.float64),
                                        b.astype(np.float64), *args)
    _close(y, want, np.float32)
