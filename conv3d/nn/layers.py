"""The layers: thin ``Module`` wrappers that own parameters and call ``conv3d.functional``.

Each layer's ``forward`` is one call to the functional op of the same name; the layer only
keeps the weights, the settings and (for BatchNorm and Dropout) the state between calls.
Initialization follows PyTorch unless ``init=`` names another scheme (see ``conv3d.nn.init``).
"""
from __future__ import annotations

import numbers
from collections import OrderedDict

import numpy as np

from .. import functional as F
from ..core.shapes import same_padding, to_triple
from ..core.tensor import Tensor
from . import init as _init
from .inflate import inflate
from .module import Module, Parameter

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _positive_int(value, name: str, layer: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{layer}: {name} must be an int >= 1, got {value!r}")
    return int(value)


def _float_dtype(dtype, layer: str) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"{layer}: dtype must be float32 or float64, got {dtype}")
    return dtype


def _set_conv_settings(layer, name: str, in_channels, out_channels, groups, kernel_size,
                       stride, dilation) -> None:
    """Check and store the settings Conv3d and ConvTranspose3d share, as torch names them."""
    layer.in_channels = _positive_int(in_channels, "in_channels", name)
    layer.out_channels = _positive_int(out_channels, "out_channels", name)
    layer.groups = _positive_int(groups, "groups", name)
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{name}: groups={groups} must divide in_channels={in_channels} and "
                         f"out_channels={out_channels}")
    layer.kernel_size = to_triple(kernel_size, "kernel_size", minimum=1)
    layer.stride = to_triple(stride, "stride", minimum=1)
    layer.dilation = to_triple(dilation, "dilation", minimum=1)


class Conv3d(Module):
    """3D convolution layer, as ``torch.nn.Conv3d``: y = conv3d(x, weight) + bias.

    Args:
        in_channels (C), out_channels (K), kernel_size: int or (kD, kH, kW).
        stride, padding, dilation, groups: as ``conv3d.functional.conv3d`` (padding may be an
            int, a triple, 'same' or 'valid').
        bias: learn a (K,) bias.
        padding_mode: what the padding holds, as torch: 'zeros' (default), or 'reflect',
            'replicate', 'circular': the input is first padded that way by
            ``conv3d.functional.pad`` ('same' splits its padding as conv3d does, the larger
            half after the data), then convolved without padding.
        init: None = PyTorch's default (kaiming_uniform with a=sqrt(5), i.e. U(+-1/sqrt(fan_in))
            for weight and bias); a name such as 'he_uniform' or 'glorot_uniform' (Keras style,
            bias zeros); or a callable ``init(weight)``.
        rng: seed or Generator for the initial weights (default: ``conv3d.nn.init``'s).
        dtype: float32 (default) or float64.

    Shapes: x (N, C, D, H, W) -> y (N, K, OD, OH, OW), ``o = floor((i + 2p - d*(k-1) - 1)/s) + 1``.
    Parameters: K * C/groups * kD*kH*kW weights (+ K biases).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 init=None, rng=None, dtype=np.float32):
        super().__init__()
        name = "Conv3d"
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"Conv3d: padding_mode must be one of {PADDING_MODES}, got "
                             f"{padding_mode!r}")
        self.padding_mode = padding_mode
        _set_conv_settings(self, name, in_channels, out_channels, groups, kernel_size, stride,
                           dilation)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Conv3d: padding must be an int, a triple, 'same' or 'valid', "
                                 f"got {padding!r}")
            self.padding = padding
        else:
            self.padding = to_triple(padding, "padding", minimum=0)
        dtype = _float_dtype(dtype, name)
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(np.zeros(shape, dtype=dtype))
        self.bias = Parameter(np.zeros(self.out_channels, dtype=dtype)) if bias else None
        _init.initialize(self.weight, self.bias, init, rng)

    def forward(self, x):
        if self.padding_mode == "zeros":
            return F.conv3d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                            self.groups)
        if self.padding == "same":
            pairs = [same_padding(i, k, s, d) for i, k, s, d in
                     zip(x.shape[2:], self.kernel_size, self.stride, self.dilation)]
        elif self.padding == "valid":
            pairs = [(0, 0)] * 3
        else:
            pairs = [(p, p) for p in self.padding]
        amounts = tuple(a for lo_hi in reversed(pairs) for a in lo_hi)  # torch's order: W first
        x = F.pad(x, amounts, mode=self.padding_mode)
        return F.conv3d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    @classmethod
    def from_2d(cls, weight_2d, bias=None, time: int = 3, center: bool = False, stride=1,
                padding=0, dilation=1, groups: int = 1) -> Conv3d:
        """A Conv3d whose kernel is a 2-D kernel inflated over ``time`` frames (I3D).

        ``weight_2d`` is (K, C/groups, kH, kW), e.g. ``torch_conv2d.weight.detach().numpy()``;
        ``bias`` (K,) is copied unchanged. See ``conv3d.nn.inflate`` for the two schemes and for
        what temporal padding does at the first and last frames. ``stride``, ``padding`` and
        ``dilation`` are the 3-D settings (int or (time, height, width)).
        """
        if isinstance(weight_2d, Tensor):
            weight_2d = weight_2d.numpy()
        if isinstance(bias, Tensor):
            bias = bias.numpy()
        w3 = inflate(weight_2d, time, center=center)
        K, Cg = w3.shape[:2]
        layer = cls(Cg * groups, K, w3.shape[2:], stride=stride, padding=padding,
                    dilation=dilation, groups=groups, bias=bias is not None, dtype=w3.dtype)
        layer.weight.data = w3
        if bias is not None:
            b = np.asarray(bias, dtype=w3.dtype)
            if b.shape != (K,):
                raise ValueError(f"Conv3d.from_2d: bias must have shape ({K},), got {b.shape}")
            layer.bias.data = b.copy()
        return layer

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        if self.stride != (1, 1, 1):
            s += f", stride={self.stride}"
        if self.padding not in ((0, 0, 0), "valid"):
            s += f", padding={self.padding!r}"
        if self.dilation != (1, 1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        return s + ("" if self.bias is not None else ", bias=False")


class Linear(Module):
    """Fully connected layer, as ``torch.nn.Linear`` (Keras ``Dense``): y = x W^T + b.

    weight (out_features, in_features); ``init`` as in ``Conv3d`` (None = PyTorch's default).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init=None,
                 rng=None, dtype=np.float32):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features", "Linear")
        self.out_features = _positive_int(out_features, "out_features", "Linear")
        dtype = _float_dtype(dtype, "Linear")
        self.weight = Parameter(np.zeros((self.out_features, self.in_features), dtype=dtype))
        self.bias = Parameter(np.zeros(self.out_features, dtype=dtype)) if bias else None
        _init.initialize(self.weight, self.bias, init, rng)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}"
                + ("" if self.bias is not None else ", bias=False"))


