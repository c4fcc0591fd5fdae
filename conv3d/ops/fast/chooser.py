"""Which strategy runs a given convolution, and the kernel provider built on that choice.

Strategies (each computes the forward pass and both backward passes):

==================  =========================================================================
``'reference'``     the readable path, ``conv3d/ops/cpu_reference.py`` (whole im2col, no limit)
``'im2col'``        chunked im2col into one reused buffer + one GEMM per chunk (``im2col_gemm``)
``'im2col-batched'`` the same, one GEMM per sample written straight into the output
``'im2col-numpy'``  ``'im2col'`` with NumPy's scatter-add for col2im instead of numba's
``'im2col-planes'`` 2D im2col per input plane, shared by kD output planes (``plane_im2col``)
``'channels-last'`` im2col in NDHWC layout: copies of whole channel runs (``channels_last``)
``'per-offset'``    one small GEMM per kernel tap, no column matrix (``per_offset``)
``'numba'``         direct loops compiled by numba, for small-channel layers (``numba_direct``)
``'auto'``          the default: per shape, the fastest of the above as measured in
                    ``docs/benchmarks`` (rules in ``choose``)
==================  =========================================================================

Select one globally with ``set_strategy(name)`` or for a block with ``with use_strategy(name):``.
"""
from __future__ import annotations

import contextlib

from ...core.backend import conv3d_backward_in_two_calls
from . import (channels_last, im2col_gemm, numba_direct, per_offset, plane_im2col, pooling,
               sample_threads)
from .geometry import ConvGeometry

STRATEGIES = ("auto", "reference", "im2col", "im2col-batched", "im2col-numpy", "im2col-planes",
              "channels-last", "per-offset", "numba")

LONG_PLANE = 1024  # output voxels per plane from which 'im2col-planes' is chosen

_strategy = "auto"
last_choice: dict = {}  # op -> strategy name of the most recent call (for benchmarks and tests)


def _check(name):
    if name not in STRATEGIES:
        raise ValueError(f"unknown convolution strategy {name!r}; choose one of "
                         f"{', '.join(repr(s) for s in STRATEGIES)}")
    return name


def set_strategy(name: str) -> None:
    """Make ``name`` the CPU convolution strategy (``'auto'`` chooses per shape)."""
    global _strategy
    _strategy = _check(name)


def get_strategy() -> str:
    return _strategy


@contextlib.contextmanager
def use_strategy(name: str):
    """``with use_strategy('reference'): ...`` runs the block with another strategy."""
    global _strategy
    previous, _strategy = _strategy, _check(name)
    try:
        yield name
    finally:
        _strategy = previous


def is_thin(geo: ConvGeometry) -> bool:
    """A thin GEMM: the inner dimension C/groups*kD*kH*kW is short (C=3 colour channels with a
    3x3x3 kernel gives 81), so channel runs are too short for the channels-last copies."""
    return geo.Cg * geo.taps <= 256


def is_small_volume(geo: ConvGeometry) -> bool:
    """At most a few thousand output voxels per sample (a2: 5x5x5 = 125): NCDHW im2col copies
    rows of only OW floats there, and NumPy's per-row overhead dominates."""
    return geo.plane * geo.out_size[0] <= 4096


def has_long_planes(geo: ConvGeometry) -> bool:
    """At least ``LONG_PLANE`` output voxels per plane (b: 56x56 = 3136), so that one output
    plane is a long GEMM, and depth dilation 1, so that its kD input planes are adjacent."""
    return geo.plane >= LONG_PLANE and geo.dilation[0] == 1


def choose(op: str, geo: ConvGeometry) -> str:
    """The strategy ``'auto'`` uses for ``op`` ('forward', 'backward_input', 'backward_weight').

    Measured on this project's shared 2-core machine (docs/benchmarks):

    * long output planes (b: C=64, 16x56x56): ``'im2col-planes'``, whose 2D columns of each
      input plane serve kD output planes (a third of im2col's copying; fwd+bwd 2.0-2.4 s
      against 2.7 s for ``'im2col'`` on b);
    * small output volumes with enough channels (a2: C=32, 5x5x5 outputs): ``'channels-last'``,
      whose copies move kW*C contiguous floats instead of 5;
    * everything else, thin layers with small planes (a1: C=3, 14x14 outputs) above all:
      chunked im2col with NumPy's scatter-add as col2im, ``'im2col-numpy'`` (a1 input gradient,
      median of 7 interleaved runs: 67 ms against 86 ms with the numba col2im of ``'im2col'``).

    The numba loops won only when the machine was heavily oversubscribed (load 5-7 on 2 cores);
    ``'per-offset'`` never won (7-11x slower on a1, as issue 6 measured).
    """
    if _strategy != "auto":
        return _strategy
    if has_long_planes(geo):
        return "im2col-planes"
    if is_small_volume(geo) and not is_thin(geo):
        return "channels-last"
    return "im2col-numpy"


