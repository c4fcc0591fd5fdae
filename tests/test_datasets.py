"""conv3d.datasets: determinism, the split by source digit, the design of moving shapes (labels
from measured trajectories, reversal = opposite class, identical frame sets for reversed pairs),
the Kaggle reader on a tiny file written here, DataLoader and the channel helpers."""
import sys

import numpy as np
import pytest

from conv3d.datasets import (DIRECTIONS, REVERSED, SHAPES_3D, DataLoader, load_kaggle_3d_mnist,
                             moving_shapes, shapes3d, to_channels_first, to_channels_last,
                             voxel_digit_sources, voxel_digits)
from conv3d.datasets.voxel_digits import render_digits


# ---- voxel digits -------------------------------------------------------------------------------

def test_voxel_digits_shapes_range_and_determinism():
    (x, y), (xt, yt) = voxel_digits(60, 30, seed=3)
    assert x.shape == (60, 1, 16, 16, 16) and xt.shape == (30, 1, 16, 16, 16)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() >= 0 and x.max() <= 1 and set(np.unique(y)) <= set(range(10))
    (x2, y2), _ = voxel_digits(60, 30, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    (x3, _), _ = voxel_digits(60, 30, seed=4)
    assert not np.array_equal(x, x3)


def test_split_is_by_source_digit():
    from sklearn.datasets import load_digits
    digits = load_digits()
    train_src, test_src = voxel_digit_sources(seed=5)
    assert len(np.intersect1d(train_src, test_src)) == 0
    assert len(train_src) + len(test_src) == len(digits.target)
    for c in range(10):  # stratified: every class on both sides, about a quarter for testing
        n_c = (digits.target == c).sum()
        assert abs((digits.target[test_src] == c).sum() - 0.25 * n_c) <= 1
    # with no pose and no noise every volume is a fixed rendering of its source image, so
    # each test volume must be the rendering of a test source and of no training source
    (x, _), (xt, yt) = voxel_digits(50, 80, seed=5, max_angle=0, max_shift=0, noise=0)
    images = digits.images / 16.0
    renders = render_digits(images, np.random.default_rng(0), max_angle=0, max_shift=0,
                            noise=0)
    sources = {}
    for i, r in enumerate(renders):
        sources.setdefault(r.round(5).tobytes(), []).append(i)
    for vol, label in zip(xt, yt):
        match = sources[vol.round(5).tobytes()]
        assert np.isin(match, test_src).all() and digits.target[match[0]] == label
    for vol in x:
        assert np.isin(sources[vol.round(5).tobytes()], train_src).all()


def bilinear(image, r, c):
    """The image at real coordinates (r, c), zero outside, by the textbook formula."""
    r0, c0 = int(np.floor(r)), int(np.floor(c))
    value = 0.0
    for dr, wr in ((0, 1 - (r - r0)), (1, r - r0)):
        for dc, wc in ((0, 1 - (c - c0)), (1, c - c0)):
            rr, cc = r0 + dr, c0 + dc
            if 0 <= rr < image.shape[0] and 0 <= cc < image.shape[1]:
                value += wr * wc * image[rr, cc]
    return value


def test_unposed_digit_is_a_slab_of_the_magnified_image():
    from sklearn.datasets import load_digits
    image = load_digits().images[:1] / 16.0
    vol = render_digits(image, np.random.default_rng(0), max_angle=0, max_shift=0, noise=0)[0, 0]
    depth_profile = vol.sum(axis=(1, 2))
    # thickness 4 around the middle plane (7.5): depths 6..9 full, 5 and 10 at most half
    assert depth_profile[6:10].min() > 0 and depth_profile[:5].sum() == 0
    assert depth_profile[11:].sum() == 0
    # every full slice is the same picture: the image magnified 1.5 times about the centre
    np.testing.assert_allclose(vol[6], vol[9])
    expected = np.array([[bilinear(image[0], (r - 7.5) / 1.5 + 3.5, (c - 7.5) / 1.5 + 3.5)
                          for c in range(16)] for r in range(16)])
    np.testing.assert_allclose(vol[7], expected, atol=1e-6)


# ---- 3D shapes ----------------------------------------------------------------------------------

def test_shapes3d_balanced_binary_without_noise_and_seeded():
    x, y = shapes3d(60, size=12, seed=1, noise=0.0)
    assert x.shape == (60, 1, 12, 12, 12) and np.bincount(y).tolist() == [10] * len(SHAPES_3D)
    assert set(np.unique(x)) <= {0.0, 1.0}
    assert (x.reshape(60, -1).sum(axis=1) > 10).all()  # every solid occupies voxels
    filled = [x[y == k].mean() for k in range(6)]
    assert filled[0] > filled[2]  # a ball holds more than a torus of the same radius
    np.testing.assert_array_equal(shapes3d(60, size=12, seed=1, noise=0.0)[0], x)


# ---- moving shapes ------------------------------------------------------------------------------

def centroids(clip):
    """(T, 2) centre of mass (row, column) of each noise-free frame."""
    frames = clip[0].astype(np.float64)
    rows, cols = np.indices(frames.shape[1:])
    mass = frames.sum(axis=(1, 2))
    return np.stack([(frames * rows).sum(axis=(1, 2)) / mass,
                     (frames * cols).sum(axis=(1, 2)) / mass], axis=1)


EXPECTED_STEP = {"right": (0, 1), "left": (0, -1), "down": (1, 0), "up": (-1, 0)}


def test_moving_shapes_labels_match_measured_motion_and_reversal():
    x, y = moving_shapes(40, seed=2, noise=0.0)
    assert x.shape == (40, 1, 8, 16, 16) and np.bincount(y).tolist() == [10] * 4
    for clip, label in zip(x, y):
        step = np.diff(centroids(clip), axis=0)
        np.testing.assert_allclose(step, np.tile(EXPECTED_STEP[DIRECTIONS[label]], (7, 1)),
                                   atol=1e-6)
        back = np.diff(centroids(clip[:, ::-1]), axis=0)  # played backwards
        np.testing.assert_allclose(back, np.tile(EXPECTED_STEP[DIRECTIONS[REVERSED[label]]],
                                                 (7, 1)), atol=1e-5)


def test_reversed_pairs_have_the_same_frame_sets():
    x, y = moving_shapes(2400, seed=3, noise=0.0)
    for a, b in ((0, 1), (2, 3)):
        # the set of positions visited: (first along-axis position of the path, across)
        def summary(label):
            c = np.array([centroids(clip) for clip in x[y == label]])
            along = 1 if label < 2 else 0
            return np.stack([c[:, :, along].min(axis=1), c[:, 0, 1 - along]], axis=1).round(6)
        sa, sb = summary(a), summary(b)
        values = np.unique(np.concatenate([sa, sb]), axis=0)
        freq = [[np.mean((s == v).all(axis=1)) for v in values] for s in (sa, sb)]
        assert np.abs(np.subtract(*freq)).max() < 0.05


def test_order_blind_features_are_at_chance_for_reversed_pairs():
    from sklearn.linear_model import LogisticRegression
    x, y = moving_shapes(1200, seed=4)
    keep = y < 2  # right vs left
    clips, labels = x[keep, 0], y[keep]
    half = len(labels) // 2
    mean_frame = clips.mean(axis=1).reshape(len(labels), -1)  # blind to order
    change = (clips[:, -1] - clips[:, 0]).reshape(len(labels), -1)  # sees order
    accs = []
    for features in (mean_frame, change):
        clf = LogisticRegression(max_iter=2000).fit(features[:half], labels[:half])
        accs.append(clf.score(features[half:], labels[half:]))
    assert accs[0] < 0.62 and accs[1] > 0.9


def test_moving_shapes_errors():
    with pytest.raises(ValueError, match="does not fit in size=8"):
        moving_shapes(4, frames=8, size=8)
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        moving_shapes(0)


# ---- Kaggle reader ------------------------------------------------------------------------------

def write_h5(path, keys=("X_train", "y_train", "X_test", "y_test")):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(0)
    arrays = {"X_train": rng.random((3, 4096)), "y_train": np.array([1, 7, 3]),
              "X_test": rng.random((2, 4096)), "y_test": np.array([0, 9])}
    with h5py.File(path, "w") as f:
        for k in keys:
            f.create_dataset(k, data=arrays[k])
    return arrays


def test_kaggle_reader_on_a_tiny_file(tmp_path):
    path = tmp_path / "full_dataset_vectors.h5"
    arrays = write_h5(path)
    (x, y), (xt, yt) = load_kaggle_3d_mnist(path)
    assert x.shape == (3, 1, 16, 16, 16) and xt.shape == (2, 1, 16, 16, 16)
    assert x.dtype == np.float32 and y.tolist() == [1, 7, 3] and yt.tolist() == [0, 9]
    a, b, c = 5, 11, 2
    assert x[1, 0, a, b, c] == np.float32(arrays["X_train"][1, a * 256 + b * 16 + c])


def test_kaggle_reader_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="voxel_digits"):
        load_kaggle_3d_mnist(tmp_path / "nope.h5")
    path = tmp_path / "partial.h5"
    write_h5(path, keys=("X_train", "y_train"))
    with pytest.raises(KeyError, match=r"lacks the dataset\(s\) \['X_test', 'y_test'\]"):
        load_kaggle_3d_mnist(path)
    monkeypatch.setitem(sys.modules, "h5py", None)  # as if h5py were not installed
    with pytest.raises(ImportError, match="pip install h5py"):
        load_kaggle_3d_mnist(path)


