"""Benchmark: notebook 02's unrolled-sensitivity recording (``memkit.sensitivity.measure``: plain SGD
recorded, then the loss sensitivity through the unrolled training, unrolled and plain) for S seeds
as one batched run vs S one-seed runs. Writes ``results/sensitivity.json``.

    python benchmarks/sensitivity.py
    python benchmarks/sensitivity.py --seeds 2 --examples 40 --repeats 1   # smoke run
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import arguments, peak, report, start, timed

from memkit import data, pick_device, sensitivity, training


def main() -> None:
    parser = arguments(__doc__, repeats=3, name="sensitivity")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 16])
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--times", type=int, default=5)
    args = parser.parse_args()

    info = start(args)  # measure() itself runs single-threaded on the CPU
    device = pick_device(args.device)
    ds = data.load("digits", n_train=args.examples)
    x, y = ds.x_train.flatten(1), ds.y_train
    sgd = training.SGD(lr=0.1, batch_size=args.batch_size, epochs=args.epochs)

    def run(n_seeds: int, seed: int):
        return sensitivity.measure(
            x,
            y,
            ds.n_classes,
            widths=args.widths,
            n_seeds=n_seeds,
            sgd=sgd,
            n_times=args.times,
            seed=seed,
            device=device,
        )

    t_loop, all_loop, _ = timed(lambda: [run(1, s) for s in range(args.seeds)], device, max(1, args.repeats // 2))
    t_ens, all_ens, _ = timed(lambda: run(args.seeds, 0), device, args.repeats)
    rows = [
        dict(path="one seed at a time", seconds=t_loop, all=all_loop),
        dict(path="all seeds batched (Ensemble, vmap over seeds)", seconds=t_ens, all=all_ens),
    ]
    report(
        args.name,
        f"unrolled loss sensitivity (02): {args.seeds} seeds of MLP {args.widths}, {args.epochs} "
        f"epochs of {len(x)} digits, batch {args.batch_size}, {args.times} times",
        rows,
        device=device,
        info=info,
        peak_info=peak(device),
        extra=dict(args=vars(args)),
    )


if __name__ == "__main__":
    main()
