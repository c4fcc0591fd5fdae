"""Threads over samples (conv3d/ops/fast/sample_threads.py): a large call runs on one slice of
the batch per thread. Every result is checked against the float64 naive loops of
tests/reference.py; the split is forced (a low FLOP threshold, a fixed thread count) so that
these small cases take the threaded path, and ``last_threads`` shows that they did."""
import contextlib
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import conv3d
from conv3d.core.geometry import ConvGeometry
from conv3d.ops import fast
from conv3d.ops.fast import sample_threads
from conv3d.ops.fast.workspace import _pool, kept_workspace, release_workspace
from reference import naive_conv3d, naive_conv3d_backward_input, naive_conv3d_backward_weight
from test_fast_conv import TOL, _arrays, conv_cases

SPLIT_STRATEGIES = ["im2col", "im2col-planes", "channels-last"]


@contextlib.contextmanager
def forced_split(threads):
    """Split every call (threshold 0) over ``threads`` threads, whatever the machine has."""
    saved = sample_threads.SPLIT_MIN_FLOPS, sample_threads.get_num_threads
    sample_threads.SPLIT_MIN_FLOPS, sample_threads.get_num_threads = 0, lambda: threads
    try:
        yield
    finally:
        sample_threads.SPLIT_MIN_FLOPS, sample_threads.get_num_threads = saved


def _blas_threads():
    return conv3d.ops.fast.get_num_threads()


@pytest.mark.parametrize("name", SPLIT_STRATEGIES)
@settings(max_examples=12, deadline=None)
@given(case=conv_cases(), N=st.integers(2, 5), threads=st.integers(2, 3),
       mask=st.sampled_from([(True, True), (True, False), (False, True)]))
def test_split_calls_match_naive_loops(name, case, N, threads, mask):
    x, w, b, gy, args, y_ref = _arrays(dict(case, N=N))
    with fast.use_strategy(name), forced_split(threads):
        y = fast.provider.conv3d_forward(x, w, b, *args)
        assert sample_threads.last_threads["forward"] == min(threads, N)
        together = fast.provider.conv3d_backward(gy, x, w, *args, output_mask=mask)
        assert sample_threads.last_threads["backward"] == min(threads, N)
    tol = TOL[case["dtype"]]
    gx_ref = naive_conv3d_backward_input(gy, w, x.shape, *args)
    gw_ref = naive_conv3d_backward_weight(gy, x, w.shape, *args)
    assert y.dtype == case["dtype"] and y.shape == y_ref.shape
    np.testing.assert_allclose(y, y_ref, **tol)
    for got, want, wanted in zip(together, (gx_ref, gw_ref), mask):
        if not wanted:
            assert got is None
            continue
        np.testing.assert_allclose(got, want, **tol)


def test_slices_cover_the_batch_evenly():
    for N in range(1, 12):
        for T in range(1, N + 1):
            parts = sample_threads.slices(N, T)
            sizes = [s.stop - s.start for s in parts]
            assert [i for s in parts for i in range(s.start, s.stop)] == list(range(N))
            assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def test_small_calls_single_samples_and_the_switch_stay_unsplit():
    big = 10 * sample_threads.SPLIT_MIN_FLOPS
    with fast.num_threads(2):
        assert sample_threads.threads_for(1, big) == 1            # one sample
        assert sample_threads.threads_for(8, big / 100) == 1      # too little work
        with sample_threads.sample_split(False):
            assert sample_threads.threads_for(8, big) == 1
    with fast.num_threads(1):
        assert sample_threads.threads_for(8, big) == 1            # one thread asked for


def _case(seed=2):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 4, 6, 7, 5)).astype(np.float32)
    w = rng.standard_normal((6, 4, 3, 3, 3)).astype(np.float32)
    args = ((1, 1, 1), ((1, 1),) * 3, (1, 1, 1), 1)
    gy = rng.standard_normal(naive_conv3d(x, w, None, *args).shape).astype(np.float32)
    return x, w, gy, args


