"""conv3d.datasets.video: decoding a generated video with PyAV and torchvision's
VideoClassification preset, compared with torchvision's own code (imported without running
torchvision's __init__, whose compiled extension may not match the installed torch)."""

import numpy as np
import pytest

av = pytest.importorskip("av", reason="PyAV is not installed (pip install 'conv3d[video]')")

from _torchvision_oracle import torchvision_module  # noqa: E402
from conv3d.datasets.video import (VideoClassification, antialias_weights, bilinear_taps,  # noqa: E402
                                   read_frames, resize_bilinear, sample_indices)

FRAMES, H, W = 20, 64, 80


def draw_frames(n=FRAMES, height=H, width=W) -> np.ndarray:
    """n frames (n, H, W, 3) uint8: a red square moving right, a green one moving left, on blue."""
    frames = np.zeros((n, height, width, 3), np.uint8)
    frames[..., 2] = 60
    for t in range(n):
        frames[t, 10:30, 3 * t:3 * t + 20] = (230, 60, 20)
        frames[t, 40:56, 60 - 2 * t:76 - 2 * t] = (20, 200, 90)
    return frames


def write_video(path, frames=None, codec="mpeg4") -> np.ndarray:
    """Encode ``frames`` (default ``draw_frames()``) to ``path``; returns the frames drawn."""
    frames = draw_frames() if frames is None else frames
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"qscale": "2"} if codec == "mpeg4" else {}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return frames


def torchvision_preset(frames, **kwargs):
    """torchvision's VideoClassification on uint8 frames (T, H, W, 3), as a (3, T, h, w) array."""
    presets = torchvision_module("transforms._presets")  # skips without torch or torchvision
    import torch
    preset = presets.VideoClassification(**kwargs)
    tchw = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))
    return preset(tchw).numpy()


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "squares.mp4"
    return path, write_video(path)


def nearest_source(decoded, source):
    """For each decoded frame, the index of the drawn frame it is closest to (mean abs error)."""
    err = np.abs(decoded[:, None].astype(np.int16) - source[None].astype(np.int16)).mean(axis=(2, 3, 4))
    return err.argmin(axis=1), err.min(axis=1)


def test_first_frames_are_the_first_drawn(video):
    path, source = video
    frames = read_frames(path, 16, "first")
    assert frames.shape == (16, H, W, 3) and frames.dtype == np.uint8
    which, err = nearest_source(frames, source)
    assert which.tolist() == list(range(16))
    assert err.max() < 6  # mpeg4 at qscale 2 is close to lossless on flat squares


def test_uniform_frames_are_segment_middles(video):
    path, source = video
    # 20 frames in 4 segments of 5: middles 2, 7, 12, 17 ((2i + 1) * 20 // 8)
    assert sample_indices(20, 4, "uniform") == [2, 7, 12, 17]
    which, _ = nearest_source(read_frames(path, 4, "uniform"), source)
    assert which.tolist() == [2, 7, 12, 17]


@pytest.mark.parametrize("backend", ["torch", "numpy"])
@pytest.mark.parametrize("crop, resize", [((112, 112), (128, 171)), ((32, 32), (36, 48))])
def test_preset_matches_torchvision(video, backend, crop, resize):
    if backend == "torch":
        pytest.importorskip("torch", reason="torch is not installed")
    frames = read_frames(video[0], 16, "first")
    ref = torchvision_preset(frames, crop_size=crop, resize_size=resize)
    ours = VideoClassification(crop, resize, backend=backend)(frames)
    assert ours.shape == ref.shape == (3, 16) + crop and ours.dtype == np.float32
    diff = np.abs(ours - ref)
    if backend == "torch":
        assert diff.max() <= 1e-5
    else:
        # NumPy's float32 resize can differ from torch's fused multiply-adds in the last bit; after
        # rounding to uint8 that moves a rare pixel by one level (1 / 255 / std)
        level = 1 / 255 / min(VideoClassification().std) + 1e-5
        assert diff.max() <= level and (diff > 1e-5).mean() < 1e-3



