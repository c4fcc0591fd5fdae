"""conv3d.core.geometry: the one description of a convolution's and a pooling's sizes, against
hand-computed numbers and PyTorch's output shapes (torch as a peer, skipped without it)."""
import pytest

from conv3d.core.geometry import ConvGeometry, PoolGeometry, tap_range


def test_conv_sizes_by_hand():
    g = ConvGeometry.from_shapes((2, 6, 7, 9, 11), (4, 3, 3, 2, 3), stride=(2, 1, 3),
                                 padding=((1, 0), (0, 2), (2, 2)), dilation=(1, 2, 1), groups=2)
    # OD = floor((7 + 1 + 0 - 1*2 - 1)/2) + 1 = 3; OH = floor((9 + 0 + 2 - 2*1 - 1)/1) + 1 = 9;
    # OW = floor((11 + 2 + 2 - 1*2 - 1)/3) + 1 = 5
    assert g.out_size == (g.OD, g.OH, g.OW) == (3, 9, 5)
    assert (g.N, g.C, g.D, g.H, g.W, g.K) == (2, 6, 7, 9, 11, 4)
    assert (g.Cg, g.Kg, g.taps, g.plane) == (3, 2, 18, 45)
    assert g.y_shape == (2, 4, 3, 9, 5) and g.w_shape == (4, 3, 3, 2, 3)
    assert g.one_group() == ConvGeometry(2, 3, 7, 9, 11, 2, (3, 2, 3), (2, 1, 3),
                                         ((1, 0), (0, 2), (2, 2)), (1, 2, 1), 1)
    assert g.slab_depth(2) == 1 * 2 + 1 * 2 + 1  # two output planes read 5 input planes
    assert g.flops() == 2 * 2 * 4 * 3 * 18 * (3 * 9 * 5)


@pytest.mark.parametrize("i,k,s,d,want", [
    (6, 3, 2, 1, (0, 1)),    # o = 3, total = 2*2 + 2 + 1 - 6 = 1: the extra voxel goes after
    (5, 3, 2, 1, (1, 1)),    # o = 3, total = 4 + 3 - 5 = 2
    (7, 4, 1, 1, (1, 2)),    # o = 7, total = 6 + 4 - 7 = 3: smaller half before
    (9, 3, 3, 2, (1, 1)),    # o = 3, total = 6 + 5 - 9 = 2
    (10, 1, 4, 1, (0, 0)),   # o = 3, total = max(8 + 1 - 10, 0) = 0
])
def test_same_padding_is_the_keras_rule(i, k, s, d, want):
    g = ConvGeometry.from_shapes((1, 1, i, i, i), (1, 1, k, k, k), s, "same", d)
    assert g.padding == (want,) * 3
    assert g.out_size == (-(-i // s),) * 3  # ceil(i / s)


def test_padding_forms_agree():
    shapes = ((1, 1, 5, 5, 5), (1, 1, 3, 3, 3))
    assert ConvGeometry.from_shapes(*shapes, padding=1).padding == ((1, 1),) * 3
    assert ConvGeometry.from_shapes(*shapes, padding=(0, 1, 2)).padding == ((0, 0), (1, 1), (2, 2))
    assert ConvGeometry.from_shapes(*shapes, padding="valid").padding == ((0, 0),) * 3
    with pytest.raises(ValueError, match="negative padding"):
        ConvGeometry.from_shapes(*shapes, padding=((0, -1), (0, 0), (0, 0)))


def test_tap_range_by_brute_force():
    for o0, o1, k, s, d, p, size in [(0, 5, 0, 1, 1, 1, 5), (2, 7, 2, 2, 2, 3, 9),
                                     (0, 4, 1, 3, 1, 0, 4), (1, 3, 2, 1, 3, 0, 3)]:
        valid = [o for o in range(o0, o1) if 0 <= o * s + k * d - p < size]
        lo, hi, i_lo = tap_range(o0, o1, k, s, d, p, size)
        assert list(range(o0 + lo, o0 + hi)) == valid
        if valid:
            assert i_lo == valid[0] * s + k * d - p


@pytest.mark.parametrize("i,k,s,p,d,ceil_mode,want", [
    (5, 2, 2, 0, 1, False, 2), (5, 2, 2, 0, 1, True, 3),
    (6, 3, 2, 1, 1, True, 4),   # ceil((6 + 2 - 2 - 1)/2) + 1 = 4; the last window starts at 5 < 7
    (5, 3, 3, 1, 1, True, 2),   # ceil(4/3) + 1 = 3, but window 2 starts at 6 >= 5 + 1: dropped
    (9, 3, 2, 0, 2, False, 3),
])
def test_pool_sizes_by_hand_and_against_torch(i, k, s, p, d, ceil_mode, want):
    g = PoolGeometry.from_shape((1, 2, i, i, i), k, s, p, d, ceil_mode)
    assert g.out_size == (want,) * 3 and g.y_shape == (1, 2, want, want, want)
    torch = pytest.importorskip("torch")
    y = torch.nn.functional.max_pool3d(torch.zeros(1, 2, i, i, i), k, s, p, d, ceil_mode)
    assert tuple(y.shape) == g.y_shape


def test_pool_stride_defaults_to_the_kernel_and_pairs_cover_every_window():
    g = PoolGeometry.from_shape((1, 1, 5, 5, 5), (2, 2, 3), padding=(1, 0, 1), ceil_mode=True)
    assert g.stride == (2, 2, 3)
    for i, k, s, (lo, hi), d, o in zip(g.in_size, g.kernel, g.stride, g.padding_pairs,
                                       g.dilation, g.out_size):
        assert (o - 1) * s + d * (k - 1) + 1 <= i + lo + hi  # the last window fits
    assert g.padding_pairs[2] == (1, 1) and g.out_size[2] == 2  # ceil(4/3) + 1 = 3, dropped to 2
