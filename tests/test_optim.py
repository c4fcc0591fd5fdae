"""conv3d.optim: SGD and Adam against their update rules written out here from PyTorch's
documentation (and against torch.optim itself when torch is installed), the schedules against
their closed forms, and checkpointing of optimizer state."""
import math

import numpy as np
import pytest

from conv3d import Tensor
from conv3d.optim import SGD, Adam, CosineAnnealingLR, StepLR

rng = np.random.default_rng(0)
STEPS = 5


def make_params(dtype=np.float64):
    return [Tensor(rng.standard_normal(s).astype(dtype), requires_grad=True)
            for s in ((3, 4), (5,))]


def grads_sequence(params):
    g_rng = np.random.default_rng(1)
    return [[g_rng.standard_normal(p.shape).astype(p.dtype) for p in params]
            for _ in range(STEPS)]


def run(optimizer_cls, params, grads, **kw):
    opt = optimizer_cls(params, **kw)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.copy()
        opt.step()
    return [p.numpy().copy() for p in params]


def sgd_reference(p0, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                  nesterov=False):
    """torch.optim.SGD's documented algorithm, for one parameter."""
    p, b = p0.copy(), None
    for g in grads:
        g = g + weight_decay * p
        if momentum:
            b = g.copy() if b is None else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        p = p - lr * g
    return p


def adam_reference(p0, grads, lr, beta1, beta2, eps, weight_decay=0.0):
    """torch.optim.Adam's documented algorithm (amsgrad off), for one parameter."""
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t, g in enumerate(grads, start=1):
        g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


SGD_CASES = [dict(lr=0.1), dict(lr=0.05, momentum=0.9), dict(lr=0.05, momentum=0.8, dampening=0.3),
             dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
             dict(lr=0.02, weight_decay=0.1)]
ADAM_CASES = [dict(lr=1e-3), dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)]


@pytest.mark.parametrize("kw", SGD_CASES)
def test_sgd_matches_formula(kw):
    params = make_params()
    p0 = [p.numpy().copy() for p in params]
    grads = grads_sequence(params)
    got = run(SGD, params, grads, **kw)
    for i, start in enumerate(p0):
        expected = sgd_reference(start, [g[i] for g in grads], **kw)
        np.testing.assert_allclose(got[i], expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kw", ADAM_CASES)
def test_adam_matches_formula(kw):
    params = make_params()
    p0 = [p.numpy().copy() for p in params]
    grads = grads_sequence(params)
    got = run(Adam, params, grads, **kw)
    b1, b2 = kw.get("betas", (0.9, 0.999))
    for i, start in enumerate(p0):
        expected = adam_reference(start, [g[i] for g in grads], kw["lr"], b1, b2,
                                  kw.get("eps", 1e-8), kw.get("weight_decay", 0.0))
        np.testing.assert_allclose(got[i], expected, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("cls, kw", [(SGD, k) for k in SGD_CASES] + [(Adam, k) for k in ADAM_CASES])
def test_matches_torch_optim(cls, kw):
    torch = pytest.importorskip("torch")
    params = make_params()
    tparams = [torch.tensor(p.numpy().copy(), requires_grad=True) for p in params]
    grads = grads_sequence(params)
    got = run(cls, params, grads, **kw)
    topt = getattr(torch.optim, cls.__name__)(tparams, **kw)
    for step_grads in grads:
        for tp, g in zip(tparams, step_grads):
            tp.grad = torch.from_numpy(g.copy())
        topt.step()
    for ours, theirs in zip(got, tparams):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-13)


def test_float32_stays_float32_and_missing_grads_are_skipped():
    params = make_params(np.float32)
    before = params[1].numpy().copy()
    params[0].grad = np.ones((3, 4), np.float32)
    opt = Adam(params, lr=0.1)
    opt.step()
    assert params[0].dtype == np.float32
    np.testing.assert_array_equal(params[1].numpy(), before)  # no grad: untouched
    opt.zero_grad()
    assert all(p.grad is None for p in params)


@pytest.mark.parametrize("cls, kw", [(SGD, dict(lr=0.1, momentum=0.9)), (Adam, dict(lr=0.01))])
def test_state_dict_resume_equals_uninterrupted(cls, kw):
    grads = grads_sequence(make_params())
    a = make_params()
    start = [p.numpy().copy() for p in a]
    straight = run(cls, a, grads, **kw)
    b = [Tensor(s.copy(), requires_grad=True) for s in start]
    opt = cls(b, **kw)
    for step_grads in grads[:2]:
        for p, g in zip(b, step_grads):
            p.grad = g.copy()
        opt.step()
    state = opt.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    opt2 = cls(b, **kw)
    opt2.load_state_dict(state)
    for step_grads in grads[2:]:
        for p, g in zip(b, step_grads):
            p.grad = g.copy()
        opt2.step()
    for x, y in zip(straight, b):
        np.testing.assert_array_equal(x, y.numpy())


def test_schedules_follow_closed_forms():
    opt = SGD(make_params(), lr=0.8)
    sched = StepLR(opt, step_size=3, gamma=0.5)
    lrs = [opt.lr] + [sched.step() for _ in range(7)]
    assert lrs == pytest.approx([0.8 * 0.5 ** (e // 3) for e in range(8)])
    opt = SGD(make_params(), lr=0.8)
    sched = CosineAnnealingLR(opt, T_max=6, eta_min=0.1)
    lrs = [opt.lr] + [sched.step() for _ in range(6)]
    expected = [0.1 + 0.7 * (1 + math.cos(math.pi * e / 6)) / 2 for e in range(7)]
    assert lrs == pytest.approx(expected)
    restored = CosineAnnealingLR(SGD(make_params(), lr=0.8), T_max=6, eta_min=0.1)
    restored.load_state_dict(sched.state_dict())
    assert restored.optimizer.lr == pytest.approx(expected[-1])


def test_schedules_match_torch():
    torch = pytest.importorskip("torch")
    for ours_cls, theirs_cls, kw in ((StepLR, torch.optim.lr_scheduler.StepLR,
                                      dict(step_size=2, gamma=0.3)),
                                     (CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR,
                                      dict(T_max=5, eta_min=0.01))):
        opt = SGD(make_params(), lr=0.5)
        sched = ours_cls(opt, **kw)
        topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
        tsched = theirs_cls(topt, **kw)
        for _ in range(5):
            topt.step()
            tsched.step()
            assert sched.step() == pytest.approx(topt.param_groups[0]["lr"], rel=1e-9)


def test_optimizer_errors():
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
        SGD(make_params(), lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="lr must be a number >= 0"):
        Adam(make_params(), lr=-1)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="is not a conv3d Tensor"):
        SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match="betas must lie in"):
        Adam(make_params(), betas=(0.9, 1.0))
    with pytest.raises(KeyError, match="unknown hyper-parameter 'betas'"):
        SGD(make_params(), lr=0.1).load_state_dict(Adam(make_params()).state_dict())
