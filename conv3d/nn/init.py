"""Weight initializers, following their published definitions.

Every initializer draws from a variance chosen from the layer's *fans*. For a convolution weight
of shape (K, C/groups, kD, kH, kW) the receptive field is kD*kH*kW and

    fan_in  = C/groups * kD*kH*kW      (inputs that feed one output)
    fan_out = K        * kD*kH*kW      (outputs that one input feeds)

and for a Linear weight (out, in): fan_in = in, fan_out = out (PyTorch's and Keras's convention).

* **He / Kaiming** (He et al. 2015, for ReLU): Var(w) = gain^2 / fan, gain = sqrt(2) for ReLU.
  ``kaiming_uniform_``: U(-b, b), b = gain*sqrt(3/fan); ``kaiming_normal_``: N(0, gain^2/fan).
  Keras ``he_uniform`` is kaiming_uniform with gain sqrt(2), fan_in: b = sqrt(6/fan_in).
  Keras ``he_normal`` is a *truncated* normal (cut at 2 std) whose std is
  sqrt(2/fan_in)/0.87962566, the factor that restores the variance lost by truncation.
* **Xavier / Glorot** (Glorot & Bengio 2010): Var(w) = gain^2 * 2/(fan_in + fan_out).
  ``xavier_uniform_``: b = gain*sqrt(6/(fan_in + fan_out)) (Keras ``glorot_uniform``, Keras's
  default for Conv3D and Dense kernels); ``xavier_normal_``: N(0, gain^2*2/(fan_in + fan_out));
  Keras ``glorot_normal`` is the truncated version.
* **PyTorch's layer default** (``torch_default_``): kaiming_uniform with a = sqrt(5), which works
  out to U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the bias is U(-1/sqrt(fan_in), 1/sqrt(fan_in)) too.
  Keras initializes biases with zeros.

All functions end in ``_`` because they overwrite ``tensor.data`` in place (dtype and device
kept) and return the tensor. Randomness comes from ``rng`` (a ``numpy.random.Generator`` or an
int seed) or else from this module's generator, reseeded by ``manual_seed``.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..core.backend import move_array

_RNG = np.random.default_rng(0)
_TRUNCATED_STD = 0.87962566103423978  # std of N(0, 1) truncated to [-2, 2]


def manual_seed(seed: int) -> None:
    """Reseed the generator that layers draw their initial weights from."""
    global _RNG
    _RNG = np.random.default_rng(seed)


def get_rng(rng=None) -> np.random.Generator:
    """``rng`` as a Generator: an int seeds a new one; None gives the module's generator."""
    if rng is None:
        return _RNG
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator, got "
                    f"{type(rng).__name__}")


