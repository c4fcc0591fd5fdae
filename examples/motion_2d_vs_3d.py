"""Why 3D convolutions see motion and 2D ones do not: three models on moving shapes.

Each clip shows a small shape moving right, left, down or up (the label). The dataset is built
so that a clip played backwards is a clip of the opposite class and the *set* of frames says
nothing about the direction (see conv3d/datasets/shapes.py): only the order of the frames does.

Three models with about 14k parameters each (see conv3d.train.recipes.motion_models):

* a per-frame 2D CNN ((1, 3, 3) kernels) whose frames meet only in a final average over time
  (late fusion): it cannot tell the order, so it should stay near chance (25%);
* a (2+1)D CNN (spatial 1x3x3 then temporal 3x1x1 convolutions, R(2+1)D);
* a full 3D CNN (3x3x3 kernels).

Run:  python examples/motion_2d_vs_3d.py [--quick] [--epochs N]
(or:  conv3d train motion [--quick])
"""
import argparse
import sys

import conv3d
from conv3d.train.recipes import motion_report, run_motion


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="600 clips, 2 epochs (a smoke run)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.n_test, args.epochs = 600, 400, 2
    results = run_motion(args.n_train, args.n_test, epochs=args.epochs, seed=args.seed,
                         progress=not args.no_progress)
    for r in results:
        print()
        conv3d.summary(r["model"], (1, 8, 16, 16))
    print()
    print(motion_report(results, args.n_train, args.n_test, args.epochs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
