"""conv3d forward and gradients against independent references.

* float64 naive loops (tests/reference.py) over hypothesis-drawn shapes, strides, paddings
  (ints, triples, 'valid', 'same' including asymmetric 'same' with stride > 1), dilations and
  groups, in float32 and float64;
* scipy.signal.correlate for a single channel;
* finite differences (conv3d.gradcheck) for the input, weight and bias gradients.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import conv3d
import conv3d.functional as F
from reference import (naive_conv3d, naive_conv3d_backward_input, naive_conv3d_backward_weight,
                       ref_conv_out, ref_same_padding)

TOL = {np.float32: dict(rtol=2e-4, atol=2e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}


@st.composite
def conv_cases(draw):
    """A random valid conv3d problem: shapes, settings and the padding the reference should use."""
    G = draw(st.sampled_from([1, 1, 2, 3]))
    Cg, Kg, N = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(3))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(3))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(3))
    mode = draw(st.sampled_from(["int", "triple", "valid", "same", "same"]))
    if mode == "int":
        padding = draw(st.integers(0, 2))
        pads = (padding,) * 3
    elif mode == "triple":
        padding = tuple(draw(st.integers(0, 2)) for _ in range(3))
        pads = padding
    else:
        padding, pads = mode, (0, 0, 0)
    sizes = []
    for k, d, p in zip(kernel, dilation, pads):
        smallest = 1 if mode == "same" else max(1, d * (k - 1) + 1 - 2 * p)
        sizes.append(smallest + draw(st.integers(0, 3)))
    if mode == "same":
        padding6 = tuple(ref_same_padding(i, k, s, d)
                         for i, k, s, d in zip(sizes, kernel, stride, dilation))
    else:
        padding6 = tuple((p, p) for p in pads)
    return dict(N=N, C=Cg * G, K=Kg * G, size=tuple(sizes), kernel=kernel, stride=stride,
                padding=padding, padding6=padding6, dilation=dilation, groups=G,
                bias=draw(st.booleans()), seed=draw(st.integers(0, 2**31 - 1)))


def check_against_reference(case, dtype):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["N"], case["C"]) + case["size"]).astype(dtype)
    w = rng.standard_normal((case["K"], case["C"] // case["groups"]) + case["kernel"]).astype(dtype)
    b = rng.standard_normal(case["K"]).astype(dtype) if case["bias"] else None
    settings_ = (case["stride"], case["padding6"], case["dilation"], case["groups"])

    X = conv3d.Tensor(x, requires_grad=True)
    Wt = conv3d.Tensor(w, requires_grad=True)
    B = conv3d.Tensor(b, requires_grad=True) if b is not None else None
    y = F.conv3d(X, Wt, B, stride=case["stride"], padding=case["padding"],
                 dilation=case["dilation"], groups=case["groups"])
    expected = naive_conv3d(x, w, b, *settings_)
    assert y.dtype == dtype, "conv3d must keep the input dtype"
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.data, expected, **TOL[dtype])

    gy = rng.standard_normal(y.shape).astype(dtype)
    y.backward(gy)
    np.testing.assert_allclose(X.grad, naive_conv3d_backward_input(gy, w, x.shape, *settings_),
                               **TOL[dtype])
    np.testing.assert_allclose(Wt.grad, naive_conv3d_backward_weight(gy, x, w.shape, *settings_),
                               **TOL[dtype])
    if B is not None:
        # dL/db[k] = sum over n and output voxels of gy[n, k, ...], summed here with loops
        gb = np.array([sum(float(v) for v in gy[:, k].ravel()) for k in range(case["K"])])
        np.testing.assert_allclose(B.grad, gb, **TOL[dtype])
    assert X.grad.dtype == Wt.grad.dtype == dtype


@settings(max_examples=40)
@given(conv_cases())
def test_conv3d_matches_naive_loops_float64(case):
    check_against_reference(case, np.float64)


@settings(max_examples=25)
@given(conv_cases())
def test_conv3d_matches_naive_loops_float32(case):
    check_against_reference(case, np.float32)


@pytest.mark.parametrize("size,kernel,stride,dilation", [
    ((6, 7, 5), (3, 3, 3), (2, 2, 2), (1, 1, 1)),   # total pad 1 per axis: (0, 1), asymmetric
    ((5, 6, 7), (4, 2, 3), (1, 1, 1), (1, 2, 1)),   # even kernel, stride 1: (1, 2), (1, 1), (1, 1)
    ((7, 5, 4), (2, 3, 3), (3, 2, 2), (1, 2, 1)),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_padding_asymmetric_with_stride(size, kernel, stride, dilation, dtype):
    padding6 = tuple(ref_same_padding(i, k, s, d)
                     for i, k, s, d in zip(size, kernel, stride, dilation))
    case = dict(N=2, C=2, K=3, size=size, kernel=kernel, stride=stride, padding="same",
                padding6=padding6, dilation=dilation, groups=1, bias=True, seed=7)
    check_against_reference(case, dtype)
    # 'same' means output size ceil(i / s) on every axis
    x = np.zeros((1, 1) + size, dtype)
    w = np.zeros((1, 1) + kernel, dtype)
    y = F.conv3d(x, w, stride=stride, padding="same", dilation=dilation)
    assert y.shape[2:] == tuple(-(-i // s) for i, s in zip(size, stride))


def test_same_padding_puts_the_extra_voxel_after_the_data():
    # D=4, k=2, s=1: total padding 1, so 0 before and 1 after. With a kernel [1, 10] along D,
    # output d reads x[d] + 10*x[d+1]; the last output reads x[3] + 10*0.
    x = np.arange(1, 5, dtype=np.float64).reshape(1, 1, 4, 1, 1)
    w = np.array([1.0, 10.0]).reshape(1, 1, 2, 1, 1)
    y = F.conv3d(x, w, padding="same").data.ravel()
    np.testing.assert_array_equal(y, [1 + 20, 2 + 30, 3 + 40, 4 + 0])


@pytest.mark.parametrize("shape,kshape", [((5, 6, 7), (3, 2, 4)), ((4, 4, 4), (1, 1, 1)),
                                          ((3, 8, 5), (3, 3, 5))])
def test_single_channel_matches_scipy_correlate(shape, kshape):
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    w = rng.standard_normal(kshape)
    y = F.conv3d(x[None, None], w[None, None])
    np.testing.assert_allclose(y.data[0, 0], signal.correlate(x, w, mode="valid"),
                               rtol=1e-12, atol=1e-12)


def test_worked_numbers_by_hand():
    # a 1x1x3x3x3 ramp with a 2x2x2 kernel of ones, stride 1: each output is the sum of its cube
    x = np.arange(27, dtype=np.float64).reshape(1, 1, 3, 3, 3)
    y = F.conv3d(x, np.ones((1, 1, 2, 2, 2)), bias=np.array([0.5]))
    # window at (0,0,0) covers 0,1,3,4,9,10,12,13 -> 52; each step in w/h/d adds 8*(1/3/9)
    expected = 52.5 + np.array([[[0, 8], [24, 32]], [[72, 80], [96, 104]]])
    np.testing.assert_array_equal(y.data[0, 0], expected)


@pytest.mark.parametrize("stride,padding,dilation,groups", [
    (1, 0, 1, 1), (2, 1, 1, 2), ((1, 2, 1), (1, 0, 2), (2, 1, 1), 1), (2, "same", 1, 2),
    (1, "valid", 2, 1),
])
def test_gradcheck_input_weight_bias(stride, padding, dilation, groups):
    rng = np.random.default_rng(11)
    x = conv3d.Tensor(rng.standard_normal((2, 2, 4, 5, 5)), requires_grad=True)
    w = conv3d.Tensor(rng.standard_normal((2, 2 // groups, 2, 2, 3)), requires_grad=True)
    b = conv3d.Tensor(rng.standard_normal(2), requires_grad=True)
    assert conv3d.gradcheck(
        lambda x_, w_, b_: F.conv3d(x_, w_, b_, stride, padding, dilation, groups), (x, w, b))


def test_gradients_only_for_inputs_that_require_them():
    rng = np.random.default_rng(5)
    x = conv3d.Tensor(rng.standard_normal((1, 2, 4, 4, 4)), requires_grad=True)
    w = conv3d.Tensor(rng.standard_normal((3, 2, 3, 3, 3)))
    y = F.conv3d(x, w, padding=1)
    y.sum().backward()
    assert w.grad is None
    expected = naive_conv3d_backward_input(np.ones(y.shape), w.data, x.shape, (1, 1, 1),
                                           ((1, 1),) * 3, (1, 1, 1), 1)
    np.testing.assert_allclose(x.grad, expected, rtol=1e-12, atol=1e-12)


def test_output_size_formula():
    # o = floor((i + 2p - d(k-1) - 1)/s) + 1 = floor((9 + 2 - 2*2 - 1)/2) + 1 = 4
    y = F.conv3d(np.zeros((1, 1, 9, 9, 9), np.float32), np.zeros((1, 1, 3, 3, 3), np.float32),
                 stride=2, padding=1, dilation=2)
    assert y.shape == (1, 1, 4, 4, 4)
    assert ref_conv_out(9, 3, 2, 1, 1, 2) == 4


def test_inference_keeps_nothing_for_the_backward():
    """Under no_grad, or when no input requires a gradient, Conv3dFunction records no graph and
    keeps no reference to x or w (the backward's inputs); with a graph it keeps both."""
    from conv3d.ops.conv import Conv3dFunction
    rng = np.random.default_rng(0)
    x = conv3d.Tensor(rng.standard_normal((1, 2, 5, 5, 5)).astype(np.float32), requires_grad=True)
    w = conv3d.Tensor(rng.standard_normal((3, 2, 3, 3, 3)).astype(np.float32))
    settings_ = ((1, 1, 1), ((0, 0),) * 3, (1, 1, 1), 1)
    want = naive_conv3d(x.data, w.data, None, *settings_)
    with conv3d.no_grad():
        fn = Conv3dFunction(*settings_)
        y = fn(x, w)
    assert not hasattr(fn, "x") and not hasattr(fn, "w") and y.creator is None
    fn2 = Conv3dFunction(*settings_)
    y2 = fn2(conv3d.Tensor(x.data), w)   # nothing requires a gradient
    assert not hasattr(fn2, "x") and y2.creator is None
    fn3 = Conv3dFunction(*settings_)
    y3 = fn3(x, w)
    assert fn3.x is x.data and y3.creator is fn3
    for got in (y, y2, y3):
        np.testing.assert_allclose(got.data, want, rtol=1e-4, atol=1e-4)
