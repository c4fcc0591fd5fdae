"""I3D inflation: both schemes, and the static-clip property: a clip that repeats one frame
gives the 2-D convolution's response on every frame (2-D reference: scipy.signal.correlate2d),
with temporal padding behaving as documented."""
import numpy as np
import pytest
from scipy.signal import correlate2d

import conv3d.nn as nn
from conv3d import Tensor

rng = np.random.default_rng(0)
K, C, KH, KW = 3, 2, 3, 3


def conv2d_reference(frame, w2, b, pad):
    """(C, H, W) frame, (K, C, kH, kW) kernel, zero padding ``pad`` -> (K, OH, OW)."""
    padded = np.pad(frame, ((0, 0), (pad, pad), (pad, pad)))
    return np.stack([b[k] + sum(correlate2d(padded[c], w2[k, c], mode="valid")
                                for c in range(frame.shape[0])) for k in range(w2.shape[0])])


@pytest.fixture
def kernel():
    return rng.standard_normal((K, C, KH, KW)), rng.standard_normal(K)


def test_mean_inflation_repeats_and_divides(kernel):
    w2, _ = kernel
    w3 = nn.inflate(w2, 5)
    assert w3.shape == (K, C, 5, KH, KW) and w3.dtype == w2.dtype
    for t in range(5):
        np.testing.assert_allclose(w3[:, :, t], w2 / 5)
    np.testing.assert_allclose(w3.sum(axis=2), w2)


def test_center_inflation_uses_the_middle_slice(kernel):
    w2, _ = kernel
    w3 = nn.inflate(w2.astype(np.float32), 4, center=True)
    np.testing.assert_array_equal(w3[:, :, 2], w2.astype(np.float32))
    assert np.count_nonzero(w3[:, :, [0, 1, 3]]) == 0


def static_clip(T=6, H=7, W=6):
    frame = rng.standard_normal((C, H, W))
    return frame, np.repeat(frame[:, None], T, axis=1)[None]  # (1, C, T, H, W)


def test_static_clip_gives_2d_response_on_every_frame_without_temporal_padding(kernel):
    w2, b = kernel
    frame, clip = static_clip()
    layer = nn.Conv3d.from_2d(w2, b, time=3, padding=(0, 1, 1))
    out = layer(Tensor(clip)).numpy()[0]
    expected = conv2d_reference(frame, w2, b, 1)
    assert out.shape[1] == 6 - 3 + 1  # no temporal padding: T - time + 1 frames
    for t in range(out.shape[1]):
        np.testing.assert_allclose(out[:, t], expected, rtol=1e-10, atol=1e-12)


def test_static_clip_with_zero_temporal_padding_edges_are_scaled(kernel):
    w2, b = kernel
    frame, clip = static_clip()
    layer = nn.Conv3d.from_2d(w2, b, time=3, padding=1)
    out = layer(Tensor(clip)).numpy()[0]
    expected = conv2d_reference(frame, w2, b, 1)
    bias = b.reshape(-1, 1, 1)
    for t in range(1, 5):  # interior frames: the full 2-D response
        np.testing.assert_allclose(out[:, t], expected, rtol=1e-10, atol=1e-12)
    for t in (0, 5):  # one of the 3 slices falls on padding: (3 - 1)/3 of the response
        np.testing.assert_allclose(out[:, t], bias + (expected - bias) * 2 / 3, rtol=1e-10,
                                   atol=1e-12)


def test_center_inflation_matches_2d_on_every_frame_of_any_clip(kernel):
    w2, b = kernel
    clip = rng.standard_normal((1, C, 5, 6, 6))  # not static: frames differ
    layer = nn.Conv3d.from_2d(w2, b, time=3, center=True, padding=1)
    out = layer(Tensor(clip)).numpy()[0]
    for t in range(5):
        np.testing.assert_allclose(out[:, t], conv2d_reference(clip[0, :, t], w2, b, 1),
                                   rtol=1e-10, atol=1e-12)


def test_matches_torch_conv2d():
    torch = pytest.importorskip("torch")
    conv2d = torch.nn.Conv2d(C, K, 3, padding=1).double()
    layer = nn.Conv3d.from_2d(conv2d.weight.detach().numpy(), conv2d.bias.detach().numpy(),
                              time=3, padding=(0, 1, 1))
    frame, clip = static_clip(T=3)
    expected = conv2d(torch.from_numpy(frame[None])).detach().numpy()[0]
    np.testing.assert_allclose(layer(Tensor(clip)).numpy()[0, :, 0], expected, rtol=1e-10)


def test_tensor_in_tensor_out_and_errors(kernel):
    w2, _ = kernel
    out = nn.inflate(Tensor(w2, requires_grad=True), 3)
    assert isinstance(out, Tensor) and out.requires_grad and out.shape == (K, C, 3, KH, KW)
    layer = nn.Conv3d.from_2d(Tensor(w2), Tensor(np.ones(K)), time=3)
    np.testing.assert_allclose(layer.weight.numpy(), nn.inflate(w2, 3))
    np.testing.assert_array_equal(layer.bias.numpy(), 1.0)
    with pytest.raises(ValueError, match="weight_2d must be 4-D"):
        nn.inflate(np.zeros((3, 3)), 3)
    with pytest.raises(ValueError, match="time must be an int >= 1"):
        nn.inflate(w2, 0)
    with pytest.raises(TypeError, match="dtype int64"):
        nn.inflate(np.zeros((1, 1, 3, 3), dtype=np.int64), 3)
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        nn.Conv3d.from_2d(w2, np.zeros(2), time=3)
