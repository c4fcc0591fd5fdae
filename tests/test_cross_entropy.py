"""cross_entropy's weight, ignore_index, label_smoothing and reductions: against the formula
written out here with loops, against finite differences, and (forward and gradient) against
torch.nn.functional.cross_entropy in float32 and float64. Torch tests skip without torch."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import conv3d
import conv3d.functional as F
from conv3d import nn
from conv3d.core.gradcheck import gradcheck


def loop_reference(z, labels, w, ignore, eps, reduction):
    """torch's documented loss, one sample and one class at a time, in float64."""
    N, C = z.shape
    losses, total_w = [], 0.0
    for i in range(N):
        if labels[i] == ignore:
            losses.append(0.0)
            continue
        log_p = [z[i, c] - math.log(sum(math.exp(z[i, k]) for k in range(C))) for c in range(C)]
        nll = -w[labels[i]] * log_p[labels[i]]
        smooth = -sum(w[c] * log_p[c] for c in range(C))
        losses.append((1 - eps) * nll + eps / C * smooth)
        total_w += w[labels[i]]
    if reduction == "none":
        return np.array(losses)
    return sum(losses) / total_w if reduction == "mean" else sum(losses)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("eps", [0.0, 0.25])
def test_matches_the_loop_reference_and_gradcheck(reduction, eps):
    rng = np.random.default_rng(0)
    z = conv3d.Tensor(rng.standard_normal((5, 3)), requires_grad=True)
    labels = np.array([2, -100, 0, 1, 2])
    w = np.array([0.5, 2.0, 1.5])
    got = F.cross_entropy(z, labels, weight=w, reduction=reduction, label_smoothing=eps)
    np.testing.assert_allclose(got.numpy(), loop_reference(z.data, labels, w, -100, eps,
                                                           reduction), rtol=1e-12)
    gradcheck(lambda t: F.cross_entropy(t, labels, w, reduction=reduction, label_smoothing=eps),
              [z])


def test_ignore_index_inside_the_class_range_and_all_ignored():
    z = conv3d.Tensor(np.random.default_rng(1).standard_normal((4, 3)), requires_grad=True)
    labels = np.array([1, 0, 1, 2])
    got = F.cross_entropy(z, labels, ignore_index=1)
    np.testing.assert_allclose(got.numpy(), loop_reference(z.data, labels, [1, 1, 1], 1, 0, "mean"))
    got.backward()
    assert not z.grad[[0, 2]].any() and z.grad[[1, 3]].all()
    z.grad = None
    loss = F.cross_entropy(z, np.array([1, 1, 1, 1]), ignore_index=1)
    loss.backward()
    assert np.isnan(loss.item()) and not z.grad.any()


def test_errors_name_the_argument():
    z = conv3d.Tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\].*ignore_index=-100.*\[7\]"):
        F.cross_entropy(z, np.array([0, 7, -100]))
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        F.cross_entropy(z, np.array([0, 1, 2]), weight=np.ones(3))
    with pytest.raises(TypeError, match="weight must be a float array"):
        F.cross_entropy(z, np.array([0, 1, 2]), weight=np.ones(4, np.int64))
    with pytest.raises(TypeError, match="mixed dtypes"):  # never upcast silently
        F.cross_entropy(conv3d.Tensor(np.zeros((3, 4), np.float32)), np.array([0, 1, 2]),
                        weight=np.ones(4))
    with pytest.raises(ValueError, match="label_smoothing must lie in"):
        F.cross_entropy(z, np.array([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none'"):
        F.cross_entropy(z, np.array([0, 1, 2]), reduction="avg")
    with pytest.raises(TypeError, match="ignore_index must be an int"):
        F.cross_entropy(z, np.array([0, 1, 2]), ignore_index=None)
    with pytest.raises(ValueError, match="1-D float array"):
        nn.CrossEntropyLoss(weight=np.ones((2, 2)))


def test_module_passes_its_settings_and_saves_the_weight():
    rng = np.random.default_rng(2)
    z, labels, w = rng.standard_normal((6, 4)), np.array([0, 1, 2, 3, -1, 1]), rng.uniform(1, 2, 4)
    loss = nn.CrossEntropyLoss(weight=w, ignore_index=-1, reduction="sum", label_smoothing=0.1)
    np.testing.assert_allclose(loss(conv3d.Tensor(z), labels).numpy(),
                               loop_reference(z, labels, w, -1, 0.1, "sum"), rtol=1e-12)
    assert list(loss.state_dict()) == ["weight"]
    assert list(nn.CrossEntropyLoss().state_dict()) == []


@st.composite
def ce_cases(draw):
    N, C = draw(st.integers(1, 6)), draw(st.integers(2, 5))
    return (N, C, draw(st.booleans()), draw(st.sampled_from([-100, 0, 1])),
            draw(st.sampled_from(["mean", "sum", "none"])), draw(st.sampled_from([0.0, 0.1, 0.7])),
            draw(st.sampled_from([np.float32, np.float64])), draw(st.integers(0, 2**31 - 1)))


@settings(max_examples=40)
@given(ce_cases())
def test_matches_torch(case):
    torch = pytest.importorskip("torch")
    N, C, weighted, ignore, reduction, eps, dtype, seed = case
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((N, C)) * 3).astype(dtype)
    labels = rng.integers(0, C, N)
    if ignore == -100:
        labels[rng.random(N) < 0.3] = -100
    w = rng.uniform(0.2, 3.0, C).astype(dtype) if weighted else None
    a, t = conv3d.Tensor(z.copy(), requires_grad=True), torch.tensor(z, requires_grad=True)
    ours = nn.CrossEntropyLoss(w, ignore, reduction, eps)(a, labels)
    theirs = torch.nn.CrossEntropyLoss(None if w is None else torch.from_numpy(w),
                                       ignore_index=ignore, reduction=reduction,
                                       label_smoothing=eps)(t, torch.from_numpy(labels))
    tol = dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    assert ours.dtype == dtype and ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), equal_nan=True, **tol)
    gy = rng.standard_normal(ours.shape).astype(dtype)
    ours.backward(gy)
    theirs.backward(torch.from_numpy(np.asarray(gy)))
    np.testing.assert_allclose(a.grad, t.grad.numpy(), **tol)
