"""Outgrowing one process: a conv3d model trained data-parallel by PyTorch (two CPU processes).

The model is built and initialized in conv3d, handed to PyTorch with
``conv3d.interop.torch_module`` (same layers, same parameter names, the weights loaded), wrapped
in ``torch.nn.parallel.DistributedDataParallel`` and trained for a few SGD steps on voxel digits
by two processes that talk over gloo on localhost (a free port is chosen at run time).

The check: DDP's first-step gradients equal conv3d's own on the same global batch. Each of the
R ranks computes the gradient of the mean loss over its own B / R samples, and DDP *averages*
the gradients over the ranks (an all-reduce sum divided by R), so every rank ends up with

    (1 / R) * sum_r (R / B) * sum_{i in shard r} grad loss_i = (1 / B) * sum_i grad loss_i,

the gradient of the mean loss over the whole global batch: what conv3d computes when it sees
all B samples at once. Equal shards are needed for this (B divisible by R). The model uses
GroupNorm, which normalizes each sample by itself: a BatchNorm would normalize each rank's shard
with that shard's statistics, which is not the global batch's (that is what SyncBatchNorm is
for), and dropout would draw different masks.

Run:  python examples/ddp_voxel_digits.py [--steps 3] [--batch 16]
It prints the gradient comparison and the losses, and exits 1 if the gradients disagree.
"""
from __future__ import annotations

import argparse
import socket
import sys

import numpy as np

import conv3d
from conv3d import nn
from conv3d.datasets import voxel_digits
from conv3d.interop import torch_module

WORLD_SIZE = 2
#: first-step gradients agree to this, relative to each parameter's largest gradient
TOLERANCE = 1e-5


def build_model(seed: int = 0) -> nn.Sequential:
    """A small 3D CNN for 16^3 voxel digits: 16 -> pool 8 -> pool 4, so 16 * 4^3 features."""
    conv3d.nn.init.manual_seed(seed)
    return nn.Sequential(
        nn.Conv3d(1, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.ReLU(), nn.MaxPool3d(2),
        nn.Conv3d(8, 16, 3, padding=1), nn.GroupNorm(4, 16), nn.ReLU(), nn.MaxPool3d(2),
        nn.Flatten(), nn.Linear(16 * 4 * 4 * 4, 10))


def conv3d_gradients(model, x, y) -> dict:
    """conv3d's gradient of the mean cross-entropy over the batch (x, y), by parameter name."""
    loss = nn.CrossEntropyLoss()(model(conv3d.Tensor(x)), y)
    loss.backward()
    grads = {name: np.array(p.grad, copy=True) for name, p in model.named_parameters()}
    model.zero_grad()
    return grads


def free_port() -> int:
    """A TCP port that is free on localhost now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, port: int, batches, reference: dict, lr: float) -> None:
    """One DDP process: rank ``rank`` trains on its shard of every global batch."""
    import torch  # noqa: PLC0415 - each spawned process imports it itself
    import torch.distributed as dist  # noqa: PLC0415

    torch.set_num_threads(1)  # two processes on a small machine: one thread each
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD_SIZE)
    try:
        model = torch.nn.parallel.DistributedDataParallel(torch_module(build_model()).train())
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        for step, (x, y) in enumerate(batches):
            shard = slice(rank * len(x) // WORLD_SIZE, (rank + 1) * len(x) // WORLD_SIZE)
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x[shard])),
                                                     torch.from_numpy(y[shard]))
            loss.backward()  # DDP all-reduces the gradients here: every rank holds the average
            if step == 0 and rank == 0:
                check_gradients(model.module, reference)
            optimizer.step()
            mean_loss = loss.detach().clone()
            dist.all_reduce(mean_loss)  # the global batch's loss: the mean of the shards' means
            if rank == 0:
                print(f"step {step}: loss {mean_loss.item() / WORLD_SIZE:.4f}", flush=True)
        same = all(_equal_on_every_rank(p.detach()) for p in model.module.parameters())
        if rank == 0:
            print(f"after {len(batches)} steps the two ranks' weights are identical: {same}",
                  flush=True)
        if not same:
            raise RuntimeError("the ranks' weights differ after training")
        # every rank is done communicating before any tears gloo down: a rank that destroys
        # its process group while the other still holds a connection can abort at exit
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _equal_on_every_rank(t) -> bool:
    import torch  # noqa: PLC0415
    import torch.distributed as dist  # noqa: PLC0415

    low, high = t.clone(), t.clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    return bool(torch.equal(low, high))


def check_gradients(module, reference: dict) -> None:
    """Compare DDP's averaged gradients with conv3d's; raise if any parameter disagrees."""
    worst = 0.0
    for name, p in module.named_parameters():
        want, got = reference[name], p.grad.numpy()
        scale = float(np.abs(want).max()) or 1.0
        worst = max(worst, float(np.abs(got - want).max()) / scale)
    ok = worst <= TOLERANCE
    print(f"first-step gradients, DDP on {WORLD_SIZE} ranks vs conv3d on the global batch: "
          f"{len(reference)} tensors, largest difference {worst:.1e} of the tensor's largest "
          f"gradient (tolerance {TOLERANCE:.0e}): {'match' if ok else 'MISMATCH'}", flush=True)
    if not ok:
        raise AssertionError(f"DDP gradients differ from conv3d's by {worst:.2e} > {TOLERANCE}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="SGD steps (default 3)")
    parser.add_argument("--batch", type=int, default=16,
                        help=f"global batch, split over {WORLD_SIZE} ranks (default 16)")
    parser.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (default 0.01)")
    args = parser.parse_args(argv)
    if args.batch % WORLD_SIZE or args.batch < WORLD_SIZE:
        parser.error(f"--batch must be a positive multiple of {WORLD_SIZE} (equal shards), got "
                     f"{args.batch}")
    try:
        import torch.distributed as dist  # noqa: PLC0415
        import torch.multiprocessing as mp  # noqa: PLC0415
    except ImportError:
        print("this example needs PyTorch: pip install conv3d[torch]", file=sys.stderr)
        return 2
    if not dist.is_available() or not dist.is_gloo_available():
        print("this example needs torch.distributed with the gloo backend", file=sys.stderr)
        return 2
    (x, y), _ = voxel_digits(n_train=args.batch * args.steps, n_test=1, seed=0)
    batches = [(x[i:i + args.batch], y[i:i + args.batch])
               for i in range(0, len(x), args.batch)]
    reference = conv3d_gradients(build_model(), *batches[0])
    try:
        mp.spawn(worker, args=(free_port(), batches, reference, args.lr), nprocs=WORLD_SIZE)
    except Exception as exc:  # a rank raised (a mismatch, or a failed start): say so, exit 1
        print(f"a DDP process failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
