"""Claims, result JSON and atomic writes.

A notebook states each claim of its finding as a :class:`Claim` computed from its run, writes
them with :func:`write_result` to ``results/<profile>/<notebook>.json`` and, in the ``test`` and
``quick`` profiles, asserts them with :func:`check`. The JSON schema::

    {"notebook": "01_easy_examples", "profile": "quick", "parameters": {...},
     "timings": {"total_s": 12.3, ...}, "environment": {"device": "cpu", "torch": "2.14.1", ...},
     "claims": [{"id", "statement", "metric", "value", "threshold", "op", "figure", "asserted", "holds"}, ...]}

A claim with ``asserted=False`` is computed, written and shown like any other ("reported only"),
but never fails a notebook: for a finding that the small profiles are known not to reproduce.
"""

from __future__ import annotations

import datetime
import json
import math
import operator
import os
import platform
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from memkit.data import DATASETS

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def split_claim_id(claim_id: str) -> tuple[str | None, str]:
    """``"cifar10-subset-real-vs-randX"`` → ``("cifar10-subset", "real-vs-randX")``: the longest
    data-set name of :data:`memkit.data.DATASETS` that prefixes the id, or ``None`` and the id."""
    for name in sorted(DATASETS, key=len, reverse=True):
        if claim_id.startswith(f"{name}-"):
            return name, claim_id[len(name) + 1 :]
    return None, claim_id


@dataclass(frozen=True)
class Claim:
    """One quantified claim and whether it held in this run.

    ``holds`` is computed, never given: ``value <op> threshold`` (``op`` one of ``>``, ``>=``,
    ``<``, ``<=``); a NaN value never holds. ``figure`` names the paper figure it replicates.
    ``asserted=False``: reported only; :func:`check` never fails on it.
    """

    id: str
    statement: str
    metric: str
    value: float
    threshold: float
    op: str = ">"
    figure: str = ""
    asserted: bool = True

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(
                f"claim {self.id!r}: unknown op {self.op!r}; use one of {', '.join(_OPS)} "
                f"(value <op> threshold must be true for the claim to hold)"
            )
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "threshold", float(self.threshold))

    @property
    def holds(self) -> bool:
        return not math.isnan(self.value) and _OPS[self.op](self.value, self.threshold)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"holds": self.holds}

    def __str__(self) -> str:
        mark = ("holds" if self.holds else "DOES NOT HOLD") + ("" if self.asserted else ", reported only")
        return (
            f"[{mark}] {self.id}: {self.metric} = {self.value:.4g} (needs {self.op} {self.threshold:.4g})"
            f" — {self.statement}"
        )


def _cell(value: Any) -> str:
    """One table cell: floats to 4 significant digits, ``|`` escaped, line breaks as spaces."""
    text = f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table: ``header`` (C names) and rows of C cells each. Strings are kept as they
    are; floats are written to 4 significant digits (format a cell yourself for another precision)."""
    rows = [list(r) for r in rows]
    for i, r in enumerate(rows):
        if len(r) != len(header):
            raise ValueError(
                f"row {i} has {len(r)} cells but the header has {len(header)} ({', '.join(header)}); "
                f"give every row one cell per column"
            )
    lines = [list(header), ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(_cell(v) for v in line) + " |" for line in lines)


def held(claim: Claim | dict[str, Any]) -> str:
    """The "held" cell of a claim (a :class:`Claim` or its JSON dict): ``yes``, ``**no**``, or for a
    claim with ``asserted=False`` ``yes (reported only)`` / ``no (reported only)``."""
    c = claim.as_dict() if isinstance(claim, Claim) else claim
    if not c.get("asserted", True):
        return f"{'yes' if c['holds'] else 'no'} (reported only)"
    return "yes" if c["holds"] else "**no**"


def table(claims: Iterable[Claim]) -> str:
    """The claims as a Markdown table (statement, metric, value, threshold, held or not), for a
    notebook to display so that a reader sees at once what held in this run and what did not."""
    return markdown_table(
        ["claim", "metric", "value", "threshold", "held", "replicates"],
        [[c.statement, c.metric, c.value, f"{c.op} {c.threshold:.4g}", held(c), c.figure] for c in claims],
    )


def check(claims: Iterable[Claim], profile: str) -> None:
    """Print every claim; in the ``test`` and ``quick`` profiles raise ``AssertionError`` if an
    asserted claim does not hold (the ``paper`` profile only reports, since a claim that fails is a
    result too; a claim with ``asserted=False`` is only reported in every profile)."""
    claims = list(claims)
    for c in claims:
        print(c)
    failed = [c.id for c in claims if c.asserted and not c.holds]
    if failed and profile in ("test", "quick"):
        raise AssertionError(f"claims that did not hold in the {profile} profile: {', '.join(failed)}")


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Write a file so that it is either whole or absent: ``write(tmp)`` writes a temporary file
    in the same folder, which is then renamed onto ``path`` (a crash or Ctrl-C leaves no
    half-written file). Creates the folder. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files: give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


#: The name of a temporary file of :func:`atomic_write`: ``.<stem>.<8 random characters><suffix>``.
_TEMP = re.compile(r"^\.[^/]+\.[a-z0-9_]{8}(\.[^./]+)?$")


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that :func:`atomic_write` left in ``folder`` when its process
    was killed mid-write (hidden ``.<stem>.XXXXXXXX<suffix>`` files); return what was deleted.
    Call it only when no other process is writing there."""
    folder = Path(folder)
    stale = [f for f in folder.iterdir() if f.is_file() and _TEMP.match(f.name)] if folder.is_dir() else []
    for f in stale:
        f.unlink(missing_ok=True)
    return stale


def save_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write named arrays as one compressed ``.npz`` file, atomically (:func:`atomic_write`); read it
    back with ``numpy.load(path)``, no pickle needed for numbers, bools and strings."""
    return atomic_write(path, lambda tmp: np.savez_compressed(tmp, **cast(dict[str, Any], arrays)))


def project_root(start: str | os.PathLike | None = None) -> Path:
    """Where ``figures/`` and ``results/`` go: ``$MEMKIT_OUTPUT`` if set, else the memkit checkout
    that contains ``start`` (default: the working directory), else the working directory."""
    if os.environ.get("MEMKIT_OUTPUT"):
        return Path(os.environ["MEMKIT_OUTPUT"])
    here = Path(start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "pyproject.toml").exists() and (d / "memkit").is_dir():
            return d
    return here


def result_path(profile: str, notebook: str, suffix: str = ".json") -> Path:
    """``results/<profile>/<notebook><suffix>`` under :func:`project_root`: the result JSON, its
    per-example arrays (``.npz``) and its saved models (suffix ``""``: the folder)."""
    return project_root() / "results" / profile / f"{notebook}{suffix}"


def environment(device: torch.device | str) -> dict[str, str]:
    """Where a run happened: device (with GPU name), torch version, Python, platform."""
    dev = torch.device(device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    return {
        "device": str(dev),
        "device_name": name,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_threads": str(torch.get_num_threads()),
    }


def write_result(
    notebook: str,
    profile: str,
    parameters: dict[str, Any],
    claims: Iterable[Claim],
    timings: dict[str, float],
    device: torch.device | str,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``results/<profile>/<notebook>.json`` atomically and return its path."""
    doc = {
        "notebook": notebook,
        "profile": profile,
        "date": datetime.date.today().isoformat(),
        "parameters": parameters,
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "environment": environment(device),
        "claims": [c.as_dict() for c in claims],
        **(extra or {}),
    }
    path = result_path(profile, notebook)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=2, default=float) + "\n"))
