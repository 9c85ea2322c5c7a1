"""Shared by the benchmark scripts: the machine's load and threads, best-of timings, the machine's
measured matmul peak, and the table + JSON every script prints and writes (``benchmarks/results/``).

Thread count: :func:`pick_threads` sets torch's threads from the number of idle cores, here only
(memkit itself never changes the global thread count: results depend on it, see README
"Reproducibility").
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from memkit import data, pick_device

RESULTS = Path(__file__).resolve().parent / "results"


def load() -> dict[str, Any]:
    """The 1/5/15-minute load averages, the core count, and whether the machine looks idle."""
    cores = os.cpu_count() or 1
    one, five, fifteen = os.getloadavg()
    return dict(
        loadavg=[round(one, 2), round(five, 2), round(fifteen, 2)], cores=cores, idle=one < 0.25 * cores
    )  # under a quarter of the cores busy


def pick_threads(requested: int | None = None) -> int:
    """Set torch's intra-op threads: ``requested``, or the idle cores (cores − 1-minute load, at least 1)."""
    info = load()
    n = requested or max(1, min(info["cores"], round(info["cores"] - info["loadavg"][0])))
    torch.set_num_threads(n)
    return n


def warn_if_busy() -> dict[str, Any]:
    info = load()
    if not info["idle"]:
        print(
            f"WARNING: the machine is not idle (load average {info['loadavg']} on {info['cores']} cores): "
            "timings measure contention, not the code"
        )
    return info


def arguments(doc: str, *, repeats: int, name: str | None = None, device: bool = True) -> argparse.ArgumentParser:
    """The options every benchmark takes: ``--repeats``, ``--threads`` (default: the idle cores),
    ``--device`` (when the script has one) and ``--name`` of its result file (when it writes one)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--threads", type=int, default=None, help="default: the idle cores")
    if device:
        parser.add_argument("--device", default="cpu")
    if name:
        parser.add_argument("--name", default=name)
    return parser


def start(args: argparse.Namespace) -> dict[str, Any]:
    """Set the threads (:func:`pick_threads`) and warn when the machine is busy; returns the load."""
    pick_threads(args.threads)
    return warn_if_busy()


def workload(
    args: argparse.Namespace, name: str
) -> tuple[dict[str, Any], torch.device, data.Dataset, torch.Tensor, torch.Tensor]:
    """:func:`start`, then the device (``--device``) and the first ``--examples`` training examples of
    data set ``name`` on it: ``(load, device, dataset, x, y)``."""
    info = start(args)
    device = pick_device(args.device)
    ds = data.load(name, n_train=args.examples)
    return info, device, ds, ds.x_train.to(device), ds.y_train.to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: torch.device, repeats: int) -> tuple[float, list[float], Any]:
    """Best wall time of ``repeats`` calls of ``fn`` after one warm-up, all the times, the last result."""
    out = fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return min(times), times, out


def gflops(fn: Callable[[], Any], flop: float, device: torch.device, repeats: int = 5) -> float:
    best, _, _ = timed(fn, device, repeats)
    return flop / best / 1e9


def peak(
    device: torch.device, bmm_shape: tuple[int, int, int, int] | None = None, size: int = 1024
) -> dict[str, float]:
    """The machine's measured fp32 matmul rate (GFLOP/s) in this run: a ``size``² matmul, and, with
    ``bmm_shape`` = (S, B, n_in, n_out), a bmm of the workload's shape."""
    a, b = (torch.randn(size, size, device=device) for _ in range(2))
    out = {"matmul_gflops": gflops(lambda: a @ b, 2 * size**3, device)}
    if bmm_shape is not None:
        s, n, k, m = bmm_shape
        x, w = torch.randn(s, n, k, device=device), torch.randn(s, k, m, device=device)
        out["bmm_gflops"] = gflops(lambda: torch.bmm(x, w), 2 * s * n * k * m, device, repeats=20)
    out["peak_gflops"] = max(out.values())
    return out


def bandwidth(device: torch.device, n_floats: int) -> float:
    """The measured rate (GB/s, bytes read plus written) of copying ``n_floats`` float32 numbers:
    what a memory-bound pass over tensors of that size (e.g. the SGD update of every parameter) gets."""
    a, b = torch.randn(n_floats, device=device), torch.empty(n_floats, device=device)
    best, _, _ = timed(lambda: b.copy_(a), device, 20)
    return 8 * n_floats / best / 1e9


def update_bytes(n_params: int, momentum: bool) -> int:
    """The least memory traffic of one SGD update of ``n_params`` float32 parameters: read θ, g (and
    v), write θ (and v); five passes with momentum, three without."""
    return 4 * n_params * (5 if momentum else 3)


def machine(device: torch.device) -> str:
    name = platform.processor() or platform.machine()
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    return f"{name}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def mlp_step_flop(sizes: list[int], batch: int) -> float:
    """FLOP of one SGD step of one MLP with layer sizes ``sizes`` on ``batch`` examples: forward
    2·B·Σ in·out, backward twice that (the first layer's input gradient not needed: ignored)."""
    return 6 * batch * sum(a * b for a, b in itertools.pairwise(sizes))


def report(
    name: str,
    title: str,
    rows: list[dict[str, Any]],
    *,
    device: torch.device,
    info: dict[str, Any],
    peak_info: dict[str, float] | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Print the table (time, ratio vs the per-model loop, share of the measured peak) and write
    ``results/<name>.json``. ``rows``: dicts with ``path``, ``seconds`` and optionally ``gflop``;
    the first row is the per-model reference."""
    ref = rows[0]["seconds"]
    print(f"\n{title}\n{machine(device)}; load average {info['loadavg']}" + ("" if info["idle"] else "  (NOT IDLE)"))
    if peak_info:
        print("measured peak: " + ", ".join(f"{k} {v:.1f}" for k, v in peak_info.items()))
    print("\n| path | time | vs per-model loop | share of the machine's matmul peak |\n|---|---|---|---|")
    for r in rows:
        r["speedup"] = ref / r["seconds"]
        share = (r["gflop"] / r["seconds"] / peak_info["peak_gflops"]) if peak_info and r.get("gflop") else None
        r["peak_share"] = share
        print(
            f"| {r['path']} | {r['seconds']:.4g} s | {r['speedup']:.1f}× | "
            + (f"{share:.0%} |" if share is not None else "— |")
        )
    result = dict(
        name=name,
        title=title,
        machine=machine(device),
        device=str(device),
        threads=torch.get_num_threads(),
        load=info,
        load_after=load(),
        peak=peak_info,
        rows=rows,
        time=time.strftime("%Y-%m-%dT%H:%M:%S"),
        **(extra or {}),
    )
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")
    return result
