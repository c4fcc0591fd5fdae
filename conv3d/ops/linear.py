"""The dense (fully connected) layer as a function: ``y = x @ W^T + b``."""
from __future__ import annotations

from ..core.tensor import Function, Tensor, as_tensor, check_float_dtypes


class LinearFunction(Function):
    """x (..., IN), W (OUT, IN), b (OUT,) -> y (..., OUT).

    Backward: dx = gy @ W, dW = gy^T @ x (summed over all leading axes), db = gy summed likewise.
    """

    def forward(self, x, w, b=None):
        check_float_dtypes("linear", input=x, weight=w, bias=b)
        self.x, self.w = x, w
        y = x @ w.T
        if b is not None:
            y += b
        return y

    def backward(self, gy):
        OUT, IN = self.w.shape
        gx = gy @ self.w
        gw = gy.reshape(-1, OUT).T @ self.x.reshape(-1, IN)
        if len(self.inputs) == 3:
            return gx, gw, gy.reshape(-1, OUT).sum(axis=0)
        return gx, gw


def linear(x, weight, bias=None) -> Tensor:
    """Apply ``y = x @ weight.T + bias``, as ``torch.nn.functional.linear``.

    Args:
        x: (..., IN); weight: (OUT, IN); bias: (OUT,) or None.
    """
    x, weight = as_tensor(x), as_tensor(weight)
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape "
                         f"{weight.shape}")
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input has {x.shape[-1] if x.ndim else 0} features (shape "
                         f"{x.shape}) but weight {weight.shape} expects {weight.shape[1]}; flatten "
                         f"the input first (F.flatten(x)) or build the layer with "
                         f"in_features={x.shape[-1] if x.ndim else 0}")
    if bias is None:
        return LinearFunction()(x, weight)
    bias = as_tensor(bias)
    if bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},) to match weight "
                         f"{weight.shape}, got {bias.shape}")
    return LinearFunction()(x, weight, bias)
