"""The Keras 3D-MNIST article's 3D CNN, rebuilt with conv3d and trained on voxel digits.

Model (conv3d.train.recipes.keras_3d_mnist_model): Conv3D(32, 3, relu, he_uniform),
MaxPool3D(2), BatchNorm, Dropout(0.5), Conv3D(64, 3, relu), MaxPool3D(2), BatchNorm,
Dropout(0.5), Flatten, Dense(256, relu), Dropout(0.5), Dense(10, softmax); Adam(1e-3), batch 128.

Data: conv3d.datasets.voxel_digits, scikit-learn's 8x8 digits as randomly rotated, shifted and
noisy 16^3 volumes. The test volumes come from source digits that training never saw.
If you have Kaggle's full_dataset_vectors.h5, pass --kaggle PATH to train on it instead.

Run:  python examples/keras_3d_mnist.py [--quick] [--epochs N] [--checkpoint ckpt.npz --resume]
(or:  conv3d train keras-3d-mnist [--quick])
"""
import argparse
import sys

import conv3d
from conv3d.train.recipes import keras_3d_mnist_model, keras_report, run_keras_3d_mnist


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--n-train", type=int, default=6000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default=None, help="write an .npz checkpoint each epoch")
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    parser.add_argument("--kaggle", default=None, help="path of full_dataset_vectors.h5")
    parser.add_argument("--quick", action="store_true", help="1000 volumes, 2 epochs (smoke run)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.n_test, args.epochs = 1000, 300, 2
    conv3d.summary(keras_3d_mnist_model(), (1, 16, 16, 16), batch_size=128)
    r = run_keras_3d_mnist(args.n_train, args.n_test, epochs=args.epochs, seed=args.seed,
                           progress=not args.no_progress, checkpoint=args.checkpoint,
                           resume=args.resume, kaggle=args.kaggle)
    print()
    print(keras_report(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
