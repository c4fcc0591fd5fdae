"""Which strategy runs a convolution, and the ``'cpu'`` kernel provider built on that choice.

==================  =========================================================================
``'auto'``          the default: ``choose`` picks one of the strategies below per shape
``'reference'``     the readable path, ``conv3d/ops/cpu_reference.py`` (whole im2col, no limit)
``'im2col'``        chunked im2col + one GEMM per chunk (``im2col_gemm``)
``'im2col-planes'`` 2D im2col per input plane, shared by kD output planes (``plane_im2col``)
``'channels-last'`` 2D im2col in NDHWC layout, copies of whole channel runs (``channels_last``)
``'winograd'``      Winograd for stride-1 3x3x3 and (1, 3, 3) layers (``winograd``)
``'direct'``        compiled loops over the taps, no columns, no workspace (``direct``)
==================  =========================================================================

Each strategy module has ``forward(x, w, b, ...)`` and ``backward(gy, x, w, ..., output_mask)``.
Select one with ``set_strategy(name)``, or for a block with ``with use_strategy(name):``.
"""
from __future__ import annotations

import contextlib

from ...core.geometry import ConvGeometry
from .. import cpu_reference, resample
from . import channels_last, direct, im2col_gemm, plane_im2col, pooling, sample_threads, winograd

STRATEGIES = ("auto", "reference", "im2col", "im2col-planes", "channels-last", "winograd",
              "direct")
_MODULES = {"im2col": im2col_gemm, "im2col-planes": plane_im2col,
            "channels-last": channels_last, "winograd": winograd, "direct": direct}

LONG_PLANE = 1024    # output voxels per plane (OH*OW) from which 'im2col-planes' is chosen
SMALL_VOLUME = 4096  # output voxels per sample (OD*OH*OW) up to which 'channels-last' is chosen
THIN = 96            # GEMM inner dimension C/groups*kD*kH*kW up to which it is not
DEEP = 2048          # ... and from which it is not either: im2col's columns feed such GEMMs as well
FEW_FILTERS_CL = 128  # ... and filters per group up to which it is: more make the GEMM dominate
WINOGRAD_CHANNELS = 32  # input channels (its GEMMs' inner dimension) from which 'winograd' runs
WINOGRAD_FILTERS = 32   # ... output channels (their rows) from which it does
WINOGRAD_VOXELS = 4096  # ... and output voxels in the batch (N*OD*OH*OW) from which it does
FEW_FILTERS = 4      # filters per group up to which groups of one input channel take 'direct'

_strategy = "auto"
last_choice: dict = {}  # 'forward'/'backward' -> strategy of the most recent call


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


def choose(geo: ConvGeometry, op: str = "forward") -> str:
    """The strategy for ``geo`` and ``op`` ('forward' or 'backward'): the one set, or under
    ``'auto'`` this rule.

    The rules, first match wins:

    1. Groups of one input channel with at most ``FEW_FILTERS`` filters each (depthwise layers,
       single-channel inputs) take ``'direct'``: their GEMMs would have one row of
       C/groups*taps values, so im2col copies the input kD*kH*kW times for almost no arithmetic.
    2. A 1x1x1 kernel without padding takes ``'im2col'``, which multiplies x itself and copies
       nothing.
    3. Small output volumes (at most ``SMALL_VOLUME`` voxels per sample) with a spatial kernel
       (kH*kW > 1), at most ``FEW_FILTERS_CL`` filters per group and a GEMM inner dimension
       C/groups*kD*kH*kW above ``THIN`` and below ``DEEP`` take ``'channels-last'``.
    4. The forward of a layer ``winograd.applies`` to (3x3x3 or (1, 3, 3) kernel, stride 1,
       dilation 1, groups 1) with at least ``WINOGRAD_CHANNELS`` input channels,
       ``WINOGRAD_FILTERS`` output channels and ``WINOGRAD_VOXELS`` output voxels in the batch
       takes ``'winograd'``; so does its backward, unless its output planes are long (rule 5).
    5. Output planes of at least ``LONG_PLANE`` voxels with depth dilation 1 take
       ``'im2col-planes'``; everything else takes ``'im2col'``.

    With ``'winograd'`` set, layers it does not apply to take what ``'auto'`` would.

    Why: in a small volume NCDHW rows are a few floats long, so copying whole runs of kW*C
    channels (channels-last) wins while the copies are a large part of the work: not with
    kH*kW = 1, where NCDHW rows are whole planes, nor with many filters or a deep inner
    dimension, where the GEMM dominates and the NDHWC transposes cost more than the copies save,
    nor with too few channels to make a run. Winograd needs 64 multiplications per 2x2x2
    outputs where im2col's GEMM needs 216 (16 per 2x2 outputs against 36 for (1, 3, 3)), and
    the GEMMs are what its layers spend their time on; with fewer channels its 64 (or 16)
    GEMMs (inner dimension C, not 27*C or 9*C) are too thin for BLAS to run near its peak, with
    fewer filters they have too few rows, and with few outputs they are too short (one column
    per tile) and half-empty tiles at the borders waste their work.
    Its backward computes the input gradient by Winograd (the same convolution, flipped) and the
    weight gradient as ``'im2col-planes'`` does; with long planes ``'im2col-planes'`` does
    both as fast, and its shared columns serve both gradients. A long
    plane is a long GEMM, and sharing each input plane's 2D columns among kD output planes
    saves two thirds of im2col's copying.
    (Measurements: docs/benchmarks/notes.md, "Why auto chooses what it chooses".)
    """
    if _strategy == "winograd" and not winograd.applies(geo):
        return _auto(geo, op)  # set, but not applicable: the layer runs what auto picks
    if _strategy != "auto":
        return _strategy
    return _auto(geo, op)


