"""The two models the interop tests carry to PyTorch and ONNX, built with conv3d.nn.

* the article's Keras 3D-MNIST model (Conv3D(32, 3, relu, he_uniform), MaxPool3D(2), BatchNorm,
  Dropout(0.5), Conv3D(64, 3, relu), MaxPool3D(2), BatchNorm, Dropout(0.5), Flatten,
  Dense(256, relu), Dropout(0.5), Dense(10)); softmax is left to the loss, as in PyTorch;
* a small (2+1)D video model built from Conv2Plus1d blocks.

``randomize`` fills every parameter AND buffer (BatchNorm running statistics) with random values,
so a mapping that drops or swaps one of them changes the outputs.
"""
import numpy as np

from conv3d import nn
from conv3d.train.recipes import keras_3d_mnist_model


def article_model(in_channels=3):
    """The model users train (examples/keras_3d_mnist.py): Keras's initializers and BatchNorm
    settings (momentum 0.99 in Keras's convention, i.e. 0.01 here, and eps 1e-3)."""
    return keras_3d_mnist_model(in_channels=in_channels)


def r2plus1d_model():
    return nn.Sequential(
        nn.Conv2Plus1d(1, 8, 3, padding=1), nn.BatchNorm3d(8), nn.ReLU(), nn.MaxPool3d((1, 2, 2)),
        nn.Conv2Plus1d(8, 16, 3, stride=(2, 1, 1), padding=1), nn.BatchNorm3d(16), nn.ReLU(),
        nn.AvgPool3d(2), nn.Flatten(), nn.Dropout(0.3), nn.Linear(16 * 2 * 2 * 2, 4))


def randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    state = model.state_dict()
    for key, value in state.items():
        if value.dtype.kind != "f":
            continue
        if key.endswith("running_var"):
            state[key] = rng.uniform(0.5, 2.0, value.shape).astype(value.dtype)
        else:
            state[key] = (0.2 * rng.standard_normal(value.shape)).astype(value.dtype)
    model.load_state_dict(state)
    return model
