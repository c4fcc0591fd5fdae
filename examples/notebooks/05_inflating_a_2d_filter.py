# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Inflating a 2D filter into 3D (I3D)
#
# A network trained on images can start a video network: every 2D kernel (K, C, kH, kW) becomes
# a 3D kernel (K, C, T, kH, kW). `conv3d.nn.inflate` repeats it over T time slices and divides by
# T. On a *boring video* (the same frame T times) the 3D convolution then gives exactly the 2D
# response. We check that against SciPy's 2D correlation.

# %%
import numpy as np
from scipy.signal import correlate2d

import conv3d.functional as F
from conv3d import Tensor
from conv3d.nn import inflate

sobel_w = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])  # a 2D edge filter
w2d = sobel_w[None, None]  # (K=1, C=1, 3, 3)

frame = np.zeros((12, 12))
frame[3:9, 4:10] = 1.0                     # a bright rectangle
clip = np.repeat(frame[None], 5, axis=0)  # a static clip: 5 identical frames
response_2d = correlate2d(frame, sobel_w, mode="valid")

# %% [markdown]
# ## Mean inflation, no temporal padding
# Each output frame sees 3 identical input frames, each weighted by w/3: the sum is the 2D
# response, on every output frame.

# %%
w3d = inflate(w2d, 3)
print("inflated kernel", w3d.shape, "; each time slice = w/3:", np.allclose(w3d[0, 0, 1], sobel_w / 3))
y = F.conv3d(Tensor(clip[None, None]), Tensor(w3d)).numpy()[0, 0]
print("output frames:", y.shape[0])
for t in range(y.shape[0]):
    assert np.allclose(y[t], response_2d)
print("every output frame equals the 2D response")

# %% [markdown]
# ## With temporal padding, the edge frames see zeros
# Padding 1 in time keeps 5 output frames, but the first and last windows cover one padded
# (zero) frame: their response is scaled by 2/3. `center=True` (the 2D kernel in the middle
# slice only) avoids that: padding then meets only zero weights.

# %%
y_pad = F.conv3d(Tensor(clip[None, None]), Tensor(w3d), padding=(1, 0, 0)).numpy()[0, 0]
print("edge frame / 2D response:", np.abs(y_pad[0]).sum() / np.abs(response_2d).sum())
assert np.allclose(y_pad[0], response_2d * 2 / 3) and np.allclose(y_pad[2], response_2d)
y_center = F.conv3d(Tensor(clip[None, None]), Tensor(inflate(w2d, 3, center=True)),
                    padding=(1, 0, 0)).numpy()[0, 0]
assert all(np.allclose(y_center[t], response_2d) for t in range(5))
print("center=True: all 5 frames equal the 2D response")

# %%
# %matplotlib inline
from matplotlib.figure import Figure

fig = Figure(figsize=(10, 3.4))
axes = fig.subplots(1, 3)
for ax, img, title in [(axes[0], frame, "INPUT: every frame of the clip"),
                       (axes[1], y[2], "OUTPUT frame 2 (mean inflation)"),
                       (axes[2], y_pad[0], "OUTPUT frame 0, padded: x 2/3")]:
    ax.imshow(img, cmap="RdBu" if img is not frame else "gray", vmin=-4 if img is not frame else 0,
              vmax=4 if img is not frame else 1)
    ax.set_title(title, fontsize=9)
fig.tight_layout()
fig
