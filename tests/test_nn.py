"""conv3d.nn: Module bookkeeping, state_dict, devices, and every layer against independent
references (naive loops in tests/reference.py, textbook formulas, torch where installed), with
finite-difference gradient checks in float64."""
import numpy as np
import pytest

import conv3d.nn as nn
from conv3d import Tensor, gradcheck
from reference import naive_avg_pool3d, naive_conv3d, naive_max_pool3d

rng = np.random.default_rng(0)


def T(*shape, grad=True, dtype=np.float64):
    return Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=grad)


def small_model(dtype=np.float32):
    return nn.Sequential(nn.Conv3d(2, 3, 3, padding=1, dtype=dtype), nn.BatchNorm3d(3, dtype=dtype),
                         nn.ReLU(), nn.MaxPool3d(2), nn.Dropout(0.3), nn.Flatten(),
                         nn.Linear(3 * 2 * 2 * 2, 4, dtype=dtype))


# ---- Module bookkeeping ---------------------------------------------------------------------

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(1, 2, 3)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2, 3))
        self.scale = nn.Parameter(np.ones(1, dtype=np.float32))
        self.register_buffer("counter", np.zeros(2, dtype=np.float32))

    def forward(self, x):
        return self.head(self.conv(x)) * self.scale


def test_registration_names_and_counts():
    m = Block()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "conv.weight", "conv.bias", "head.1.weight", "head.1.bias"]
    assert sum(p.size for p in m.parameters()) == 1 + 2 * 27 + 2 + 3 * 2 + 3
    assert [n for n, _ in m.named_buffers()] == ["counter"]
    assert all(p.requires_grad for p in m.parameters())
    assert isinstance(m.conv.weight, nn.Parameter)
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        m.missing  # noqa: B018
    m.extra = None
    m.extra = nn.Parameter(np.zeros(2, dtype=np.float32))  # replaces the plain attribute
    assert isinstance(m.extra, nn.Parameter) and "extra" in dict(m.named_parameters())
    m.extra = 3  # and back: no longer a parameter
    assert m.extra == 3 and "extra" not in dict(m.named_parameters())


def test_train_eval_propagate_and_zero_grad():
    m = small_model()
    assert all(sub.training for sub in m.modules())
    assert m.eval() is m and not any(sub.training for sub in m.modules())
    m.train()
    y = m(Tensor(rng.random((2, 2, 4, 4, 4), dtype=np.float32)))
    y.sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_state_dict_round_trip_reproduces_outputs():
    m1, m2 = small_model(), small_model()
    x = Tensor(rng.random((2, 2, 4, 4, 4), dtype=np.float32))
    m1.train()
    m1(x)  # moves the BatchNorm running statistics away from their initial values
    m1.eval()
    m2.load_state_dict(m1.state_dict())
    m2.eval()
    np.testing.assert_array_equal(m1(x).numpy(), m2(x).numpy())
    state = m1.state_dict()
    assert "1.running_mean" in state and "1.running_var" in state
    state["0.weight"][...] = 0  # state_dict holds copies
    assert np.abs(m1[0].weight.numpy()).sum() > 0


def test_load_state_dict_errors_name_the_keys():
    m = small_model()
    state = m.state_dict()
    missing = dict(state)
    del missing["6.weight"]
    with pytest.raises(KeyError, match=r"missing keys \['6.weight'\]"):
        m.load_state_dict(missing)
    extra = dict(state, bogus=np.zeros(3))
    with pytest.raises(KeyError, match=r"unexpected keys \['bogus'\]"):
        m.load_state_dict(extra)
    wrong = dict(state)
    wrong["0.weight"] = np.zeros((3, 2, 3, 3, 5), dtype=np.float32)
    with pytest.raises(ValueError, match=r"0.weight: checkpoint \(3, 2, 3, 3, 5\) vs model "
                                         r"\(3, 2, 3, 3, 3\)"):
        m.load_state_dict(wrong)
    missing_keys, unexpected = m.load_state_dict(extra, strict=False)
    assert missing_keys == [] and unexpected == ["bogus"]


def test_to_device_moves_parameters_and_buffers_in_place():
    m = small_model().eval()
    x = rng.random((2, 2, 4, 4, 4), dtype=np.float32)
    expected = m(Tensor(x)).numpy()
    weight = m[0].weight
    m.to("cuda-emu")
    assert m[0].weight is weight and weight.device == "cuda-emu"
    assert m.device == "cuda-emu"
    got = m(Tensor(x, device="cuda-emu"))
    assert got.device == "cuda-emu"
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="unknown device"):
        m.to("tpu")


def test_astype_float64_and_repr():
    m = small_model().astype(np.float64)
    assert all(p.dtype == np.float64 for p in m.parameters())
    assert m[1].running_mean.dtype == np.float64
    text = repr(m)
    assert "(0): Conv3d(2, 3, kernel_size=(3, 3, 3), padding=(1, 1, 1))" in text
    assert "(6): Linear(in_features=24, out_features=4)" in text
    assert "Dropout(p=0.3)" in text


