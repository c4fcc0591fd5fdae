"""BatchNorm3d's momentum=None (cumulative average), track_running_stats=False and affine=False,
and its num_batches_tracked buffer: against torch.nn.BatchNorm3d over several training steps and
then eval (float32 and float64), against the cumulative-average formula written out here, and
against finite differences. Torch tests are skipped when torch is not installed."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import conv3d
import conv3d.functional as F
from conv3d import nn
from conv3d.core.gradcheck import gradcheck
from conv3d.interop.torch_layout import load_torch_state_dict, to_torch_state_dict

CASES = [dict(momentum=0.1), dict(momentum=None), dict(track_running_stats=False),
         dict(momentum=None, affine=False), dict(track_running_stats=False, affine=False)]


def batches(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((3, 2, 2, 3, 2)) * (i + 1) + i).astype(dtype) for i in range(n)]


def test_momentum_none_is_the_average_of_the_batch_statistics():
    bn = nn.BatchNorm3d(2, momentum=None, dtype=np.float64)
    xs = batches(4, np.float64)
    for x in xs:
        bn(conv3d.Tensor(x))
    M = xs[0].size // 2
    axes = (0, 2, 3, 4)
    np.testing.assert_allclose(bn.running_mean, np.mean([x.mean(axis=axes) for x in xs], axis=0),
                               rtol=1e-12)
    np.testing.assert_allclose(bn.running_var,
                               np.mean([x.var(axis=axes) * M / (M - 1) for x in xs], axis=0),
                               rtol=1e-12)
    assert bn.num_batches_tracked.dtype == np.int64 and bn.num_batches_tracked.shape == ()
    assert int(bn.num_batches_tracked) == 4
    bn.eval()
    bn(conv3d.Tensor(xs[0]))
    assert int(bn.num_batches_tracked) == 4  # eval does not count


def test_without_running_stats_eval_uses_the_batch_statistics():
    bn = nn.BatchNorm3d(2, track_running_stats=False, affine=False, dtype=np.float64).eval()
    assert bn.running_mean is None and bn.num_batches_tracked is None
    assert list(bn.state_dict()) == [] and bn.weight is None
    x = batches(1, np.float64)[0]
    mean, var = x.mean(axis=(0, 2, 3, 4), keepdims=True), x.var(axis=(0, 2, 3, 4), keepdims=True)
    np.testing.assert_allclose(bn(conv3d.Tensor(x)).numpy(), (x - mean) / np.sqrt(var + 1e-5),
                               rtol=1e-12, atol=1e-12)
    assert "track_running_stats=False" in repr(bn)


@pytest.mark.parametrize("kw", [dict(track_running_stats=False), dict(affine=False)])
def test_gradcheck(kw):
    bn = nn.BatchNorm3d(2, dtype=np.float64, **kw).eval()
    x = conv3d.Tensor(batches(1, np.float64)[0][:2], requires_grad=True)
    params = list(bn.parameters())
    gradcheck(lambda t, *p: bn(t), [x] + params)


def test_old_state_dicts_without_the_count_still_load():
    bn = nn.BatchNorm3d(2)
    bn(conv3d.Tensor(batches(1, np.float32)[0]))
    old = {k: v for k, v in bn.state_dict().items() if k != "num_batches_tracked"}
    fresh = nn.BatchNorm3d(2)
    assert fresh.load_state_dict(old) == ([], [])
    np.testing.assert_array_equal(fresh.running_mean, bn.running_mean)
    assert int(fresh.num_batches_tracked) == 0
    with pytest.raises(ValueError, match="momentum must lie in"):
        nn.BatchNorm3d(2, momentum=1.5)


def test_the_count_travels_through_the_torch_layout():
    model = nn.Sequential(nn.Conv3d(2, 2, 1), nn.BatchNorm3d(2, momentum=None))
    for x in batches(3, np.float32):
        model(conv3d.Tensor(x))
    state = to_torch_state_dict(model)
    assert state["1.num_batches_tracked"] == 3 and state["1.num_batches_tracked"].dtype == np.int64
    other = nn.Sequential(nn.Conv3d(2, 2, 1), nn.BatchNorm3d(2, momentum=None))
    assert load_torch_state_dict(other, state) == ([], [])
    assert int(other[1].num_batches_tracked) == 3


@pytest.mark.parametrize("kw", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torch_over_training_steps_then_eval(kw, dtype):
    torch = pytest.importorskip("torch")
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)
    theirs = torch.nn.BatchNorm3d(2, **kw).to(tdtype)
    ours = nn.BatchNorm3d(2, dtype=dtype, **kw)
    if theirs.affine:
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor([1.5, 0.5]))
            theirs.bias.copy_(torch.tensor([0.2, -0.3]))
    load_torch_state_dict(ours, theirs.state_dict())
    rng = np.random.default_rng(5)
    xs = batches(4, dtype, seed=1)
    for step, x in enumerate(xs):
        if step == 3:
            ours.eval()
            theirs.eval()
        a, t = conv3d.Tensor(x.copy(), requires_grad=True), torch.tensor(x, requires_grad=True)
        y, ty = ours(a), theirs(t)
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), **tol)
        gy = rng.standard_normal(y.shape).astype(dtype)
        y.backward(gy)
        ty.backward(torch.from_numpy(gy))
        np.testing.assert_allclose(a.grad, t.grad.numpy(), **tol)
        for name, p in theirs.named_parameters():
            np.testing.assert_allclose(getattr(ours, name).grad, p.grad.numpy(), **tol)
            p.grad = None
        ours.zero_grad()
        tstate = theirs.state_dict()
        assert set(ours.state_dict()) == set(tstate)
        for name, value in ours.state_dict().items():
            np.testing.assert_allclose(value, tstate[name].numpy(), err_msg=name, **tol)


def test_torch_module_builds_the_new_layers_with_their_settings():
    torch = pytest.importorskip("torch")
    from conv3d.interop.torch_layout import torch_module
    model = nn.Sequential(nn.Conv3d(2, 3, 1, dtype=np.float64),
                          nn.BatchNorm3d(3, momentum=None, dtype=np.float64),
                          nn.BatchNorm3d(3, track_running_stats=False, dtype=np.float64),
                          nn.AdaptiveMaxPool3d((None, 2, 2)), nn.Identity(),
                          nn.AdaptiveAvgPool3d(1))
    for x in batches(2, np.float64):
        model(conv3d.Tensor(x))
    tm = torch_module(model)
    assert tm[1].momentum is None and int(tm[1].num_batches_tracked) == 2
    assert tm[2].track_running_stats is False and isinstance(tm[4], torch.nn.Identity)
    model.eval()
    tm.eval()
    x = batches(1, np.float64, seed=9)[0]
    np.testing.assert_allclose(model(conv3d.Tensor(x)).numpy(),
                               tm(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12)


@settings(max_examples=15)
@given(st.integers(1, 3), st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * 3),
       st.sampled_from([0.1, 0.5, None]), st.booleans(), st.booleans(), st.integers(0, 2**31 - 1))
def test_drawn_shapes_and_modes_match_torch(N, C, spatial, momentum, track, affine, seed):
    torch = pytest.importorskip("torch")
    assume(N * np.prod(spatial) > 1)  # training needs more than one value per channel
    rng = np.random.default_rng(seed)
    kw = dict(momentum=momentum, track_running_stats=track, affine=affine)
    ours, theirs = nn.BatchNorm3d(C, dtype=np.float64, **kw), torch.nn.BatchNorm3d(C, **kw).double()
    for step in range(3):
        if step == 2:
            ours.eval()
            theirs.eval()
        x = rng.standard_normal((N, C) + spatial) * 2 + 1
        a, t = conv3d.Tensor(x.copy(), requires_grad=True), torch.tensor(x, requires_grad=True)
        y, ty = ours(a), theirs(t)
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
        gy = rng.standard_normal(y.shape)  # not ones: in training their input gradient is 0
        y.backward(gy)
        ty.backward(torch.from_numpy(gy))
        np.testing.assert_allclose(a.grad, t.grad.numpy(), rtol=1e-9, atol=1e-9)
    tstate = theirs.state_dict()
    assert set(ours.state_dict()) == set(tstate)
    for name, value in ours.state_dict().items():
        np.testing.assert_allclose(value, tstate[name].numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("affine", [True, False])
def test_without_a_graph_it_computes_the_same_normalization(dtype, training, affine):
    """Under no_grad BatchNorm takes x * scale + shift (no xhat kept): the same values as the
    formula written out in float64, in the input's dtype, and the same running statistics."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((2, 3, 2, 3, 4)) * 3 + 1).astype(dtype)
    bn = nn.BatchNorm3d(3, affine=affine, dtype=dtype)
    bn.running_mean[...] = rng.standard_normal(3)
    bn.running_var[...] = rng.random(3) + 0.5
    if affine:
        bn.weight.data[...] = rng.standard_normal(3)
        bn.bias.data[...] = rng.standard_normal(3)
    bn.train(training)
    before = (bn.running_mean.copy(), bn.running_var.copy())
    with conv3d.no_grad():
        y = bn(conv3d.Tensor(x))
    x64, axes, b = x.astype(np.float64), (0, 2, 3, 4), (1, -1, 1, 1, 1)
    mean, var = (x64.mean(axis=axes), x64.var(axis=axes)) if training else \
        (before[0].astype(np.float64), before[1].astype(np.float64))
    want = (x64 - mean.reshape(b)) / np.sqrt(var.reshape(b) + bn.eps)
    if affine:
        want = want * bn.weight.data.reshape(b) + bn.bias.data.reshape(b)
    assert y.dtype == dtype
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-5 if dtype == np.float32 else 1e-12)
    if training:
        M = x.size // 3
        np.testing.assert_allclose(bn.running_mean, 0.9 * before[0] + 0.1 * mean, rtol=1e-5)
        np.testing.assert_allclose(bn.running_var, 0.9 * before[1] + 0.1 * var * M / (M - 1),
                                   rtol=1e-5)
    else:
        np.testing.assert_array_equal(bn.running_mean, before[0])


