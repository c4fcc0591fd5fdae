"""Shape ops in functional form."""
from __future__ import annotations

from ..core import arith
from ..core.tensor import Tensor, as_tensor


def flatten(x, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    """Merge axes ``start_dim..end_dim``; the default keeps the batch axis, as ``nn.Flatten``."""
    x = as_tensor(x)
    return arith.flatten(x, start_dim, end_dim)
