"""Bad arguments to conv3d, max_pool3d and avg_pool3d: the exception type, and a message that
names the argument and the problem (and, where it helps, the numbers)."""
import numpy as np
import pytest

import conv3d
import conv3d.functional as F

X = np.zeros((2, 4, 5, 5, 5), np.float32)
W = np.zeros((6, 4, 3, 3, 3), np.float32)


@pytest.mark.parametrize("kwargs,error,match", [
    # shapes
    (dict(x=np.zeros((4, 5, 5, 5), np.float32)), ValueError,
     r"input must be 5-D \(N, C, D, H, W\), got a 4-D array of shape \(4, 5, 5, 5\)"),
    (dict(weight=np.zeros((6, 4, 3, 3), np.float32)), ValueError,
     r"weight must be 5-D \(K, C/groups, kD, kH, kW\), got a 4-D array"),
    (dict(weight=np.zeros((6, 3, 3, 3, 3), np.float32)), ValueError,
     r"channel mismatch: input has C=4 channels .* expects C = weight.shape\[1\] \* groups = "
     r"3 \* 1 = 3"),
    (dict(weight=np.zeros((6, 4, 3, 3, 3), np.float32), groups=2), ValueError,
     r"channel mismatch.*\(K, C/groups, kD, kH, kW\) = \(6, 2, \.\.\.\)"),
    (dict(weight=np.zeros((1, 4, 7, 3, 3), np.float32)), ValueError,
     r"kernel is larger than the padded input on the depth axis: OD = .* = floor\(\(5 \+ 0 \+ 0 - "
     r"1\*\(7 - 1\) - 1\) / 1\) \+ 1 = -1"),
    (dict(dilation=(1, 1, 3)), ValueError,
     r"kernel is larger than the padded input on the width axis.*= floor\(\(5 \+ 0 \+ 0 - "
     r"3\*\(3 - 1\) - 1\) / 1\) \+ 1 = -1"),
    (dict(bias=np.zeros(5, np.float32)), ValueError,
     r"bias must have shape \(K,\) = \(6,\).*got shape \(5,\)"),
    (dict(bias=np.zeros((6, 1), np.float32)), ValueError, r"bias must have shape \(K,\)"),
    # groups
    (dict(weight=np.zeros((6, 1, 3, 3, 3), np.float32), groups=3), ValueError,
     r"groups=3 must divide both the input channels \(C=4\)"),
    (dict(weight=np.zeros((5, 2, 3, 3, 3), np.float32), groups=2), ValueError,
     r"groups=2 must divide .* output channels \(K=weight.shape\[0\]=5\)"),
    (dict(groups=0), ValueError, r"groups must be >= 1, got 0"),
    (dict(groups=1.5), TypeError, r"groups must be an int, got float 1.5"),
    # stride, dilation, padding
    (dict(stride=0), ValueError, r"stride must be >= 1 on every axis, got 0"),
    (dict(stride=(1, -2, 1)), ValueError, r"stride must be >= 1 on every axis, got \(1, -2, 1\)"),
    (dict(dilation=0), ValueError, r"dilation must be >= 1 on every axis, got 0"),
    (dict(stride=1.0), TypeError, r"stride must be an int or a tuple of 3 ints"),
    (dict(stride=(1, 2)), TypeError, r"stride must be an int or a tuple of 3 ints .*got \(1, 2\)"),
    (dict(padding=-1), ValueError, r"padding must be >= 0 on every axis, got negative padding -1"),
    (dict(padding=(0, 1, -2)), ValueError, r"negative padding \(0, 1, -2\)"),
    (dict(padding="full"), ValueError,
     r"unknown padding string 'full'; use 'same', 'valid', an int or a tuple of 3 ints"),
    (dict(padding="SAME "), ValueError, r"unknown padding string 'SAME '"),
    # dtypes
    (dict(x=np.zeros((2, 4, 5, 5, 5), np.int64)), TypeError,
     r"conv3d: input has dtype int64, expected float32 or float64"),
    (dict(weight=np.zeros((6, 4, 3, 3, 3), np.int32)), TypeError,
     r"conv3d: weight has dtype int32, expected float32 or float64"),
    (dict(weight=np.zeros((6, 4, 3, 3, 3), np.float64)), TypeError,
     r"mixed dtypes \(input=float32, weight=float64\); conv3d never upcasts silently"),
    (dict(bias=np.zeros(6, np.float64)), TypeError,
     r"mixed dtypes \(input=float32, weight=float32, bias=float64\)"),
])
def test_conv3d_errors(kwargs, error, match):
    args = dict(x=X, weight=W, bias=None, stride=1, padding=0, dilation=1, groups=1)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        F.conv3d(args.pop("x"), args.pop("weight"), **args)


