"""Batch normalization over the channel axis of (N, C) or (N, C, D, H, W) inputs."""
from __future__ import annotations

import numpy as np

from ..core.backend import get_array_module
from ..core.tensor import Function, Tensor, as_tensor, check_float_dtypes
from .fast.sample_threads import run_rows


class BatchNormFunction(Function):
    """y = (x - mean) / sqrt(var + eps) * gamma + beta, per channel.

    Training mode normalizes with the batch's own statistics (over N and the spatial axes,
    M values per channel) and backpropagates through them::

        xhat = (x - mean) * invstd
        dx = invstd / M * (M * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)),  dxhat = gy * gamma

    Eval mode uses the running statistics, which are constants: dx = gy * gamma * invstd.
    Without a graph (inference) the same y is computed as x * scale + shift, with
    scale = gamma * invstd and shift = beta - mean * scale per channel: two passes over x and
    no xhat kept for a backward that will not run.
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
        invstd = (1.0 / xp.sqrt(var + self.eps)).astype(x.dtype)
        if not self.recording:  # no backward: y = x * scale + shift, nothing kept
            scale = invstd if gamma is None else invstd * gamma  # gamma, beta: x's dtype
            shift = -mean.astype(x.dtype) * scale
            if beta is not None:
                shift += beta
            return _scale_shift(x, scale, shift, bshape)
        self.invstd = invstd.reshape(bshape)
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


def _scale_shift(x, scale, shift, bshape):
    """x * scale + shift per channel, in two passes (a large NumPy array's rows (n, c) on the
    CPU threads at once)."""
    y = run_rows(_scale_shift_rows, x, scale, shift)
    if y is None:
        y = x * scale.reshape(bshape)
        y += shift.reshape(bshape)
    return y


def _scale_shift_rows(x, y, scale, shift, lo, hi):
    np.multiply(x[lo:hi], scale[lo:hi], out=y[lo:hi])
    y[lo:hi] += shift[lo:hi]


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


# ---- normalization over one sample's own values: group, instance and layer norm ---------------

class NormalizeFunction(Function):
    """xhat = (x - mean) / sqrt(var + eps), the statistics taken over ``axes`` (biased variance).

    Each set of values normalized together (M of them) is its own little batch norm::

        dx = invstd * (g - mean(g) - xhat * mean(g * xhat)),   means over the same M values
    """

    def __init__(self, axes, eps):
        self.axes, self.eps = axes, eps

    def forward(self, x):
        xp = get_array_module(x)
        mean = x.mean(axis=self.axes, keepdims=True)
        var = x.var(axis=self.axes, keepdims=True)
        self.invstd = (1.0 / xp.sqrt(var + self.eps)).astype(x.dtype)
        self.xhat = (x - mean) * self.invstd
        return self.xhat

    def backward(self, gy):
        g_mean = gy.mean(axis=self.axes, keepdims=True)
        gx_mean = (gy * self.xhat).mean(axis=self.axes, keepdims=True)
        return self.invstd * (gy - g_mean - self.xhat * gx_mean)


def _affine(y: Tensor, weight, bias, shape) -> Tensor:
    """``y * weight + bias`` with both reshaped to ``shape`` (broadcast over the rest)."""
    if weight is not None:
        y = y * as_tensor(weight).reshape(shape)
    if bias is not None:
        y = y + as_tensor(bias).reshape(shape)
    return y


def _check_params(op: str, x: Tensor, shape, **params) -> None:
    for name, p in params.items():
        if p is None:
            continue
        p = as_tensor(p)
        if tuple(p.shape) != tuple(shape):
            raise ValueError(f"{op}: {name} must have shape {tuple(shape)}, got {tuple(p.shape)}")
        if p.dtype != x.dtype:
            raise TypeError(f"{op}: {name} has dtype {p.dtype} but the input {x.dtype}; "
                            f"convert one of them (nothing is upcast silently)")


def group_norm(x, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Group normalization, as ``torch.nn.functional.group_norm``: the C channels of each
    sample split into ``num_groups`` groups, each normalized over its channels and all its
    voxels (C/G * D*H*W values), then the per-channel affine ``weight``, ``bias`` (C,).

    Independent of the batch size, so it works with batch 1 (volumetric networks). ``num_groups
    = 1`` normalizes each sample as a whole; ``num_groups = C`` is instance normalization.

    >>> import numpy as np, conv3d.functional as F
    >>> x = np.arange(8.0).reshape(1, 2, 1, 2, 2)     # channel 0: 0..3, channel 1: 4..7
    >>> F.group_norm(x, 2).numpy()[0, :, 0, 0].round(4)   # (v - 1.5) / sqrt(1.25 + 1e-5)
    array([[-1.3416, -0.4472],
           [-1.3416, -0.4472]])
    """
    x = as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"group_norm: input must be (N, C, ...), got shape {x.shape}")
    N, C = x.shape[:2]
    if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups < 1 or \
            C % num_groups:
        raise ValueError(f"group_norm: num_groups must be an int >= 1 that divides the "
                         f"{C} channels, got {num_groups!r}")
    _check_params("group_norm", x, (C,), weight=weight, bias=bias)
    grouped = x.reshape(N, num_groups, -1)
    y = NormalizeFunction((2,), eps)(grouped).reshape(x.shape)
    return _affine(y, weight, bias, (1, C) + (1,) * (x.ndim - 2))


