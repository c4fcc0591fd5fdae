"""Argument checks for convolution and pooling, before any kernel runs.

The arrays are checked here (5-D, floating dtypes, bias shape); the settings by the geometry
they describe (``conv3d.core.geometry``). Every message starts with the op's name, so a user who
gets something wrong sees which op, which argument, what was received and how to fix it. The
kernel providers (NumPy, CUDA, the CUDA emulator) may then assume valid input.
"""
from __future__ import annotations

from ..core.geometry import ConvGeometry, PoolGeometry
from ..core.tensor import check_float_dtypes


def check_5d(op: str, name: str, a, layout: str, fix: str) -> None:
    """Raise ValueError unless ``a`` is 5-D."""
    if a.ndim != 5:
        raise ValueError(f"{op}: {name} must be 5-D {layout}, got a {a.ndim}-D array of shape "
                         f"{tuple(a.shape)}; {fix}")


def _with_op(op: str, make, *args):
    """``make(*args)``, with the op's name in front of any error message."""
    try:
        return make(*args)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{op}: {exc}") from None


_ONE_VOLUME = "add missing axes, e.g. x.reshape(1, 1, *x.shape) for a single 3-D volume"


def parse_conv_args(x, weight, bias, stride, padding, dilation, groups) -> ConvGeometry:
    """Check ``conv3d``'s arrays and settings; return their ``ConvGeometry``."""
    op = "conv3d"
    check_5d(op, "input", x, "(N, C, D, H, W)", _ONE_VOLUME)
    check_5d(op, "weight", weight, "(K, C/groups, kD, kH, kW)",
             "add missing axes, e.g. w.reshape(1, 1, *w.shape) for a single 3-D kernel")
    check_float_dtypes(op, input=x, weight=weight, bias=bias)
    geo = _with_op(op, ConvGeometry.from_shapes, x.shape, weight.shape, stride, padding,
                   dilation, groups)
    if bias is not None and tuple(bias.shape) != (geo.K,):
        raise ValueError(f"{op}: bias must have shape (K,) = ({geo.K},), one value per output "
                         f"channel, got shape {tuple(bias.shape)}; pass bias of shape ({geo.K},) "
                         f"or bias=None")
    return geo


def parse_pool_args(op: str, x, kernel_size, stride, padding, dilation,
                    ceil_mode) -> PoolGeometry:
    """Check a pooling op's input and settings (PyTorch's rules); return their ``PoolGeometry``."""
    check_5d(op, "input", x, "(N, C, D, H, W)", _ONE_VOLUME)
    check_float_dtypes(op, input=x)
    return _with_op(op, PoolGeometry.from_shape, x.shape, kernel_size, stride, padding,
                    dilation, ceil_mode)