# ---- layers against references ----------------------------------------------------------------

def test_conv3d_layer_matches_naive_loops():
    layer = nn.Conv3d(4, 6, (3, 2, 3), stride=(1, 2, 1), padding=(1, 0, 2), dilation=(2, 1, 1),
                      groups=2, dtype=np.float64)
    x = rng.standard_normal((2, 4, 6, 5, 4))
    expected = naive_conv3d(x, layer.weight.numpy(), layer.bias.numpy(), (1, 2, 1),
                            ((1, 1), (0, 0), (2, 2)), (2, 1, 1), 2)
    np.testing.assert_allclose(layer(Tensor(x)).numpy(), expected, rtol=1e-10, atol=1e-12)
    assert layer.weight.shape == (6, 2, 3, 2, 3)


def test_conv3d_same_padding_keeps_size():
    layer = nn.Conv3d(1, 2, 3, padding="same")
    assert layer(Tensor(np.zeros((1, 1, 5, 6, 7), np.float32))).shape == (1, 2, 5, 6, 7)


def test_pool_layers_match_naive_loops():
    x = rng.standard_normal((2, 3, 5, 6, 7))
    got = nn.MaxPool3d(2, stride=(1, 2, 2), padding=1)(Tensor(x)).numpy()
    expected, _ = naive_max_pool3d(x, (2, 2, 2), (1, 2, 2), (1, 1, 1), (1, 1, 1), False)
    np.testing.assert_allclose(got, expected)
    got = nn.AvgPool3d(3, stride=2, ceil_mode=True, count_include_pad=False)(Tensor(x)).numpy()
    np.testing.assert_allclose(got, naive_avg_pool3d(x, (3, 3, 3), (2, 2, 2), (0, 0, 0), True,
                                                     False), rtol=1e-12)


def test_linear_relu_flatten_global_pool_formulas():
    lin = nn.Linear(5, 3, dtype=np.float64)
    x = rng.standard_normal((4, 5))
    np.testing.assert_allclose(lin(Tensor(x)).numpy(),
                               x @ lin.weight.numpy().T + lin.bias.numpy(), rtol=1e-12)
    v = rng.standard_normal((2, 3, 2, 2, 2))
    np.testing.assert_array_equal(nn.ReLU()(Tensor(v)).numpy(), np.maximum(v, 0))
    assert nn.Flatten()(Tensor(v)).shape == (2, 24)
    np.testing.assert_allclose(nn.GlobalAvgPool3d()(Tensor(v)).numpy(), v.mean(axis=(2, 3, 4)))


def test_batchnorm3d_train_and_eval_follow_the_formula():
    bn = nn.BatchNorm3d(3, momentum=0.2, dtype=np.float64)
    bn.weight.data[:] = [1.0, 2.0, 0.5]
    bn.bias.data[:] = [0.0, -1.0, 3.0]
    x = rng.standard_normal((4, 3, 2, 3, 2)) * 2 + 1
    y = bn(Tensor(x)).numpy()
    mean, var = x.mean(axis=(0, 2, 3, 4)), x.var(axis=(0, 2, 3, 4))
    M = x.size // 3
    shape = (1, 3, 1, 1, 1)
    expected = ((x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + 1e-5)
                * bn.weight.numpy().reshape(shape) + bn.bias.numpy().reshape(shape))
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bn.running_mean, 0.2 * mean)
    np.testing.assert_allclose(bn.running_var, 0.8 + 0.2 * var * M / (M - 1))
    bn.eval()
    y_eval = bn(Tensor(x)).numpy()
    expected = ((x - bn.running_mean.reshape(shape)) / np.sqrt(bn.running_var.reshape(shape)
                                                               + 1e-5)
                * bn.weight.numpy().reshape(shape) + bn.bias.numpy().reshape(shape))
    np.testing.assert_allclose(y_eval, expected, rtol=1e-10)
    with pytest.raises(ValueError, match=r"BatchNorm3d\(3\) expects \(N, 3, D, H, W\)"):
        bn(Tensor(np.zeros((2, 4, 1, 1, 1))))


def test_dropout_masks_are_scaled_reproducible_and_fresh_each_call():
    x = Tensor(np.ones((200, 50), dtype=np.float32))
    d = nn.Dropout(0.3, seed=7)
    y1, y2 = d(x).numpy(), d(x).numpy()
    assert set(np.unique(y1)) <= {0.0, np.float32(1 / 0.7)}
    assert abs((y1 == 0).mean() - 0.3) < 0.02
    assert not np.array_equal(y1, y2)  # a new mask per call
    again = nn.Dropout(0.3, seed=7)
    np.testing.assert_array_equal(again(x).numpy(), y1)  # same seed, same first mask
    d.eval()
    np.testing.assert_array_equal(d(x).numpy(), x.numpy())


