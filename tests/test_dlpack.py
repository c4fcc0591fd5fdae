"""Arrays in and out of conv3d without copies: NumPy's array protocol and DLPack.

Memory sharing is proved by writing through one side and reading the other, and by
``np.shares_memory``, never by comparing values that a copy would also reproduce.
"""
import numpy as np
import pytest

import conv3d
from conv3d import Tensor


def test_tensor_wraps_numpy_input_without_copy():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = Tensor(a)
    assert np.shares_memory(t.data, a)
    a[1, 2, 3] = -7.0
    assert t.numpy()[1, 2, 3] == -7.0
    assert t.dtype == np.float32


def test_float64_and_non_contiguous_views_are_kept_as_they_are():
    a = np.zeros((4, 6), dtype=np.float64)
    view = a[:, ::2]  # strided view: still no copy
    t = Tensor(view)
    assert t.dtype == np.float64
    assert np.shares_memory(t.data, a)
    t.data[0, 1] = 3.0
    assert a[0, 2] == 3.0


def test_array_protocol_gives_the_same_memory_back():
    t = Tensor(np.ones((2, 2), dtype=np.float32))
    back = np.asarray(t)
    assert np.shares_memory(back, t.data)
    assert t.numpy() is t.data
    assert np.asarray(t, dtype=np.float64).dtype == np.float64  # an explicit dtype converts


def test_python_lists_are_copied_into_float32():
    t = Tensor([[1.0, 2.0]])
    assert t.dtype == np.float32 and t.shape == (1, 2)


def test_dlpack_round_trip_with_numpy_shares_memory():
    t = Tensor(np.arange(6, dtype=np.float32))
    assert t.__dlpack_device__() == (1, 0)
    a = np.from_dlpack(t)
    assert np.shares_memory(a, t.data)
    back = conv3d.from_dlpack(a)
    back.data[2] = 42.0
    assert t.numpy()[2] == 42.0


def test_from_dlpack_makes_a_leaf_that_can_require_grad():
    a = np.linspace(-1, 1, 5)
    t = conv3d.from_dlpack(a, requires_grad=True)
    (t * t).sum().backward()
    np.testing.assert_allclose(t.grad, 2 * a)
    assert t.dtype == np.float64


def test_from_dlpack_rejects_objects_without_dlpack():
    with pytest.raises(TypeError, match="obj must support DLPack.*list"):
        conv3d.from_dlpack([1.0, 2.0])


def test_torch_to_conv3d_and_back_share_memory():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    src = torch.arange(8, dtype=torch.float32).reshape(2, 4)
    t = conv3d.from_dlpack(src)
    assert t.shape == (2, 4) and t.dtype == np.float32 and t.device == "cpu"
    src[0, 1] = 100.0
    assert t.numpy()[0, 1] == 100.0
    out = torch.from_dlpack(t)
    out[1, 3] = -5.0
    assert t.numpy()[1, 3] == -5.0 and src[1, 3].item() == -5.0


def test_torch_tensor_that_requires_grad_gets_a_clear_error():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    with pytest.raises(ValueError, match=r"detach\(\)"):
        conv3d.from_dlpack(torch.ones(3, requires_grad=True))


def test_engine_output_goes_to_torch_without_copy_and_matches_torch_conv():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    import conv3d.functional as F
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 5, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3, 3)).astype(np.float32)
    y = F.conv3d(Tensor(x), Tensor(w))
    y_torch_view = torch.from_dlpack(y)
    assert y_torch_view.data_ptr() == y.data.__array_interface__["data"][0]
    expected = torch.nn.functional.conv3d(torch.from_numpy(x), torch.from_numpy(w))
    torch.testing.assert_close(y_torch_view, expected, rtol=1e-4, atol=1e-4)


def test_cupy_round_trip_on_a_gpu():
    cp = pytest.importorskip("cupy", reason="CuPy is not installed (needs an NVIDIA GPU)")
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no NVIDIA GPU visible to CuPy")
    except Exception as exc:  # no driver
        pytest.skip(f"no usable NVIDIA GPU: {exc}")
    g = cp.arange(5, dtype=cp.float32)
    t = conv3d.from_dlpack(g)
    assert t.device == "cuda"
    g[0] = 8.0
    assert float(t.data[0].get()) == 8.0
    back = cp.from_dlpack(t)
    assert back.data.ptr == g.data.ptr
