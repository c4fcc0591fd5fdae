"""One small convolution problem, with every index spelled out: the data behind the teaching views.

A ``ConvProblem`` holds an input ``x`` of shape (N, C, D, H, W), weights ``w`` of shape
(K, C, kD, kH, kW), a bias ``b`` of shape (K,), and the stride, padding and dilation. It answers
the questions a student asks about one output voxel:

* how big is the output?  ``o = floor((i + p_lo + p_hi - d*(k - 1) - 1) / s) + 1`` per axis;
* which input voxels does output voxel (od, oh, ow) see?  Kernel tap ``k`` on an axis reads the
  input at ``i = o*s - p_lo + k*d`` (an index outside ``0 .. size-1`` is a padding cell, value 0);
* what does each tap contribute?  ``x[i] * w[k]``.

Everything here is plain NumPy loops over those formulas, written to be read: the teaching views
compute each product themselves, and the tests check the sums against ``conv3d.functional``.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.geometry import AXES, ConvGeometry
from ..core.shapes import to_triple


def parse_triple(text, name: str, minimum: int | None = None) -> tuple[int, int, int]:
    """Command-line text -> a triple: ``'3'`` -> (3, 3, 3); ``'4x4x4'``, ``'1,2,2'`` or
    ``'1 2 2'`` -> three ints. Ints and tuples pass through; the rule for the values is
    ``core.shapes.to_triple``'s (errors are ValueErrors, which the CLI reports)."""
    if isinstance(text, str):
        parts = [p for p in re.split(r"[x,\s]+", text.strip().lower()) if p]
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"{name} must be one int or three ints such as 3, 4x4x4 or 1,2,2; "
                             f"got {text!r}") from None
        if len(values) not in (1, 3):
            raise ValueError(f"{name} needs 1 or 3 values (depth, height, width), got "
                             f"{len(values)} in {text!r}; write e.g. {name}=3 or {name}=1x3x3")
        text = values[0] if len(values) == 1 else tuple(values)
    elif isinstance(text, np.integer):
        text = int(text)
    try:
        return to_triple(text, name, minimum)
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def parse_padding(text):
    """Command-line padding: ``'same'``, ``'valid'`` (any case), or what ``parse_triple`` reads;
    ``ConvGeometry`` turns it into (before, after) pairs."""
    if isinstance(text, str) and text.strip().lower() in ("same", "valid"):
        return text.strip().lower()
    if isinstance(text, (tuple, list)) and all(isinstance(p, (tuple, list)) for p in text):
        return tuple(tuple(p) for p in text)  # (before, after) pairs, as ConvProblem holds them
    return parse_triple(text, "padding", minimum=0)


def fmt(value) -> str:
    """A number as a teacher writes it: 3 not 3.0, -0.25 not -0.25000001."""
    v = float(value)
    if math.isinf(v):
        return "-inf" if v < 0 else "inf"
    if math.isnan(v):
        return "nan"
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.6g}"


def sum_of(values, total, empty: str = "0") -> str:
    """A sum written out term by term, each term in parentheses, and its ``total`` (the caller's,
    summed in the caller's dtype): ``(2) + (-1) = 1``; ``empty`` (e.g. "0 (no window covers this
    voxel)") in place of the terms when there are none.

    >>> sum_of([2, -1.0], 1.0), sum_of([], 0, "0 (nothing)")
    ('(2) + (-1) = 1', '0 (nothing) = 0')
    """
    return (" + ".join(f"({fmt(v)})" for v in values) or empty) + f" = {fmt(total)}"


def _package_cube() -> dict:
    """The worked 4x4x4 cube (``conv3d/data/cube4x4x4.json``), via ``conv3d.teach.cube``."""
    from .cube import load_cube  # noqa: PLC0415
    return load_cube()


def load_volume(path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a volume from ``.npy`` or ``.json``: returns (input, filter-or-None).

    The array may be (D, H, W), (C, D, H, W) or (N, C, D, H, W). A ``.json`` file holds either a
    nested list or an object with ``"input"`` (and optionally ``"filter"``, as the cube does).
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"--input-file {str(path)!r} does not exist; give a .npy or .json file")
    filt = None
    if path.suffix == ".npy":
        x = np.load(path)
    elif path.suffix == ".json":
        raw = json.loads(path.read_text())
        if isinstance(raw, dict):
            if "input" not in raw:
                raise ValueError(f"{path} is a JSON object without an 'input' key; write "
                                 f'{{"input": [[[...]]], "filter": [[[...]]]}} or a bare nested list')
            x = np.asarray(raw["input"])
            filt = np.asarray(raw["filter"]) if "filter" in raw else None
        else:
            x = np.asarray(raw)
    else:
        raise ValueError(f"--input-file must end in .npy or .json, got {path.name!r}")
    if x.dtype.kind not in "iuf" or x.ndim not in (3, 4, 5):
        raise ValueError(f"{path}: expected a numeric array of 3, 4 or 5 dimensions (D,H,W), "
                         f"(C,D,H,W) or (N,C,D,H,W); got dtype {x.dtype} and shape {x.shape}")
    return x, filt


