"""Benchmark: S MLPs (default 100 × 64-128-10, one epoch of 1000 digits, batch 32) trained three
ways: the per-seed loop (``train_seeds(batched=False)``), the generic vmap Ensemble, and the
batched-linear fast path (the default for plain MLPs). Prints the table of issue #15 and writes
``results/mlp.json``.

    python benchmarks/mlp.py                    # the issue's setting
    python benchmarks/mlp.py --models 4 --examples 128 --repeats 1   # smoke run
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from _common import arguments, bandwidth, mlp_step_flop, peak, report, timed, update_bytes, workload

from memkit import models, training


def main() -> None:
    parser = arguments(__doc__, repeats=5, name="mlp")
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--data", default="digits")
    parser.add_argument("--widths", type=int, nargs="+", default=[128])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also write results/<name>_profile.txt (torch.profiler table of one fast-path fit)",
    )
    args = parser.parse_args()

    info, device, ds, x, y = workload(args, args.data)

    def factory():
        return models.mlp(ds.input_shape, args.widths, ds.n_classes)

    sgd = training.SGD(lr=0.05, batch_size=args.batch_size)
    sizes = [ds.in_features, *args.widths, ds.n_classes]
    steps = training.steps_per_epoch(len(x), args.batch_size)
    gflop = args.models * steps * mlp_step_flop(sizes, args.batch_size) / 1e9

    def batched(fast: bool) -> torch.Tensor:
        ens = training.Ensemble(factory, args.models, device=device)
        ens.fast_path = fast
        training.fit(ens, x, y, sgd)
        return ens.predict(x)

    def loop() -> torch.Tensor:
        return training.train_seeds(factory, x, y, sgd, n_seeds=args.models, device=device, batched=False).predict(x)

    t_loop, all_loop, p_loop = timed(loop, device, max(1, args.repeats // 2))
    t_vmap, all_vmap, p_vmap = timed(lambda: batched(False), device, args.repeats)
    t_fast, all_fast, p_fast = timed(lambda: batched(True), device, args.repeats)
    fresh = [training.Ensemble(factory, args.models, device=device) for _ in range(args.repeats + 1)]
    t_fit, all_fit, _ = timed(lambda: training.fit(fresh.pop(), x, y, sgd), device, args.repeats)
    rows = [
        dict(path="per-seed loop (train_seeds batched=False)", seconds=t_loop, all=all_loop),
        dict(path="Ensemble + fit, generic vmap path", seconds=t_vmap, all=all_vmap, gflop=gflop),
        dict(path="Ensemble + fit, batched-linear fast path (default)", seconds=t_fast, all=all_fast, gflop=gflop),
        dict(
            path="the fast path's training alone (fit: no set-up, no predictions)",
            seconds=t_fit,
            all=all_fit,
            gflop=gflop,
        ),
    ]
    pk = peak(device, (args.models, args.batch_size, sizes[0], sizes[1]))
    n_params = args.models * sum(a * b + b for a, b in itertools.pairwise(sizes))
    pk["update_gbs"] = bandwidth(device, n_params)
    gbyte = steps * update_bytes(n_params, sgd.momentum > 0) / 1e9
    rows += [
        dict(
            path=f"the compute limit: {gflop:.2f} GFLOP at the measured peak",
            seconds=gflop / pk["peak_gflops"],
            gflop=gflop,
        ),
        dict(
            path=f"the memory limit: {gbyte:.2f} GB of SGD updates at the measured {pk['update_gbs']:.0f} GB/s",
            seconds=gbyte / pk["update_gbs"],
        ),
    ]
    agree = dict(
        fast_vs_loop=(p_fast == p_loop).float().mean().item(), vmap_vs_loop=(p_vmap == p_loop).float().mean().item()
    )
    report(
        args.name,
        f"{args.models} MLPs {sizes}, 1 epoch of {len(x)} {args.data} examples, batch {args.batch_size}",
        rows,
        device=device,
        info=info,
        peak_info=pk,
        extra=dict(args=vars(args), predictions_agree=agree),
    )
    if args.profile:
        with torch.profiler.profile() as prof:
            batched(True)
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)
        (Path(__file__).resolve().parent / "results" / f"{args.name}_profile.txt").write_text(table)
        print(table)
    print(f"predictions agree with the loop: fast {agree['fast_vs_loop']:.1%}, vmap {agree['vmap_vs_loop']:.1%}")


if __name__ == "__main__":
    main()