def test_torch_layers_agree():
    torch = pytest.importorskip("torch")
    m = small_model(np.float64).train()
    tm = torch.nn.Sequential(torch.nn.Conv3d(2, 3, 3, padding=1), torch.nn.BatchNorm3d(3),
                             torch.nn.ReLU(), torch.nn.MaxPool3d(2), torch.nn.Flatten(),
                             torch.nn.Linear(24, 4)).double()
    for (ours, theirs) in ((m[0], tm[0]), (m[6], tm[5])):
        theirs.weight.data = torch.from_numpy(ours.weight.numpy().copy())
        theirs.bias.data = torch.from_numpy(ours.bias.numpy().copy())
    m[4].p = 0.0  # torch's dropout draws other masks: compare without it
    x = rng.standard_normal((3, 2, 4, 4, 4))
    for mode in ("train", "eval"):
        getattr(m, mode)()
        getattr(tm, mode)()
        tx = torch.from_numpy(x.copy()).requires_grad_(True)
        ours_x = Tensor(x.copy(), requires_grad=True)
        y, ty = m(ours_x), tm(tx)
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-9, atol=1e-12)
        y.sum().backward()
        ty.sum().backward()
        np.testing.assert_allclose(ours_x.grad, tx.grad.numpy(), rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(m[0].weight.grad, tm[0].weight.grad.numpy(), rtol=1e-8,
                                   atol=1e-12)
        m.zero_grad()
        tm.zero_grad()
    np.testing.assert_allclose(m[1].running_var, tm[1].running_var.numpy(), rtol=1e-10)


# ---- gradients of every layer (float64 finite differences) --------------------------------------

def _check_layer(layer, x):
    params = list(layer.parameters())
    assert gradcheck(lambda x, *ps: layer(x), [x, *params])


def test_gradcheck_conv3d_linear_pools():
    _check_layer(nn.Conv3d(2, 2, (2, 3, 2), stride=(2, 1, 1), padding=(0, 1, 1),
                           dtype=np.float64), T(1, 2, 4, 3, 3))
    _check_layer(nn.Conv3d(2, 4, 3, groups=2, padding="same", bias=False, dtype=np.float64),
                 T(1, 2, 3, 3, 3))
    _check_layer(nn.Linear(4, 3, dtype=np.float64), T(2, 4))
    _check_layer(nn.MaxPool3d(2, stride=1), T(1, 2, 3, 3, 3))
    _check_layer(nn.AvgPool3d(2, padding=1, count_include_pad=False), T(1, 1, 3, 3, 3))
    _check_layer(nn.GlobalAvgPool3d(), T(2, 2, 2, 2, 2))


def test_gradcheck_batchnorm_relu_flatten_sequential():
    bn = nn.BatchNorm3d(2, dtype=np.float64)
    bn.weight.data[:] = [1.5, -0.5]
    _check_layer(bn, T(3, 2, 2, 2, 1))
    _check_layer(bn.eval(), T(3, 2, 2, 2, 1))
    _check_layer(nn.ReLU(), Tensor(rng.uniform(0.1, 1, (2, 3)) * rng.choice([-1, 1], (2, 3)),
                                   requires_grad=True))
    _check_layer(nn.Flatten(), T(2, 2, 2, 1, 1))
    seq = nn.Sequential(nn.Conv3d(1, 2, 2, dtype=np.float64), nn.BatchNorm3d(2, dtype=np.float64),
                        nn.Flatten(), nn.Linear(16, 2, dtype=np.float64))
    _check_layer(seq, T(2, 1, 3, 3, 3))


def test_gradcheck_dropout_with_its_mask_held_fixed():
    d = nn.Dropout(0.4, seed=3)
    start = d.rng_state.copy()

    def fixed_mask(x):
        d.rng_state[:] = start  # every evaluation draws the same mask
        return d(x)

    assert gradcheck(fixed_mask, [T(3, 5)])


# ---- errors -------------------------------------------------------------------------------------

def test_layer_argument_errors():
    with pytest.raises(ValueError, match="groups=2 must divide in_channels=3"):
        nn.Conv3d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="unknown init 'he'"):
        nn.Conv3d(1, 1, 3, init="he")
    with pytest.raises(ValueError, match="padding must be an int, a triple, 'same' or 'valid'"):
        nn.Conv3d(1, 1, 3, padding="full")
    with pytest.raises(TypeError, match="element 1 is a str"):
        nn.Sequential(nn.ReLU(), "relu")
    with pytest.raises(ValueError, match="Dropout: p is a probability"):
        nn.Dropout(1.5)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        nn.Linear(2, 2, dtype=np.int32)
    with pytest.raises(RuntimeError, match=r"call super\(\).__init__\(\)"):
        class Broken(nn.Module):
            def __init__(self):
                self.w = 1
        Broken()