def instance_norm(x, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats: bool = True, momentum: float = 0.1,
                  eps: float = 1e-5) -> Tensor:
    """Instance normalization, as ``torch.nn.functional.instance_norm``: each (sample, channel)
    normalized over its own D*H*W voxels.

    Args:
        running_mean, running_var: (C,) arrays or None. With ``use_input_stats`` they are
            updated in place, torch's rule: ``new = (1 - momentum) * old + momentum * stat``,
            stat the batch average of the per-instance mean (of the unbiased variance).
        weight, bias: (C,) affine, or None.
        use_input_stats: normalize with each instance's statistics (True), or with the
            running ones (False, torch's eval mode with ``track_running_stats``).
    """
    x = as_tensor(x)
    if x.ndim < 3:
        raise ValueError(f"instance_norm: input must be (N, C, D, H, W) (or (N, C, L...)), got "
                         f"shape {x.shape}")
    C = x.shape[1]
    bshape = (1, C) + (1,) * (x.ndim - 2)
    _check_params("instance_norm", x, (C,), weight=weight, bias=bias)
    stats = [s.data if isinstance(s, Tensor) else s for s in (running_mean, running_var)]
    if (stats[0] is None) != (stats[1] is None):
        raise ValueError("instance_norm: pass running_mean together with running_var (or neither)")
    for name, s in zip(("running_mean", "running_var"), stats):
        if s is not None and tuple(s.shape) != (C,):
            raise ValueError(f"instance_norm: {name} must have shape ({C},), got {tuple(s.shape)}")
    spatial = tuple(range(2, x.ndim))
    if not use_input_stats:
        if stats[0] is None:
            raise ValueError("instance_norm: use_input_stats=False needs running_mean and "
                             "running_var")
        xp = get_array_module(x.data)
        invstd = (1.0 / xp.sqrt(stats[1] + eps)).astype(x.dtype).reshape(bshape)
        y = (x - as_tensor(stats[0].astype(x.dtype).reshape(bshape))) * as_tensor(invstd)
        return _affine(y, weight, bias, bshape)
    M = x.size // (x.shape[0] * C)
    if M < 2:
        raise ValueError(f"instance_norm: needs more than one voxel per channel, got input "
                         f"shape {x.shape}")
    if stats[0] is not None:  # update the running statistics (torch: averaged over the batch)
        mean = x.data.mean(axis=spatial)
        var = x.data.var(axis=spatial) * (M / (M - 1))
        stats[0] *= 1 - momentum
        stats[0] += momentum * mean.mean(axis=0)
        stats[1] *= 1 - momentum
        stats[1] += momentum * var.mean(axis=0)
    y = NormalizeFunction(spatial, eps)(x)
    return _affine(y, weight, bias, bshape)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Layer normalization, as ``torch.nn.functional.layer_norm``: normalize over the last
    ``len(normalized_shape)`` axes (which must equal ``normalized_shape``), then the elementwise
    affine ``weight``, ``bias`` of that shape.

    >>> import numpy as np, conv3d.functional as F
    >>> F.layer_norm(np.array([[1.0, 2.0, 3.0]]), (3,)).numpy().round(4)
    array([[-1.2247,  0.    ,  1.2247]])
    """
    x = as_tensor(x)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or k > x.ndim or tuple(x.shape[x.ndim - k:]) != shape:
        raise ValueError(f"layer_norm: normalized_shape {shape} must equal the last axes of the "
                         f"input, got input shape {x.shape}")
    _check_params("layer_norm", x, shape, weight=weight, bias=bias)
    y = NormalizeFunction(tuple(range(x.ndim - k, x.ndim)), eps)(x)
    return _affine(y, weight, bias, shape)
