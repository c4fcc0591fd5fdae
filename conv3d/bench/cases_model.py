"""Layer and model cases: a (2+1)D block against the full 3D conv with the same number of
weights, and one training step of the article's model.

Each conv3d module is paired with a PyTorch twin holding the same weights (copied parameter by
parameter), so the agreement check compares like with like; the reference of each case is the
conv3d module on the readable path (``fast.use_strategy('reference')``).
"""
from __future__ import annotations

import numpy as np

import conv3d
import conv3d.functional as F
from conv3d import nn, optim
from conv3d.ops import fast

from .cases import conv_geometry, torch_module
from .harness import Case, Impl

R21D_SHAPE = (4, 64, 8, 28, 28)  # N, C, T, H, W; K = 64, kernel 3x3x3, padding 1


def _copy_weights(ours, theirs, torch):
    """Copy conv3d parameters into the PyTorch twin, in registration order (same layouts)."""
    pairs = list(zip(ours.parameters(), theirs.parameters()))
    assert len(pairs) == len(list(theirs.parameters())), "twin models differ"
    with torch.no_grad():
        for p, q in pairs:
            assert tuple(p.shape) == tuple(q.shape), (p.shape, q.shape)
            q.copy_(torch.from_numpy(np.array(p.data)))


def _torch_r21d(torch, C, K, M):
    tnn = torch.nn
    return tnn.Sequential(tnn.Conv3d(C, M, (1, 3, 3), padding=(0, 1, 1), bias=False),
                          tnn.BatchNorm3d(M), tnn.ReLU(),
                          tnn.Conv3d(M, K, (3, 1, 1), padding=(1, 0, 0), bias=False))


def block_cases(shape=R21D_SHAPE, K=64) -> list[Case]:
    """Two cases, forward+backward: the full 3x3x3 Conv3d and the (2+1)D block."""
    N, C = shape[:2]
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape, dtype=np.float32)
    full = nn.Conv3d(C, K, 3, padding=1, bias=False, rng=0)
    block = nn.Conv2Plus1d(C, K, 3, padding=1, rng=0)
    M = block.mid_channels
    geo = conv_geometry(shape, (K, C, 3, 3, 3), padding=(1, 1, 1))
    O = int(np.prod(geo.out_size))
    flops = {"full": 3 * geo.flops(), "block": 3 * 2 * N * O * (9 * C * M + 3 * M * K)}
    torch = torch_module()
    cases = []
    for key, module, label in (("full", full, f"full 3x3x3 Conv3d {C}->{K}"),
                               ("block", block, f"(2+1)D block {C}->{M}->{K}")):
        gy = rng.standard_normal((N, K) + geo.out_size, dtype=np.float32)
        run = _module_step(module, x, gy)
        impls = [Impl("conv3d auto (fast path)", run, flops[key], "measured")]
        if torch:
            twin = (torch.nn.Conv3d(C, K, 3, padding=1, bias=False) if key == "full"
                    else _torch_r21d(torch, C, K, M))
            _copy_weights(module, twin, torch)
            impls.append(Impl("PyTorch (peer)", _torch_module_step(torch, twin, x, gy),
                              flops[key], is_peer=True))
        else:
            impls.append(Impl("PyTorch (peer)", None, skip="torch not installed", is_peer=True))

        def reference(run=run):
            with fast.use_strategy("reference"):
                return run()
        cases.append(Case(f"{label} fwd+bwd", "r21d", impls, reference))
    return cases


def _module_step(module, x, gy):
    xt = conv3d.Tensor(x, requires_grad=True)

    def run():
        module.zero_grad()
        xt.grad = None
        y = module(xt)
        y.backward(gy)
        return [y.numpy(), xt.grad] + [p.grad for p in module.parameters()]
    return run


def _torch_module_step(torch, module, x, gy):
    xt = torch.from_numpy(x).requires_grad_(True)
    gyt = torch.from_numpy(gy)

    def run():
        module.zero_grad()
        xt.grad = None
        y = module(xt)
        y.backward(gyt)
        return [y.detach().numpy(), xt.grad.numpy()] + [p.grad.numpy()
                                                        for p in module.parameters()]
    return run


