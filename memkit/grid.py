"""The runs of ``memkit regenerate``: one per notebook × data set × seed, each with its own files.

``-p seed '[0, 1, 2]'`` and ``-p dataset '["mnist", "cifar10"]'`` (JSON lists) make a grid: each
value is its own run of each notebook. A run's name is the notebook's, then the data set where one
was named (``-p dataset mnist`` or a list), then ``seed<N>`` where the seeds were given as a list:

    01_easy_examples                  no -p dataset, no seed list   results/<profile>/01_easy_examples.json
    01_easy_examples.mnist            -p dataset mnist              results/<profile>/01_easy_examples.mnist.json
    01_easy_examples.seed1            -p seed '[0, 1]'              results/<profile>/01_easy_examples.seed1.json
    01_easy_examples.mnist.seed1      both                          results/<profile>/01_easy_examples.mnist.seed1.json

The notebook itself still writes ``<notebook>.json`` (and ``.npz``, ``<notebook>/`` for saved
models, ``<figure>.png``) into its staging folder; on commit every file or folder right under
``results/<profile>/`` and ``figures/<profile>/`` gets the run's tag after its stem
(``01_gallery_mnist.png`` → ``01_gallery_mnist.seed1.png``), so no two runs write the same file.
The report and the scorecard show a claim over a run's seeds as "k/n seeds" held.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEED = re.compile(r"\.seed(-?\d+)$")


@dataclass(frozen=True)
class Job:
    """One run: a notebook and the parameters it gets; ``tag`` names the run's files (may be empty)."""

    nb: Path
    params: dict[str, Any] = field(hash=False, compare=False)
    tag: str = ""

    @property
    def name(self) -> str:
        return f"{self.nb.stem}.{self.tag}" if self.tag else self.nb.stem

    def describe(self, every: bool = False) -> str:
        """The notebook and, in a grid (or with ``every``: always), the parameters it was given,
        e.g. ``01_ok (dataset=mnist, seed=1)``."""
        shown = {k: v for k, v in self.params.items() if every or (self.tag and k in ("dataset", "seed"))}
        return self.nb.stem + (f" ({', '.join(f'{k}={v}' for k, v in shown.items())})" if shown else "")


def expand(nbs: list[Path], params: dict[str, Any]) -> list[Job]:
    """The runs of notebooks ``nbs``: a list value of ``seed`` or ``dataset`` is one run per value."""
    seeds = params["seed"] if isinstance(params.get("seed"), list) else [params.get("seed")]
    datasets = params["dataset"] if isinstance(params.get("dataset"), list) else [params.get("dataset")]
    jobs = []
    for nb in nbs:
        for dataset in datasets:
            for seed in seeds:
                p = {k: v for k, v in params.items() if k not in ("seed", "dataset")}
                p |= {"dataset": dataset} if dataset is not None else {}
                p |= {"seed": seed} if seed is not None else {}
                tag = [dataset] if dataset is not None else []
                tag += [f"seed{seed}"] if isinstance(params.get("seed"), list) else []
                jobs.append(Job(nb, p, ".".join(tag)))
    return jobs


def tagged(relative: Path, tag: str) -> Path:
    """Where a staged file goes: ``results/<profile>/<name>...`` with ``.<tag>`` after the stem of
    ``<name>`` (the file, or the folder of saved models, right under the profile's folder)."""
    parts = relative.parts
    if not tag or len(parts) < 3 or parts[0] not in ("results", "figures"):
        return relative
    stem, dot, rest = parts[2].partition(".")
    return Path(parts[0], parts[1], f"{stem}.{tag}{dot}{rest}", *parts[3:])


def done(job: Job, root: Path, profile: str) -> bool:
    """Whether ``--resume`` may skip ``job``: its result file exists, is newer than the notebook and
    records the run's seed, data set and overrides (those it records)."""
    from memkit.parameters import notebook_parameters

    path = root / "results" / profile / f"{job.name}.json"
    if not path.exists() or path.stat().st_mtime < job.nb.stat().st_mtime:
        return False
    try:
        recorded = json.loads(path.read_text()).get("parameters", {})
    except (OSError, ValueError):
        return False
    defaults = notebook_parameters(job.nb)
    return all(
        recorded[k] == job.params.get(k, defaults.get(k))
        for k in ("seed", "dataset", "overrides")
        if k in recorded and (k in job.params or k in defaults)
    )


# --- results over seeds ---------------------------------------------------------------------------


def groups(folder: Path, stem: str, skip: set[str]) -> dict[str, list[Path]]:
    """The result files of notebook ``stem`` in ``folder`` (run names in ``skip`` left out), by run
    without its seed: ``{"01_ok": [01_ok.json], "01_ok.mnist": [01_ok.mnist.seed0.json, ...]}``."""
    found: dict[str, list[Path]] = {}
    paths = [p for p in folder.glob(f"{stem}*.json") if p.stem == stem or p.stem.startswith(f"{stem}.")]
    for path in sorted(paths, key=lambda p: (SEED.sub("", p.stem), seed_of(p.stem) or 0)):
        if path.stem not in skip:
            found.setdefault(
                SEED.sub("", path.stem) + (" · seeds" if seed_of(path.stem) is not None else ""), []
            ).append(path)
    return found


def seed_of(name: str) -> int | None:
    m = SEED.search(name)
    return int(m.group(1)) if m else None


def over_seeds(name: str, docs: list[dict[str, Any]]) -> list[list[str]]:
    """One report row per claim over the seeds' result documents: its values and how many held."""
    claims: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        for c in doc.get("claims", []):
            claims.setdefault(c["id"], []).append(c)
    seeds = ", ".join(str(d.get("parameters", {}).get("seed", "?")) for d in docs)
    rows = []
    for cid, cs in claims.items():
        c, n = cs[0], len(docs)
        values = ", ".join(f"{x['value']:.4g}" for x in cs)
        k = sum(bool(x["holds"]) for x in cs)
        mark = f"{k}/{n} seeds" + ("" if c.get("asserted", True) else " (reported only)")
        envs = [d.get("environment", {}) for d in docs]
        where = {f"{e.get('device', '')} {e.get('device_name', '')}".strip() for e in envs}
        t = sum(float(d.get("timings", {}).get("total_s", 0) or 0) for d in docs)
        rows.append(
            [
                f"{name} (seeds {seeds})",
                f"{c['statement']} (`{cid}`)",
                f"{c['metric']} = {values}",
                f"{c.get('op', '')} {c['threshold']:.4g}",
                mark,
                c.get("figure", ""),
                ", ".join(sorted(where)),
                f"{t:.4g}",
            ]
        )
    return rows
