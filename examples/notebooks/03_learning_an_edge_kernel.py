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
# # Learning a 3D edge kernel back by gradient descent
#
# In *Dive into Deep Learning* (section 7.2) a 1×2 edge kernel is recovered from an image and its
# edge map by gradient descent. Here is the same experiment in 3D: we make a target with a
# known 3×3×3 edge kernel, start from a random kernel, and let `backward` plus a hand-written SGD
# step find the kernel again. Everything is conv3d: `Tensor`, `F.conv3d`, `.backward()`.

# %%
import numpy as np

import conv3d.functional as F
from conv3d import Tensor

# the true kernel: a 3D Sobel derivative along the width axis
der, smo = np.array([-1.0, 0.0, 1.0]), np.array([1.0, 2.0, 1.0])
k_true = np.einsum("i,j,k->ijk", smo, smo, der)[None, None] / 16

rng = np.random.default_rng(0)
X = Tensor(rng.normal(size=(4, 1, 8, 8, 8)))  # four random volumes (float64)
Y = F.conv3d(X, Tensor(k_true))               # their edge maps: the training targets
print("input", X.shape, "-> target", Y.shape)

# %% [markdown]
# ## The training loop
# Loss: the mean squared difference between our kernel's output and the target. Each step:
# forward, `backward()` fills `K.grad`, and we move the kernel against its gradient.

# %%
K = Tensor(rng.normal(scale=0.1, size=(1, 1, 3, 3, 3)), requires_grad=True)
lr = 0.4
losses = []
for step in range(40):
    loss = ((F.conv3d(X, K) - Y) ** 2).mean()
    K.grad = None
    loss.backward()
    K.data -= lr * K.grad  # plain SGD, by hand
    losses.append(loss.item())
    if step % 8 == 0:
        print(f"step {step:2d}  loss {loss.item():.3e}")
print(f"final loss {losses[-1]:.3e}")
assert losses[-1] < 1e-6 * losses[0]

# %% [markdown]
# ## Did we find the kernel?
# Compare the learned kernel with the true one, slice by slice (depth slices):

# %%
np.set_printoptions(precision=3, suppress=True)
print("learned K, depth slice 1:\n", K.data[0, 0, 1])
print("true kernel, depth slice 1:\n", k_true[0, 0, 1])
err = np.abs(K.data - k_true).max()
print(f"largest difference: {err:.2e}")
assert err < 1e-3

# %% [markdown]
# ## The learned kernel at work
# A box in an otherwise empty volume: the kernel lights up on the two faces that cross the width
# axis (+ where the box starts, − where it ends) and nowhere else.

# %%
# %matplotlib inline
from matplotlib.figure import Figure

box = np.zeros((1, 1, 10, 12, 12))
box[0, 0, 2:8, 3:9, 3:9] = 1.0
edges = F.conv3d(Tensor(box), K, padding=1).numpy()[0, 0]
fig = Figure(figsize=(10, 3.4))
axes = fig.subplots(1, 3)
axes[0].imshow(box[0, 0, 5], cmap="gray")
axes[0].set_title("INPUT: depth slice 5 of the box")
axes[1].imshow(edges[5], cmap="RdBu", vmin=-1, vmax=1)
axes[1].set_title("OUTPUT: learned kernel, slice 5")
axes[2].plot(losses)
axes[2].set_yscale("log")
axes[2].set_title("training loss")
axes[2].set_xlabel("SGD step")
for ax in axes[:2]:
    ax.set_xlabel("w")
    ax.set_ylabel("h")
fig.tight_layout()
fig
