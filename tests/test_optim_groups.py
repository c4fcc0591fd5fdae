"""Parameter groups, add_param_group, Adam(amsgrad=True), AdamW and per-group schedules, against
torch.optim run on the same parameters and gradients in float64 (parameters to 1e-10), plus
checkpointing with groups and loading the single-group format of earlier versions."""
import numpy as np
import pytest

import conv3d
from conv3d import Tensor, nn
from conv3d.optim import SGD, Adam, AdamW, CosineAnnealingLR, LinearLR, MultiStepLR, StepLR

torch = pytest.importorskip("torch")
STEPS = 6
SHAPES = ((3, 4), (5,), (2, 2), (4,))


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in SHAPES]


def gradients(seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]


def groups_of(params, options):
    """[{'params': [p0, p1], **options[0]}, {'params': [p2, p3], **options[1]}]"""
    return [{"params": params[:2], **options[0]}, {"params": params[2:], **options[1]}]


def run_pair(ours_cls, theirs_cls, options, kw, between=None, steps=STEPS):
    """Run our optimizer and torch's side by side; ``between(step, ours, theirs)`` may change
    both before a step. Returns both parameter lists as NumPy arrays."""
    start = make_params()
    ours_p = [Tensor(a.copy(), requires_grad=True) for a in start]
    theirs_p = [torch.tensor(a.copy(), requires_grad=True) for a in start]
    ours = ours_cls(groups_of(ours_p, options), **kw)
    theirs = theirs_cls(groups_of(theirs_p, options), **kw)
    for step, grads in enumerate(gradients()[:steps]):
        if between is not None:
            between(step, ours, theirs, ours_p, theirs_p)
        for p, tp, g in zip(ours_p, theirs_p, grads):
            p.grad, tp.grad = g.copy(), torch.from_numpy(g.copy())
        ours.step()
        theirs.step()
    return [p.numpy() for p in ours_p], [tp.detach().numpy() for tp in theirs_p]


def assert_same(pair):
    for ours, theirs in zip(*pair):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10)


CASES = [
    (SGD, dict(lr=0.1, momentum=0.9), [dict(lr=0.01), dict(weight_decay=0.1, nesterov=True)]),
    (SGD, dict(lr=0.05), [dict(momentum=0.5, dampening=0.2), dict()]),
    (Adam, dict(lr=0.01), [dict(lr=1e-3, weight_decay=0.05), dict(betas=(0.8, 0.99))]),
    (Adam, dict(lr=0.02, amsgrad=True), [dict(), dict(amsgrad=False, eps=1e-6)]),
    (AdamW, dict(lr=0.01), [dict(weight_decay=0.1), dict()]),  # torch's default 0.01 in group 1
    (AdamW, dict(lr=0.01, amsgrad=True, weight_decay=0.2), [dict(lr=0.1), dict(lr=1e-3)]),
]


@pytest.mark.parametrize("cls, kw, options", CASES)
def test_groups_match_torch(cls, kw, options):
    assert_same(run_pair(cls, getattr(torch.optim, cls.__name__), options, kw))


def test_amsgrad_differs_from_adam_on_these_gradients():
    """So that the amsgrad parity above checks something amsgrad does."""
    plain = run_pair(Adam, torch.optim.Adam, [{}, {}], dict(lr=0.02))[0]
    ams = run_pair(Adam, torch.optim.Adam, [{}, {}], dict(lr=0.02, amsgrad=True))[0]
    assert any(np.abs(a - b).max() > 1e-6 for a, b in zip(plain, ams))


def test_adamw_defaults_are_torchs():
    p = [Tensor(np.ones(2), requires_grad=True)]
    group = AdamW(p).param_groups[0]
    t = torch.optim.AdamW([torch.ones(2, requires_grad=True)]).param_groups[0]
    for k in ("lr", "betas", "eps", "weight_decay", "amsgrad"):
        assert group[k] == t[k], k


def test_writing_a_groups_lr_between_steps():
    def between(step, ours, theirs, *_):
        if step == 2:
            ours.param_groups[1]["lr"] = theirs.param_groups[1]["lr"] = 0.5
            ours.param_groups[0]["weight_decay"] = theirs.param_groups[0]["weight_decay"] = 0.3
    assert_same(run_pair(SGD, torch.optim.SGD, [{}, {}], dict(lr=0.1, momentum=0.9), between))