@dataclass
class ConvProblem:
    """A convolution with concrete numbers: x (N, C, D, H, W), w (K, C, kD, kH, kW), b (K,).

    Its sizes are a ``conv3d.core.geometry.ConvGeometry`` (``geo``), the one the library uses;
    ``padding`` may be given as ``ConvGeometry`` takes it and is stored as (before, after) pairs.
    """

    x: np.ndarray
    w: np.ndarray
    b: np.ndarray
    stride: tuple = (1, 1, 1)
    padding: tuple = ((0, 0), (0, 0), (0, 0))
    dilation: tuple = (1, 1, 1)
    source: str = ""
    published: np.ndarray | None = None  # a published (OD, OH, OW) answer to check, if any
    notes: list = field(default_factory=list)
    geo: ConvGeometry = field(init=False, repr=False)

    def __post_init__(self):
        if self.x.ndim != 5 or self.w.ndim != 5:
            raise ValueError(f"x must be (N, C, D, H, W) and w (K, C, kD, kH, kW); got shapes "
                             f"{self.x.shape} and {self.w.shape}")
        if self.b.shape != (self.w.shape[0],):
            raise ValueError(f"bias must have shape ({self.w.shape[0]},), got {self.b.shape}")
        self.geo = ConvGeometry.from_shapes(self.x.shape, self.w.shape, self.stride, self.padding,
                                            self.dilation)
        self.stride, self.padding, self.dilation = (self.geo.stride, self.geo.padding,
                                                    self.geo.dilation)

    # ---- sizes ------------------------------------------------------------------------------
    in_size = property(lambda self: self.geo.in_size)
    kernel = property(lambda self: self.geo.kernel)
    out_size = property(lambda self: self.geo.out_size)

    def size_formulas(self) -> list[dict]:
        """Per axis: the output-size formula with this problem's numbers filled in."""
        rows = []
        for ax, i, k, s, (lo, hi), d, o in zip(AXES, self.in_size, self.kernel, self.stride,
                                                self.padding, self.dilation, self.out_size):
            span = i + lo + hi - d * (k - 1) - 1
            exact = span % s == 0
            text = (f"floor(({i} + {lo} + {hi} - {d}*({k}-1) - 1) / {s}) + 1 "
                    f"= floor({span}/{s}) + 1 = {o}")
            rows.append(dict(axis=ax, i=i, k=k, s=s, p_lo=lo, p_hi=hi, d=d, o=o, span=span,
                             exact=exact, text=text))
        return rows

    # ---- one output voxel -------------------------------------------------------------------
    def check_at(self, at) -> tuple[int, int, int, int, int]:
        """``(od, oh, ow)`` or ``(n, k, od, oh, ow)`` -> a validated 5-tuple."""
        at = tuple(int(v) for v in at)
        if len(at) == 3:
            at = (0, 0) + at
        if len(at) != 5:
            raise ValueError(f"--at takes d,h,w (or n,k,d,h,w), got {at}")
        limits = (self.x.shape[0], self.w.shape[0]) + self.out_size
        names = ("n", "k (output channel)", "od", "oh", "ow")
        for v, lim, nm in zip(at, limits, names):
            if not 0 <= v < lim:
                raise ValueError(f"--at {nm}={v} is outside the output, whose shape "
                                 f"(N, K, OD, OH, OW) is {(self.x.shape[0], self.w.shape[0]) + self.out_size}; "
                                 f"pick 0 <= {nm} < {lim}")
        return at

    def axis_indices(self, axis: int, o: int) -> list[int]:
        """Input index read by each kernel tap along one axis: ``o*s - p_lo + k*d``."""
        s, d, lo = self.stride[axis], self.dilation[axis], self.padding[axis][0]
        return [o * s - lo + k * d for k in range(self.kernel[axis])]

    def receptive_field(self, od: int, oh: int, ow: int) -> list[list[int]]:
        return [self.axis_indices(a, o) for a, o in enumerate((od, oh, ow))]

    def taps(self, at) -> list[dict]:
        """Every (c, kd, kh, kw) tap of output voxel ``at``: input index, x, w, product, padding?"""
        n, k, od, oh, ow = self.check_at(at)
        rf = self.receptive_field(od, oh, ow)
        out = []
        for c in range(self.x.shape[1]):
            for kd, i_d in enumerate(rf[0]):
                for kh, i_h in enumerate(rf[1]):
                    for kw, i_w in enumerate(rf[2]):
                        pad = not (0 <= i_d < self.in_size[0] and 0 <= i_h < self.in_size[1]
                                   and 0 <= i_w < self.in_size[2])
                        xv = 0.0 if pad else float(self.x[n, c, i_d, i_h, i_w])
                        wv = float(self.w[k, c, kd, kh, kw])
                        out.append(dict(c=c, kd=kd, kh=kh, kw=kw, idx=(i_d, i_h, i_w), pad=pad,
                                        x=xv, w=wv, product=xv * wv))
        return out

    def value_at(self, at) -> float:
        """The output voxel, summed tap by tap (the slow, obvious way)."""
        n, k = self.check_at(at)[:2]
        return sum(t["product"] for t in self.taps(at)) + float(self.b[k])

    def output(self) -> np.ndarray:
        """The whole output (N, K, OD, OH, OW), voxel by voxel."""
        N, K = self.x.shape[0], self.w.shape[0]
        y = np.zeros((N, K) + self.out_size, dtype=np.float64)
        for idx in np.ndindex(*y.shape):
            y[idx] = self.value_at(idx)
        return y

    def padded_input(self) -> np.ndarray:
        return np.pad(self.x, ((0, 0), (0, 0)) + tuple(self.padding))

    def numpy_expression(self, at) -> str:
        """The NumPy slicing that computes the same voxel."""
        n, k, od, oh, ow = self.check_at(at)
        sl = []
        for a, o in enumerate((od, oh, ow)):
            start = o * self.stride[a]
            stop = start + self.dilation[a] * (self.kernel[a] - 1) + 1
            step = f":{self.dilation[a]}" if self.dilation[a] != 1 else ""
            sl.append(f"{start}:{stop}{step}")
        pads = tuple(self.padding)
        lines = []
        if any(lo or hi for lo, hi in pads):
            lines.append(f"x_pad = np.pad(x, ((0, 0), (0, 0), {pads[0]}, {pads[1]}, {pads[2]}))"
                         f"  # zeros around the input")
            src = "x_pad"
        else:
            src = "x"
        lines.append(f"y[{n}, {k}, {od}, {oh}, {ow}] = ({src}[{n}, :, {', '.join(sl)}] * w[{k}]).sum()"
                     f" + b[{k}]")
        return "\n".join(lines)


