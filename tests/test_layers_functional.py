"""linear, relu, softmax, log_softmax, cross_entropy, dropout, batch_norm and flatten.

References are written here from the textbook formulas (and torch where installed); gradients are
checked by finite differences.
"""
import numpy as np
import pytest

from conv3d import Tensor, gradcheck
from conv3d.ops.activation import log_softmax, relu, softmax
from conv3d.ops.dropout import dropout
from conv3d.ops.linear import linear
from conv3d.ops.loss import cross_entropy
from conv3d.ops.normalization import batch_norm
from conv3d.ops.shape import flatten

rng = np.random.default_rng(0)


def T(*shape, grad=True):
    return Tensor(rng.standard_normal(shape), requires_grad=grad)


def test_linear_matches_formula_and_gradcheck():
    x, w, b = T(4, 5), T(3, 5), T(3)
    expected = np.einsum("ni,oi->no", x.data, w.data) + b.data
    np.testing.assert_allclose(linear(x, w, b).numpy(), expected, rtol=1e-12)
    assert gradcheck(lambda x, w, b: linear(x, w, b), [x, w, b])
    assert gradcheck(lambda x, w: linear(x, w), [T(2, 3, 5), w])


def test_relu_and_its_gradient():
    x = Tensor(np.array([-1.5, 0.5, 2.0, -0.1]), requires_grad=True)
    y = relu(x)
    np.testing.assert_array_equal(y.numpy(), [0.0, 0.5, 2.0, 0.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 1.0, 0.0])
    assert gradcheck(relu, [Tensor(np.array([-1.0, 0.3, 2.0]), requires_grad=True)])


def test_softmax_and_log_softmax_are_stable_and_correct():
    x = np.array([[1000.0, 1001.0, 1002.0], [-5.0, 0.0, 5.0]])
    e = np.exp(x - x.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    np.testing.assert_allclose(softmax(Tensor(x)).numpy(), p, rtol=1e-12)
    np.testing.assert_allclose(log_softmax(Tensor(x), dim=1).numpy(), np.log(p), rtol=1e-12)
    assert np.isfinite(log_softmax(Tensor(x.astype(np.float32))).numpy()).all()
    assert gradcheck(lambda a: softmax(a, dim=0), [T(3, 4)])
    assert gradcheck(lambda a: log_softmax(a, axis=1), [T(3, 4)])


def test_cross_entropy_matches_definition_and_gradcheck():
    logits = T(5, 4)
    labels = np.array([0, 3, 1, 1, 2])
    z = logits.data
    log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
    expected = -log_p[np.arange(5), labels].mean()
    assert cross_entropy(logits, labels).item() == pytest.approx(expected, rel=1e-12)
    assert cross_entropy(logits, labels, reduction="sum").item() == pytest.approx(5 * expected)
    assert gradcheck(lambda z: cross_entropy(z, labels), [logits])
    # the composition log_softmax -> pick -> mean gives the same gradient as the fused op
    assert gradcheck(lambda z: -(log_softmax(z)[np.arange(5), labels]).mean(), [logits])


def test_cross_entropy_bad_labels():
    logits = T(3, 4)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\].*\[4\]"):
        cross_entropy(logits, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"labels must lie"):
        cross_entropy(logits, np.array([0, -1, 1]))
    with pytest.raises(TypeError, match="integer class indices"):
        cross_entropy(logits, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        cross_entropy(logits, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"labels must have shape \(3, 2\) \(one class per voxel"):
        cross_entropy(T(3, 4, 2), np.array([0, 1, 1]))  # (N, C, d1) logits need (N, d1) labels
    with pytest.raises(ValueError, match=r"logits must be \(N, classes\)"):
        cross_entropy(T(4), np.array([0]))


def test_dropout_scales_kept_units_and_masks_the_gradient():
    x = Tensor(np.ones((200, 50)), requires_grad=True)
    y = dropout(x, p=0.3, training=True, rng=np.random.default_rng(1))
    kept = y.numpy() != 0
    assert 0.65 < kept.mean() < 0.75
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.7)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, kept / 0.7)
    assert dropout(x, p=0.3, training=False) is x
    with pytest.raises(ValueError, match="p is the probability"):
        dropout(x, p=1.5)


