"""``conv3d bench --suite models``: whole networks, conv3d against PyTorch in the same run.

For r3d_18 and r2plus1d_18 (``conv3d.models.get_model(name, num_classes=400)`` against
torchvision's class of the same name, loaded through ``tvload``):

* inference, eval mode, no gradients, on 3x16x112x112 clips at batch 1 and 8;
* one training step (zero_grad, forward, cross-entropy, backward, SGD step) at batch 2.

The torch model's initial weights are loaded into conv3d's model
(``conv3d.interop.load_torch_state_dict``), so both compute the same function, and PyTorch's
output (the logits) is the reference conv3d's is checked against before anything is timed; the
training step (logits, loss and every parameter's gradient) is checked on float64 twins of both
models, then timed in float32. A row that cannot run says why (no torch,
no torchvision, or a conv3d without that model).
"""
from __future__ import annotations

import copy

import numpy as np

import conv3d
import conv3d.functional as F
from conv3d import optim

from .cases import torch_module
from .harness import Case, Impl

RTOL = 2e-3    # float32 inference, relative to the largest logit
RTOL64 = 1e-6  # the training step's check, in float64: summation order only

MODELS = ("r3d_18", "r2plus1d_18")
CLIP = (3, 16, 112, 112)
INFERENCE_BATCHES = (1, 8)
TRAIN_BATCH = 2
OURS, PEER = "conv3d", "PyTorch (peer)"


def _data(batch, clip, classes, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch,) + tuple(clip), dtype=np.float32),
            rng.integers(0, classes, batch))


def _inference(model, x):
    xt = conv3d.Tensor(x)

    def run():
        with conv3d.no_grad():
            return [model(xt).numpy()]
    return run


def _torch_inference(torch, model, x):
    xt = torch.from_numpy(x)

    def run():
        with torch.no_grad():
            return [model(xt).numpy()]
    return run


def _train_step(model, x, labels, torch_names, lr):
    """One SGD step; returns the logits, the loss and every gradient in torch's name order."""
    opt = optim.SGD(model.parameters(), lr=lr)
    xt = conv3d.Tensor(x)
    params = dict(model.named_parameters())

    def run():
        opt.zero_grad()
        logits = model(xt)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        grads = {torch_names[k]: np.asarray(p.grad) for k, p in params.items()}
        opt.step()
        return [logits.numpy(), np.array(loss.item())] + [grads[k] for k in sorted(grads)]
    return run


def _torch_train_step(torch, model, x, labels, lr):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    xt, lt = torch.from_numpy(x), torch.from_numpy(labels)
    params = dict(model.named_parameters())

    def run():
        opt.zero_grad()
        logits = model(xt)
        loss = torch.nn.functional.cross_entropy(logits, lt)
        loss.backward()
        grads = {k: p.grad.numpy().copy() for k, p in params.items()}
        opt.step()
        return [logits.detach().numpy(), np.array(loss.item())] + [grads[k] for k in sorted(grads)]
    return run


def network_cases(label, build_ours, build_theirs, clip=CLIP, classes=400,
                  batches=INFERENCE_BATCHES, train_batch=TRAIN_BATCH, skip=None, lr=0.01):
    """Inference cases at ``batches`` and one training-step case for one network.

    ``build_ours()`` returns the conv3d model, ``build_theirs()`` the torch model (random
    weights); every case builds a fresh pair and loads the torch weights into the conv3d model.
    ``skip`` (a reason) makes every row skipped."""
    torch = torch_module()
    if skip is None and torch is None:
        skip = "torch not installed"
    cases = []
    for mode, batch in [("inference", b) for b in batches] + [("training step", train_batch)]:
        bench = f"{label} {mode}"
        shape = f"N={batch}"
        if skip:
            cases.append(Case(bench, shape, [Impl(OURS, None, skip=skip),
                                             Impl(PEER, None, skip=skip, is_peer=True)]))
            continue
        cases.append(_pair_case(torch, bench, shape, mode, batch, build_ours, build_theirs,
                                clip, classes, lr))
    return cases


def _pair_case(torch, bench, shape, mode, batch, build_ours, build_theirs, clip, classes, lr):
    from conv3d.interop import load_torch_state_dict, name_map  # noqa: PLC0415
    theirs = build_theirs()
    ours = build_ours()
    load_torch_state_dict(ours, theirs.state_dict())
    x, labels = _data(batch, clip, classes)
    rtol, detail = RTOL, ""
    if mode == "inference":
        ours.eval(), theirs.eval()
        runs = _inference(ours, x), _torch_inference(torch, theirs, x)
    else:
        # the check runs float64 twins (same weights): float32 training-step gradients of a deep
        # random ReLU network are chaotic, since rounding flips ReLUs near zero (on r2plus1d_18
        # at batch 1 PyTorch's own float32 gradients differ from its float64 ones by up to 30%
        # and more on some arrays); in float64 both must agree to RTOL64
        ours64 = build_ours()
        load_torch_state_dict(ours64, theirs.state_dict())
        ours64.astype(np.float64).train()
        theirs64 = copy.deepcopy(theirs).double().train()
        ours.train(), theirs.train()
        names = {k: v for k, v in name_map(ours).items() if v is not None}
        x64 = x.astype(np.float64)
        runs = (_check_first(_train_step(ours64, x64, labels, names, lr),
                             _train_step(ours, x, labels, names, lr)),
                _check_first(_torch_train_step(torch, theirs64, x64, labels, lr),
                             _torch_train_step(torch, theirs, x, labels, lr)))
        rtol = RTOL64
        detail = (f"Checked in float64: conv3d's float64 step (logits, loss, every gradient) "
                  f"against PyTorch's from the same weights, within {RTOL64:.0e}; the timed "
                  f"steps are float32.")
    return Case(bench, shape, [Impl(OURS, runs[0], workspace="measured"),
                               Impl(PEER, runs[1], is_peer=True, note="the reference")],
                PEER, rtol=rtol, detail=detail)


def _check_first(check, timed):
    """run(): the first call (the harness's agreement check) returns ``check()`` and makes one
    ``timed()`` call as the float32 step's warm-up; later calls are ``timed()``."""
    calls = []

    def run():
        calls.append(1)
        if len(calls) > 1:
            return timed()
        out = check()
        timed()
        return out
    return run


def model_cases(names=MODELS, batches=INFERENCE_BATCHES, train_batch=TRAIN_BATCH):
    """The cases of ``--suite models`` for torchvision's ``names``."""
    from conv3d import models  # noqa: PLC0415
    from .tvload import video_models  # noqa: PLC0415
    try:
        tv, tv_reason = video_models(), None
    except ImportError as exc:
        tv, tv_reason = {}, str(exc)
    cases = []
    for name in names:
        skip = (f"conv3d.models has no {name}" if name not in models.list_models()
                else tv_reason)
        cases += network_cases(
            name, lambda n=name: models.get_model(n, num_classes=400),
            lambda n=name: tv[n](num_classes=400), batches=batches, train_batch=train_batch,
            skip=skip)
    return cases