def test_conv3d_errors_with_tensors():
    x = conv3d.Tensor(np.zeros((1, 2, 4, 4, 4), np.float64), requires_grad=True)
    w = conv3d.Tensor(np.zeros((1, 2, 2, 2, 2), np.float32))
    with pytest.raises(TypeError, match="mixed dtypes"):
        F.conv3d(x, w)


@pytest.mark.parametrize("op", ["max_pool3d", "avg_pool3d"])
@pytest.mark.parametrize("x,kwargs,error,match", [
    (np.zeros((4, 5, 5, 5), np.float32), {}, ValueError,
     r"input must be 5-D \(N, C, D, H, W\), got a 4-D array of shape \(4, 5, 5, 5\)"),
    (X, dict(padding=2), ValueError,
     r"padding must be at most half the kernel size, but on the depth axis padding=2 > "
     r"kernel_size//2 = 3//2 = 1"),
    (X, dict(kernel_size=(3, 2, 3), padding=(1, 2, 1)), ValueError,
     r"padding must be at most half the kernel size, but on the height axis padding=2 > "
     r"kernel_size//2 = 2//2 = 1"),
    (X, dict(padding=-1), ValueError,
     r"padding must be >= 0 on every axis, got negative padding -1"),
    (X, dict(stride=0), ValueError, r"stride must be >= 1 on every axis, got 0"),
    (X, dict(kernel_size=0), ValueError, r"kernel_size must be >= 1 on every axis, got 0"),
    (X, dict(kernel_size=(2, 2)), TypeError, r"kernel_size must be an int or a tuple of 3 ints"),
    (X, dict(kernel_size=7), ValueError,
     r"the kernel is larger than the padded input on the depth axis.*= floor\(\(5 \+ 0 \+ 0 - "
     r"1\*\(7 - 1\) - 1\) / 7\) \+ 1 = 0.*more padding \(up to kernel_size // 2\)"),
    (np.zeros((1, 1, 5, 5, 5), np.int64), {}, TypeError,
     r"input has dtype int64, expected float32 or float64"),
    (X, dict(ceil_mode="yes"), TypeError, r"ceil_mode must be True or False"),
])
def test_pool_errors(op, x, kwargs, error, match):
    args = dict(kernel_size=3)
    args.update(kwargs)
    with pytest.raises(error, match=f"{op}: {match}"):
        getattr(F, op)(x, **args)


def test_max_pool_dilation_errors():
    with pytest.raises(ValueError, match=r"max_pool3d: dilation must be >= 1 on every axis, got 0"):
        F.max_pool3d(X, 2, dilation=0)
    # D=1, kernel 2, dilation 2, padding 1: the only depth window reads positions -1 and 1
    with pytest.raises(ValueError, match=r"max_pool3d: on the depth axis the window of output 0 "
                                         r"reads only padding: with dilation=2 its taps fall on "
                                         r"input positions \[-1, 1\], none inside \[0, 1\)"):
        F.max_pool3d(np.zeros((1, 1, 1, 6, 6)), (2, 2, 2), padding=(1, 0, 0), dilation=(2, 1, 1))


def test_avg_pool_count_include_pad_type():
    with pytest.raises(TypeError, match="count_include_pad must be True or False"):
        F.avg_pool3d(X, 2, count_include_pad="no")
