"""Inverted dropout: zero each element with probability p and scale the rest by 1/(1-p)."""
from __future__ import annotations

import numpy as np

from ..core.backend import get_array_module
from ..core.tensor import Function, Tensor, as_tensor

_rng = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed the generator that dropout draws its masks from (for reproducible training)."""
    global _rng
    _rng = np.random.default_rng(seed)


class DropoutFunction(Function):
    """y = x * mask / (1 - p); the same mask scales the gradient."""

    def __init__(self, p, rng):
        self.p, self.rng = p, rng

    def forward(self, x):
        xp = get_array_module(x)
        keep = self.rng.random(x.shape) >= self.p  # drawn on the host: the same masks on every device
        scale = 0.0 if self.p == 1 else 1.0 / (1.0 - self.p)
        self.mask = xp.asarray(keep.astype(x.dtype) * x.dtype.type(scale))
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask


def dropout(x, p: float = 0.5, training: bool = True, rng=None) -> Tensor:
    """Inverted dropout, as ``torch.nn.functional.dropout``: identity when ``training`` is False.

    ``rng`` is a ``numpy.random.Generator`` (default: the module's, seeded by ``manual_seed``).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p is the probability of zeroing an element and must lie in "
                         f"[0, 1], got {p}")
    x = as_tensor(x)
    if not training or p == 0.0:
        return x
    return DropoutFunction(p, rng if rng is not None else _rng)(x)
