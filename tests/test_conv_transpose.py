"""conv_transpose3d and nn.ConvTranspose3d: a scatter written by hand, the adjoint identity
<conv3d(u, w), v> == <u, conv_transpose3d(v, w)> to 1e-10, finite differences, and torch as a
peer (forward and all gradients, float64 and float32) over drawn settings."""
import itertools
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import conv3d
import conv3d.functional as F
from _torch_peer import compare
from conv3d import Tensor, gradcheck


def scatter_reference(x, w, b, stride, padding, output_padding, dilation, groups):
    """Every input voxel times the kernel, added into the full output, then the padding cropped:
    plain loops over the input voxels and the taps (float64)."""
    N, Cin, *size = x.shape
    Cg_out = w.shape[1]
    Cout = Cg_out * groups
    kernel = w.shape[2:]
    full = [(i - 1) * s + d * (k - 1) + 1 + op
            for i, s, d, k, op in zip(size, stride, dilation, kernel, output_padding)]
    y = np.zeros((N, Cout, *full))
    cin_g = Cin // groups
    for z, yy, xx in itertools.product(*(range(i) for i in size)):
        for a, bb, e in itertools.product(*(range(k) for k in kernel)):
            pos = (z * stride[0] + a * dilation[0], yy * stride[1] + bb * dilation[1],
                   xx * stride[2] + e * dilation[2])
            for g in range(groups):
                xs = x[:, g * cin_g:(g + 1) * cin_g, z, yy, xx]           # (N, cin_g)
                ws = w[g * cin_g:(g + 1) * cin_g, :, a, bb, e]            # (cin_g, Cg_out)
                y[:, g * Cg_out:(g + 1) * Cg_out, pos[0], pos[1], pos[2]] += xs @ ws
    out = [f - 2 * p for f, p in zip(full, padding)]
    y = y[:, :, padding[0]:padding[0] + out[0], padding[1]:padding[1] + out[1],
          padding[2]:padding[2] + out[2]]
    return y if b is None else y + b.reshape(1, -1, 1, 1, 1)


def test_matches_the_scatter_by_hand_and_gradcheck():
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s) for s in ((2, 4, 2, 3, 2), (4, 3, 2, 3, 2), (6,)))
    settings_ = dict(stride=(2, 1, 3), padding=(1, 0, 1), output_padding=(1, 0, 2),
                     dilation=(1, 2, 1), groups=2)
    y = F.conv_transpose3d(Tensor(x), Tensor(w), Tensor(b), **settings_)
    expected = scatter_reference(x, w, b, settings_["stride"], settings_["padding"],
                                 settings_["output_padding"], settings_["dilation"], 2)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)
    tensors = [Tensor(a, requires_grad=True) for a in (x[:1, :, :, :2, :2], w, b)]
    assert gradcheck(lambda x, w, b: F.conv_transpose3d(x, w, b, **settings_), tensors)


