"""The worked 4x4x4 cube, checked against arithmetic done by hand in this file.

The filter has +1 on the diagonal (kh == kw) of every depth slice and -1 elsewhere, so each slice
contributes 2 * (diagonal of the 3x3 window) - (sum of the window). The numbers below were worked
out by hand from the input printed in cube4x4x4.json, NOT taken from the published figure.
"""
import subprocess
import sys

import numpy as np

from conv3d.teach.cube import engine_output, load_cube, report

# voxel (0,0,1): window depth 0..2, rows 0..2, columns 1..3
#   d0 rows [2,1,3] [7,3,3] [9,3,4]: diag 2+3+4=9,  sum 35 -> 18-35 = -17
#   d1 rows [2,1,3] [4,3,2] [9,3,4]: diag 2+3+4=9,  sum 31 -> 18-31 = -13
#   d2 rows [2,1,1] [3,3,3] [4,3,4]: diag 2+3+4=9,  sum 24 -> 18-24 = -6
V001 = (2 * 9 - 35) + (2 * 9 - 31) + (2 * 9 - 24)  # -36; the figure prints -38
# voxel (1,1,0): window depth 1..3, rows 1..3, columns 0..2
#   d1 rows [0,4,3] [3,9,3] [2,6,8]: diag 0+9+8=17, sum 38 -> 34-38 = -4
#   d2 rows [0,3,3] [3,4,3] [2,3,6]: diag 0+4+6=10, sum 27 -> 20-27 = -7
#   d3 rows [0,3,6] [0,9,3] [2,3,1]: diag 0+9+1=10, sum 27 -> 20-27 = -7
V110 = (2 * 17 - 38) + (2 * 10 - 27) + (2 * 10 - 27)  # -18; the figure prints -22
# voxel (0,0,0): d0 rows [3,2,1] [0,7,3] [3,9,3]: diag 13, sum 31 -> -5
#                d1 rows [0,2,1] [0,4,3] [3,9,3]: diag 7,  sum 25 -> -11
#                d2 rows [3,2,1] [0,3,3] [3,4,3]: diag 9,  sum 22 -> -4
V000 = (2 * 13 - 31) + (2 * 7 - 25) + (2 * 9 - 22)  # -20, as the figure says


def naive_output(x, w):
    out = np.zeros((2, 2, 2))
    for d, h, c in np.ndindex(out.shape):
        out[d, h, c] = sum(x[d + i, h + j, c + k] * w[i, j, k] for i, j, k in np.ndindex(3, 3, 3))
    return out


def test_engine_matches_hand_arithmetic():
    cube = load_cube()
    out = engine_output(cube)
    assert out[0, 0, 1] == V001 == -36
    assert out[1, 1, 0] == V110 == -18
    assert out[0, 0, 0] == V000 == -20
    np.testing.assert_array_equal(out, naive_output(cube["input"], cube["filter"]))


def test_report_names_exactly_the_wrong_voxels_with_their_arithmetic():
    cube = load_cube()
    text = report(cube)
    naive = naive_output(cube["input"], cube["filter"])
    wrong = [idx for idx in np.ndindex(2, 2, 2) if naive[idx] != cube["published_output"][idx]]
    assert wrong == [(0, 0, 1), (1, 1, 0)]
    for idx in wrong:
        assert f"Output voxel {idx}" in text
        assert f"the true value is {naive[idx]:g}" in text
    assert text.count("FIGURE IS WRONG") == len(wrong)
    # the slice subtotals worked out by hand above appear in the arithmetic
    assert "= -17" in text and "= -13" in text and "= -6" in text
    assert "total = (-17) + (-13) + (-6) = -36" in text
    assert "total = (-4) + (-7) + (-7) = -18" in text


def test_demo_command_runs():
    out = subprocess.run([sys.executable, "-m", "conv3d", "demo"], capture_output=True, text=True,
                         check=True).stdout
    assert "(0, 0, 1)" in out and "-38" in out and "-36" in out and "FIGURE IS WRONG" in out
