"""Batch normalization over the channel axis of (N, C) or (N, C, D, H, W) inputs."""
from __future__ import annotations

from ..core.backend import get_array_module
from ..core.tensor import Function, Tensor, as_tensor, check_float_dtypes


class BatchNormFunction(Function):
    """y = (x - mean) / sqrt(var + eps) * gamma + beta, per channel.

    Training mode normalizes with the batch's own statistics (over N and the spatial axes,
    M values per channel) and backpropagates through them::

        xhat = (x - mean) * invstd
        dx = invstd / M * (M * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)),  dxhat = gy * gamma

    Eval mode uses the running statistics, which are constants: dx = gy * gamma * invstd.
    """

    def __init__(self, running_mean, running_var, training, momentum, eps):
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum, self.eps = training, momentum, eps

    def forward(self, x, gamma=None, beta=None):
        check_float_dtypes("batch_norm", input=x, weight=gamma, bias=beta)
        xp = get_array_module(x)
        axes = (0,) + tuple(range(2, x.ndim))
        bshape = (1, -1) + (1,) * (x.ndim - 2)  # broadcasts a (C,) vector over the channel axis
        if self.training:
            mean = x.mean(axis=axes)
            var = x.var(axis=axes)
            M = x.size // x.shape[1]
            if self.running_mean is not None:  # running stats use the unbiased variance, as torch
                m = self.momentum
                self.running_mean *= 1 - m
                self.running_mean += m * mean
                self.running_var *= 1 - m
                self.running_var += m * var * (M / max(M - 1, 1))
        else:
            mean, var = self.running_mean, self.running_var
        self.invstd = (1.0 / xp.sqrt(var + self.eps)).astype(x.dtype).reshape(bshape)
        self.xhat = (x - mean.reshape(bshape)) * self.invstd
        self.gamma = gamma.reshape(bshape) if gamma is not None else None
        self.axes = axes
        y = self.xhat if gamma is None else self.xhat * self.gamma
        return y if beta is None else y + beta.reshape(bshape)

    def backward(self, gy):
        dxhat = gy if self.gamma is None else gy * self.gamma
        if self.training:
            M = gy.size // gy.shape[1]
            s1 = dxhat.sum(axis=self.axes, keepdims=True)
            s2 = (dxhat * self.xhat).sum(axis=self.axes, keepdims=True)
            gx = self.invstd / M * (M * dxhat - s1 - self.xhat * s2)
        else:
            gx = dxhat * self.invstd
        grads = [gx]
        if len(self.inputs) > 1:
            grads.append((gy * self.xhat).sum(axis=self.axes))
        if len(self.inputs) > 2:
            grads.append(gy.sum(axis=self.axes))
        return tuple(grads)


def batch_norm(x, running_mean=None, running_var=None, weight=None, bias=None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalization, as ``torch.nn.functional.batch_norm``.

    Args:
        x: (N, C) or (N, C, D, H, W).
        running_mean, running_var: (C,) arrays (or Tensors), updated in place in training mode with
            ``new = (1 - momentum) * old + momentum * batch_stat``; required in eval mode.
        weight, bias: the (C,) scale gamma and shift beta, or None.
    """
    x = as_tensor(x)
    if x.ndim not in (2, 3, 4, 5):
        raise ValueError(f"batch_norm: input must be (N, C) or (N, C, D, H, W), got shape {x.shape}")
    C = x.shape[1]
    stats = [s.data if isinstance(s, Tensor) else s for s in (running_mean, running_var)]
    if not training and any(s is None for s in stats):
        raise ValueError("batch_norm: eval mode (training=False) needs running_mean and running_var; "
                         "pass them, or call with training=True")
    for name, s in zip(("running_mean", "running_var"), stats):
        if s is not None and tuple(s.shape) != (C,):
            raise ValueError(f"batch_norm: {name} must have shape ({C},) for {C} channels, got "
                             f"{tuple(s.shape)}")
    if training and x.size // C < 2:
        raise ValueError(f"batch_norm: training mode needs more than one value per channel, got "
                         f"input shape {x.shape}")
    params = [as_tensor(p) for p in (weight, bias) if p is not None]
    if weight is None and bias is not None:
        raise ValueError("batch_norm: pass weight together with bias (or neither)")
    for p in params:
        if p.shape != (C,):
            raise ValueError(f"batch_norm: weight and bias must have shape ({C},), got {p.shape}")
    fn = BatchNormFunction(stats[0], stats[1], training, momentum, eps)
    return fn(x, *params)
