"""Benchmark: S small CNNs (``models.cnn``: Conv 32 → Conv 64 → Dense 128, no BatchNorm) on
digits (or ``--data mnist1d``: 1-D convolutions), one epoch, batched (vmap Ensemble:
``train_seeds(batched=True)``) vs the per-seed loop. Writes ``results/cnn.json``. On a CPU the
batched CNN was half as fast as the loop, so ``train_seeds`` loops over convolutional seeds there
by default (``models.is_convolutional``); on a GPU it batches them.

    python benchmarks/cnn.py
    python benchmarks/cnn.py --models 2 --examples 64 --repeats 1   # smoke run
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
import torch.nn.functional as F
from _common import arguments, peak, report, timed, workload
from torch.utils.flop_counter import FlopCounterMode

from memkit import models, training


def step_flop(factory, x: torch.Tensor, y: torch.Tensor) -> float:
    """FLOP of one forward + backward of one model on the batch ``x`` (torch's flop counter)."""
    model = factory()
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return float(counter.get_total_flops())


def main() -> None:
    parser = arguments(__doc__, repeats=3, name="cnn")
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--data", default="digits", help="e.g. mnist1d: 1-D convolutions (notebook 06's CNN)")
    parser.add_argument("--channels", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    info, device, ds, x, y = workload(args, args.data)

    def factory():
        return models.cnn(ds.input_shape, ds.n_classes, channels=args.channels, hidden=args.hidden)

    sgd = training.SGD(lr=0.05, batch_size=args.batch_size, momentum=0.9)
    steps = training.steps_per_epoch(len(x), args.batch_size)
    gflop = args.models * steps * step_flop(factory, x[: args.batch_size], y[: args.batch_size]) / 1e9

    def run(batched: bool) -> torch.Tensor:
        return training.train_seeds(factory, x, y, sgd, n_seeds=args.models, device=device, batched=batched).predict(x)

    t_loop, all_loop, p_loop = timed(lambda: run(False), device, max(1, args.repeats // 2))
    t_ens, all_ens, p_ens = timed(lambda: run(True), device, args.repeats)
    pk = peak(device)
    rows = [
        dict(path="per-seed loop", seconds=t_loop, all=all_loop, gflop=gflop),
        dict(path="Ensemble + fit (vmap)", seconds=t_ens, all=all_ens, gflop=gflop),
        dict(path=f"the limit: {gflop:.2f} GFLOP at the measured peak", seconds=gflop / pk["peak_gflops"], gflop=gflop),
    ]
    agree = (p_ens == p_loop).float().mean().item()
    report(
        args.name,
        f"{args.models} CNNs {args.channels}+{args.hidden}, 1 epoch of {len(x)} {args.data}, batch {args.batch_size}",
        rows,
        device=device,
        info=info,
        peak_info=pk,
        extra=dict(args=vars(args), predictions_agree=agree),
    )


if __name__ == "__main__":
    main()