@st.composite
def transposed_settings(draw):
    G = draw(st.sampled_from([1, 2]))
    Cin, Cout = G * draw(st.integers(1, 2)), G * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(3))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(3))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(3))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    size = tuple(draw(st.integers(1, 3)) for _ in range(3))
    # torch's rule: the output must not be empty
    padding = tuple(draw(st.integers(0, max(0, ((i - 1) * s + d * (k - 1) + op) // 2)))
                    for i, s, d, k, op in zip(size, stride, dilation, kernel, output_padding))
    return ((draw(st.integers(1, 2)), Cin) + size, (Cin, Cout // G) + kernel, stride, padding,
            output_padding, dilation, G, draw(st.booleans()), draw(st.integers(0, 2**31 - 1)))


@settings(max_examples=30)
@given(transposed_settings(), st.sampled_from([np.float64, np.float32]))
def test_matches_torch_forward_and_gradients(case, dtype):
    torch = pytest.importorskip("torch")
    x_shape, w_shape, stride, padding, output_padding, dilation, G, with_bias, seed = case
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape)]
    if with_bias:
        arrays.append(rng.standard_normal(w_shape[1] * G))
    compare(torch,
            lambda x, w, b=None: F.conv_transpose3d(x, w, b, stride, padding, output_padding, G,
                                                    dilation),
            lambda x, w, b=None: torch.nn.functional.conv_transpose3d(
                x, w, b, stride, padding, output_padding, G, dilation),
            arrays, dtype, rng)


@settings(max_examples=20)
@given(transposed_settings())
def test_adjoint_identity(case):
    """conv_transpose3d(., w) is the transpose of conv3d(., w) from C_out to C_in channels, for
    the conv3d input size that output_padding selects: <conv3d(u, w), v> == <u, ct(v, w)>."""
    x_shape, w_shape, stride, padding, output_padding, dilation, G, _, seed = case
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(w_shape)
    v = rng.standard_normal(x_shape)                  # lives where conv3d's output lives
    ct = F.conv_transpose3d(Tensor(v), Tensor(w), None, stride, padding, output_padding, G,
                            dilation).numpy()
    u = rng.standard_normal(ct.shape)                 # lives where conv3d's input lives
    conv = F.conv3d(Tensor(u), Tensor(w), None, stride, padding, dilation, G).numpy()
    if conv.shape != v.shape:  # output_padding >= stride (allowed when < dilation): the conv3d
        return                 # of that input size has a larger output; no adjoint pairing
    lhs, rhs = float((conv * v).sum()), float((u * ct).sum())
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


def test_adjoint_identity_on_a_decoder_layer():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 4, 3, 3, 3))
    v = rng.standard_normal((2, 6, 4, 5, 3))
    ct = F.conv_transpose3d(v, w, stride=2, padding=1, output_padding=1).numpy()
    assert ct.shape == (2, 4, 8, 10, 6)               # (i - 1)*2 - 2 + 2 + 1 + 1 = 2i
    u = rng.standard_normal(ct.shape)
    conv = F.conv3d(u, w, stride=2, padding=1).numpy()
    assert abs(float((conv * v).sum()) - float((u * ct).sum())) < 1e-10 * np.abs(conv * v).sum()


def test_layer_matches_torch_with_loaded_weights():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.ConvTranspose3d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
    ours = conv3d.nn.ConvTranspose3d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
    assert ours.weight.shape == tuple(theirs.weight.shape)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((1, 4, 3, 2, 3)).astype(np.float32)
    np.testing.assert_allclose(ours(Tensor(x)).numpy(),
                               theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-4,
                               atol=1e-5)
    assert "output_padding=(1, 1, 1)" in repr(ours)


def test_default_init_has_torchs_bounds():
    layer = conv3d.nn.ConvTranspose3d(8, 2, 2, stride=2, rng=0)
    bound = 1 / np.sqrt(2 * 8)  # fan_in = weight.shape[1] * taps = 2 * 8, as torch computes it
    assert np.abs(layer.weight.numpy()).max() <= bound
    assert np.abs(layer.weight.numpy()).max() > 0.8 * bound


def test_bias_only_and_input_only_gradients():
    rng = np.random.default_rng(3)
    x = Tensor(rng.standard_normal((1, 2, 2, 2, 2)), requires_grad=True)
    w = Tensor(rng.standard_normal((2, 1, 2, 2, 2)))
    b = Tensor(rng.standard_normal(1), requires_grad=True)
    assert gradcheck(lambda x, b: F.conv_transpose3d(x, w, b, stride=2), [x, b])