def calculate_fans(shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape`` (see the module docstring)."""
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"fans need a weight with at least 2 dimensions (out, in, ...), got "
                         f"shape {shape}; a bias has no fans, initialize it with zeros_ or "
                         f"uniform_")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str = "leaky_relu", param: float | None = None) -> float:
    """The gain PyTorch recommends for a nonlinearity (sqrt(2) for ReLU, 1 for linear)."""
    if nonlinearity in ("linear", "identity", "sigmoid") or nonlinearity.startswith("conv"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"unknown nonlinearity {nonlinearity!r}; use 'linear', 'relu', "
                     f"'leaky_relu', 'tanh' or 'sigmoid'")


def _fan(shape, mode: str) -> int:
    fan_in, fan_out = calculate_fans(shape)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")


def _fill(tensor, values: np.ndarray):
    tensor.data = move_array(values.astype(tensor.dtype), tensor.device)
    return tensor


def _truncated_normal(rng, std: float, shape) -> np.ndarray:
    """N(0, std^2) cut at +-2 std, by redrawing the values that fall outside (as Keras)."""
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2
    return values * std


def uniform_(tensor, low: float = 0.0, high: float = 1.0, rng=None):
    return _fill(tensor, get_rng(rng).uniform(low, high, tensor.shape))


def normal_(tensor, mean: float = 0.0, std: float = 1.0, rng=None):
    return _fill(tensor, mean + std * get_rng(rng).standard_normal(tensor.shape))


def zeros_(tensor):
    return _fill(tensor, np.zeros(tensor.shape))


def ones_(tensor):
    return _fill(tensor, np.ones(tensor.shape))


def constant_(tensor, value: float):
    return _fill(tensor, np.full(tensor.shape, float(value)))


def kaiming_uniform_(tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", rng=None):
    """U(-b, b) with b = gain*sqrt(3/fan) (He et al. 2015; torch.nn.init.kaiming_uniform_)."""
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(tensor.shape, mode))
    return uniform_(tensor, -bound, bound, rng)


def kaiming_normal_(tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", rng=None):
    """N(0, gain^2/fan) (He et al. 2015; torch.nn.init.kaiming_normal_)."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor.shape, mode))
    return normal_(tensor, 0.0, std, rng)


def xavier_uniform_(tensor, gain: float = 1.0, rng=None):
    """U(-b, b) with b = gain*sqrt(6/(fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = calculate_fans(tensor.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, rng)


def xavier_normal_(tensor, gain: float = 1.0, rng=None):
    """N(0, gain^2 * 2/(fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = calculate_fans(tensor.shape)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng)


# ---- Keras's names ------------------------------------------------------------------------------
def he_uniform_(tensor, rng=None):
    """Keras ``he_uniform``: U(-sqrt(6/fan_in), sqrt(6/fan_in))."""
    return kaiming_uniform_(tensor, mode="fan_in", nonlinearity="relu", rng=rng)


def he_normal_(tensor, rng=None):
    """Keras ``he_normal``: truncated normal, std sqrt(2/fan_in)/0.8796 before truncation."""
    std = math.sqrt(2.0 / _fan(tensor.shape, "fan_in")) / _TRUNCATED_STD
    return _fill(tensor, _truncated_normal(get_rng(rng), std, tensor.shape))


def glorot_uniform_(tensor, rng=None):
    """Keras ``glorot_uniform`` (its default kernel initializer) = ``xavier_uniform_``."""
    return xavier_uniform_(tensor, rng=rng)


def glorot_normal_(tensor, rng=None):
    """Keras ``glorot_normal``: truncated normal, std sqrt(2/(fan_in+fan_out))/0.8796."""
    fan_in, fan_out = calculate_fans(tensor.shape)
    std = math.sqrt(2.0 / (fan_in + fan_out)) / _TRUNCATED_STD
    return _fill(tensor, _truncated_normal(get_rng(rng), std, tensor.shape))


def torch_default_(weight, bias=None, rng=None):
    """PyTorch's Conv/Linear reset_parameters: kaiming_uniform(a=sqrt(5)) for the weight, i.e.
    U(+-1/sqrt(fan_in)), and U(+-1/sqrt(fan_in)) for the bias."""
    rng = get_rng(rng)
    kaiming_uniform_(weight, a=math.sqrt(5), rng=rng)
    if bias is not None:
        bound = 1.0 / math.sqrt(calculate_fans(weight.shape)[0])
        uniform_(bias, -bound, bound, rng)
    return weight


# names accepted by the layers' ``init=`` argument (weights; biases then start at zero, as Keras)
WEIGHT_INITIALIZERS = {
    "he_uniform": he_uniform_, "he_normal": he_normal_,
    "kaiming_uniform": lambda t, rng=None: kaiming_uniform_(t, nonlinearity="relu", rng=rng),
    "kaiming_normal": lambda t, rng=None: kaiming_normal_(t, nonlinearity="relu", rng=rng),
    "glorot_uniform": glorot_uniform_, "glorot_normal": glorot_normal_,
    "xavier_uniform": xavier_uniform_, "xavier_normal": xavier_normal_,
}


def initialize(weight, bias, init, rng=None) -> None:
    """Initialize a layer: ``init=None`` gives PyTorch's default, a name from
    ``WEIGHT_INITIALIZERS`` (Keras style) fills the weight and zeros the bias, and a callable is
    called as ``init(weight)`` with the bias zeroed."""
    if init is None or init == "torch_default":
        torch_default_(weight, bias, rng)
        return
    if isinstance(init, str):
        if init not in WEIGHT_INITIALIZERS:
            raise ValueError(f"unknown init {init!r}; choose one of "
                             f"{sorted(WEIGHT_INITIALIZERS)}, None (PyTorch's default) or a "
                             f"callable taking the weight tensor")
        WEIGHT_INITIALIZERS[init](weight, rng=get_rng(rng))
    elif callable(init):
        init(weight)
    else:
        raise TypeError(f"init must be None, a name or a callable, got {type(init).__name__}")
    if bias is not None:
        zeros_(bias)
