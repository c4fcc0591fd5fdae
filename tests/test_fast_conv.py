"""The fast CPU strategies (conv3d/ops/fast) against the float64 naive loops of tests/reference.py.

Every strategy computes the forward pass and both backward passes; each is compared with the
independent loops over random shapes with stride, asymmetric padding, dilation and groups, in
float32 and float64. Then: chunking under a small workspace limit gives the same results, the
limit is respected and a chunk that cannot fit is refused with a clear error; the strategy and
thread settings do what they say.
"""
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import conv3d
import conv3d.functional as F
from conv3d.core.geometry import ConvGeometry
from conv3d.ops import fast
from conv3d.ops.fast import channels_last, direct, im2col_gemm, plane_im2col
from reference import naive_conv3d, naive_conv3d_backward_input, naive_conv3d_backward_weight

STRATEGY_NAMES = ["im2col", "im2col-planes", "channels-last", "direct"]
MODULES = [im2col_gemm, plane_im2col, channels_last, direct]
CHUNKED_NAMES = ["im2col", "im2col-planes", "channels-last"]  # 'direct' uses no workspace
TOL = {np.float32: dict(rtol=2e-4, atol=2e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    C = groups * draw(st.integers(1, 2))
    K = groups * draw(st.integers(1, 2))
    N = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(3))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(3))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(3))
    padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(3))
    size = []
    for k, d, (lo, hi) in zip(kernel, dilation, padding):  # at least one output voxel
        size.append(draw(st.integers(max(1, d * (k - 1) + 1 - lo - hi), 6)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**16))
    return dict(N=N, C=C, K=K, size=tuple(size), kernel=kernel, stride=stride,
                dilation=dilation, padding=padding, groups=groups, dtype=dtype, seed=seed)


