"""WMMA (``#include <mma.h>``) in the CUDA emulator: warp-collective fragment operations.

tests/emu_kernels/wmma_tile.cu lets one warp compute a 16 x 16 tile c = a @ b + c0 with tf32,
bf16 and fp16 inputs and float accumulation. The references are NumPy float64 products of the
inputs rounded HERE, independently of the emulator (tf32: 10-bit mantissa, ties away from zero, as
cvt.rna.tf32.f32; bf16: 7-bit mantissa, ties to even; fp16: NumPy's float16), so the only
difference left is float32 rounding of the accumulator after each mma step."""
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conv3d.cuda.emulator import BarrierError, EmuLaunchError, EmuModule
from reference import ROUND

KDIR = Path(__file__).parent / "emu_kernels"
TILE = 16
STEP_K = {"tf32": 8, "bf16": 16, "fp16": 16}
EPS32 = 2.0 ** -24  # float32 unit roundoff


@pytest.fixture(scope="module")
def mod():
    return EmuModule((KDIR / "wmma_tile.cu").read_text(), name="tests/emu_kernels/wmma_tile.cu")


def run(mod, precision, a, b, c0):
    c = c0.copy() if precision == "tf32" else np.zeros((TILE, TILE), np.float32)
    extra = (np.int32(1),) if precision == "tf32" else (np.float32(c0[0, 0]),)
    mod.get_function(f"wmma_{precision}")((1,), (32,), (a, b, c, np.int32(a.shape[1])) + extra)
    return c


def reference(precision, a, b, c0):
    r = ROUND[precision]
    exact = r(a).astype(np.float64) @ r(b).astype(np.float64) + c0
    # one float32 rounding of the accumulator per mma step, each at most EPS32 of a bound of
    # the running value
    bound = np.abs(r(a)).astype(np.float64) @ np.abs(r(b)) + np.abs(c0)
    return exact, (a.shape[1] // STEP_K[precision]) * EPS32 * bound + 1e-30


def inputs(precision, K, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((TILE, K)).astype(np.float32)
    b = rng.standard_normal((K, TILE)).astype(np.float32)
    c0 = (rng.standard_normal((TILE, TILE)) if precision == "tf32"
          else np.full((TILE, TILE), rng.standard_normal())).astype(np.float32)
    return a, b, c0


@settings(max_examples=6, deadline=None)
@given(precision=st.sampled_from(["tf32", "bf16", "fp16"]), steps=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_tile_product_matches_numpy_with_rounded_inputs(mod, precision, steps, seed):
    a, b, c0 = inputs(precision, steps * 16, seed)
    got = run(mod, precision, a, b, c0)
    exact, tolerance = reference(precision, a, b, c0)
    assert np.all(np.abs(got - exact) <= tolerance)


@pytest.mark.parametrize("precision", ["tf32", "bf16", "fp16"])
def test_inputs_are_really_rounded(mod, precision):
    # the unrounded float32 inputs give a product farther away than the tolerance: the kernel
    # (and the emulator) did round them
    a, b, c0 = inputs(precision, 32, 7)
    got = run(mod, precision, a, b, c0)
    _, tolerance = reference(precision, a, b, c0)
    unrounded = a.astype(np.float64) @ b + c0
    assert np.max(np.abs(got - unrounded) - tolerance) > 0


def one_hot_product(mod, precision, value):
    """c[0, 0] of [value, 0, ...] @ e_0 (+ 0): the rounded value itself."""
    K = 16
    a = np.zeros((TILE, K), np.float32)
    a[0, 0] = value
    b = np.zeros((K, TILE), np.float32)
    b[0, 0] = 1.0
    return float(run(mod, precision, a, b, np.zeros((TILE, TILE), np.float32))[0, 0])


def test_tf32_rounds_ties_away_from_zero(mod):
    # 1 + 2**-11 lies halfway between the tf32 values 1 and 1 + 2**-10: cvt.rna goes up
    assert one_hot_product(mod, "tf32", 1 + 2.0 ** -11) == 1 + 2.0 ** -10
    assert one_hot_product(mod, "tf32", -(1 + 2.0 ** -11)) == -(1 + 2.0 ** -10)
    assert one_hot_product(mod, "tf32", 1 + 2.0 ** -11 - 2.0 ** -23) == 1.0


def test_bf16_rounds_ties_to_even(mod):
    # 1 + 2**-8 lies halfway between 1 and 1 + 2**-7: to even is 1; 1 + 3 * 2**-8 goes up
    assert one_hot_product(mod, "bf16", 1 + 2.0 ** -8) == 1.0
    assert one_hot_product(mod, "bf16", 1 + 3 * 2.0 ** -8) == 1 + 2.0 ** -6


def test_fp16_rounds_like_ieee_half(mod):
    assert one_hot_product(mod, "fp16", 1 + 2.0 ** -11) == 1.0  # tie to even
    assert one_hot_product(mod, "fp16", 70000.0) == float("inf")  # above 65504: overflow
    assert one_hot_product(mod, "fp16", 2.0 ** -20) == 2.0 ** -20  # a subnormal half


def test_divergent_lanes_at_a_collective_are_reported(mod):
    with pytest.raises(BarrierError, match=r"divergent lanes at a warp collective: "
                       r"wmma::fill_fragment at tests/emu_kernels/wmma_tile\.cu:\d+ .* lane 16, "
                       r"threadIdx=\(16,0,0\), waits at wmma::store_matrix_sync"):
        mod.get_function("wmma_divergent")((1,), (32,), (np.zeros((TILE, TILE), np.float32),))


def test_incomplete_warp_is_reported(mod):
    a, b, c0 = inputs("bf16", 16, 0)
    with pytest.raises(BarrierError, match=r"incomplete warp .* warp 1 has only 16 threads"):
        mod.get_function("wmma_bf16")((1,), (48,), (a, b, c0.copy(), np.int32(16),
                                                     np.float32(0)))


def test_unconverted_tf32_operand_is_reported(mod):
    a, b, c0 = inputs("tf32", 16, 0)
    with pytest.raises(EmuLaunchError, match=r"not a tf32 value .*__float_to_tf32"):
        mod.get_function("wmma_tf32")((1,), (32,), (a, b, c0.copy(), np.int32(16), np.int32(0)))


def test_store_pointer_must_be_aligned_and_the_same_in_every_lane(mod):
    kern = mod.get_function("wmma_bad_pointer")
    c = np.zeros((TILE, TILE), np.float32)
    kern((1,), (32,), (c, np.int32(8), np.int32(0)))  # 32 bytes in: aligned, one pointer
    np.testing.assert_array_equal(c, np.full((TILE, TILE), 2.0, np.float32))
    with pytest.raises(EmuLaunchError, match=r"store_matrix_sync .* not 256-bit \(32-byte\) "
                                             r"aligned"):
        kern((1,), (32,), (c, np.int32(4), np.int32(0)))
    with pytest.raises(EmuLaunchError, match=r"lane 1 passed .* must be the same in every lane"):
        kern((1,), (32,), (c, np.int32(0), np.int32(8)))