# ---- one training step of the article's model ---------------------------------------------------

def article_model(dropout=0.5):
    """Conv3D(32,3,relu) MaxPool(2) BN Dropout Conv3D(64,3,relu) MaxPool(2) BN Dropout Flatten
    Dense(256,relu) Dropout Dense(10), on 3x16x16x16 inputs."""
    return nn.Sequential(
        nn.Conv3d(3, 32, 3, rng=1), nn.ReLU(), nn.MaxPool3d(2), nn.BatchNorm3d(32),
        nn.Dropout(dropout, seed=1),
        nn.Conv3d(32, 64, 3, rng=2), nn.ReLU(), nn.MaxPool3d(2), nn.BatchNorm3d(64),
        nn.Dropout(dropout, seed=2),
        nn.Flatten(), nn.Linear(64 * 2 * 2 * 2, 256, rng=3), nn.ReLU(), nn.Dropout(dropout, seed=3),
        nn.Linear(256, 10, rng=4))


def torch_article_model(torch, dropout=0.5):
    t = torch.nn
    return t.Sequential(t.Conv3d(3, 32, 3), t.ReLU(), t.MaxPool3d(2), t.BatchNorm3d(32),
                        t.Dropout(dropout), t.Conv3d(32, 64, 3), t.ReLU(), t.MaxPool3d(2),
                        t.BatchNorm3d(64), t.Dropout(dropout), t.Flatten(),
                        t.Linear(512, 256), t.ReLU(), t.Dropout(dropout), t.Linear(256, 10))


def _set_dropout(model, p):
    for m in model.modules():  # conv3d.nn and torch.nn both have Module.modules()
        if type(m).__name__ == "Dropout":
            m.p = p


def train_case(batch=128) -> Case:
    """One Adam step (zero_grad, forward, cross-entropy, backward, step) at batch 128.

    The agreement check runs the first step with dropout off (p=0) in every model, from identical
    weights, and compares the loss and the gradients of both convolutions; timing then uses
    dropout 0.5, as in training."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((batch, 3, 16, 16, 16), dtype=np.float32)
    labels = rng.integers(0, 10, batch)
    geos = [conv_geometry((batch, 3, 16, 16, 16), (32, 3, 3, 3, 3)),
            conv_geometry((batch, 32, 7, 7, 7), (64, 32, 3, 3, 3))]
    flops = geos[0].flops() * 2 + geos[1].flops() * 3  # first layer needs no input gradient
    torch = torch_module()

    def ours(context):
        model = article_model(dropout=0.0)
        opt = optim.Adam(model.parameters(), lr=1e-3)
        xt = conv3d.Tensor(x)
        first = [True]

        def run():
            if not first[0]:
                _set_dropout(model, 0.5)
            first[0] = False
            with context():
                opt.zero_grad()
                loss = F.cross_entropy(model(xt), labels)
                loss.backward()
                opt.step()
            convs = [m for m in model.modules() if isinstance(m, nn.Conv3d)]
            return [np.array(loss.item())] + [c.weight.grad for c in convs]
        return run
    impls = [Impl("conv3d auto (fast path)", ours(lambda: fast.use_strategy("auto")), flops,
                  "measured")]
    if torch:
        tmodel = torch_article_model(torch, dropout=0.0)
        _copy_weights(article_model(dropout=0.0), tmodel, torch)
        topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
        tx, tl = torch.from_numpy(x), torch.from_numpy(labels)
        first = [True]

        def theirs():
            if not first[0]:
                _set_dropout(tmodel, 0.5)
            first[0] = False
            topt.zero_grad()
            loss = torch.nn.functional.cross_entropy(tmodel(tx), tl)
            loss.backward()
            topt.step()
            convs = [m for m in tmodel.modules() if isinstance(m, torch.nn.Conv3d)]
            return [np.array(loss.item())] + [c.weight.grad.numpy() for c in convs]
        impls.append(Impl("PyTorch (peer)", theirs, flops, is_peer=True))
    else:
        impls.append(Impl("PyTorch (peer)", None, skip="torch not installed", is_peer=True))
    reference = ours(lambda: fast.use_strategy("reference"))
    return Case("training step, article model", f"N={batch}", impls, reference)
