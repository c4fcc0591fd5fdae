"""The worked example: a 4x4x4 cube and a 3x3x3 filter, checked against a published figure.

Run:  python examples/worked_cube.py   (the same as `conv3d demo`)
"""
import os
import sys

import numpy as np

import conv3d
import conv3d.functional as F
from conv3d.teach.cube import load_cube, report


def main():
    cube = load_cube()
    x = conv3d.Tensor(cube["input"][None, None])   # (N=1, C=1, D=4, H=4, W=4)
    w = conv3d.Tensor(cube["filter"][None, None])  # (K=1, C=1, kD=3, kH=3, kW=3)
    y = F.conv3d(x, w)                             # (1, 1, 2, 2, 2)
    print("F.conv3d output, depth slice by slice:")
    print(np.array2string(y.numpy()[0, 0], separator=", "))
    print()
    print(report(cube))


if __name__ == "__main__":
    try:
        main()
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    except BrokenPipeError:  # `python examples/worked_cube.py | head`: the reader stopped
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