@pytest.mark.parametrize("name", ["im2col", "channels-last", "im2col-planes"])
def test_split_threads_share_the_workspace_limit(name):
    """The slices' workspaces together (they are in use at the same time) stay under the limit:
    each thread plans under limit / T."""
    x, w, gy, args = _case()
    with fast.use_strategy(name):
        fast.reset_peak_workspace()
        with sample_threads.sample_split(False):
            fast.provider.conv3d_backward(gy, x, w, *args)
        limit = fast.peak_workspace()  # what one unsplit call used: the halves must share it
        fast.reset_peak_workspace()
        with forced_split(2), conv3d.workspace_limit(limit):
            gx, gw = fast.provider.conv3d_backward(gy, x, w, *args)
        assert sample_threads.last_threads["backward"] == 2
    assert 0 < fast.peak_workspace() <= limit
    np.testing.assert_allclose(gx, naive_conv3d_backward_input(gy, w, x.shape, *args),
                               **TOL[np.float32])
    np.testing.assert_allclose(gw, naive_conv3d_backward_weight(gy, x, w.shape, *args),
                               **TOL[np.float32])


def test_a_share_too_small_for_one_chunk_runs_the_call_unsplit():
    x, w, gy, args = _case()
    with fast.use_strategy("im2col"), pytest.raises(fast.WorkspaceLimitError) as err:
        fast.provider.conv3d_forward(x, w, None, *args, workspace_limit=64)
    need = int(re.search(r"needs (\d+) bytes", str(err.value)).group(1))
    with fast.use_strategy("im2col"), forced_split(2):
        y = fast.provider.conv3d_forward(x, w, None, *args, workspace_limit=need)
    assert sample_threads.last_threads["forward"] == 1   # need // 2 fits no chunk
    np.testing.assert_allclose(y, naive_conv3d(x, w, None, *args), **TOL[np.float32])


def test_blas_runs_single_threaded_inside_and_is_restored_even_after_an_error():
    x, w, gy, args = _case()
    seen = []

    def fn(x, w, b, *rest, workspace_limit, out):
        seen.append(_blas_threads())
        if x.shape[0] < 2:
            raise ValueError("boom in a slice")
        out[...] = 1
        return out

    geo = ConvGeometry.from_shapes(x.shape, w.shape, *args)
    with fast.num_threads(2):
        before = _blas_threads()
        with forced_split(2):
            y = sample_threads.call("forward", fn, (x, w, None) + args, geo)
        assert (y == 1).all() and seen == [1, 1]
        with forced_split(3), pytest.raises(ValueError, match="boom"):
            sample_threads.call("forward", fn, (x[:3], w, None) + args, geo)
        assert _blas_threads() == before


def test_kept_buffers_of_the_sample_threads_are_counted_and_released():
    x, w, gy, args = _case()
    release_workspace()
    with fast.use_strategy("im2col"), forced_split(2):
        fast.provider.conv3d_forward(x, w, None, *args)
    own = sum(b.nbytes for b in _pool().values())
    assert 0 < own < kept_workspace()   # the other thread's buffers are kept too
    release_workspace()
    assert kept_workspace() == 0


def test_an_out_array_of_the_wrong_shape_is_refused_by_name():
    with pytest.raises(ValueError, match=r"out= has shape \(3, 2\).*needs shape \(2, 3\)"):
        fast.workspace.output((2, 3), np.float32, out=np.empty((3, 2), np.float32))


def test_split_calls_from_two_threads_at_once_give_the_right_results():
    from concurrent.futures import ThreadPoolExecutor
    cases = [_case(seed) for seed in (5, 6, 7, 8)]
    with fast.use_strategy("channels-last"), forced_split(2), ThreadPoolExecutor(2) as pool:
        ys = list(pool.map(lambda c: fast.provider.conv3d_forward(c[0], c[1], None, *c[3]),
                           cases))
    for (x, w, _, args), y in zip(cases, ys):
        np.testing.assert_allclose(y, naive_conv3d(x, w, None, *args), **TOL[np.float32])


@pytest.mark.parametrize("preset, imports, expected", [
    (None, "import conv3d", "24"),                  # conv3d first: its default
    ("28", "import conv3d", "28"),                  # a value the user set is kept
    (None, "import numpy; import conv3d", "None"),  # NumPy first: too late, nothing is set
])
def test_openblas_spin_time_is_set_only_before_numpy_loads(preset, imports, expected):
    """conv3d/__init__.py shortens OpenBLAS's spin-wait only where OpenBLAS will read it."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if preset is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = preset
    code = f"{imports}; import os; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()[-1]
    assert out == expected