class MaxPool3d(Module):
    """Max pooling, as ``torch.nn.MaxPool3d`` (stride defaults to kernel_size); with
    ``return_indices`` it returns ``(y, indices)`` for a ``MaxUnpool3d``."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size = to_triple(kernel_size, "kernel_size", minimum=1)
        self.stride = self.kernel_size if stride is None else to_triple(stride, "stride", 1)
        self.padding = to_triple(padding, "padding", minimum=0)
        self.dilation = to_triple(dilation, "dilation", minimum=1)
        self.ceil_mode, self.return_indices = bool(ceil_mode), bool(return_indices)

    def forward(self, x):
        return F.max_pool3d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}" + (
            f", padding={self.padding}" if any(self.padding) else "")


class AvgPool3d(Module):
    """Average pooling, as ``torch.nn.AvgPool3d`` (stride defaults to kernel_size)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size = to_triple(kernel_size, "kernel_size", minimum=1)
        self.stride = self.kernel_size if stride is None else to_triple(stride, "stride", 1)
        self.padding = to_triple(padding, "padding", minimum=0)
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)
        self.divisor_override = divisor_override

    def forward(self, x):
        return F.avg_pool3d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}" + (
            f", padding={self.padding}" if any(self.padding) else "")


class GlobalAvgPool3d(Module):
    """Mean over D, H and W: (N, C, D, H, W) -> (N, C) (Keras ``GlobalAveragePooling3D``)."""

    def forward(self, x):
        if x.ndim != 5:
            raise ValueError(f"GlobalAvgPool3d expects (N, C, D, H, W), got shape {x.shape}")
        return x.mean(axis=(2, 3, 4))


def _add_norm_state(layer, C: int, affine: bool, tracking: bool, dtype) -> None:
    """The per-channel state of a normalization layer, under torch's names: ``weight`` (ones)
    and ``bias`` (zeros) if ``affine``; ``running_mean``, ``running_var`` and the int64
    ``num_batches_tracked`` if ``tracking`` (each None otherwise, so the state dict matches)."""
    layer.weight = Parameter(np.ones(C, dtype=dtype)) if affine else None
    layer.bias = Parameter(np.zeros(C, dtype=dtype)) if affine else None
    layer.register_buffer("running_mean", np.zeros(C, dtype=dtype) if tracking else None)
    layer.register_buffer("running_var", np.ones(C, dtype=dtype) if tracking else None)
    layer.register_buffer("num_batches_tracked", np.array(0, np.int64) if tracking else None)


