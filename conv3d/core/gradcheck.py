"""Finite-difference gradient checking: the test every ``Function.backward`` must pass.

For a function f of tensors, pick a fixed random "upstream gradient" v of f's output shape and
look at the scalar L = sum(v * f(inputs)). Backward gives dL/dx analytically. Central differences
give it numerically, one element at a time::

    dL/dx[i] ~= (L(x + eps*e_i) - L(x - eps*e_i)) / (2*eps)

The two must agree to ``atol + rtol*|numeric|``. This only works in float64: in float32 the
rounding error of L swamps the difference quotient.
"""
from __future__ import annotations

import numpy as np

from .backend import get_array_module
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised by ``gradcheck`` when an analytic gradient disagrees with finite differences."""


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              seed: int = 0) -> bool:
    """Check ``fn``'s gradients with respect to every input that requires grad.

    Args:
        fn: callable taking ``*inputs`` and returning a Tensor.
        inputs: a Tensor or a sequence of Tensors, float64. Those with ``requires_grad=True``
            are checked.
        eps, atol, rtol: step size and tolerances.
        seed: seeds the random upstream gradient v.

    Returns ``True``; raises ``GradcheckError`` naming the input, the element and both values on
    the first mismatch.

    >>> import numpy as np, conv3d, conv3d.functional as F
    >>> rng = np.random.default_rng(0)
    >>> x = conv3d.Tensor(rng.standard_normal((1, 1, 2, 3, 3)), requires_grad=True)  # float64
    >>> w = conv3d.Tensor(rng.standard_normal((1, 1, 2, 2, 2)), requires_grad=True)
    >>> conv3d.gradcheck(lambda x, w: F.conv3d(x, w, stride=2, padding=1), [x, w])
    True
    """
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = tuple(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, so there is nothing to check")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} has dtype {inputs[i].dtype}; finite differences "
                            f"need float64, so pass Tensor(x.astype(np.float64), requires_grad=True)")

    out = fn(*inputs)
    xp = get_array_module(out.data)
    v = xp.asarray(np.random.default_rng(seed).standard_normal(out.shape), dtype=out.dtype)

    def scalar_loss() -> float:
        return float((fn(*inputs).data * v).sum())

    for i in checked:
        inputs[i].grad = None
        # finite differences perturb the data in place through a flat view: make one exist
        inputs[i].data = xp.ascontiguousarray(inputs[i].data)
    out = fn(*inputs)
    out.backward(v)

    for i in checked:
        t = inputs[i]
        analytic = t.grad if t.grad is not None else xp.zeros_like(t.data)
        flat = t.data.reshape(-1)  # a view: perturbing it perturbs the input in place
        for j in range(flat.size):
            original = float(flat[j])
            flat[j] = original + eps
            plus = scalar_loss()
            flat[j] = original - eps
            minus = scalar_loss()
            flat[j] = original
            numeric = (plus - minus) / (2 * eps)
            got = float(analytic.reshape(-1)[j])
            if abs(got - numeric) > atol + rtol * abs(numeric):
                index = np.unravel_index(j, t.shape)
                raise GradcheckError(
                    f"gradcheck: input {i} (shape {t.shape}) element {tuple(map(int, index))}: "
                    f"backward gave {got:.10g}, finite differences give {numeric:.10g} "
                    f"(atol={atol}, rtol={rtol})")
    return True
