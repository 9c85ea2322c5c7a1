"""Micro-benchmark of one SGD step of S MLPs (default 100 × 64-128-10, batch 32): which backward
and whether ``torch.compile`` pays. Best of many short repeats (the minimum is the least disturbed
by neighbours). Variants: the fast path as shipped (baddbmm forward, explicit backward, _foreach
update); the same forward with autograd's backward; the generic vmap path; and the fast step under
``torch.compile`` (``--compile``). Writes ``results/step_micro.json``.

    python benchmarks/step_micro.py --compile
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
import torch.nn.functional as F
from _common import RESULTS, arguments, load, machine, mlp_step_flop, peak, start

from memkit import models, training


def best(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = arguments(__doc__, repeats=200, device=False)
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--widths", type=int, nargs="+", default=[128])
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    info = start(args)
    s, b = args.models, args.batch_size
    ens = training.Ensemble(lambda: models.mlp((64,), args.widths, 10), s, device="cpu")
    xs, ys = torch.randn(s, b, 64), torch.randint(0, 10, (s, b))
    vel: dict = {}

    def fast() -> None:
        ens.fast_path = True
        ens.sgd_step(xs, ys, 1e-6, momentum=0.9, velocity=vel)

    def vmap() -> None:
        ens.fast_path = False
        ens.sgd_step(xs, ys, 1e-6, momentum=0.9, velocity=vel)

    def autograd() -> None:
        logits = ens._fast.forward(ens.params, ens.buffers, xs, train=True)
        loss = F.cross_entropy(logits.flatten(0, 1), ys.flatten(), reduction="none").view(ys.shape).mean(1)
        grads = list(torch.autograd.grad(loss.sum(), list(ens.params.values())))
        ens._update(grads, 1e-6, 0.9, 0.0, vel)

    variants = {
        "fast path (explicit backward)": fast,
        "fast forward + autograd backward": autograd,
        "generic vmap path": vmap,
    }
    if args.compile:
        compiled = torch.compile(fast)
        t0 = time.perf_counter()
        try:
            compiled()
            variants["torch.compile(fast step)"] = compiled
        except Exception as err:
            print(f"torch.compile failed: {type(err).__name__}: {err}")
        print(f"compile time {time.perf_counter() - t0:.1f} s")
    flop = s * mlp_step_flop([64, *args.widths, 10], b)
    pk = peak(torch.device("cpu"), (s, b, 64, args.widths[0]))
    rows = []
    for name, fn in variants.items():
        t = best(fn, args.repeats)
        rows.append(dict(path=name, seconds=t, gflops=flop / t / 1e9, peak_share=flop / t / 1e9 / pk["peak_gflops"]))
        r = rows[-1]
        print(f"{name:36s} {t * 1e3:8.3f} ms/step  {r['gflops']:6.1f} GFLOP/s  {r['peak_share']:.0%} of peak")
    print("measured peak: " + ", ".join(f"{k} {v:.1f}" for k, v in pk.items()))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "step_micro.json").write_text(
        json.dumps(
            dict(
                name="step_micro",
                machine=machine(torch.device("cpu")),
                load=info,
                load_after=load(),
                peak=pk,
                rows=rows,
                args=vars(args),
            ),
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
