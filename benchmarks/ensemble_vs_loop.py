"""Benchmark: S models trained as one batched Ensemble vs. the per-seed Python loop.

The same work both ways: S MLPs, one epoch of SGD over N examples (each model with its own
initialisation and data order), then predictions on the N examples. Prints both wall times and
their ratio, and checks that the two give the same predictions.

    python benchmarks/ensemble_vs_loop.py                      # notebook 01's quick setting
    python benchmarks/ensemble_vs_loop.py --device cuda --data mnist --widths 4096 4096
"""

from __future__ import annotations

import argparse
import time

import torch

from memkit import data, models, pick_device, training


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device, repeats: int) -> tuple[float, torch.Tensor]:
    """The best wall time of ``repeats`` calls of ``fn`` (after one warm-up) and its last result."""
    out = fn()
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        out = fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--data", default="digits")
    parser.add_argument("--widths", type=int, nargs="+", default=[128])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    device = pick_device(args.device)
    ds = data.load(args.data, n_train=args.examples)
    x, y = ds.x_train.to(device), ds.y_train.to(device)

    def factory():
        return models.mlp(ds.input_shape, args.widths, ds.n_classes)

    sgd = training.SGD(lr=args.lr, batch_size=args.batch_size)

    def train(batched: bool) -> torch.Tensor:
        return training.train_seeds(
            factory, x, y, sgd, n_seeds=args.models, device=device, batched=None if batched else False
        ).predict(x)

    t_ens, p_ens = timed(lambda: train(True), device, args.repeats)
    t_loop, p_loop = timed(lambda: train(False), device, args.repeats)
    agree = (p_ens == p_loop).float().mean().item()
    print(
        f"{args.models} MLPs {[ds.in_features, *args.widths, ds.n_classes]}, 1 epoch of {args.examples} "
        f"{args.data} examples, batch {args.batch_size}, on {device} ({torch.get_num_threads()} threads)"
    )
    print(f"  batched ensemble: {t_ens:.3f} s")
    print(f"  per-seed loop:    {t_loop:.3f} s")
    print(f"  speed-up:         {t_loop / t_ens:.1f}x   (predictions agree on {agree:.1%})")


if __name__ == "__main__":
    main()
