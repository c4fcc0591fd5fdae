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
# # Stepping through the worked cube
#
# A 4×4×4 input volume, a 3×3×3 filter, no padding, stride 1. This is the cube from the figure
# "3D Convolution" of a well-known Keras tutorial. We compute every output voxel by hand, check
# the figure, and then check our hand arithmetic against the engine (`conv3d.functional.conv3d`).

# %%
import numpy as np

import conv3d.functional as F
from conv3d import Tensor
from conv3d.teach.explain import explain_voxel
from conv3d.teach.problem import make_problem
from conv3d.teach.report import render

pr = make_problem(example="cube")
x, w = pr.x[0, 0], pr.w[0, 0]
print("INPUT x, depth slice by depth slice:\n", x)
print("WEIGHTS w (the same 3x3 slice three times):\n", w[0])

# %% [markdown]
# ## One output voxel, by hand
# Output voxel (od, oh, ow) = (0, 0, 1) sees the input block `x[0:3, 0:3, 1:4]`: 27 voxels.
# Multiply each by the weight at the same place and add the 27 products up.

# %%
block = x[0:3, 0:3, 1:4]
products = block * w
for kd in range(3):
    print(f"kernel slice kd={kd}:\n{products[kd]}\n  subtotal {products[kd].sum():g}")
print("total:", products.sum())

# %% [markdown]
# The same thing as `conv3d explain --example cube --at 0,0,1` prints it (here as Markdown):

# %%
render(explain_voxel(pr, (0, 0, 1)), "markdown")

# %% [markdown]
# ## Every output voxel, and the published figure
# The output is 2×2×2 (`floor((4 - 3)/1) + 1 = 2` per axis). Loop over all eight positions:

# %%
by_hand = np.array([[[(x[d:d + 3, h:h + 3, c:c + 3] * w).sum() for c in range(2)]
                     for h in range(2)] for d in range(2)])
engine = F.conv3d(Tensor(pr.x), Tensor(pr.w)).numpy()[0, 0]
assert np.array_equal(by_hand, engine)
print("by hand == engine:\n", engine)
print("published figure:\n", pr.published)
for idx in zip(*np.nonzero(pr.published != engine)):
    idx = tuple(int(i) for i in idx)
    print(f"voxel {idx}: the figure prints {pr.published[idx]:g}, the arithmetic gives {engine[idx]:g}")

# %% [markdown]
# Two voxels of the published figure are wrong: (0, 0, 1) is -36, not -38, and (1, 1, 0) is
# -18, not -22. The filter is unchanged by flipping (it is symmetric under a 180° turn), so the
# convolution-vs-cross-correlation convention cannot explain the difference: these are
# arithmetic slips in the figure.
#
# ## The picture
# Depth slices as rows: the input, the kernel, the output. The outlined cells are the ones the
# kernel covers for output voxel (0, 0, 1).

# %%
# %matplotlib inline
from conv3d.teach import viz

fig = viz.slice_grid(pr, (0, 0, 1))
fig
