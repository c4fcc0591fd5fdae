"""``weights=`` (conv3d.models._weights): a dict, a .npz, a .pth (with torch), a nested
checkpoint, and the errors for a missing file, a wrong suffix and keys that do not match.

The model is a small one in PyTorch layout (a (2+1)D block, whose keys torch renames, and a
BatchNorm, whose num_batches_tracked torch adds), so the state dict round-trips through the
same renaming that real torchvision checkpoints need."""
import numpy as np
import pytest

from conv3d import nn
from conv3d.interop import to_torch_state_dict
from conv3d.models._weights import load_weights, read_state_dict


def small_model(seed=0):
    nn.init.manual_seed(seed)
    return nn.Sequential(nn.Conv2Plus1d(2, 3, 3, padding=1), nn.BatchNorm3d(3), nn.ReLU())


def saved_state(seed=1):
    """A torch-layout state dict whose values differ from a fresh small_model()'s."""
    source = small_model(seed)
    source[1].running_mean[:] = np.arange(3, dtype=np.float32) + 0.5
    source[1].running_var[:] = np.arange(3, dtype=np.float32) + 2.0
    return to_torch_state_dict(source)


def assert_loaded(model, state):
    ours = to_torch_state_dict(model)
    assert set(ours) == set(state)
    for key, value in state.items():
        if not key.endswith("num_batches_tracked"):
            np.testing.assert_array_equal(ours[key], np.asarray(value), err_msg=key)


def test_none_leaves_the_model_alone():
    model = small_model()
    before = model.state_dict()
    assert load_weights(model, None) is model
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_dict():
    state = saved_state()
    model = small_model()
    assert not np.array_equal(to_torch_state_dict(model)["0.0.weight"], state["0.0.weight"])
    assert load_weights(model, state) is model
    assert_loaded(model, state)


def test_npz(tmp_path):
    state = saved_state()
    path = tmp_path / "w.npz"
    np.savez(path, **state)
    model = load_weights(small_model(), path)  # a PathLike
    assert_loaded(model, state)
    assert_loaded(load_weights(small_model(), str(path)), state)  # a str


def test_pth_and_nested_checkpoint(tmp_path):
    torch = pytest.importorskip("torch", reason="reading .pth files needs torch")
    state = saved_state()
    tensors = {k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}
    plain, nested, pickled = tmp_path / "w.pth", tmp_path / "ckpt.pt", tmp_path / "w.pickle"
    torch.save(tensors, plain)
    torch.save({"epoch": 3, "state_dict": tensors}, nested)
    torch.save(tensors, pickled)  # the C3D port's c3d.pickle is a torch.save file
    assert_loaded(load_weights(small_model(), plain), state)
    assert_loaded(load_weights(small_model(), pickled), state)
    assert_loaded(load_weights(small_model(), nested), state)
    assert set(read_state_dict(nested)) == set(state)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_weights(small_model(), tmp_path / "absent.pth")


def test_wrong_suffix(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"not weights")
    with pytest.raises(ValueError, match=r"neither a torch\.save file \(\.pth/\.pt/\.pickle/\.pkl\) nor \.npz"):
        load_weights(small_model(), path)


def test_wrong_type():
    with pytest.raises(TypeError, match="weights must be None, a mapping"):
        load_weights(small_model(), 42)


def test_strict_missing_and_unexpected_keys():
    state = dict(saved_state())
    del state["1.running_var"]
    state["2.weight"] = np.zeros(3, np.float32)
    with pytest.raises(KeyError, match=r"missing keys \['1.running_var'\], unexpected keys "
                                       r"\['2.weight'\]"):
        load_weights(small_model(), state)


def test_strict_shape_mismatch():
    state = dict(saved_state())
    state["1.weight"] = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match=r"1.weight: checkpoint \(4,\) vs model \(3,\)"):
        load_weights(small_model(), state)