def test_add_param_group_after_some_steps():
    def run(opt_cls, tensor, extra_of):
        start = make_params()
        ps = [tensor(a) for a in start]
        opt = opt_cls(ps[:2], lr=0.01)
        for step, grads in enumerate(gradients()):
            if step == 3:
                opt.add_param_group({"params": ps[2:], "lr": 0.1, "amsgrad": True})
            for p, g in zip(ps, grads):
                p.grad = extra_of(g)
            opt.step()
        return ps
    ours = run(Adam, lambda a: Tensor(a.copy(), requires_grad=True), lambda g: g.copy())
    theirs = run(torch.optim.Adam, lambda a: torch.tensor(a.copy(), requires_grad=True),
                 lambda g: torch.from_numpy(g.copy()))
    for p, tp in zip(ours, theirs):
        np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("sched, kw", [(StepLR, dict(step_size=2, gamma=0.5)),
                                       (CosineAnnealingLR, dict(T_max=4, eta_min=1e-3)),
                                       (MultiStepLR, dict(milestones=[1, 3, 3], gamma=0.3)),
                                       (LinearLR, dict(start_factor=0.1, total_iters=4))])
def test_schedulers_work_per_group(sched, kw):
    ours_p = [Tensor(a, requires_grad=True) for a in make_params()]
    theirs_p = [torch.tensor(a, requires_grad=True) for a in make_params()]
    ours = SGD(groups_of(ours_p, [dict(lr=1e-3), dict()]), lr=0.1)
    theirs = torch.optim.SGD(groups_of(theirs_p, [dict(lr=1e-3), dict()]), lr=0.1)
    s, ts = sched(ours, **kw), getattr(torch.optim.lr_scheduler, sched.__name__)(theirs, **kw)
    assert s.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12)
    for _ in range(6):
        theirs.step()
        ts.step()
        s.step()
        assert s.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12)
    restored = sched(SGD(groups_of([Tensor(a, requires_grad=True) for a in make_params()],
                                   [dict(lr=1e-3), dict()]), lr=0.1), **kw)
    restored.load_state_dict(s.state_dict())
    assert restored.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12)


def test_state_dict_with_groups_resumes_exactly():
    def fresh(params):
        return Adam(groups_of(params, [dict(lr=0.05, amsgrad=True), dict(weight_decay=0.1)]),
                    lr=0.01)
    straight = [Tensor(a, requires_grad=True) for a in make_params()]
    opt = fresh(straight)
    for grads in gradients():
        for p, g in zip(straight, grads):
            p.grad = g.copy()
        opt.step()
    resumed = [Tensor(a, requires_grad=True) for a in make_params()]
    opt = fresh(resumed)
    for grads in gradients()[:3]:
        for p, g in zip(resumed, grads):
            p.grad = g.copy()
        opt.step()
    opt.param_groups[1]["lr"] = 0.2  # a changed option travels with the checkpoint
    state = opt.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert "state.0.max_exp_avg_sq" in state and "group.1.lr" in state
    opt = fresh(resumed)
    opt.load_state_dict(state)
    assert opt.param_groups[1]["lr"] == 0.2 and opt.param_groups[0]["amsgrad"] is True
    opt.param_groups[1]["lr"] = 0.01
    for grads in gradients()[3:]:
        for p, g in zip(resumed, grads):
            p.grad = g.copy()
        opt.step()
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_the_single_group_format_of_earlier_versions_still_loads():
    params = [Tensor(a, requires_grad=True) for a in make_params()]
    opt = Adam(groups_of(params, [dict(), dict()]))
    opt.load_state_dict({"hyper.lr": np.asarray(0.25), "hyper.beta1": np.asarray(0.8),
                         "hyper.beta2": np.asarray(0.95), "hyper.eps": np.asarray(1e-6),
                         "hyper.weight_decay": np.asarray(0.0)})
    for group in opt.param_groups:
        assert group["lr"] == 0.25 and group["betas"] == (0.8, 0.95) and group["eps"] == 1e-6
    sched = StepLR(SGD(params, lr=0.5), step_size=1, gamma=0.5)
    sched.load_state_dict({"last_epoch": np.asarray(2), "base_lr": np.asarray(0.8)})
    assert sched.get_last_lr() == [pytest.approx(0.2)]


