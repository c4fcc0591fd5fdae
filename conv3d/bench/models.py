"""``conv3d bench --suite models``: whole networks, conv3d against PyTorch in the same run.

For r3d_18 and r2plus1d_18 (``conv3d.models.get_model(name, num_classes=400)`` against
torchvision's class of the same name, loaded through ``tvload``):

* inference, eval mode, no gradients, on 3x16x112x112 clips at batch 1 and 8;
* one training step (zero_grad, forward, cross-entropy, backward, SGD step) at batch 2.

The torch model's initial weights are loaded into conv3d's model
(``conv3d.interop.load_torch_state_dict``), so both compute the same function, and PyTorch's
output (the logits) is the reference conv3d's is checked against before anything is timed; for
the training step (logits, loss and every parameter's gradient) the reference is PyTorch's
float64 step, with a tolerance per array (see ``float32_error``). A row that cannot run says why (no torch,
no torchvision, or a conv3d without that model).
"""
from __future__ import annotations

import copy

import numpy as np

import conv3d
import conv3d.functional as F
from conv3d import optim

from .cases import torch_module
from .harness import Case, Impl, errors

RTOL = 2e-3      # inference, and the floor of the training step's tolerance
FLOAT32_X = 3.0  # the training step may err up to this many times PyTorch's own float32 error

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
    rtol, detail, reference = RTOL, "", PEER
    if mode == "inference":
        ours.eval(), theirs.eval()
        runs = _inference(ours, x), _torch_inference(torch, theirs, x)
    else:
        ours.train(), theirs.train()
        names = {k: v for k, v in name_map(ours).items() if v is not None}
        own, double = float32_error(torch, theirs, x, labels, lr)
        rtol = [max(RTOL, FLOAT32_X * e) for e in own]
        loose = [t for t in rtol if t > RTOL]

        def reference():
            return double
        detail = (f"Reference: PyTorch's float64 step from the same weights. Tolerance per "
                  f"array (logits, loss, each gradient): {FLOAT32_X:.0f}x PyTorch's own float32 "
                  f"error on that array, at least {RTOL:.0e}; {len(loose)} of {len(rtol)} "
                  f"arrays above {RTOL:.0e}"
                  + (f", the loosest {max(loose):.1e}." if loose else "."))
        runs = (_train_step(ours, x, labels, names, lr),
                _torch_train_step(torch, theirs, x, labels, lr))
    return Case(bench, shape, [Impl(OURS, runs[0], workspace="measured"),
                               Impl(PEER, runs[1], is_peer=True,
                                    note="the reference" if reference == PEER else "")],
                reference, rtol=rtol, detail=detail)


def float32_error(torch, model, x, labels, lr):
    """PyTorch's own float32 error in one training step, per array: its float32 step (logits,
    loss, every gradient) against its float64 step from the same weights (``harness.errors``).
    Returns the errors and the float64 step's arrays (the reference of the training case).

    The training step's tolerance rests on it, array by array, because float32 rounding grows
    through a deep network with BatchNorm in training mode: in r3d_18 at batch 1 some of
    PyTorch's float32 weight gradients differ from its float64 ones by 1% to 10% of their largest
    magnitude, so a fixed 2e-3 would fail PyTorch itself, and one loose tolerance for all arrays
    would check none of them."""
    single = _torch_train_step(torch, copy.deepcopy(model), x, labels, lr)()
    double = _torch_train_step(torch, copy.deepcopy(model).double(), x.astype(np.float64),
                               labels, lr)()
    return errors(single, double), double


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