def _arrays(case):
    rng = np.random.default_rng(case["seed"])
    dt = case["dtype"]
    x = rng.standard_normal((case["N"], case["C"]) + case["size"]).astype(dt)
    w = rng.standard_normal((case["K"], case["C"] // case["groups"]) + case["kernel"]).astype(dt)
    b = rng.standard_normal(case["K"]).astype(dt)
    args = (case["stride"], case["padding"], case["dilation"], case["groups"])
    y_ref = naive_conv3d(x, w, b, *args)
    gy = rng.standard_normal(y_ref.shape).astype(dt)
    return x, w, b, gy, args, y_ref


def test_strategies_are_the_ones_that_auto_chooses_from():
    # 'winograd' serves only stride-1 3x3x3 layers: tests/test_winograd.py
    assert fast.STRATEGIES == ("auto", "reference", *STRATEGY_NAMES[:3], "winograd",
                               *STRATEGY_NAMES[3:])


@pytest.mark.parametrize("name", STRATEGY_NAMES)
@given(case=conv_cases(), mask=st.sampled_from([(True, True), (True, False), (False, True)]))
def test_strategy_matches_naive_loops(name, case, mask):
    x, w, b, gy, args, y_ref = _arrays(case)
    with fast.use_strategy(name):
        y = fast.provider.conv3d_forward(x, w, b, *args)
        grads = fast.provider.conv3d_backward(gy, x, w, *args, output_mask=mask)
    assert fast.last_choice == {"forward": name, "backward": name}
    tol = TOL[case["dtype"]]
    assert y.dtype == case["dtype"] and y.shape == y_ref.shape  # nothing upcasts
    np.testing.assert_allclose(y, y_ref, **tol)
    refs = (naive_conv3d_backward_input(gy, w, x.shape, *args),
            naive_conv3d_backward_weight(gy, x, w.shape, *args))
    for got, want, wanted in zip(grads, refs, mask):
        if not wanted:
            assert got is None
            continue
        assert got.dtype == case["dtype"] and got.shape == want.shape
        np.testing.assert_allclose(got, want, **tol)


@pytest.mark.parametrize("module", MODULES)
@settings(max_examples=15, deadline=None)
@given(case=conv_cases())
@example(case=dict(N=2, C=2, K=2, size=(6, 5, 5), kernel=(1, 2, 1), stride=(2, 2, 3),
                   dilation=(1, 1, 1), padding=((0, 0),) * 3, groups=1, dtype=np.float64,
                   seed=3))  # input planes 5 (depth), 4 (height) and 1, 2, 4 (width) unread
def test_results_written_into_out_leave_nothing_of_its_old_contents(module, case):
    # out= is how the threads over samples hand each thread its slice of y or gx; it comes from
    # np.empty, so every element must be written, not added to (filled with NaN here to tell)
    x, w, b, gy, args, y_ref = _arrays(case)
    gx_ref = naive_conv3d_backward_input(gy, w, x.shape, *args)
    y = module.forward(x, w, b, *args, out=np.full(y_ref.shape, np.nan, x.dtype))
    gx, _ = module.backward(gy, x, w, *args, (True, False),
                            out=np.full(x.shape, np.nan, x.dtype))
    for got, want in ((y, y_ref), (gx, gx_ref)):
        np.testing.assert_allclose(got, want, **TOL[case["dtype"]])


# ---- the workspace limit ------------------------------------------------------------------------

# (module, fractions of the unchunked workspace to run under). The smallest chunk of
# 'im2col-planes' is the kD input planes of one output plane, a third of this small case.
CHUNKED = [(im2col_gemm, (2, 5)), (channels_last, (2, 5)), (plane_im2col, (2,))]


def _run(module, x, w, gy, args):
    return [module.forward(x, w, None, *args), *module.backward(gy, x, w, *args)]


@pytest.mark.parametrize("module,fractions", CHUNKED)
def test_chunking_gives_the_same_results_and_respects_the_limit(module, fractions):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4, 6, 7, 5))
    w = rng.standard_normal((6, 2, 3, 2, 3))
    args = ((1, 2, 1), ((1, 1), (0, 1), (2, 1)), (1, 1, 2), 2)
    y_ref = naive_conv3d(x, w, None, *args)
    gy = rng.standard_normal(y_ref.shape)
    fast.reset_peak_workspace()
    whole = _run(module, x, w, gy, args)
    unchunked_peak = fast.peak_workspace()
    refs = [y_ref, naive_conv3d_backward_input(gy, w, x.shape, *args),
            naive_conv3d_backward_weight(gy, x, w.shape, *args)]
    # half the unchunked workspace chunks over N, a fifth over N and over depth
    for limit in (unchunked_peak // f for f in fractions):
        fast.reset_peak_workspace()
        with fast.workspace_limit(limit):
            chunked = _run(module, x, w, gy, args)
        assert 0 < fast.peak_workspace() <= limit < unchunked_peak
        for a, c, r in zip(whole, chunked, refs):
            np.testing.assert_allclose(c, a, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(c, r, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("fraction", [2, 5])
def test_channels_last_both_gradients_in_chunks(fraction):
    """The one-pass backward of 'channels-last' (both gradients: x's columns and the input
    gradient's columns take turns in one buffer) under a limit that forces chunks."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 4, 6, 7, 5))
    w = rng.standard_normal((6, 2, 3, 2, 3))
    args = ((1, 2, 1), ((1, 1), (0, 1), (2, 1)), (1, 1, 2), 2)
    gy = rng.standard_normal(naive_conv3d(x, w, None, *args).shape)
    fast.reset_peak_workspace()
    channels_last.backward(gy, x, w, *args)
    limit = fast.peak_workspace() // fraction
    fast.reset_peak_workspace()
    with fast.workspace_limit(limit):
        gx, gw = channels_last.backward(gy, x, w, *args)
    assert 0 < fast.peak_workspace() <= limit
    np.testing.assert_allclose(gx, naive_conv3d_backward_input(gy, w, x.shape, *args),
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw, naive_conv3d_backward_weight(gy, x, w.shape, *args),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", CHUNKED_NAMES)
def test_buffers_kept_between_calls_stay_under_the_limit_and_leave_results_alone(name):
    """The scratch buffers a call leaves for the next one: never more than the limit, and no
    result of an earlier call is a view of them (a later call would overwrite it)."""
    from conv3d.ops.fast.workspace import kept_workspace, release_workspace
    rng = np.random.default_rng(3)
    x1, x2 = rng.standard_normal((2, 2, 3, 6, 5, 7)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 2, 3)).astype(np.float32)
    args = ((1, 1, 2), ((1, 0), (1, 1), (0, 2)), (1, 1, 1), 1)
    gy = rng.standard_normal(naive_conv3d(x1, w, None, *args).shape).astype(np.float32)
    release_workspace()
    limit = 40_000
    with fast.use_strategy(name), conv3d.workspace_limit(limit):
        first = [fast.provider.conv3d_forward(x1, w, None, *args),
                 *fast.provider.conv3d_backward(gy, x1, w, *args)]
        saved = [a.copy() for a in first]
        assert 0 < kept_workspace() <= limit
        fast.provider.conv3d_forward(x2, w, None, *args)          # reuses the kept buffers
        fast.provider.conv3d_backward(2 * gy, x2, w, *args)
        assert kept_workspace() <= limit
    for a, b in zip(first, saved):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(first[0], naive_conv3d(x1, w, None, *args), **TOL[np.float32])
    release_workspace()
    assert kept_workspace() == 0


def test_kept_buffers_serve_layers_of_different_shapes_in_turn():
    """Two layers of different shapes called in turn (as in a network) each find their own
    buffers; when the limit is too small for both sets, the least recently used go first."""
    from conv3d.ops.fast.workspace import _pool, kept_workspace, release_workspace
    rng = np.random.default_rng(4)
    x1 = rng.standard_normal((2, 3, 5, 6, 6)).astype(np.float32)
    x2 = rng.standard_normal((2, 4, 4, 5, 5)).astype(np.float32)
    w1 = rng.standard_normal((2, 3, 3, 3, 3)).astype(np.float32)
    w2 = rng.standard_normal((3, 4, 3, 3, 3)).astype(np.float32)
    args = ((1, 1, 1), ((1, 1),) * 3, (1, 1, 1), 1)
    release_workspace()
    with fast.use_strategy("im2col"):
        fast.provider.conv3d_forward(x1, w1, None, *args)
        first = kept_workspace()
        fast.provider.conv3d_forward(x2, w2, None, *args)
        both = kept_workspace()
        assert first < both                       # layer 1's buffers are still kept
        kept_before = set(_pool())
        fast.provider.conv3d_forward(x1, w1, None, *args)  # reuses layer 1's: nothing new
        assert set(_pool()) == kept_before and kept_workspace() == both
        with conv3d.workspace_limit(both - 1):    # room for one set only: layer 1's (older) go
            fast.provider.conv3d_forward(x2, w2, None, *args)
        assert 0 < kept_workspace() <= both - 1
    release_workspace()


def test_planner_prefers_whole_samples_then_depth_chunks():
    from conv3d.ops.fast.workspace import plan_chunks
    per_plane = 100
    assert plan_chunks(8, 10, lambda n, od: n * od * per_plane, 3000, "t", None) == (3, 10)
    assert plan_chunks(8, 10, lambda n, od: n * od * per_plane, 450, "t", None) == (1, 4)
    # the cache target caps a chunk below the limit, but never below one plane
    assert plan_chunks(8, 10, lambda n, od: n * od * per_plane, 3000, "t", 1000) == (1, 10)
    assert plan_chunks(8, 10, lambda n, od: n * od * per_plane, 3000, "t", 50) == (1, 1)


@pytest.mark.parametrize("name", CHUNKED_NAMES)
def test_refuses_when_one_chunk_cannot_fit(name):
    x = conv3d.Tensor(np.ones((2, 8, 4, 16, 16), np.float32))
    w = conv3d.Tensor(np.ones((16, 8, 3, 3, 3), np.float32))
    with fast.use_strategy(name), conv3d.workspace_limit(1024):
        with pytest.raises(fast.WorkspaceLimitError,
                           match=r"smallest chunk .* needs \d+ bytes .* limit of 1024 bytes"):
            F.conv3d(x, w, padding=1)
    with fast.use_strategy(name):  # the default limit is plenty; the result is the reference
        y = F.conv3d(x, w, padding=1)
    np.testing.assert_allclose(y.numpy(), naive_conv3d(x.numpy(), w.numpy(), None, (1, 1, 1),
                                                       ((1, 1),) * 3, (1, 1, 1), 1), rtol=1e-5)


def test_per_call_limit_overrides_the_global_one():
    x = np.ones((1, 8, 4, 16, 16), np.float32)
    w = np.ones((4, 8, 3, 3, 3), np.float32)
    args = ((1, 1, 1), ((1, 1),) * 3, (1, 1, 1), 1)
    with pytest.raises(fast.WorkspaceLimitError):
        fast.provider.conv3d_forward(x, w, None, *args, workspace_limit=1000)
    with conv3d.workspace_limit(1000):  # a generous per-call limit wins over the tiny global one
        y = fast.provider.conv3d_forward(x, w, None, *args, workspace_limit=2**24)
    assert y.shape == (1, 4, 4, 16, 16)


def test_workspace_limit_settings():
    assert conv3d.get_workspace_limit() == fast.DEFAULT_WORKSPACE_LIMIT == 256 * 2**20
    with conv3d.workspace_limit(2**20):
        assert conv3d.get_workspace_limit() == 2**20
    assert conv3d.get_workspace_limit() == fast.DEFAULT_WORKSPACE_LIMIT
    for bad in (0, -5, 1.5, "1GB", True):
        with pytest.raises(ValueError, match="workspace limit"):
            conv3d.set_workspace_limit(bad)


# ---- strategy and thread settings ----------------------------------------------------------------

def test_strategy_selection():
    assert fast.get_strategy() == "auto"
    x = conv3d.Tensor(np.ones((1, 2, 4, 4, 4), np.float32))
    w = conv3d.Tensor(np.ones((3, 2, 3, 3, 3), np.float32))
    with fast.use_strategy("reference"):
        F.conv3d(x, w)
        assert fast.last_choice["forward"] == "reference"
    F.conv3d(x, w)
    assert fast.last_choice["forward"] == fast.choose(_geo(x, w)) != "auto"
    with pytest.raises(ValueError, match="unknown convolution strategy 'fastest'"):
        fast.set_strategy("fastest")


@pytest.mark.parametrize("x_shape,w_shape,padding,dilation,want", [
    ((4, 64, 16, 56, 56), (128, 64, 3, 3, 3), 1, 1, "im2col-planes"),  # 3136 voxels a plane
    ((4, 64, 16, 56, 56), (128, 64, 3, 3, 3), 2, 2, "im2col"),          # depth dilation 2
    ((128, 3, 16, 16, 16), (32, 3, 3, 3, 3), 0, 1, "im2col"),           # thin, 14x14 planes
    ((128, 32, 7, 7, 7), (64, 32, 3, 3, 3), 0, 1, "channels-last"),     # 5x5x5 outputs
    ((2, 3, 7, 7, 7), (4, 3, 3, 3, 3), 0, 1, "im2col"),   # 5x5x5, but C*taps = 81 <= THIN
    ((8, 16, 8, 14, 14), (32, 16, 1, 3, 3), 1, 1, "channels-last"),  # C*taps = 144 > THIN
    ((1, 256, 4, 14, 14), (512, 256, 3, 3, 3), 1, 1, "im2col"),  # 784 voxels, C*taps >= DEEP
    ((1, 512, 4, 7, 7), (24, 512, 1, 1, 1), 0, 1, "im2col"),    # 1x1x1: x is the GEMM operand
    ((1, 512, 4, 7, 7), (24, 512, 1, 1, 1), 1, 1, "im2col"),  # padded, but planes are rows
    ((8, 128, 4, 7, 7), (96, 128, 1, 3, 3), 1, 1, "channels-last"),   # 196 voxels, 96 filters
    ((8, 128, 4, 7, 7), (256, 128, 1, 3, 3), 1, 1, "im2col"),  # 256 filters: the GEMM dominates
    ((8, 128, 4, 7, 7), (96, 128, 3, 1, 1), 1, 1, "im2col"),   # kH*kW = 1: rows are planes
    ((1, 1, 8, 8, 8), (1, 1, 3, 3, 3), 1, 1, "direct"),   # one input channel, one filter
    ((1, 1, 8, 8, 8), (8, 1, 3, 3, 3), 1, 1, "im2col"),   # one input channel, 8 filters
])
def test_auto_choice_per_shape(x_shape, w_shape, padding, dilation, want):
    """The rule of ``choose`` on the benchmark shapes (docs/benchmarks/notes.md says why); the
    backward's, since the forward of wide stride-1 3x3x3 layers is 'winograd''s
    (tests/test_winograd.py)."""
    geo = ConvGeometry.from_shapes(x_shape, w_shape, 1, padding, dilation, 1)
    assert fast.choose(geo, "backward") == want


def test_auto_takes_direct_for_depthwise_layers():
    dw = ConvGeometry.from_shapes((2, 96, 16, 14, 14), (96, 1, 3, 3, 3), 1, 1, 1, groups=96)
    doubled = ConvGeometry.from_shapes((2, 48, 8, 8, 8), (96, 1, 3, 3, 3), 1, 1, 1, groups=48)
    grouped = ConvGeometry.from_shapes((2, 128, 8, 8, 8), (128, 4, 3, 3, 3), 1, 1, 1, groups=32)
    # 4 channels per group: a GEMM per group of 4*27 = 108 values per column, in a small volume
    assert [fast.choose(g) for g in (dw, doubled, grouped)] == ["direct", "direct",
                                                                "channels-last"]


@settings(max_examples=25, deadline=None)
@given(C=st.integers(1, 5), multiplier=st.sampled_from([1, 2]), N=st.integers(1, 2),
       size=st.tuples(*[st.integers(1, 7)] * 3), kernel=st.tuples(*[st.integers(1, 3)] * 3),
       stride=st.one_of(st.just((1, 1, 1)), st.tuples(*[st.integers(1, 3)] * 3)),
       dilation=st.tuples(*[st.integers(1, 2)] * 3),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_depthwise_through_auto_matches_naive_loops(C, multiplier, N, size, kernel, stride,
                                                    dilation, dtype, seed):
    """Depthwise layers (groups = C, 1 or 2 filters each) with padding='same', as X3D's and
    CSN's, through the autograd API: 'auto' takes 'direct' (its stride-1 loops on the padded
    "wide" layout, or the general ones), and all three results match the float64 loops;
    float32 stays float32."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C) + size).astype(dtype)
    w = rng.standard_normal((C * multiplier, 1) + kernel).astype(dtype)
    b = rng.standard_normal(C * multiplier).astype(dtype)
    tx, tw, tb = (conv3d.Tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv3d(tx, tw, tb, stride=stride, padding="same", dilation=dilation, groups=C)
    assert fast.last_choice["forward"] == "direct" and y.dtype == dtype
    geo = ConvGeometry.from_shapes(x.shape, w.shape, stride, "same", dilation, C)
    args = (stride, geo.padding, dilation, C)
    gy = rng.standard_normal(y.shape).astype(dtype)
    y.backward(gy)
    tol = TOL[dtype]
    np.testing.assert_allclose(y.numpy(), naive_conv3d(x, w, b, *args), **tol)
    np.testing.assert_allclose(tx.grad, naive_conv3d_backward_input(gy, w, x.shape, *args), **tol)
    np.testing.assert_allclose(tw.grad, naive_conv3d_backward_weight(gy, x, w.shape, *args),
                               **tol)
    assert tx.grad.dtype == tw.grad.dtype == dtype


@settings(max_examples=20, deadline=None)
@given(N=st.integers(1, 3), groups=st.sampled_from([1, 2]), C=st.integers(1, 3),
       K=st.integers(1, 3), size=st.tuples(*[st.integers(1, 7)] * 3),
       stride=st.tuples(*[st.integers(1, 3)] * 3), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
@example(N=2, groups=2, C=3, K=2, size=(7, 7, 7), stride=(1, 1, 1), dtype=np.float64, seed=1)
@example(N=3, groups=1, C=3, K=3, size=(2, 1, 3), stride=(2, 1, 3), dtype=np.float64, seed=2)
def test_pointwise_layers_match_naive_loops(N, groups, C, K, size, stride, dtype, seed):
    """1x1x1 kernels without padding (ResNet shortcuts with stride 2) take 'im2col''s GEMM on
    the strided input, with no columns; every input voxel that no output reads gets zero."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C * groups) + size).astype(dtype)
    w = rng.standard_normal((K * groups, C, 1, 1, 1)).astype(dtype)
    b = rng.standard_normal(K * groups).astype(dtype)
    args = (stride, ((0, 0),) * 3, (1, 1, 1), groups)
    y_ref = naive_conv3d(x, w, b, *args)
    gy = rng.standard_normal(y_ref.shape).astype(dtype)
    with fast.use_strategy("im2col"):
        y = fast.provider.conv3d_forward(x, w, b, *args)
        gx, gw = fast.provider.conv3d_backward(gy, x, w, *args)
    tol = TOL[dtype]
    assert y.dtype == gx.dtype == gw.dtype == dtype
    np.testing.assert_allclose(y, y_ref, **tol)
    np.testing.assert_allclose(gx, naive_conv3d_backward_input(gy, w, x.shape, *args), **tol)
    np.testing.assert_allclose(gw, naive_conv3d_backward_weight(gy, x, w.shape, *args), **tol)


def test_direct_shares_its_units_among_threads():
    """Large enough for the threads: the same results as one thread (each unit owns its
    outputs, so the split changes nothing)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 16, 6, 20, 20)).astype(np.float32)
    w = rng.standard_normal((16, 1, 3, 3, 3)).astype(np.float32)
    args = ((1, 1, 1), ((1, 1),) * 3, (1, 1, 1), 16)
    gy = rng.standard_normal((2, 16, 6, 20, 20)).astype(np.float32)
    results = []
    for n in (1, 2):
        with fast.num_threads(n):
            results.append([direct.forward(x, w, None, *args), *direct.backward(gy, x, w, *args)])
    assert ConvGeometry.from_shapes(x.shape, w.shape, *args).flops() >= fast.sample_threads.UNITS_MIN_WORK
    for one, two in zip(*results):
        np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(results[1][0], naive_conv3d(x, w, None, *args), **TOL[np.float32])


@pytest.mark.parametrize("stride,dilation", [((1, 2, 1), (1, 1, 2)), ((1, 1, 1), (2, 1, 1)),
                                             ((2, 1, 1), (1, 1, 1))])
def test_planes_strategy_on_long_planes_in_several_chunks(stride, dilation):
    """Planes long enough for the rule to pick 'im2col-planes', and a limit that forces several
    chunks of output planes (forward, weight) and of input planes (input gradient)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 9, 34, 33)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3, 2)).astype(np.float32)
    args = (stride, ((1, 2), (1, 1), (0, 1)), dilation, 1)
    gy = rng.standard_normal(naive_conv3d(x, w, None, *args).shape).astype(np.float32)
    plane = 4 * int(np.prod(gy.shape[3:]))          # bytes of one output plane of one channel
    span = dilation[0] * 2 + 1                       # input planes one output plane reads
    cols_limit = (span + stride[0]) * 3 * 3 * 2 * plane  # 2D columns of two output planes
    gy_limit = (span + 1) * 4 * plane + 3 * 3 * 2 * plane  # gy of two input planes + 1 dcols
    if stride[0] > 1:  # the input gradient runs 'im2col''s col2im: 3D columns of two planes
        gy_limit = 2 * 3 * 3 * 3 * 2 * plane
    fast.reset_peak_workspace()
    got = [plane_im2col.forward(x, w, None, *args, workspace_limit=cols_limit),
           plane_im2col.backward(gy, x, w, *args, (True, False), workspace_limit=gy_limit)[0],
           plane_im2col.backward(gy, x, w, *args, (False, True), workspace_limit=cols_limit)[1]]
    assert fast.peak_workspace() <= max(cols_limit, gy_limit)
    want = [naive_conv3d(x, w, None, *args), naive_conv3d_backward_input(gy, w, x.shape, *args),
            naive_conv3d_backward_weight(gy, x, w.shape, *args)]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, **TOL[np.float32])


def _geo(x, w):
    return ConvGeometry.from_shapes(x.shape, w.shape)


def test_set_num_threads_reaches_blas():
    before = conv3d.get_num_threads()
    try:
        conv3d.set_num_threads(1)
        assert conv3d.get_num_threads() == 1
        with fast.num_threads(2):
            assert conv3d.get_num_threads() == 2
        assert conv3d.get_num_threads() == 1
    finally:
        conv3d.set_num_threads(before)
    with pytest.raises(ValueError, match="threads"):
        conv3d.set_num_threads(0)


# ---- max pooling with tiling windows ---------------------------------------------------------

@given(n=st.integers(1, 2), c=st.integers(1, 3), kernel=st.tuples(*[st.integers(1, 3)] * 3),
       extra=st.tuples(*[st.integers(0, 2)] * 3), ceil_mode=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_tiling_max_pool_matches_naive_loops(n, c, kernel, extra, ceil_mode, dtype, seed):
    from reference import naive_max_pool3d
    rng = np.random.default_rng(seed)
    size = tuple(k * m + e for k, m, e in zip(kernel, (2, 3, 2), extra))
    x = rng.integers(-3, 3, (n, c) + size).astype(dtype)  # small integers: many ties
    x[rng.random(x.shape) < 0.05] = np.nan                   # and some NaNs
    args = (kernel, kernel, (0, 0, 0), (1, 1, 1), ceil_mode)
    y, idx = fast.provider.max_pool3d_forward(x, *args)
    y_ref, idx_ref = naive_max_pool3d(x, *args)
    np.testing.assert_array_equal(idx, idx_ref)
    np.testing.assert_array_equal(y, y_ref.astype(dtype))
    assert y.dtype == dtype and idx.dtype == np.int64
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = fast.provider.max_pool3d_backward(gy, idx, x.shape)
    with fast.use_strategy("reference"):
        gx_ref = fast.provider.max_pool3d_backward(gy, idx_ref, x.shape)
    assert gx.dtype == dtype
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-6)
