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