def test_relu_without_a_graph_is_max_of_x_and_zero_and_keeps_nan():
    import conv3d.functional as F
    x = np.array([-2.0, -0.0, 0.0, 1.5, np.nan, np.inf, -np.inf], np.float32)
    with conv3d.no_grad():
        y = F.relu(conv3d.Tensor(x)).numpy()
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [0, 0, 0, 1.5, np.nan, np.inf, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inference_relu_and_batchnorm_split_over_threads_match_the_formula(monkeypatch, dtype):
    """Without a graph, ReLU and eval-mode batch norm run the rows (n, c) of a large array on
    the CPU threads (``run_rows``); forced here on a small array, checked against float64."""
    from conv3d.ops.fast import sample_threads
    monkeypatch.setattr(sample_threads, "UNITS_MIN_WORK", 0)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5, 2, 3, 4)).astype(dtype)
    x[0, 1, 0, 0, 0] = np.nan  # ReLU keeps NaN, as torch.relu does
    mean, var = rng.standard_normal(5).astype(dtype), rng.random(5).astype(dtype) + 0.5
    gamma, beta = rng.standard_normal(5).astype(dtype), rng.standard_normal(5).astype(dtype)
    with conv3d.ops.fast.num_threads(2), conv3d.no_grad():
        y_relu = F.relu(conv3d.Tensor(x)).numpy()
        y_bn = F.batch_norm(conv3d.Tensor(x), mean, var, gamma, beta, training=False).numpy()
    x64 = x.astype(np.float64)
    b = (1, -1, 1, 1, 1)
    want_bn = (x64 - mean.reshape(b)) / np.sqrt(var.astype(np.float64).reshape(b) + 1e-5) \
        * gamma.reshape(b) + beta.reshape(b)
    assert y_relu.dtype == dtype and y_bn.dtype == dtype
    np.testing.assert_array_equal(y_relu, np.maximum(x64, 0).astype(dtype))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y_bn, want_bn, rtol=tol, atol=tol)