def test_errors_name_the_argument():
    x, w = np.zeros((1, 2, 3, 3, 3)), np.zeros((2, 1, 2, 2, 2))
    with pytest.raises(ValueError, match="output_padding must be smaller than stride"):
        F.conv_transpose3d(x, w, stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"weight must have shape \(C_in"):
        F.conv_transpose3d(x, np.zeros((3, 1, 2, 2, 2)))
    with pytest.raises(ValueError, match="bias must have shape"):
        F.conv_transpose3d(x, w, np.zeros(2))
    with pytest.raises(ValueError, match="input must be 5-D"):
        F.conv_transpose3d(np.zeros((2, 3, 3, 3)), w)
    with pytest.raises(TypeError, match="mixed dtypes"):
        F.conv_transpose3d(x.astype(np.float32), w)
    with pytest.raises(ValueError, match="output would be empty"):
        F.conv_transpose3d(x, w, padding=3)
    with pytest.raises(ValueError, match="groups=3 must divide"):
        conv3d.nn.ConvTranspose3d(4, 6, 2, groups=3)


@pytest.mark.skipif(shutil.which("g++") is None,
                    reason="the CUDA emulator needs g++ to compile the kernels")
def test_on_cuda_emu_the_cuda_conv_kernels_serve_it_too():
    """On device 'cuda-emu' the same Function reaches the CUDA provider's conv3d kernels (input
    gradient for the forward; forward and weight gradient for the backward), emulated."""
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in
              ((1, 2, 2, 3, 2), (2, 3, 3, 2, 2), (3,))]
    results = []
    for device in ("cpu", "cuda-emu"):
        ts = [Tensor(a.copy(), requires_grad=True, device=device) for a in arrays]
        y = F.conv_transpose3d(*ts, stride=(2, 1, 2), padding=(1, 0, 0), output_padding=(1, 0, 1))
        y.backward(np.linspace(-1, 1, y.size, dtype=np.float32).reshape(y.shape))
        results.append([y.numpy()] + [t.grad for t in ts])
    for emu, cpu in zip(results[1], results[0]):
        np.testing.assert_allclose(emu, cpu, rtol=1e-4, atol=1e-5)


def test_layer_output_size_picks_the_output_padding_as_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    theirs = torch.nn.ConvTranspose3d(2, 3, 3, stride=2, padding=1).double()
    ours = conv3d.nn.ConvTranspose3d(2, 3, 3, stride=2, padding=1, dtype=np.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(5).standard_normal((1, 2, 3, 4, 3))
    for size in ((5, 7, 6), (6, 8, 5)):  # from 3: 5 or 6; from 4: 7 or 8
        y = ours(Tensor(x), output_size=size)
        ty = theirs(torch.from_numpy(x), output_size=size)
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="out of reach on the depth axis"):
        ours(Tensor(x), output_size=(7, 7, 5))


@pytest.mark.parametrize("kernel, output_padding, dtype", [
    ((2, 2, 2), (0, 0, 0), np.float64), ((1, 2, 3), (0, 1, 2), np.float64),
    ((2, 2, 2), (1, 0, 1), np.float32)])
def test_stride_equal_to_the_kernel_matches_torch_and_the_scatter(kernel, output_padding, dtype):
    """Taps that never overlap (a U-Net's k2 s2 up-convolution) take the per-tap GEMM path on the
    CPU; it must give the scatter's values and torch's gradients, output_padding included."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, w, b = (rng.standard_normal(s) for s in ((2, 5, 3, 2, 4), (5, 3) + kernel, (3,)))
    y = F.conv_transpose3d(Tensor(x), Tensor(w), Tensor(b), stride=kernel,
                           output_padding=output_padding)
    expected = scatter_reference(x, w, b, kernel, (0, 0, 0), output_padding, (1, 1, 1), 1)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)
    compare(torch,
            lambda x, w, b: F.conv_transpose3d(x, w, b, kernel, 0, output_padding),
            lambda x, w, b: torch.nn.functional.conv_transpose3d(x, w, b, kernel, 0,
                                                                 output_padding),
            [x, w, b], dtype, rng)
    tensors = [Tensor(a[:1] if i == 0 else a, requires_grad=True) for i, a in enumerate((x, w, b))]
    assert gradcheck(lambda x, w, b: F.conv_transpose3d(x, w, b, kernel, 0, output_padding),
                     tensors)