def test_group_errors():
    params = [Tensor(a, requires_grad=True) for a in make_params()]
    with pytest.raises(ValueError, match="appears more than once"):
        SGD([{"params": params[:2]}, {"params": params[1:]}], lr=0.1)
    with pytest.raises(TypeError, match="'params' entry"):
        SGD([{"lr": 0.1}], lr=0.1)
    with pytest.raises(ValueError, match="lr must be a number >= 0"):
        SGD([{"params": params, "lr": -1.0}], lr=0.1)
    with pytest.raises(ValueError, match="betas must lie in"):
        Adam([{"params": params, "betas": (0.9, 1.5)}])
    opt = SGD(params, lr=0.1)
    with pytest.raises(ValueError, match="appears more than once"):
        opt.add_param_group({"params": params[:1]})
    two = SGD(groups_of(params, [dict(), dict()]), lr=0.1)
    with pytest.raises(KeyError, match="parameter group 1 but the optimizer has 1"):
        SGD(params, lr=0.1).load_state_dict(two.state_dict())
    with pytest.raises(ValueError, match="group 0 had 2 parameters when saved"):
        SGD([{"params": params[:3]}, {"params": params[3:]}], lr=0.1).load_state_dict(
            two.state_dict())


def test_a_frozen_backbone_stays_put_while_the_head_trains_as_in_torch():
    rng = np.random.default_rng(3)
    backbone, head = nn.Conv3d(2, 3, 2, dtype=np.float64), nn.Linear(3, 4, dtype=np.float64)
    tb, th = torch.nn.Conv3d(2, 3, 2).double(), torch.nn.Linear(3, 4).double()
    with torch.no_grad():
        for ours, theirs in ((backbone, tb), (head, th)):
            theirs.weight.copy_(torch.from_numpy(ours.weight.numpy()))
            theirs.bias.copy_(torch.from_numpy(ours.bias.numpy()))
    frozen = [p.numpy().copy() for p in backbone.parameters()]
    full = backbone.num_parameters(trainable_only=True)
    assert backbone.requires_grad_(False) is backbone
    assert backbone.num_parameters(trainable_only=True) == 0 and full == 2 * 2 * 2 * 2 * 3 + 3
    tb.requires_grad_(False)
    x = conv3d.Tensor(rng.standard_normal((2, 2, 3, 3, 3)), requires_grad=True)
    tx = torch.tensor(x.numpy(), requires_grad=True)
    opt = SGD(list(backbone.parameters()) + list(head.parameters()), lr=0.1, momentum=0.9,
              weight_decay=0.1)
    topt = torch.optim.SGD(list(tb.parameters()) + list(th.parameters()), lr=0.1, momentum=0.9,
                           weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        topt.zero_grad()
        x.grad, tx.grad = None, None
        head(backbone(x).mean(axis=(2, 3, 4))).sum().backward()
        th(tb(tx).mean(dim=(2, 3, 4))).sum().backward()
        opt.step()
        topt.step()
    assert all(p.grad is None for p in backbone.parameters())
    for p, before in zip(backbone.parameters(), frozen):
        np.testing.assert_array_equal(p.numpy(), before)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-10)  # flows through the frozen
    np.testing.assert_allclose(head.weight.numpy(), th.weight.detach().numpy(), rtol=1e-10,
                               atol=1e-10)
    np.testing.assert_allclose(head.bias.numpy(), th.bias.detach().numpy(), rtol=1e-10,
                               atol=1e-10)


def test_scheduler_argument_errors():
    opt = SGD([Tensor(np.ones(2), requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="milestones must be ints >= 1"):
        MultiStepLR(opt, milestones=[0, 2])
    with pytest.raises(ValueError, match="start_factor must lie in"):
        LinearLR(opt, start_factor=0.0)
    with pytest.raises(ValueError, match="total_iters must be an int >= 1"):
        LinearLR(opt, total_iters=0)
