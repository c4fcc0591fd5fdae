"""A video file's frames (decoded with PyAV) and torchvision's video-classification preprocessing.

``read_frames(path, num_frames, sampling)`` decodes ``num_frames`` RGB frames as a uint8 array
(T, H, W, 3). ``VideoClassification`` turns them into the (C, T, H, W) float32 clip the Kinetics
models were evaluated on, step for step as ``torchvision.transforms._presets.VideoClassification``
(the ``transforms`` of torchvision's ``R2Plus1D_18_Weights.KINETICS400_V1`` and its siblings):

1. resize every frame to ``resize_size`` = (128, 171) (H, W) with bilinear interpolation,
   ``align_corners=False`` and *no* antialiasing (torchvision hard-codes ``antialias=False`` there
   to keep the published accuracies); uint8 frames are resized in float32 and rounded back to uint8;
2. crop the central ``crop_size`` = (112, 112), the top-left corner at
   ``round((128 - 112) / 2) = 8``, ``round((171 - 112) / 2) = round(29.5) = 30`` (Python's round);
3. scale to [0, 1] by dividing by 255;
4. normalize each channel: ``(x - mean) / std`` with Kinetics-400's mean and std;
5. reorder (T, C, H, W) -> (C, T, H, W).

PyAV is an optional dependency: ``pip install 'conv3d[video]'``.
"""
from __future__ import annotations

import os

import numpy as np

#: the per-channel (R, G, B) mean and standard deviation of Kinetics-400 that torchvision's video
#: models were trained with (``VideoClassification``'s defaults)
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
#: ``first``: frames 0..T-1 (torchvision's docs example, ``vid[:32]``); ``uniform``: the middle
#: frame of each of T equal segments of the whole video
SAMPLINGS = ("first", "uniform")


def _av():
    try:
        import av  # noqa: PLC0415 - optional dependency
    except ImportError as exc:
        raise ImportError("reading a video needs PyAV: pip install 'conv3d[video]' (or pip install av)",
                          name="av") from exc
    return av


def _open(path):
    """The opened container and its first video stream; clear errors for a missing or
    undecodable file."""
    av = _av()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"video: no such file {path!r}")
    try:
        container = av.open(path)
    except av.FFmpegError as exc:
        raise ValueError(f"video: {path!r} cannot be decoded as a video ({exc})") from exc
    if not container.streams.video:
        container.close()
        raise ValueError(f"video: {path!r} has no video stream")
    return container, container.streams.video[0]


def _decoded(container, stream, path):
    """Yield the stream's frames, turning a decoding error into a ValueError naming the file."""
    av = _av()
    try:
        yield from container.decode(stream)
    except av.FFmpegError as exc:
        raise ValueError(f"video: decoding {os.fspath(path)!r} failed ({exc})") from exc


def count_frames(path) -> int:
    """The number of frames in the video's first stream, counted by decoding it (the count stored
    in a container's header is missing or approximate in many files)."""
    container, stream = _open(path)
    with container:
        return sum(1 for _ in _decoded(container, stream, path))