@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_frames_match_torchvision(video, dtype):
    """Frames already in [0, 1] skip the rounding and the division by 255, in both."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    frames = read_frames(video[0], 4, "first").astype(dtype) / 255
    presets = torchvision_module("transforms._presets")
    preset = presets.VideoClassification(crop_size=(32, 32), resize_size=(36, 48))
    ref = preset(torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))).numpy()
    for backend in ("torch", "numpy"):
        ours = VideoClassification((32, 32), (36, 48), backend=backend)(frames)
        assert ours.dtype == ref.dtype == np.float32
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5)

def test_resize_follows_the_align_corners_false_rule():
    """Against a float64 loop written from the rule: src = max((o + 0.5) * in / out - 0.5, 0)."""
    rng = np.random.default_rng(0)
    x = rng.random((2, 7, 9)).astype(np.float64)

    def taps(n_in, n_out):
        out = []
        for o in range(n_out):
            src = max((o + 0.5) * n_in / n_out - 0.5, 0.0)
            i0 = min(int(np.floor(src)), n_in - 1)
            out.append((i0, min(i0 + 1, n_in - 1), src - i0))
        return out

    for OH, OW in [(5, 4), (11, 20), (7, 9), (3, 13)]:
        ref = np.zeros((2, OH, OW))
        for oh, (h0, h1, lh) in enumerate(taps(7, OH)):
            for ow, (w0, w1, lw) in enumerate(taps(9, OW)):
                ref[:, oh, ow] = ((1 - lh) * ((1 - lw) * x[:, h0, w0] + lw * x[:, h0, w1])
                                  + lh * ((1 - lw) * x[:, h1, w0] + lw * x[:, h1, w1]))
        ours = resize_bilinear(x, (OH, OW))
        assert ours.dtype == np.float64
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)  # float32 weights


def test_resize_matches_torch_on_floats():
    torch = pytest.importorskip("torch", reason="torch is not installed")
    rng = np.random.default_rng(1)
    for (h, w), size in [((64, 80), (128, 171)), ((240, 320), (128, 171)), ((50, 70), (36, 48))]:
        x = (rng.random((2, 3, h, w)) * 255).astype(np.float32)
        ref = torch.nn.functional.interpolate(torch.from_numpy(x), size=size, mode="bilinear",
                                              align_corners=False, antialias=False).numpy()
        np.testing.assert_allclose(resize_bilinear(x, size), ref, rtol=0, atol=1e-4)



def test_antialias_weights_by_hand():
    # 4 -> 2: scale 2, so each output pixel averages a triangle of half-width 2 around its centre
    # c = 1 and 3 over pixel centres 0.5, 1.5, 2.5, 3.5: 1 - |j + 0.5 - c| / 2 = (3/4, 3/4, 1/4, 0)
    # and (0, 1/4, 3/4, 3/4), normalized by 7/4
    np.testing.assert_allclose(antialias_weights(4, 2), [[3 / 7, 3 / 7, 1 / 7, 0],
                                                         [0, 1 / 7, 3 / 7, 3 / 7]], rtol=1e-6)
    # enlarging: the half-width stays 1, which is plain bilinear interpolation
    i0, i1, w0, w1 = bilinear_taps(5, 12)
    plain = np.zeros((12, 5))
    np.add.at(plain, (np.arange(12), i0), w0)
    np.add.at(plain, (np.arange(12), i1), w1)
    np.testing.assert_allclose(antialias_weights(5, 12), plain, atol=1e-6)


def test_antialias_weights_follow_the_triangle_rule():
    for n_in, n_out in [(320, 171), (240, 128), (80, 48), (7, 3)]:
        scale = n_in / n_out
        c = (np.arange(n_out)[:, None] + 0.5) * scale
        ref = np.maximum(0, 1 - np.abs(np.arange(n_in)[None] + 0.5 - c) / max(scale, 1))
        ref /= ref.sum(axis=1, keepdims=True)
        # torch keeps the centre in float32 (an ulp of 87.4 is 8e-6), hence not 1e-7
        np.testing.assert_allclose(antialias_weights(n_in, n_out), ref, atol=1e-5)


def test_antialias_resize_matches_torch():
    torch = pytest.importorskip("torch", reason="torch is not installed")
    rng = np.random.default_rng(2)
    for (h, w), size in [((240, 320), (128, 171)), ((64, 80), (128, 171)), ((333, 500), (36, 48))]:
        x = (rng.random((2, 3, h, w)) * 255).astype(np.float32)
        ref = torch.nn.functional.interpolate(torch.from_numpy(x), size=size, mode="bilinear",
                                              align_corners=False, antialias=True).numpy()
        np.testing.assert_allclose(resize_bilinear(x, size, antialias=True), ref, rtol=0, atol=1e-4)


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_antialiased_preset_matches_torchvision_functional(video, backend):
    """antialias=True against torchvision's own functional ops in the preset's order."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    frames = read_frames(video[0], 8, "first")
    F = torchvision_module("transforms.functional")
    vid = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))
    vid = F.resize(vid, [36, 48], antialias=True)
    vid = F.center_crop(vid, [32, 32])
    vid = F.normalize(F.convert_image_dtype(vid, torch.float), mean=[0.43216, 0.394666, 0.37645],
                      std=[0.22803, 0.22145, 0.216989])
    ref = vid.permute(1, 0, 2, 3).numpy()
    ours = VideoClassification((32, 32), (36, 48), antialias=True, backend=backend)(frames)
    diff = np.abs(ours - ref)
    level = 1 / 255 / min(VideoClassification().std) + 1e-5
    assert diff.max() <= (1e-5 if backend == "torch" else level) and (diff > 1e-5).mean() < 1e-3