# ---- DataLoader and channel helpers ------------------------------------------------------------

def test_dataloader_batches_cover_everything_and_shuffle_is_seeded():
    x, y = np.arange(10 * 2).reshape(10, 2), np.arange(10)
    batches = list(DataLoader((x, y), batch_size=4))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
    loader = DataLoader((x, y), batch_size=3, shuffle=True, seed=1)
    assert len(loader) == 4
    epoch0 = np.concatenate([b[1] for b in loader])
    epoch1 = np.concatenate([b[1] for b in loader])
    assert sorted(epoch0) == list(range(10)) and not np.array_equal(epoch0, epoch1)
    again = DataLoader((x, y), batch_size=3, shuffle=True, seed=1)
    again.set_epoch(1)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in again]), epoch1)
    assert len(list(DataLoader((x, y), batch_size=3, drop_last=True))) == 3
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        DataLoader((x, y), batch_size=0)
    with pytest.raises(ValueError, match="different lengths"):
        DataLoader((x, y[:5]))


def test_channels_helpers():
    a = np.random.default_rng(0).random((2, 3, 4, 5, 6))
    last = to_channels_last(a)
    assert last.shape == (2, 4, 5, 6, 3)
    np.testing.assert_array_equal(last, np.transpose(a, (0, 2, 3, 4, 1)))
    np.testing.assert_array_equal(to_channels_first(last), a)
    with pytest.raises(ValueError, match=r"5-D array \(N, D, H, W, C\)"):
        to_channels_first(np.zeros((2, 3, 4)))