def sample_indices(total: int, num_frames: int, sampling: str = "first") -> list[int]:
    """Which of ``total`` frames make a clip of ``num_frames``.

    ``first``: 0, 1, ..., num_frames - 1. ``uniform``: the middle frame of each of ``num_frames``
    equal segments, ``(2 i + 1) * total // (2 * num_frames)``. A video shorter than the clip is an
    error (the models accept any T, but a clip of other length than asked is a silent surprise).
    """
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
        raise ValueError(f"num_frames must be a positive int, got {num_frames!r}")
    if total < num_frames:
        raise ValueError(f"the video has {total} frames, fewer than the {num_frames} asked for; "
                         f"ask for at most {total} frames")
    if sampling == "first":
        return list(range(num_frames))
    return [(2 * i + 1) * total // (2 * num_frames) for i in range(num_frames)]


def read_frames(path, num_frames: int = 16, sampling: str = "first") -> np.ndarray:
    """``num_frames`` RGB frames of the video at ``path``, uint8 (T, H, W, 3), chosen by
    ``sample_indices`` (``uniform`` decodes the video twice: once to count its frames)."""
    total = count_frames(path) if sampling == "uniform" else num_frames  # "first" finds out below
    if sampling == "uniform" and total < num_frames:
        raise _too_short(path, total, num_frames)
    wanted = sample_indices(total, num_frames, sampling)
    container, stream = _open(path)
    frames, keep = [], set(wanted)
    with container:
        for i, frame in enumerate(_decoded(container, stream, path)):
            if i in keep:
                frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == len(wanted):
                break
    if len(frames) < len(wanted):
        raise _too_short(path, len(frames), num_frames)
    return np.stack(frames)


def _too_short(path, total, num_frames):
    return ValueError(f"the video {os.fspath(path)!r} has {total} frames, fewer than the "
                      f"{num_frames} asked for; ask for at most {total} frames")


def bilinear_taps(in_size: int, out_size: int):
    """The two source indices and weights of each output pixel along one axis, by the rule of
    ``torch.nn.functional.interpolate(mode='bilinear', align_corners=False, antialias=False)``:
    output pixel o samples the input at ``src = max((o + 0.5) * in/out - 0.5, 0)``, between
    ``i0 = floor(src)`` and ``i1 = min(i0 + 1, in - 1)``, with weights ``1 - (src - i0)`` and
    ``src - i0``. Returns (i0, i1, w0, w1), each of length ``out_size`` (weights float32)."""
    o = np.arange(out_size)
    if in_size == out_size:  # torch copies: every output pixel is its own source
        return o, o, np.ones(out_size, np.float32), np.zeros(out_size, np.float32)
    # torch divides the sizes in float32 but forms (o + 0.5) * scale - 0.5 in double (its 0.5 is
    # a double literal) before rounding to float32; copying that keeps the weights bit-identical
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.maximum((np.float64(scale) * (o + 0.5) - 0.5).astype(np.float32), np.float32(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    w1 = np.clip(src - i0.astype(np.float32), 0, 1).astype(np.float32)
    i1 = i0 + (i0 < in_size - 1)
    return i0, i1, np.float32(1) - w1, w1


def antialias_weights(in_size: int, out_size: int) -> np.ndarray:
    """The (out_size, in_size) float32 matrix of ``interpolate(mode='bilinear',
    align_corners=False, antialias=True)`` along one axis: output pixel o is a triangle filter
    centred at ``c = (o + 0.5) * scale`` (scale = in/out) over the input pixel centres j + 0.5,
    ``w_j = max(0, 1 - |j + 0.5 - c| / s)``, normalized to sum 1. Its half-width is s = scale when
    shrinking (every input pixel under the output pixel counts: the antialiasing) and s = 1 when
    enlarging, where it is plain bilinear interpolation. Arithmetic as torch's (float32 weights,
    the centre formed in double)."""
    scale = np.float32(in_size) / np.float32(out_size)
    support = scale if scale >= 1 else np.float32(1)
    invscale = np.float32(1.0 / float(scale)) if scale >= 1 else np.float32(1)
    M = np.zeros((out_size, in_size), np.float32)
    for o in range(out_size):
        center = np.float32(float(scale) * (o + 0.5))
        lo = max(int(float(center) - float(support) + 0.5), 0)
        hi = min(int(float(center) + float(support) + 0.5), in_size)
        j = np.arange(lo, hi)
        w = np.abs(((j - float(center) + 0.5) * float(invscale)).astype(np.float32))
        w = np.where(w < 1, np.float32(1) - w, np.float32(0)).astype(np.float32)
        total = np.float32(0)
        for wj in w:  # torch sums in order, in float32
            total = np.float32(total + wj)
        M[o, lo:hi] = w / total if total != 0 else w
    return M


def resize_bilinear(x: np.ndarray, size, antialias: bool = False) -> np.ndarray:
    """Resize the last two axes of float ``x`` (..., H, W) to ``size`` = (OH, OW) bilinearly,
    first along W, then along H (the interpolation is separable): with ``bilinear_taps`` (two
    input pixels per output pixel), or with ``antialias`` the matrices of ``antialias_weights``
    (an axis whose size does not change is left alone, as torch does).

    The weights follow torch's arithmetic, but its compiled kernel sums in another order and
    fuses some multiply-adds, so the float32 results can differ from it in the last bits
    (about 1e-7 relative)."""
    H, W = x.shape[-2:]
    OH, OW = size
    if antialias:
        rows = x if W == OW else x @ antialias_weights(W, OW).T.astype(x.dtype)   # (..., H, OW)
        return rows if H == OH else antialias_weights(H, OH).astype(x.dtype) @ rows  # (..., OH, OW)
    i0, i1, w0, w1 = bilinear_taps(W, OW)
    rows = x[..., i0] * w0.astype(x.dtype) + x[..., i1] * w1.astype(x.dtype)  # (..., H, OW)
    i0, i1, w0, w1 = bilinear_taps(H, OH)
    return (rows[..., i0, :] * w0.astype(x.dtype)[:, None]
            + rows[..., i1, :] * w1.astype(x.dtype)[:, None])           # (..., OH, OW)


def _resize_torch(x: np.ndarray, size, antialias: bool = False) -> np.ndarray:
    import torch  # noqa: PLC0415 - optional dependency, the caller checked it imports
    t = torch.nn.functional.interpolate(torch.from_numpy(np.ascontiguousarray(x)), size=tuple(size),
                                        mode="bilinear", align_corners=False, antialias=antialias)
    return t.numpy()


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def _pair(value, name):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in value):
        raise ValueError(f"{name} must be a positive int or an (H, W) pair of them, got {value!r}")
    return tuple(int(v) for v in value)


class VideoClassification:
    """torchvision's ``VideoClassification`` preset: uint8 frames (T, H, W, 3) -> a normalized
    float32 clip (3, T, crop H, crop W). See the module docstring for the five steps.

    ``antialias=True`` resizes with torch's antialiased filter instead, as the ``Resize`` of
    torchvision's reference evaluation script (``references/video_classification/presets.py``)
    does; the weights' own preset uses ``antialias=False`` (kept so that the published accuracies
    still hold).

    ``backend``: ``"torch"`` resizes with ``torch.nn.functional.interpolate`` (bit for bit what
    torchvision computes), ``"numpy"`` with ``resize_bilinear`` (agrees to within the last float32 bits,
    which after rounding to uint8 can move a rare pixel by one level, 1/255), ``"auto"`` uses torch
    where it is installed.
    """

    def __init__(self, crop_size=(112, 112), resize_size=(128, 171), mean=KINETICS_MEAN,
                 std=KINETICS_STD, antialias: bool = False, backend: str = "auto"):
        self.crop_size = _pair(crop_size, "crop_size")
        self.resize_size = _pair(resize_size, "resize_size")
        if self.crop_size[0] > self.resize_size[0] or self.crop_size[1] > self.resize_size[1]:
            raise ValueError(f"crop_size {self.crop_size} must fit inside resize_size "
                             f"{self.resize_size}; crop at most the resized frame")
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"mean and std need one value per RGB channel (std > 0), got mean "
                             f"{tuple(mean)}, std {tuple(std)}")
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.antialias = bool(antialias)
        if backend not in ("auto", "torch", "numpy"):
            raise ValueError(f"backend must be 'auto', 'torch' or 'numpy', got {backend!r}")
        self.backend = ("torch" if _torch_available() else "numpy") if backend == "auto" else backend

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be RGB video frames (T, H, W, 3), got shape {frames.shape}")
        if frames.dtype != np.uint8 and frames.dtype.kind != "f":
            raise TypeError(f"frames must be uint8 (0..255) or floating (0..1), got {frames.dtype}")
        x = np.ascontiguousarray(frames.transpose(0, 3, 1, 2))        # (T, 3, H, W)
        # torchvision resizes uint8 in float32 and rounds back to uint8 (so the crop and the
        # scaling see what a uint8 image would hold); float frames are resized in their own dtype
        work = x.astype(np.float32) if x.dtype == np.uint8 else x
        resize = _resize_torch if self.backend == "torch" else resize_bilinear
        resized = resize(work, self.resize_size, self.antialias)     # (T, 3, RH, RW)
        if x.dtype == np.uint8:
            resized = np.round(resized).astype(np.uint8)
        RH, RW = self.resize_size
        CH, CW = self.crop_size
        top, left = int(round((RH - CH) / 2.0)), int(round((RW - CW) / 2.0))
        crop = resized[..., top:top + CH, left:left + CW]             # (T, 3, CH, CW)
        # convert_image_dtype: uint8 -> float32 divides by 255; a float clip becomes float32
        clip = crop.astype(np.float32) / np.float32(255) if crop.dtype == np.uint8 \
            else crop.astype(np.float32)
        mean, std = np.float32(self.mean)[:, None, None], np.float32(self.std)[:, None, None]
        clip = (clip - mean) / std
        return np.ascontiguousarray(clip.transpose(1, 0, 2, 3))     # (3, T, CH, CW)

    def __repr__(self):
        return (f"VideoClassification(crop_size={self.crop_size}, resize_size={self.resize_size}, "
                f"mean={self.mean}, std={self.std}, antialias={self.antialias}, "
                f"backend={self.backend!r})")
