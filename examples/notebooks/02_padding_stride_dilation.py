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
# # Padding, stride and dilation
#
# One formula gives the output size on every axis:
#
# $$o = \left\lfloor \frac{i + p_{lo} + p_{hi} - d\,(k - 1) - 1}{s} \right\rfloor + 1$$
#
# with input size $i$, kernel size $k$, stride $s$, dilation $d$ and padding $p_{lo}, p_{hi}$.
# We check it against the engine for many settings, then look at what each setting does to the
# receptive field of one output voxel.

# %%
import itertools

import numpy as np

import conv3d.functional as F
from conv3d import Tensor
from conv3d.teach.problem import make_problem


def formula(i, k, s, p, d):
    return (i + 2 * p - d * (k - 1) - 1) // s + 1


rows = []
for i, k, s, p, d in itertools.product([5, 6, 7], [1, 2, 3], [1, 2, 3], [0, 1, 2], [1, 2]):
    if i + 2 * p < d * (k - 1) + 1:
        continue  # the kernel would not fit: no output
    y = F.conv3d(Tensor(np.zeros((1, 1, i, i, i), np.float32)),
                 Tensor(np.zeros((1, 1, k, k, k), np.float32)), stride=s, padding=p, dilation=d)
    assert y.shape[2] == formula(i, k, s, p, d)
    rows.append((i, k, s, p, d, y.shape[2]))
print(f"the formula matches the engine in all {len(rows)} settings; a few of them:")
for r in rows[::40]:
    print("i={} k={} s={} p={} d={} -> o={}".format(*r))

# %% [markdown]
# ## 'same' padding with stride 2 is asymmetric
# `padding='same'` asks for `o = ceil(i / s)`. With i = 6, k = 3, s = 2 that needs a total
# padding of `(o - 1)*s + k - i = 1`: the single extra row goes *after* the data.

# %%
pr = make_problem(input_size="6x6x6", kernel="3x3x3", stride="2", padding="same", seed=0)
print("padding (before, after) per axis:", pr.padding, "-> output", pr.out_size)
y = F.conv3d(Tensor(pr.x), Tensor(pr.w), stride=2, padding="same")
assert y.shape[2:] == pr.out_size

# %% [markdown]
# ## What each setting does to one voxel's receptive field
# Kernel tap $k$ on an axis reads input index $o\,s - p_{lo} + k\,d$. Stride moves the window in
# bigger steps; padding lets it start before the data (reading zeros); dilation spreads the taps.

# %%
for name, kw in [("plain", dict(stride="1", padding="0", dilation="1")),
                 ("stride 2", dict(stride="2", padding="0", dilation="1")),
                 ("padding 1", dict(stride="1", padding="1", dilation="1")),
                 ("dilation 2", dict(stride="1", padding="0", dilation="2"))]:
    p = make_problem(input_size="7x7x7", kernel="3x3x3", seed=1, **kw)
    print(f"{name:11s} output {p.out_size}; output voxel (1,1,1) reads input depths "
          f"{p.receptive_field(1, 1, 1)[0]}")

# %% [markdown]
# The picture for padding 1 and stride 2: grey hatched cells are padding, read as zeros.

# %%
# %matplotlib inline
from conv3d.teach import viz

fig = viz.slice_grid(make_problem(input_size="3x5x5", kernel="3x3x3", padding="1", stride="2",
                                  seed=4), (1, 1, 1))
fig