class BatchNorm3d(Module):
    """Batch normalization over the channels of (N, C, D, H, W), as ``torch.nn.BatchNorm3d``.

    Training mode normalizes with the batch's statistics and, with ``track_running_stats``
    (the default), updates the running ones, ``running = (1 - m) * running + m * batch``, where
    ``m = momentum``, or ``m = 1 / num_batches_tracked`` with ``momentum=None`` (the running
    statistics are then the plain average over every training batch so far). Eval mode uses the
    running statistics. With ``track_running_stats=False`` there are no running buffers and
    both modes normalize with the batch's statistics.

    Parameters (with ``affine``, the default): weight (gamma, ones) and bias (beta, zeros).
    Buffers (when tracking): running_mean (zeros), running_var (ones) and num_batches_tracked
    (int64, 0-d, +1 every training forward). Keras's ``BatchNormalization()`` defaults
    correspond to ``momentum=0.01, eps=1e-3``.
    """

    # state dicts saved before num_batches_tracked existed still load (the count stays 0)
    _optional_buffers = ("num_batches_tracked",)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype=np.float32):
        super().__init__()
        self.num_features = _positive_int(num_features, "num_features", "BatchNorm3d")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNorm3d: momentum must lie in [0, 1] or be None (cumulative "
                             f"average), got {momentum}")
        self.eps, self.affine = float(eps), bool(affine)
        self.momentum = None if momentum is None else float(momentum)
        self.track_running_stats = bool(track_running_stats)
        _add_norm_state(self, self.num_features, affine, track_running_stats,
                        _float_dtype(dtype, "BatchNorm3d"))

    def forward(self, x):
        if x.ndim != 5 or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm3d({self.num_features}) expects (N, {self.num_features}, "
                             f"D, H, W), got shape {tuple(x.shape)}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            count = self._buffers["num_batches_tracked"]
            count += 1  # in place: the buffer stays registered (and on its device)
            if self.momentum is None:
                momentum = 1.0 / int(count)
        # without running statistics both modes use the batch's (torch's rule)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=self.training or not self.track_running_stats,
                            momentum=momentum, eps=self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
                + ("" if self.affine else ", affine=False")
                + ("" if self.track_running_stats else ", track_running_stats=False"))


class Dropout(Module):
    """Inverted dropout (zero with probability p, scale the rest by 1/(1-p)) in training mode;
    the identity in eval mode.

    Masks are reproducible: call i draws from ``numpy.random.default_rng([seed, i])``. The seed
    and the call count live in the buffer ``rng_state`` (saved in checkpoints, so a resumed run
    draws the masks an uninterrupted one would). ``seed=None`` takes one from
    ``conv3d.nn.init``'s generator.
    """

    def __init__(self, p: float = 0.5, seed: int | None = None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p is a probability and must lie in [0, 1], got {p}")
        self.p = float(p)
        if seed is None:
            seed = int(_init.get_rng().integers(2 ** 31))
        self.register_buffer("rng_state", np.array([seed, 0], dtype=np.int64))

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        seed, calls = (int(v) for v in self.rng_state.tolist())
        self.rng_state[1] = calls + 1
        return F.dropout(x, self.p, training=True, rng=np.random.default_rng([seed, calls]))

    def extra_repr(self):
        return f"p={self.p}"


class Identity(Module):
    """Returns its input unchanged, as ``torch.nn.Identity`` (extra arguments are ignored).

    The shortcut of a residual block whose shapes already match, or a stand-in for a removed
    layer (``model.fc = nn.Identity()`` to read features).
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class ReLU(Module):
    """max(x, 0), elementwise.

    ``inplace`` is accepted so that torch code (``nn.ReLU(inplace=True)``, as torchvision writes
    it) ports unchanged; conv3d always returns a new array, which has the same values.
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, x):
        return F.relu(x)


class Flatten(Module):
    """Merge axes start_dim..end_dim: (N, C, D, H, W) -> (N, C*D*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Sequential(Module):
    """Modules applied one after the other; ``Sequential(a, b)`` or
    ``Sequential(OrderedDict(name=module, ...))``. Indexable, sliceable and iterable."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            items = modules[0].items()
        else:
            items = ((str(i), m) for i, m in enumerate(modules))
        for name, m in items:
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: element {name} is a {type(m).__name__}, not a "
                                f"Module; wrap functions in a Module subclass")
            self.add_module(name, m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self._modules)), module)
        return self

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        return items[index][1]

