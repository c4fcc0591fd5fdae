"""vol2col / col2vol against their definitions, written as explicit loops."""
import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from conv3d.ops.im2col import col2vol, vol2col
from reference import ref_conv_out


@st.composite
def geometries(draw):
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(3))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(3))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(3))
    padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(3))
    size = tuple(max(1, d * (k - 1) + 1 - lo - hi) + draw(st.integers(0, 3))
                 for k, d, (lo, hi) in zip(kernel, dilation, padding))
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    return (N, C) + size, kernel, stride, padding, dilation, draw(st.integers(0, 2**31 - 1))


def loop_vol2col(x, kernel, stride, padding, dilation):
    """col[n, c, t, o] = x[n, c, o*s - p_lo + t*d], or 0 where that falls outside the input."""
    out = tuple(ref_conv_out(i, k, s, lo, hi, d) for i, k, s, (lo, hi), d
                in zip(x.shape[2:], kernel, stride, padding, dilation))
    col = np.zeros(x.shape[:2] + kernel + out, x.dtype)
    for t in itertools.product(*(range(k) for k in kernel)):
        for o in itertools.product(*(range(n) for n in out)):
            z = tuple(oo * s - lo + tt * d
                      for oo, s, (lo, _), tt, d in zip(o, stride, padding, t, dilation))
            if all(0 <= zz < n for zz, n in zip(z, x.shape[2:])):
                col[(slice(None), slice(None)) + t + o] = x[(slice(None), slice(None)) + z]
    return col


def loop_col2vol(col, x_shape, stride, padding, dilation):
    """vol[n, c, z] = sum of col[n, c, t, o] over every (t, o) with o*s - p_lo + t*d = z."""
    kernel, out = col.shape[2:5], col.shape[5:]
    vol = np.zeros(x_shape)
    for t in itertools.product(*(range(k) for k in kernel)):
        for o in itertools.product(*(range(n) for n in out)):
            z = tuple(oo * s - lo + tt * d
                      for oo, s, (lo, _), tt, d in zip(o, stride, padding, t, dilation))
            if all(0 <= zz < n for zz, n in zip(z, x_shape[2:])):
                vol[(slice(None), slice(None)) + z] += col[(slice(None), slice(None)) + t + o]
    return vol


@settings(max_examples=40)
@given(geometries())
def test_vol2col_matches_definition(geometry):
    shape, kernel, stride, padding, dilation, seed = geometry
    x = np.random.default_rng(seed).standard_normal(shape)
    col = vol2col(x, kernel, stride, padding, dilation)
    expected = loop_vol2col(x, kernel, stride, padding, dilation)
    assert col.shape == expected.shape
    np.testing.assert_array_equal(col, expected)


@settings(max_examples=40)
@given(geometries())
def test_col2vol_matches_definition_and_is_the_adjoint(geometry):
    shape, kernel, stride, padding, dilation, seed = geometry
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    out = tuple(ref_conv_out(i, k, s, lo, hi, d) for i, k, s, (lo, hi), d
                in zip(shape[2:], kernel, stride, padding, dilation))
    c = rng.standard_normal(shape[:2] + kernel + out)
    vol = col2vol(c, shape, stride, padding, dilation)
    assert vol.shape == shape
    np.testing.assert_allclose(vol, loop_col2vol(c, shape, stride, padding, dilation),
                               rtol=1e-12, atol=1e-12)
    # adjoint identity <vol2col(x), c> = <x, col2vol(c)>: what makes col2vol the input gradient
    lhs = float((vol2col(x, kernel, stride, padding, dilation) * c).sum())
    rhs = float((x * vol).sum())
    assert abs(lhs - rhs) <= 1e-9 * (1 + abs(lhs))


def test_vol2col_shape_formula_by_hand():
    # o = floor((i + 2p - d(k-1) - 1)/s) + 1: D: (7+2-2-1)//2+1 = 4, H: (5+0-4-1)//1+1 = 1,
    # W: (6+4-2-1)//3+1 = 3
    x = np.zeros((2, 3, 7, 5, 6), np.float32)
    col = vol2col(x, (3, 3, 2), (2, 1, 3), ((1, 1), (0, 0), (2, 2)), (1, 2, 2))
    assert col.shape == (2, 3, 3, 3, 2, 4, 1, 3)
    assert col.dtype == np.float32


def test_vol2col_small_example_by_hand():
    # a 1-D row 0..4 along W (D=H=1), kernel 2 along W, stride 2, padding 1 each side:
    # padded row [0, 0, 1, 2, 3, 4, 0]; windows start at 0, 2, 4 -> (0,1), (2,3), (4,0)
    x = np.arange(5, dtype=np.float64).reshape(1, 1, 1, 1, 5)
    col = vol2col(x, (1, 1, 2), (1, 1, 2), ((0, 0), (0, 0), (1, 1)), (1, 1, 1))
    np.testing.assert_array_equal(col[0, 0, 0, 0, :, 0, 0, :], [[0, 1, 3], [0, 2, 4]])
    # scattering ones back counts how many windows read each voxel: every voxel is read once
    back = col2vol(np.ones_like(col), x.shape, (1, 1, 2), ((0, 0), (0, 0), (1, 1)), (1, 1, 1))
    np.testing.assert_array_equal(back.ravel(), [1, 1, 1, 1, 1])
