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
# # (2+1)D versus full 3D convolution
#
# R(2+1)D splits a t×d×d convolution into a 1×d×d *spatial* convolution into M middle channels
# and a t×1×1 *temporal* one. M is chosen so the two blocks have about the same number of
# weights:
#
# $$M = \left\lfloor \frac{t\,d^2\,C_{in}\,C_{out}}{d^2 C_{in} + t\,C_{out}} \right\rfloor$$

# %%
import numpy as np

import conv3d.functional as F
from conv3d import Tensor
from conv3d.nn import Conv2Plus1d, Conv3d
from conv3d.teach.factorized_view import build_factorized, explain_factorized, mid_channels
from conv3d.teach.report import render

print(f"{'Cin':>5} {'Cout':>5} {'M':>5} {'full 3D':>10} {'(2+1)D':>10}")
for cin, cout in [(3, 64), (64, 64), (64, 128), (128, 256), (256, 512)]:
    block = Conv2Plus1d(cin, cout, 3, padding=1)
    full = Conv3d(cin, cout, 3, padding=1, bias=False)
    assert block.mid_channels == mid_channels(3, 3, cin, cout)
    print(f"{cin:5d} {cout:5d} {block.mid_channels:5d} {full.weight.size:10d} "
          f"{block.conv_weight_count():10d}")

# %% [markdown]
# ## Same input, same output shape
# Both see a 3×3×3 neighbourhood; with padding 1 both keep the clip's size.

# %%
rng = np.random.default_rng(0)
clip = Tensor(rng.normal(size=(2, 3, 8, 16, 16)).astype(np.float32))
y3d = Conv3d(3, 16, 3, padding=1)(clip)
y21 = Conv2Plus1d(3, 16, 3, padding=1)(clip)
print("full 3D:", y3d.shape, "  (2+1)D:", y21.shape)
assert y3d.shape == y21.shape

# %% [markdown]
# ## Without the ReLU in between, (2+1)D *is* a 3D convolution, with a restricted kernel
# Spatial then temporal, both linear, compose into one t×d×d kernel
# `W[k, c, τ, i, j] = Σ_m w2[k, m, τ] · w1[m, c, i, j]`: a sum of M separable pieces. A full 3D
# kernel has no such restriction. The ReLU between the passes is what makes (2+1)D more than a
# cheaper 3D convolution.

# %%
fp = build_factorized(rng.integers(0, 10, size=(2, 5, 6, 6)), t=3, d=3, cout=2, seed=1)
x = Tensor(fp.x[None])
two_pass = F.conv3d(F.conv3d(x, Tensor(fp.w1)), Tensor(fp.w2)).numpy()
W = np.einsum("kmt,mcij->kctij", fp.w2[:, :, :, 0, 0], fp.w1[:, :, 0])
one_pass = F.conv3d(x, Tensor(W)).numpy()
assert np.allclose(two_pass, one_pass)
print("two passes == one 3D conv with the composed kernel:", two_pass.shape)

# %% [markdown]
# One output voxel of the two-pass block, term by term (as `conv3d explain --factorized`):

# %%
render(explain_factorized(fp, (0, 1, 2, 2)), "markdown")