def test_taps_at_the_edges():
    # 2 -> 4: src = 0.5 * (o + 0.5) - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (i1 clamped)
    i0, i1, w0, w1 = bilinear_taps(2, 4)
    assert i0.tolist() == [0, 0, 0, 1] and i1.tolist() == [1, 1, 1, 1]
    np.testing.assert_array_equal(w1, [0, 0.25, 0.75, 0.25])
    np.testing.assert_array_equal(w0, [1, 0.75, 0.25, 0.75])


def test_center_crop_offset_rounds_half_to_even():
    # resize to the frame's own size is the identity; (171 - 112) / 2 = 29.5 rounds to 30 and
    # (128 - 112) / 2 = 8, so the crop starts at row 8 and column 30
    rows, cols = np.meshgrid(np.arange(128), np.arange(171), indexing="ij")
    frame = np.stack([rows, cols, np.zeros_like(rows)], axis=-1).astype(np.uint8)[None]
    clip = VideoClassification(mean=(0, 0, 0), std=(1, 1, 1), backend="numpy")(frame)
    assert clip.shape == (3, 1, 112, 112)
    np.testing.assert_allclose(clip[0, 0, :, 0] * 255, np.arange(8, 120), atol=1e-4)
    np.testing.assert_allclose(clip[1, 0, 0, :] * 255, np.arange(30, 142), atol=1e-4)


def test_normalization_numbers():
    # a flat frame of value v becomes (v / 255 - mean) / std in every channel
    frame = np.full((1, 40, 50, 3), 200, np.uint8)
    clip = VideoClassification((8, 8), (20, 25), backend="numpy")(frame)
    for c, (m, s) in enumerate(zip((0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989))):
        np.testing.assert_allclose(clip[c], (200 / 255 - m) / s, rtol=1e-6)


def test_bad_input(tmp_path, video):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_frames(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_text("not a video")
    with pytest.raises(ValueError, match="cannot be decoded"):
        read_frames(junk)
    for sampling in ("first", "uniform"):
        with pytest.raises(ValueError, match="has 20 frames, fewer than the 21 asked for"):
            read_frames(video[0], 21, sampling)
    with pytest.raises(ValueError, match="sampling must be one of"):
        sample_indices(20, 4, "random")
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        VideoClassification()(np.zeros((3, 16, 112, 112), np.uint8))
    with pytest.raises(ValueError, match="must fit inside"):
        VideoClassification(crop_size=(130, 112))
