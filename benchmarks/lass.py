"""Benchmark: the LASS search (``memkit.adversarial.lass``, notebook 04) on S trained MLPs at once
(through ``Seeds.forward`` of a batched Ensemble: the fast path's differentiable forward) vs one
model at a time (the per-seed ``Seeds.forward`` loop). Writes ``results/lass.json``.

    python benchmarks/lass.py
    python benchmarks/lass.py --models 2 --points 16 --iters 3 --repeats 1   # smoke run
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from _common import arguments, mlp_step_flop, peak, report, start, timed

from memkit import adversarial, data, models, pick_device, training


def main() -> None:
    parser = arguments(__doc__, repeats=3, name="lass")
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--widths", type=int, nargs="+", default=[128])
    args = parser.parse_args()

    info = start(args)
    device = pick_device(args.device)
    ds = data.load("digits", n_train=300)

    def factory():
        return models.mlp(ds.input_shape, args.widths, ds.n_classes)

    sgd = training.SGD(lr=0.05, batch_size=32)
    trained = {
        b: training.train_seeds(factory, ds.x_train, ds.y_train, sgd, n_seeds=args.models, device=device, batched=b)
        for b in (None, False)
    }
    points = ds.x_test[: args.points].to(device)
    xs = points.expand(args.models, *points.shape).contiguous()
    settings = adversarial.lass_settings(ds.x_test, r=8.0, n_iter=args.iters)

    def search(seeds: training.Seeds) -> torch.Tensor:
        return adversarial.lass(seeds.forward, xs, **settings).critical

    t_loop, all_loop, c_loop = timed(lambda: search(trained[False]), device, max(1, args.repeats // 2))
    t_ens, all_ens, c_ens = timed(lambda: search(trained[None]), device, args.repeats)
    sizes = [ds.in_features, *args.widths, ds.n_classes]
    gflop = args.iters * args.models * mlp_step_flop(sizes, len(points)) / 1e9  # forward + input backward per step
    rows = [
        dict(path="one model at a time", seconds=t_loop, all=all_loop, gflop=gflop),
        dict(path="all models batched (fast-path forward)", seconds=t_ens, all=all_ens, gflop=gflop),
    ]
    report(
        args.name,
        f"LASS, {args.iters} steps on {len(points)} points, {args.models} MLPs {sizes}",
        rows,
        device=device,
        info=info,
        peak_info=peak(device, (args.models, len(points), sizes[0], sizes[1])),
        extra=dict(args=vars(args), critical_agree=(c_ens == c_loop).float().mean().item()),
    )


if __name__ == "__main__":
    main()
