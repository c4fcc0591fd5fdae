"""A state dict whose floating dtype differs from the model's says so: a UserWarning naming the
first key, both dtypes and the fixes; ``dtype=`` casts on purpose, silently. The same rule
through load_torch_state_dict."""
import warnings

import numpy as np
import pytest

from conv3d import nn
from conv3d.interop.torch_layout import load_torch_state_dict, to_torch_state_dict


def model(dtype):
    return nn.Sequential(nn.Conv3d(1, 2, 3, dtype=dtype), nn.BatchNorm3d(2, dtype=dtype))


def test_float32_state_into_float64_model_warns_and_names_the_fix():
    source = model(np.float32)
    target = model(np.float64)
    with pytest.warns(UserWarning) as record:
        target.load_state_dict(source.state_dict())
    message = str(record[0].message)
    assert "'0.weight'" in message and "float32" in message and "float64" in message
    assert "model.astype(np.float32)" in message and "dtype=np.float64" in message
    assert "6 checkpoint value(s)" in message  # every float entry, not the int64 count
    assert target[0].weight.dtype == np.float64
    np.testing.assert_array_equal(target[0].weight.numpy(), source[0].weight.numpy())


@pytest.mark.parametrize("cast_to", [np.float64, np.float32])
def test_dtype_argument_casts_silently_and_the_model_takes_it(cast_to):
    source = model(np.float32)
    target = model(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        target.load_state_dict(source.state_dict(), dtype=cast_to)
    assert all(p.dtype == cast_to for p in target.parameters())
    assert target[1].running_var.dtype == cast_to
    assert target[1].num_batches_tracked.dtype == np.int64
    np.testing.assert_array_equal(target[0].weight.numpy(),
                                  source[0].weight.numpy().astype(cast_to))
    with pytest.raises(TypeError, match="floating dtype"):
        target.load_state_dict(source.state_dict(), dtype=np.int32)


def test_same_dtype_loads_without_a_warning_and_torch_layout_follows_the_rule():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(np.float32).load_state_dict(model(np.float32).state_dict())
        load_torch_state_dict(model(np.float64), to_torch_state_dict(model(np.float32)),
                              dtype=np.float64)
    with pytest.warns(UserWarning, match="converted from float64 to the model's float32"):
        load_torch_state_dict(model(np.float32), to_torch_state_dict(model(np.float64)))


def test_a_refused_checkpoint_leaves_the_model_in_its_dtype():
    target = model(np.float64)
    with pytest.raises(KeyError, match="missing keys"):
        target.load_state_dict({"0.weight": np.zeros((2, 1, 3, 3, 3), np.float32)},
                               dtype=np.float32)
    assert all(p.dtype == np.float64 for p in target.parameters())