def _reference():
    from .. import cpu_reference  # noqa: PLC0415 - the readable provider, one layer sibling
    return cpu_reference


# strategy -> (module, keyword options); every module has forward, backward_input, backward_weight
_STRATEGY_CODE = {
    "im2col": (im2col_gemm, {}),
    "im2col-batched": (im2col_gemm, {"layout": "batched"}),
    "im2col-numpy": (im2col_gemm, {"copy": "numpy"}),
    "im2col-planes": (plane_im2col, {}),
    "channels-last": (channels_last, {}),
    "per-offset": (per_offset, {}),
    "numba": (numba_direct, {}),
}
OWN_THREADS = ("numba",)  # strategies whose loops have threads of their own: never split


def _call(op, name, geo, args, workspace_limit):
    """``op`` of strategy ``name``'s module, on slices of the batch in threads when the call is
    large enough (``sample_threads``; not the strategies in ``OWN_THREADS``)."""
    module, options = _STRATEGY_CODE[name]
    T = 1 if name in OWN_THREADS else sample_threads.threads_for(geo.N, geo.flops())
    if T > 1:
        return sample_threads.run(op, getattr(module, op), args, options, geo, T,
                                  workspace_limit)
    sample_threads.last_threads[op] = 1
    return getattr(module, op)(*args, **options, workspace_limit=workspace_limit)


def _run(op, geo, args, workspace_limit):
    """Run ``op`` ('forward', 'backward_input', 'backward_weight') with the chosen strategy."""
    name = last_choice[op] = choose(op, geo)
    if name == "reference":  # the readable provider: no chunks, no workspace limit
        return getattr(_reference(), "conv3d_" + op)(*args)
    return _call(op, name, geo, args, workspace_limit)


class FastCPUKernels:
    """The kernel provider for ``'cpu'`` (the contract in ``conv3d.core.backend``), choosing a
    strategy per call. Every function also takes ``workspace_limit=`` (bytes, this call only).
    Large calls run on one slice of the batch per thread (``sample_threads.py``).
    Max pooling with tiling windows (``MaxPool3d(2)``) takes one reshape-and-argmax pass
    (``pooling.py``); every other pooling call is the reference provider's strided-slice code."""

    def conv3d_forward(self, x, w, b, stride, padding, dilation, groups, workspace_limit=None):
        geo = ConvGeometry.of(x.shape, w.shape, stride, padding, dilation, groups)
        return _run("forward", geo, (x, w, b, stride, padding, dilation, groups), workspace_limit)

    def conv3d_backward_input(self, gy, w, x_shape, stride, padding, dilation, groups,
                              workspace_limit=None):
        geo = ConvGeometry.of(x_shape, w.shape, stride, padding, dilation, groups)
        return _run("backward_input", geo, (gy, w, x_shape, stride, padding, dilation, groups),
                    workspace_limit)

    def conv3d_backward_weight(self, gy, x, w_shape, stride, padding, dilation, groups,
                               workspace_limit=None):
        geo = ConvGeometry.of(x.shape, w_shape, stride, padding, dilation, groups)
        return _run("backward_weight", geo, (gy, x, w_shape, stride, padding, dilation, groups),
                    workspace_limit)

    def conv3d_backward(self, gy, x, w, stride, padding, dilation, groups,
                        output_mask=(True, True), workspace_limit=None):
        """``(gx, gw)`` together (``None`` where ``output_mask`` is False), as PyTorch's
        ``convolution_backward``: a strategy with a ``backward`` of its own computes both in one
        pass and shares their work (``'channels-last'`` reorders ``gy`` once); the others run
        the two gradients one after the other."""
        geo = ConvGeometry.of(x.shape, w.shape, stride, padding, dilation, groups)
        settings = (stride, padding, dilation, groups)
        name = choose("backward_input", geo)
        module = _STRATEGY_CODE.get(name, (None, {}))[0]
        if all(output_mask) and choose("backward_weight", geo) == name \
                and hasattr(module, "backward"):
            last_choice["backward_input"] = last_choice["backward_weight"] = name
            return _call("backward", name, geo, (gy, x, w, *settings, output_mask),
                         workspace_limit)
        return conv3d_backward_in_two_calls(self, gy, x, w, *settings, output_mask,
                                            workspace_limit=workspace_limit)

    def max_pool3d_forward(self, *args):
        if _strategy == "reference":
            return _reference().max_pool3d_forward(*args)
        return pooling.max_pool3d_forward(*args, fallback=_reference().max_pool3d_forward)

    def max_pool3d_backward(self, *args):
        if _strategy == "reference":
            return _reference().max_pool3d_backward(*args)
        return pooling.max_pool3d_backward(*args, fallback=_reference().max_pool3d_backward)

    def avg_pool3d_forward(self, *args):
        return _reference().avg_pool3d_forward(*args)

    def avg_pool3d_backward(self, *args):
        return _reference().avg_pool3d_backward(*args)


provider = FastCPUKernels()