def _auto(geo, op):
    if geo.Cg == 1 and geo.Kg <= FEW_FILTERS:
        return "direct"
    if im2col_gemm.pointwise(geo):  # x itself is its GEMM operand: nothing to copy
        return "im2col"
    if (geo.plane * geo.OD <= SMALL_VOLUME and geo.kernel[1] * geo.kernel[2] > 1
            and geo.Kg <= FEW_FILTERS_CL and THIN < geo.Cg * geo.taps < DEEP):
        return "channels-last"
    if (winograd.applies(geo) and (op == "forward" or geo.plane < LONG_PLANE)
            and geo.C >= WINOGRAD_CHANNELS and geo.K >= WINOGRAD_FILTERS
            and geo.N * geo.plane * geo.OD >= WINOGRAD_VOXELS):
        return "winograd"
    if geo.plane >= LONG_PLANE and geo.dilation[0] == 1:
        return "im2col-planes"
    return "im2col"


class FastCPUKernels:
    """The kernel provider for ``'cpu'`` (the contract in ``conv3d.core.backend``), choosing a
    strategy per call. The convolution functions also take ``workspace_limit=`` (bytes, this
    call only). Pooling takes the compiled loops of ``pooling.py`` (the reference provider's
    under strategy ``'reference'``)."""

    def conv3d_forward(self, x, w, b, stride, padding, dilation, groups, workspace_limit=None):
        geo = ConvGeometry.from_shapes(x.shape, w.shape, stride, padding, dilation, groups)
        name = last_choice["forward"] = choose(geo)
        if name == "reference":
            return cpu_reference.conv3d_forward(x, w, b, stride, padding, dilation, groups)
        if name == "direct":  # no workspace; it shares its own units among the threads
            return direct.forward(x, w, b, stride, padding, dilation, groups)
        return sample_threads.call("forward", _MODULES[name].forward,
                                   (x, w, b, stride, padding, dilation, groups), geo,
                                   workspace_limit)

    def conv3d_backward(self, gy, x, w, stride, padding, dilation, groups,
                        output_mask=(True, True), workspace_limit=None):
        """``(gx, gw)``, ``None`` where ``output_mask`` is False, in one strategy call."""
        geo = ConvGeometry.from_shapes(x.shape, w.shape, stride, padding, dilation, groups)
        name = last_choice["backward"] = choose(geo, "backward")
        args = (gy, x, w, stride, padding, dilation, groups, tuple(output_mask))
        if not any(output_mask):  # only the bias wants a gradient (conv3d's Function sums gy)
            return None, None
        if name == "reference":
            return cpu_reference.conv3d_backward(*args)
        if name == "direct":
            return direct.backward(*args)
        return sample_threads.call("backward", _MODULES[name].backward, args, geo,
                                   workspace_limit)

    def _pooling(self):
        return cpu_reference if _strategy == "reference" else pooling

    def max_pool3d_forward(self, *args, **options):
        return self._pooling().max_pool3d_forward(*args, **options)

    def max_pool3d_backward(self, *args):
        return self._pooling().max_pool3d_backward(*args)

    def avg_pool3d_forward(self, *args):
        return self._pooling().avg_pool3d_forward(*args)

    def avg_pool3d_backward(self, *args):
        return self._pooling().avg_pool3d_backward(*args)

    def interpolate_forward(self, x, matrices):
        return resample.resize_forward(x, matrices)

    def interpolate_backward(self, gy, matrices):
        return resample.resize_backward(gy, matrices)


provider = FastCPUKernels()
