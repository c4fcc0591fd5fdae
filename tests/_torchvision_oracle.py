"""torchvision's video models as the oracle of the model-zoo parity tests.

torchvision's video networks (``torchvision/models/video/resnet.py`` and ``s3d.py``) are pure
Python on top of ``torch.nn``, but ``import torchvision`` loads its C extension first, and the
only wheel installable beside the CPU build of torch is built for CUDA torch, so it fails
("operator torchvision::nms does not exist"). ``conv3d.bench.tvload`` imports those files
without running torchvision's package ``__init__`` (and leaves ``sys.modules`` as it was);
this module turns its ImportError into a skip with the reason.

``video_models()`` returns the two modules and ``torchvision_module(name)`` any other pure-Python
module (``"models.resnet"``, ``"transforms._presets"``), or each skips the calling test with the
reason.
"""
from __future__ import annotations

import pytest

from conv3d.bench import tvload


def torchvision_module(name: str):
    """``torchvision.<name>``, imported by ``conv3d.bench.tvload``; skips the test if absent."""
    try:
        return tvload.torchvision_module(name)
    except ImportError as exc:
        pytest.skip(str(exc))


def video_models():
    """``(resnet, s3d)``: torchvision.models.video.resnet and .s3d; skips the test if absent."""
    return torchvision_module("models.video.resnet"), torchvision_module("models.video.s3d")


# ---- helpers shared by the parity tests -------------------------------------------------------
def randomize_batchnorm(torch_model, seed: int = 0):
    """Give every BatchNorm3d non-trivial affine parameters and running statistics (a fresh
    model has weight 1, bias 0, mean 0, var 1, under which a wrong mapping of them would pass)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in torch_model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                C = m.num_features
                m.weight.copy_(0.5 + torch.rand(C, generator=gen))
                m.bias.copy_(0.1 * torch.randn(C, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(C, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(C, generator=gen))
    return torch_model


def rel_err(ours, theirs) -> float:
    """max |ours - theirs| / max |theirs|: the error relative to the reference's scale (an
    elementwise ratio would blow up on the entries that happen to be near zero)."""
    import numpy as np

    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    scale = np.abs(theirs).max()
    return float(np.abs(ours - theirs).max() / scale) if scale > 0 else float(np.abs(ours).max())


def torch_name_of(model):
    """conv3d state-dict key -> torchvision key, for comparing gradients and buffers by name."""
    from conv3d.interop.torch_layout import name_map

    return {ours: theirs for ours, theirs in name_map(model).items() if theirs is not None}


def compare_training_step(ours, theirs, x, seed: int = 1):
    """One forward/backward in training mode on float64 copies of both models, with the loss
    sum(output * R) for a fixed random R. Returns (max rel. error of the outputs, {torch key:
    rel. error} of every parameter's gradient and of every running statistic after the step)."""
    import numpy as np
    import torch

    from conv3d import Tensor

    ours.astype(np.float64).train()
    theirs.double().train()
    out_t = theirs(torch.from_numpy(x))
    R = np.random.default_rng(seed).standard_normal(tuple(out_t.shape))
    (out_t * torch.from_numpy(R)).sum().backward()
    out_o = ours(Tensor(x))
    (out_o * Tensor(R)).sum().backward()
    names = torch_name_of(ours)
    t_params, t_buffers = dict(theirs.named_parameters()), dict(theirs.named_buffers())
    errors = {}
    for key, p in ours.named_parameters():
        errors[names[key]] = rel_err(p.grad, t_params[names[key]].grad.numpy())
    for key, b in ours.named_buffers():
        if key.endswith(("running_mean", "running_var")):
            errors[names[key]] = rel_err(b, t_buffers[names[key]].numpy())
    return rel_err(out_o.numpy(), out_t.detach().numpy()), errors
