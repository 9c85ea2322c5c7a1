"""Write ``benchmarks/README.md``: the table of every ``results/<name>.json`` (the machine named,
with its load during the run), from the JSONs the benchmark scripts wrote.

    python benchmarks/make_readme.py
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

HEAD = """# Benchmarks (issue #15)

One script per workload; each prints its table and writes `results/<name>.json`; this file is
generated from those by `python benchmarks/make_readme.py` (do not edit the tables by hand).

    export PYTHONPATH=$PWD
    python benchmarks/mlp.py          # 100 MLPs 64-128-10, 1 epoch of 1000 digits, batch 32: loop, vmap, fast path
    python benchmarks/cnn.py          # 100 small CNNs (models.cnn), batched (vmap) vs loop
    python benchmarks/sensitivity.py  # 02's unrolled loss sensitivity, seeds batched vs one at a time
    python benchmarks/lass.py         # LASS on S models batched vs one at a time
    python benchmarks/growth.py       # time per epoch for S = 1, 10, 100, 1000 -> results/growth_cpu.png
    python benchmarks/step_micro.py --compile   # one step: explicit vs autograd backward, vmap, torch.compile
    python benchmarks/make_readme.py

Each script sets torch's threads to the idle cores (`--threads` to override), warns when the
machine is not idle (1-minute load ≥ a quarter of the cores) and records the load averages before
and after in the JSON: a figure taken under load measures the neighbours, not the code.
"Share of peak" divides the workload's FLOP rate by the larger of a 1024² matmul's and a bmm of the
workload's shape, both measured in the same run.

Choices (measured with `step_micro.py`, best of 100–200 steps, on a busy machine, 1 thread):

- Backward of the MLP fast path: explicit (two `bmm` per layer, ReLU mask, dropout scale) rather
  than autograd through the `baddbmm` forward: 4.21 vs 4.44 ms per step of 100 MLPs 64-128-10
  (5% cheaper; the op count is the same, autograd adds its graph bookkeeping).
- `torch.compile` of the fast step: 2.37 vs 4.21 ms per step (1.8×), but 62 s to compile (on the
  busy machine), a graph break at the active-members check, and results that need not be bitwise
  those of eager mode (the per-seed equality tests are at 1e-5): it pays only for runs of more than
  ~30 000 steps, so it is left out of `Ensemble`; re-measure on an idle machine with
  `step_micro.py --compile` before taking it up (then as an opt-in for long runs).
- `results/contention/`: figures taken under load (other processes busy on every core), for the
  issue's question why the batched path was once slower than the loop.

Where the time went, and what changed (2026-11-30, `mlp_profile.txt`, `python benchmarks/mlp.py --profile`):

- A fresh multi-megabyte tensor every step (activations, weight gradients, the logits of 1000
  inputs for 100 members) cost as much in page faults as the product that filled it (this machine
  is a virtual machine, where a page fault is dear): one step of 100 MLPs spent 1.9 ms in a weight
  gradient `bmm` that takes 0.6 ms into a reused tensor. The fast path now writes its activations
  and gradients into tensors kept between steps, and `Ensemble.logits` works in chunks of about
  4 MB of activations, the first layer as one product for all members.
- `torch.softmax` and `F.cross_entropy` over a last dimension of 10 took 0.4 ms each for 100 × 32
  rows; one max, one exp and one sum give the loss and its gradient in 0.09 ms. ReLU's backward as
  `threshold_backward` in place: 0.04 ms against 0.3 ms for `g * (a > 0)`.
- Together: one step of 100 MLPs 64-128-10 (batch 32, 1 thread, torch.profiler over 20 steps with a
  notebook running beside it) from 6.2 to 2.2 ms of CPU time.
- Small CNNs: the batched (vmap) path runs each convolution as one grouped convolution over the
  members, which ran at 0.5-0.9× the per-seed loop here; `train_seeds` therefore trains
  convolutional seeds one after another on a CPU (and batched on a GPU). The per-seed loop itself
  reaches 15-45% of the measured peak (1 and 2 threads), so no batching could give the issue's 10× on
  this CPU: the compute limit is 2-7× the loop (the "limit" rows).
- MLP end to end (set-up of 100 models, one epoch, predictions on 1000 inputs): the training alone
  runs at about two thirds of the measured matmul peak, but the ratio to the per-seed loop counts
  the ensemble's set-up and predictions too; 20× would need the whole run at about 85% of peak.
- 02's recording batches 10 seeds: its ratio cannot pass about 10× (ten seeds for the price of
  one); at 7.6× the ten seeds cost 1.3 times one seed. LASS: the one-model loop already runs at
  about a quarter of the peak, so batching 20 models can give at most about 4×; it gives 1.2×
  (not profiled further).
- The 1-minute load average includes the previous script when the scripts run one after another
  (about 1 right after a 2-thread script on 2 cores), so such runs are marked "not idle": the mark
  asks for a check, it is not proof of contention.
"""


def table(r: dict) -> str:
    load = r["load"]["loadavg"]
    busy = "" if r["load"]["idle"] else " **(machine not idle: contention, not the code)**"
    peak = r.get("peak") or {}
    lines = [
        f"## {r['name']}: {r['title']}",
        "",
        f"{r['machine']}; load average {load} → {r['load_after']['loadavg']}{busy}; {r['time']}",
        ("measured peak: " + ", ".join(f"{k} {v:.1f}" for k, v in peak.items())) if peak else "",
        "",
        "| path | time | vs per-model loop | share of the machine's matmul peak |",
        "|---|---|---|---|",
    ]
    for row in r["rows"]:
        share = row.get("peak_share")
        lines.append(
            f"| {row['path']} | {row['seconds']:.4g} s | {row['speedup']:.1f}× | "
            + (f"{share:.0%} |" if share is not None else "— |")
        )
    return "\n".join(lines) + "\n"


def growth(r: dict) -> str:
    lines = [
        f"## {r['name']}: time per epoch against S",
        "",
        f"{r['machine']}; load average {r['load']['loadavg']}" + ("" if r["load"]["idle"] else " **(not idle)**"),
        "",
        f"![growth]({'results/' + r['name'] + '.png'})",
        "",
        "| S | path | s / epoch | GFLOP/s |",
        "|---|---|---|---|",
    ]
    lines += [f"| {row['members']} | {row['path']} | {row['seconds']:.4g} | {row['gflops']:.1f} |" for row in r["rows"]]
    return "\n".join(lines) + "\n"


def micro(r: dict) -> str:
    lines = [
        f"## {r['name']}: one SGD step of {r['args']['models']} MLPs (best of {r['args']['repeats']})",
        "",
        f"{r['machine']}; load average {r['load']['loadavg']}" + ("" if r["load"]["idle"] else " **(not idle)**"),
        "",
        "| variant | ms / step | GFLOP/s | share of peak |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {row['path']} | {row['seconds'] * 1e3:.3f} | {row['gflops']:.1f} | {row['peak_share']:.0%} |"
        for row in r["rows"]
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parts = [HEAD]
    for path in sorted(RESULTS.glob("*.json")):
        r = json.loads(path.read_text())
        if r["name"].startswith("growth"):
            parts.append(growth(r))
        elif r["name"] == "step_micro":
            parts.append(micro(r))
        else:
            parts.append(table(r))
    (HERE / "README.md").write_text("\n".join(parts))
    print(f"wrote {HERE / 'README.md'} from {len(parts) - 1} results")


if __name__ == "__main__":
    main()