def make_problem(input_size="4x4x4", kernel=None, stride="1", padding="0", dilation="1",
                 example: str | None = None, input_file=None, seed: int | None = None,
                 batch: int = 1, in_channels: int = 1, out_channels: int = 1,
                 bias: float = 0.0) -> ConvProblem:
    """Build the problem the CLI describes.

    Data, in order of precedence: ``example='cube'`` (the worked 4x4x4 cube and its filter),
    ``input_file`` (.npy/.json), else random small integers from ``seed`` (default 0), so that
    every product is exact and easy to check by hand. Weights come from the example/file when it
    has a filter, else random integers in -1..1 from the same seed.
    """
    rng = np.random.default_rng(0 if seed is None else seed)
    stride_t = parse_triple(stride, "stride", 1)
    dil_t = parse_triple(dilation, "dilation", 1)
    published, notes, filt = None, [], None
    if example is not None:
        if example != "cube":
            raise ValueError(f"--example must be 'cube', got {example!r}")
        cube = _package_cube()
        x = np.asarray(cube["input"], dtype=np.float64)
        filt = np.asarray(cube["filter"], dtype=np.float64)
        published = np.asarray(cube["published_output"], dtype=np.float64)
        source = "the worked 4x4x4 cube (conv3d/data/cube4x4x4.json)"
    elif input_file is not None:
        x, filt = load_volume(input_file)
        x = x.astype(np.float64)
        source = f"the file {input_file}"
    else:
        size = parse_triple(input_size, "input", 1)
        x = rng.integers(0, 10, size=(batch, in_channels) + size).astype(np.float64)
        source = f"random integers 0..9 (seed {0 if seed is None else seed})"
    while x.ndim < 5:
        x = x[None]
    if filt is not None:
        filt = np.asarray(filt, dtype=np.float64)
        while filt.ndim < 5:
            filt = filt[None]
        if kernel is not None and parse_triple(kernel, "kernel", 1) != filt.shape[2:]:
            raise ValueError(f"--kernel {kernel} conflicts with the {'x'.join(map(str, filt.shape[2:]))} "
                             f"filter that {source} brings; drop --kernel, or give an input file "
                             f"without a 'filter'")
        w = filt
    else:
        ksize = parse_triple(kernel or "3x3x3", "kernel", 1)
        w = rng.integers(-1, 2, size=(out_channels, x.shape[1]) + ksize).astype(np.float64)
    b = np.full((w.shape[0],), float(bias))
    return ConvProblem(x=x, w=w, b=b, stride=stride_t, padding=parse_padding(padding),
                       dilation=dil_t,
                       source=source, published=published, notes=notes)
