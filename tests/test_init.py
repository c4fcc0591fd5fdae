"""conv3d.nn.init against the published definitions (He et al. 2015, Glorot & Bengio 2010,
Keras's truncated-normal variants, PyTorch's layer defaults): fans, bounds and variances are
computed here from the formulas, then compared with large samples."""
import math

import numpy as np
import pytest

import conv3d.nn as nn
from conv3d import Tensor
from conv3d.nn import init

SHAPE = (48, 24, 3, 3, 3)  # (K, C/groups, kD, kH, kW): 31,104 samples
FAN_IN, FAN_OUT = 24 * 27, 48 * 27


def fresh(shape=SHAPE, dtype=np.float32):
    return Tensor(np.zeros(shape, dtype=dtype))


def test_fans_of_5d_and_2d_weights():
    assert init.calculate_fans(SHAPE) == (FAN_IN, FAN_OUT)
    assert init.calculate_fans((7, 5)) == (5, 7)  # Linear (out, in)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.calculate_fans((5,))


def test_fans_match_torch():
    torch = pytest.importorskip("torch")
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(SHAPE))
    assert init.calculate_fans(SHAPE) == (fan_in, fan_out)


@pytest.mark.parametrize("name, bound", [
    ("he_uniform", math.sqrt(6 / FAN_IN)),
    ("glorot_uniform", math.sqrt(6 / (FAN_IN + FAN_OUT))),
    ("xavier_uniform", math.sqrt(6 / (FAN_IN + FAN_OUT))),
    ("kaiming_uniform", math.sqrt(2) * math.sqrt(3 / FAN_IN)),
])
def test_uniform_initializers_bounds_and_variance(name, bound):
    w = fresh()
    init.WEIGHT_INITIALIZERS[name](w, rng=1)
    a = w.numpy().astype(np.float64)
    assert np.abs(a).max() <= bound * (1 + 1e-6)
    assert np.abs(a).max() > 0.99 * bound  # the whole interval is used
    assert a.var() == pytest.approx(bound ** 2 / 3, rel=0.03)  # Var U(-b, b) = b^2/3
    assert abs(a.mean()) < 0.02 * bound


@pytest.mark.parametrize("fn, std", [
    (lambda t: init.kaiming_normal_(t, nonlinearity="relu", rng=2), math.sqrt(2 / FAN_IN)),
    (lambda t: init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu", rng=2),
     math.sqrt(2 / FAN_OUT)),
    (lambda t: init.xavier_normal_(t, rng=2), math.sqrt(2 / (FAN_IN + FAN_OUT))),
])
def test_normal_initializers_std(fn, std):
    a = fn(fresh()).numpy().astype(np.float64)
    assert a.std() == pytest.approx(std, rel=0.03)
    assert np.abs(a).max() > 3 * std  # untruncated: tails beyond 3 std exist in 31k samples


@pytest.mark.parametrize("fn, target", [
    (init.he_normal_, 2 / FAN_IN),
    (init.glorot_normal_, 2 / (FAN_IN + FAN_OUT)),
])
def test_keras_truncated_normals(fn, target):
    a = fn(fresh(), rng=3).numpy().astype(np.float64)
    # Keras: stddev = sqrt(target)/0.87962566103423978, values cut at 2 stddev, so the
    # variance of what remains is the target variance again
    cut = 2 * math.sqrt(target) / 0.87962566103423978
    assert np.abs(a).max() <= cut * (1 + 1e-6)
    assert a.var() == pytest.approx(target, rel=0.04)


def test_torch_default_for_conv_and_linear_layers():
    conv = nn.Conv3d(24, 48, 3, rng=4)
    bound = 1 / math.sqrt(FAN_IN)  # kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in))
    w = conv.weight.numpy().astype(np.float64)
    assert np.abs(w).max() <= bound * (1 + 1e-6)
    assert w.var() == pytest.approx(bound ** 2 / 3, rel=0.03)
    assert np.abs(conv.bias.numpy()).max() <= bound
    lin = nn.Linear(300, 200, rng=4)
    assert np.abs(lin.weight.numpy()).max() <= 1 / math.sqrt(300) * (1 + 1e-6)


def test_keras_style_init_zeroes_the_bias_and_keeps_dtype():
    conv = nn.Conv3d(2, 3, 3, init="he_uniform", dtype=np.float64)
    assert conv.weight.dtype == np.float64 and np.abs(conv.weight.numpy()).max() > 0
    np.testing.assert_array_equal(conv.bias.numpy(), 0.0)
    calls = []
    nn.Linear(3, 2, init=lambda w: calls.append(w.shape))
    assert calls == [(2, 3)]


def test_zeros_ones_constant_and_seeding():
    t = fresh((3, 4))
    np.testing.assert_array_equal(init.ones_(t).numpy(), 1.0)
    np.testing.assert_array_equal(init.zeros_(t).numpy(), 0.0)
    np.testing.assert_array_equal(init.constant_(t, 2.5).numpy(), 2.5)
    assert t.dtype == np.float32
    init.manual_seed(11)
    a = nn.Conv3d(1, 2, 3).weight.numpy().copy()
    init.manual_seed(11)
    np.testing.assert_array_equal(nn.Conv3d(1, 2, 3).weight.numpy(), a)
    np.testing.assert_array_equal(init.he_uniform_(fresh(), rng=5).numpy(),
                                  init.he_uniform_(fresh(), rng=5).numpy())


def test_gain_and_errors():
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(2 / 6))
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_uniform_(fresh(), mode="fan_avg")