def _bn_reference(x, gamma, beta, eps):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mu = x.mean(axis=axes).reshape(shape)
    var = ((x - mu) ** 2).mean(axis=axes).reshape(shape)
    return (x - mu) / np.sqrt(var + eps) * gamma.reshape(shape) + beta.reshape(shape)


def test_batch_norm_training_forward_running_stats_and_gradcheck():
    x = T(4, 3, 2, 3, 2)
    gamma, beta = T(3), T(3)
    rm, rv = np.zeros(3), np.ones(3)
    y = batch_norm(x, rm, rv, gamma, beta, training=True, momentum=0.1, eps=1e-5)
    np.testing.assert_allclose(y.numpy(), _bn_reference(x.data, gamma.data, beta.data, 1e-5),
                               rtol=1e-10, atol=1e-12)
    M = 4 * 2 * 3 * 2
    per_channel = x.data.transpose(1, 0, 2, 3, 4).reshape(3, -1)
    np.testing.assert_allclose(rm, 0.1 * per_channel.mean(1))
    np.testing.assert_allclose(rv, 0.9 + 0.1 * per_channel.var(1) * M / (M - 1))
    assert gradcheck(lambda x, g, b: batch_norm(x, None, None, g, b, training=True), [x, gamma, beta])
    assert gradcheck(lambda x: batch_norm(x, None, None, training=True), [T(5, 2)])


def test_batch_norm_eval_uses_running_stats():
    x, gamma, beta = T(2, 3, 2, 2, 2), T(3), T(3)
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    y = batch_norm(x, rm, rv, gamma, beta, training=False, eps=1e-3)
    shape = (1, 3, 1, 1, 1)
    expected = (x.data - rm.reshape(shape)) / np.sqrt(rv.reshape(shape) + 1e-3) * \
        gamma.data.reshape(shape) + beta.data.reshape(shape)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12)
    assert gradcheck(lambda x, g, b: batch_norm(x, rm, rv, g, b), [x, gamma, beta])
    with pytest.raises(ValueError, match="eval mode"):
        batch_norm(x)
    with pytest.raises(ValueError, match=r"running_mean must have shape \(3,\)"):
        batch_norm(x, np.zeros(4), np.ones(4))


def test_batch_norm_matches_torch():
    torch = pytest.importorskip("torch")
    x, gamma, beta = T(3, 4, 2, 3, 3), T(4), T(4)
    rm, rv = np.zeros(4), np.ones(4)
    y = batch_norm(x, rm, rv, gamma, beta, training=True)
    (y * y).sum().backward()
    tx, tg, tb = (torch.tensor(a.data, requires_grad=True) for a in (x, gamma, beta))
    trm, trv = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    ty = torch.nn.functional.batch_norm(tx, trm, trv, tg, tb, training=True)
    (ty * ty).sum().backward()
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(rv, trv.numpy(), rtol=1e-12)
    for ours, theirs in ((x, tx), (gamma, tg), (beta, tb)):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_flatten_keeps_batch_axis():
    x = T(2, 3, 4, 5)
    assert flatten(x).shape == (2, 60)
    assert flatten(x, 2).shape == (2, 3, 20)
    assert gradcheck(lambda a: flatten(a) * 2.0, [x])


def test_float32_stays_float32():
    x = Tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    w = Tensor(rng.standard_normal((2, 3)).astype(np.float32), requires_grad=True)
    loss = cross_entropy(relu(linear(x, w)), np.array([0, 1, 1, 0]))
    loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32 and w.grad.dtype == np.float32
    with pytest.raises(TypeError, match="mixed dtypes"):
        linear(x, Tensor(w.data.astype(np.float64)))
