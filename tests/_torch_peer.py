"""Run one op in conv3d and in torch on the same arrays and compare forward and every gradient.

The tolerance is the one the volumetric ops promise (issue 17): relative 1e-6 in float64 and
1e-4 in float32, relative to the largest magnitude of torch's array (so values near zero are
held to the same absolute error as the rest).
"""
from __future__ import annotations

import numpy as np

import conv3d

RTOL = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 1e-4}


def assert_close(ours, theirs, dtype, what=""):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    ours = np.asarray(ours)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != torch's {theirs.shape}"
    assert ours.dtype == np.dtype(dtype), f"{what}: dtype {ours.dtype}, expected {dtype}"
    rtol = RTOL[np.dtype(dtype)]
    scale = max(1.0, float(np.abs(theirs).max())) if theirs.size else 1.0
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * scale, err_msg=what)


def compare(torch, ours_fn, torch_fn, arrays, dtype, rng, grad=None):
    """``ours_fn(*tensors)`` against ``torch_fn(*torch_tensors)``: outputs, then the gradients
    of the arrays flagged in ``grad`` (default: all) for one random upstream gradient."""
    grad = [True] * len(arrays) if grad is None else grad
    arrays = [np.asarray(a, dtype=dtype) for a in arrays]
    ours_in = [conv3d.Tensor(a.copy(), requires_grad=g) for a, g in zip(arrays, grad)]
    theirs_in = [torch.tensor(a, requires_grad=g) for a, g in zip(arrays, grad)]
    y, ty = ours_fn(*ours_in), torch_fn(*theirs_in)
    assert_close(y.numpy(), ty, dtype, "forward")
    gy = rng.standard_normal(y.shape).astype(dtype)
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    for i, (a, ta, g) in enumerate(zip(ours_in, theirs_in, grad)):
        if g:
            assert_close(a.grad, ta.grad, dtype, f"gradient of input {i}")
    return y
