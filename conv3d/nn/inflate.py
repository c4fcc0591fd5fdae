"""I3D inflation: turn a 2-D convolution kernel into a 3-D one (Carreira & Zisserman 2017).

A network trained on images can start a video network: each 2-D kernel w2 (K, C, kH, kW) becomes
a 3-D kernel w3 (K, C, T, kH, kW). Two schemes:

* ``center=False`` (I3D's "boring video" rule, the default): repeat w2 over the T time slices
  and divide by T, ``w3[:, :, t] = w2 / T``. On a *static* clip (the same frame at every time),
  the T slices add up to exactly the 2-D response, at every output frame whose temporal window
  lies inside the clip.
* ``center=True``: put w2 in the middle slice ``T // 2`` and zeros elsewhere; the 3-D conv then
  *is* the 2-D conv applied frame by frame, whatever the clip.

Temporal padding (what happens at the first and last frames). With zero padding in time, the
mean-inflated kernel's window at an edge frame covers padded zeros: a static clip with padding
p gives the 2-D response times (T - m)/T there, m = number of padded slices under the window.
So, for the 2-D response on *every* frame of a static clip, either use ``center=True`` (zeros
in the padding meet only zero kernel slices) or no temporal padding (each output frame then sees
T real frames; the clip loses T - 1 frames).
"""
from __future__ import annotations

import numbers

import numpy as np

from ..core.tensor import Tensor


def inflate(weight_2d, time: int, center: bool = False):
    """(K, C, kH, kW) -> (K, C, time, kH, kW); see the module docstring.

    Accepts a NumPy array or a Tensor (or anything ``np.asarray`` takes, e.g. a torch tensor
    after ``.detach().numpy()``) and returns the same kind (a Tensor stays on its device; the
    result is a new leaf). The dtype is kept.
    """
    if isinstance(time, bool) or not isinstance(time, numbers.Integral) or time < 1:
        raise ValueError(f"inflate: time must be an int >= 1 (the kernel's temporal size), "
                         f"got {time!r}")
    is_tensor = isinstance(weight_2d, Tensor)
    w2 = weight_2d.numpy() if is_tensor else np.asarray(weight_2d)
    if w2.ndim != 4:
        raise ValueError(f"inflate: weight_2d must be 4-D (K, C, kH, kW), got shape {w2.shape}; "
                         f"a 2-D convolution's weight has that layout")
    if w2.dtype.kind != "f":
        raise TypeError(f"inflate: weight_2d has dtype {w2.dtype}; expected float32 or float64")
    K, C, kH, kW = w2.shape
    w3 = np.zeros((K, C, time, kH, kW), dtype=w2.dtype)
    if center:
        w3[:, :, time // 2] = w2
    else:
        w3[:] = (w2 / w2.dtype.type(time))[:, :, None]
    if is_tensor:
        return Tensor(w3, requires_grad=weight_2d.requires_grad).to(weight_2d.device)
    return w3
