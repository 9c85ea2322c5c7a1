"""Benchmark: cost growth, time per epoch against the number of members S = 1, 10, 100, 1000 (MLP
64-128-10, fast path and vmap path, one epoch of 256 digits, batch 32), plotted to
``results/growth_<device>.png`` and written to ``results/growth_<device>.json``. Expected shape:
flat while the machine's compute is not full, then linear in S.

    python benchmarks/growth.py                              # ~1 min on an idle 2-core CPU
    python benchmarks/growth.py --sizes 1 4 --examples 64    # smoke run
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from _common import RESULTS, arguments, load, machine, mlp_step_flop, peak, timed, workload

from memkit import models, training


def main() -> None:
    parser = arguments(__doc__, repeats=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    info, device, ds, x, y = workload(args, "digits")

    def factory():
        return models.mlp(ds.input_shape, [128], ds.n_classes)

    sgd = training.SGD(lr=0.05, batch_size=args.batch_size)
    steps = training.steps_per_epoch(len(x), args.batch_size)
    flop = steps * mlp_step_flop([ds.in_features, 128, ds.n_classes], args.batch_size)
    rows = []
    for s in args.sizes:
        for fast in (True, False):
            ens = training.Ensemble(factory, s, device=device)
            ens.fast_path = fast
            best, all_, _ = timed(lambda ens=ens: training.fit(ens, x, y, sgd), device, args.repeats)
            rows.append(
                dict(members=s, path="fast" if fast else "vmap", seconds=best, all=all_, gflops=s * flop / best / 1e9)
            )
            print(f"S={s:5d} {rows[-1]['path']:5s} {best:.4f} s/epoch  {rows[-1]['gflops']:.1f} GFLOP/s")
    pk = peak(device, (max(args.sizes), args.batch_size, ds.in_features, 128))
    print("measured peak: " + ", ".join(f"{k} {v:.1f}" for k, v in pk.items()))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for path in ("fast", "vmap"):
        pts = [(r["members"], r["seconds"]) for r in rows if r["path"] == path]
        ax.loglog(*zip(*pts, strict=True), "o-", label=f"{path} path")
    s_max = max(args.sizes)
    ax.loglog(
        [1, s_max],
        [flop / pk["peak_gflops"] / 1e9, s_max * flop / pk["peak_gflops"] / 1e9],
        "k:",
        label="S × work at the measured peak",
    )
    ax.set(
        xlabel="members S",
        ylabel="seconds per epoch",
        title=f"{len(x)} digits, batch {args.batch_size}, MLP 64-128-10 ({device.type})",
    )
    ax.legend()
    fig.tight_layout()
    RESULTS.mkdir(exist_ok=True)
    fig.savefig(RESULTS / f"growth_{device.type}.png", dpi=120)
    out = dict(
        name=f"growth_{device.type}",
        machine=machine(device),
        load=info,
        load_after=load(),
        peak=pk,
        rows=rows,
        args=vars(args),
    )
    (RESULTS / f"growth_{device.type}.json").write_text(json.dumps(out, indent=1))
    print(f"wrote {RESULTS / f'growth_{device.type}.png'} and .json")


if __name__ == "__main__":
    main()
