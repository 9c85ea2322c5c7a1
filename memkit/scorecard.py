"""The replication scorecard: every claim of every notebook, against every run that exists.

``memkit regenerate`` writes ``results/<profile>/REPORT.md`` for the profile it ran; the
scorecard (``results/SCORECARD.md``) puts the runs side by side: one row per claim (notebook and
claim id without its data-set prefix), one column per run (profile and data set, with the device
and date), so a reader sees at a glance what replicated where. The runs of a grid's seeds
(``<notebook>[.<dataset>].seed<N>.json``, :mod:`memkit.grid`) share one column per profile and
data set, whose cell says in how many of the seeds the claim held. Rows with a claim that did not
hold somewhere come first, each with the notebook's note on why where it gave one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memkit.data import DATASETS
from memkit.grid import SEED, seed_of
from memkit.results import atomic_write, markdown_table

#: Profiles shown in the scorecard, in column order (``test`` runs are smoke tests, not results).
PROFILES = ("quick", "paper")


@dataclass(frozen=True)
class Cell:
    """One claim in one run: its value, whether it held, and whether it was asserted."""

    value: float
    holds: bool
    asserted: bool
    note: str

    def __str__(self) -> str:
        mark = "yes" if self.holds else ("no (reported only)" if not self.asserted else "**no**")
        return f"{mark} ({self.value:.3g})"


@dataclass(frozen=True)
class Seeds:
    """One claim over a grid's seeds: held in k of n, with the mean value."""

    cells: tuple[Cell, ...]

    @property
    def holds(self) -> bool:
        return all(c.holds for c in self.cells)

    @property
    def note(self) -> str:
        return next((c.note for c in self.cells if not c.holds and c.note), "")

    def __str__(self) -> str:
        k, n = sum(c.holds for c in self.cells), len(self.cells)
        mean = sum(c.value for c in self.cells) / n
        mark = f"held in {k}/{n} seeds"
        if k < n:
            mark = f"{mark} (reported only)" if not all(c.asserted for c in self.cells) else f"**{mark}**"
        return f"{mark} (mean {mean:.3g})"


def split_claim_id(claim_id: str) -> tuple[str | None, str]:
    """``"cifar10-subset-real-vs-randX"`` → ``("cifar10-subset", "real-vs-randX")``: the longest
    data-set name of :data:`memkit.data.DATASETS` that prefixes the id, or ``None`` and the id."""
    for name in sorted(DATASETS, key=len, reverse=True):
        if claim_id.startswith(f"{name}-"):
            return name, claim_id[len(name) + 1 :]
    return None, claim_id


def _column(doc: dict[str, Any], dataset: str | None, seeds: bool = False) -> str:
    env = doc.get("environment", {})
    where = env.get("device_name") or env.get("device", "")
    if seeds:  # one column for all the seeds of a grid, whatever day each ran
        return f"{doc.get('profile', '?')} · {dataset or 'all data'} · seeds ({where})"
    date = f", {doc['date']}" if doc.get("date") else ""
    return f"{doc.get('profile', '?')} · {dataset or 'all data'} ({where}{date})"


def collect(root: Path) -> tuple[list[str], dict[tuple[str, str], dict[str, Cell | Seeds]]]:
    """Read every result JSON under ``root/results/<profile>/`` (profiles of :data:`PROFILES`).

    Returns the column names (runs) in order and, per row ``(notebook, claim)``, the cells by column.
    A row's claim is its id without the data set and its metric: a claim whose definition changed
    between runs (another metric under the same id) gets a row of its own.
    """
    columns: list[str] = []
    rows: dict[tuple[str, str], dict[str, Cell | Seeds]] = {}
    for profile in PROFILES:
        found = (root / "results" / profile).glob("*.json")
        for path in sorted(found, key=lambda p: (SEED.sub("", p.stem), seed_of(p.stem) or 0)):
            doc = json.loads(path.read_text())
            notebook = doc.get("notebook", path.stem.split(".")[0])
            for c in doc.get("claims", []):
                dataset, name = split_claim_id(c["id"])
                claim = f"`{name}` ({c['metric']})"
                cell = Cell(float(c["value"]), bool(c["holds"]), bool(c.get("asserted", True)), c.get("note", ""))
                col = _column(doc, dataset, seeds=seed_of(path.stem) is not None)
                if col not in columns:
                    columns.append(col)
                row = rows.setdefault((notebook, claim), {})
                if seed_of(path.stem) is None:
                    row[col] = cell
                else:
                    before = row.get(col)
                    row[col] = Seeds((*(before.cells if isinstance(before, Seeds) else ()), cell))
    return columns, rows


def scorecard(root: Path) -> str:
    """The scorecard as Markdown (see the module's docstring)."""
    columns, rows = collect(root)
    failed = [k for k, cells in rows.items() if any(not c.holds for c in cells.values())]
    order = failed + [k for k in rows if k not in failed]
    body = [[nb, claim, *(str(rows[nb, claim].get(col, "")) for col in columns)] for nb, claim in order]
    lines = [
        "# Replication scorecard",
        "",
        "Generated by `memkit regenerate` from every result in `results/quick/` and `results/paper/`: "
        "one row per claim (its id and its metric: a claim defined differently in an older run has a row "
        "of its own), one column per run (profile · data set, device, date). "
        "A cell is whether the claim held in that run, with its value. "
        f"{len(failed)} of {len(rows)} claims did not hold in at least one run; they are listed first.",
        "",
        markdown_table(["notebook", "claim", *columns], body),
    ]
    notes = [
        (nb, claim, col, cell.note)
        for nb, claim in failed
        for col, cell in rows[nb, claim].items()
        if not cell.holds and cell.note
    ]
    if notes:
        lines += ["", "## Why some claims did not hold", ""]
        lines += [f"- {nb} {claim} in {col}: {note}" for nb, claim, col, note in notes]
    return "\n".join(lines) + "\n"


def write_scorecard(root: Path) -> Path:
    """Write ``root/results/SCORECARD.md`` atomically and return its path."""
    path = root / "results" / "SCORECARD.md"
    return atomic_write(path, lambda tmp: Path(tmp).write_text(scorecard(root)))
