"""``memkit regenerate``: run the notebooks with papermill and write the replication report.

Before any kernel starts, every ``-p NAME VALUE`` is checked against the notebooks' ``parameters``
cells (the name must be one of them, the value must parse and have the default's type) and
``overrides`` against the settings table of the chosen profile, read from the notebook's source.

Each notebook then runs in ``notebooks/`` with the profile (and the parameters) injected by
papermill and ``MEMKIT_OUTPUT`` pointing at a staging folder, ``build/staging/<profile>/<notebook>/``:
its figures and result JSON are written there, and moved into ``figures/<profile>/`` and
``results/<profile>/`` (one atomic rename per file) only when the notebook finished. A failing or
interrupted notebook therefore never deletes or damages the last good result. Its executed copy
goes to the git-ignored ``build/executed/<profile>/``. A failing notebook is reported with the
failing cell, and the others still run. At the end ``results/<profile>/REPORT.md`` lists every
claim: its value, threshold, whether it held and the paper figure it replicates; a notebook that
failed in this run shows the claim values it got to, from its staged result. The exit status is 0
only if every notebook ran; Ctrl-C stops with one line and status 130.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from memkit.parameters import ParameterError, check_parameters, parse_parameters
from memkit.profiles import PROFILES
from memkit.results import (
    atomic_write,
    held,
    markdown_table,
    project_root,
    remove_stale_temps,
)
from memkit.scorecard import PROFILES as SCORED
from memkit.scorecard import write_scorecard

#: Kernel options: IPC sockets instead of TCP on localhost, so ipykernel has no reason to warn
#: that it "is running over TCP without encryption" (nor anyone on the machine to listen in).
#: (IPC needs POSIX; elsewhere the kernel's log level below keeps the warning quiet.)
KERNEL_CONFIG = {"KernelManager": {"transport": "ipc"}} if os.name == "posix" else {}
#: The kernel's own log (not the notebook's output) only for critical errors: a kernel stopped by
#: Ctrl-C otherwise prints a traceback about its closed sockets.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]


@dataclass
class Failure:
    """Why a notebook did not finish: the error, and the failing cell (its number in the notebook,
    counting every cell from 1 at the top, and the first line of its code) when papermill names it."""

    error: str
    cell: int | None = None
    source: str = ""

    def where(self) -> str:
        if self.cell is None:
            return ""
        return f"cell {self.cell}" + (f" (`{self.source}`)" if self.source else "")


def notebooks(root: Path, only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks ``notebooks/NN_*.ipynb``, sorted; ``only`` keeps those whose number
    or name is listed (``["01", "03"]``). An ``only`` entry that matches nothing is an error."""
    found = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not only:
        return found
    keep = [nb for nb in found if nb.stem[:2] in only or nb.stem in only]
    missing = [o for o in only if not any(nb.stem[:2] == o or nb.stem == o for nb in found)]
    if missing:
        names = ", ".join(nb.stem for nb in found)
        raise SystemExit(f"memkit regenerate: no notebook {', '.join(missing)}; there are: {names}")
    return keep


# --- running ------------------------------------------------------------------------------------

@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    """Set environment variables (seen by the kernels started meanwhile), then restore them."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _interrupt(signum: int | None = None, frame: Any = None) -> None:
    """Ctrl-C while a notebook runs: quiet papermill's and asyncio's loggers (the kernel is shut
    down mid-cell, and they would print its death and an unretrieved task's traceback), then stop."""
    for name in ("papermill", "nbclient", "asyncio", "traitlets"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigint(handler: Any) -> Iterator[None]:
    """Handle Ctrl-C with ``handler`` in the block (only in the main thread; elsewhere as before)."""
    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C back until the block is done (the files of one notebook move as a whole)."""
    caught: list[int] = []
    with _sigint(lambda signum, frame: caught.append(signum)):
        yield
    if caught:
        _interrupt()


def run_notebook(nb: Path, profile: str, params: dict, stage: Path) -> Failure | None:
    """Execute one notebook with papermill, its output (``MEMKIT_OUTPUT``) in ``stage / "output"``
    and its executed copy at ``stage / nb.name``; return ``None`` on success, else the failure."""
    import papermill as pm
    from traitlets.config import Config

    (stage / "output").mkdir(parents=True, exist_ok=True)
    try:
        with _environ(MEMKIT_OUTPUT=str(stage / "output"), MEMKIT_PROFILE=profile):
            pm.execute_notebook(str(nb), str(stage / nb.name), parameters={"profile": profile, **params},
                                cwd=str(nb.parent), kernel_name="python3", config=Config(KERNEL_CONFIG), extra_arguments=KERNEL_ARGUMENTS,
                                progress_bar={"desc": f"  {nb.stem}", "leave": False})
    except pm.PapermillExecutionError as err:
        import nbformat

        # the cell's number in the notebook as written, from 1 (the executed copy has one more,
        # the parameters papermill injected)
        cells = [c.source for c in nbformat.read(nb, as_version=4).cells]
        number = cells.index(err.source) + 1 if err.source in cells else None
        source = next((line for line in (err.source or "").splitlines() if line.strip()
                       and not line.lstrip().startswith("#")), "")
        return Failure(f"{err.ename}: {err.evalue}".strip(), number,
                       source if len(source) <= 80 else source[:77] + "...")
    except Exception as err:  # the kernel died or did not start, the notebook cannot be read, ...
        return Failure(f"{type(err).__name__}: {err}".strip())
    return None


def commit(stage: Path, root: Path) -> list[Path]:
    """Move every file under ``stage`` to the same place under ``root`` (``results/<profile>/...``,
    ``figures/<profile>/...``), each by one atomic rename; return the new paths."""
    moved = []
    for f in sorted(p for p in stage.rglob("*") if p.is_file()):
        dest = root / f.relative_to(stage)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(f, dest)
        moved.append(dest)
    return moved


def clean_stale(root: Path) -> list[Path]:
    """Remove what killed runs left behind: staging folders, and ``atomic_write``'s temporary files
    in ``results/*/`` and ``figures/*/``. Returns what was removed."""
    removed = []
    staging = root / "build" / "staging"
    if staging.exists():
        removed.append(staging)
        shutil.rmtree(staging, ignore_errors=True)
    for top in ("results", "figures"):
        for folder in [root / top, *sorted((root / top).glob("*/"))] if (root / top).is_dir() else []:
            removed += remove_stale_temps(folder)
    return removed


def _staged_result(root: Path, profile: str, stem: str) -> Path:
    return root / "build" / "staging" / profile / stem / "output" / "results" / profile / f"{stem}.json"


def _claim_rows(stem: str, doc: dict[str, Any], failed: str = "") -> list[list[str]]:
    """One report row per claim of a result document (``failed``: why its notebook's row is marked)."""
    env, t = doc.get("environment", {}), doc.get("timings", {}).get("total_s", "")
    where = f"{env.get('device', '')} {env.get('device_name', '')}".strip()
    name = f"{stem} (**failed**; {failed})" if failed else stem
    return [[name, f"{c['statement']} (`{c['id']}`)", f"{c['metric']} = {c['value']:.4g}",
             f"{c.get('op', '')} {c['threshold']:.4g}", held(c), c.get("figure", ""), where, str(t)]
            for c in doc.get("claims", [])]


def report(root: Path, profile: str, errors: Mapping[str, Failure | str]) -> str:
    """The replication report as Markdown: one row per claim of every notebook's result JSON in
    ``results/<profile>/`` (this run's and earlier ones'); for a notebook that failed in this run,
    the claim values of its staged result where it wrote one, and below, the failing cell. A claim
    with ``asserted=False`` shows "reported only" next to whether it held."""
    failures = {k: v if isinstance(v, Failure) else Failure(v) for k, v in errors.items()}
    rows: list[list[str]] = []
    for nb in notebooks(root):
        path = root / "results" / profile / f"{nb.stem}.json"
        if nb.stem in failures:
            staged, failed = _staged_result(root, profile, nb.stem), []
            if staged.exists():
                failed = _claim_rows(nb.stem, json.loads(staged.read_text()), "values of the failed run")
            elif path.exists():
                failed = _claim_rows(nb.stem, json.loads(path.read_text()), "values of the last good run")
            rows += failed or [[nb.stem, "**notebook failed** (see below)", "", "", "no", "", "", ""]]
            continue
        if not path.exists():
            rows.append([nb.stem, "not run in this profile yet", "", "", "", "", "", ""])
            continue
        rows += _claim_rows(nb.stem, json.loads(path.read_text()))
    lines = [f"# Replication report: `{profile}` profile", "",
             "Generated by `memkit regenerate`; one row per claim, computed in that notebook's run.", "",
             markdown_table(["notebook", "claim", "value", "threshold", "holds", "replicates", "device", "time (s)"],
                            rows)]
    if failures:
        lines += ["", "## Notebooks that failed", "",
                  "Their last good results and figures, if any, are unchanged; the values above are from the "
                  "failed run where it wrote a result before failing.", ""]
        for name, f in failures.items():
            where = f" in {f.where()}" if f.where() else ""
            lines.append(f"- `{name}` failed{where}: {f.error.splitlines()[0] if f.error else ''}")
    return "\n".join(lines) + "\n"


def regenerate(profile: str, only: list[str] | None = None, params: dict | None = None,
               root: Path | None = None) -> int:
    """Run the notebooks in ``profile`` and write the report; return the exit status (0: every
    notebook ran; 1: some failed; 130: interrupted). Raises :class:`ParameterError` before running
    anything if a parameter does not fit."""
    root = root or project_root()
    todo = notebooks(root, only)
    params = check_parameters(dict(params or {}), todo, profile)
    clean_stale(root)
    executed = root / "build" / "executed" / profile
    errors: dict[str, Failure] = {}
    current = None
    try:
        for i, nb in enumerate(todo, 1):
            current = nb
            stage = root / "build" / "staging" / profile / nb.stem
            print(f"[{i}/{len(todo)}] {nb.stem} ({profile} profile)", flush=True)
            t0 = time.perf_counter()
            with _sigint(_interrupt):
                failure = run_notebook(nb, profile, params, stage)
            with _deferred_interrupt():
                if (stage / nb.name).exists():
                    executed.mkdir(parents=True, exist_ok=True)
                    os.replace(stage / nb.name, executed / nb.name)
                if failure is None:
                    commit(stage / "output", root)
                    shutil.rmtree(stage, ignore_errors=True)
                else:
                    errors[nb.stem] = failure
            dt = time.perf_counter() - t0
            if failure is None:
                print(f"  {nb.stem}: ok in {dt:.0f} s", flush=True)
            else:
                print(f"  {nb.stem}: FAILED in {dt:.0f} s{' in ' + failure.where() if failure.where() else ''}\n"
                      f"  {failure.error.splitlines()[0] if failure.error else ''}\n"
                      f"  executed copy: {executed / nb.name}; last good result kept", flush=True)
            current = None
    except KeyboardInterrupt:
        if current is not None:
            shutil.rmtree(root / "build" / "staging" / profile / current.stem, ignore_errors=True)
            errors[current.stem] = Failure("interrupted (Ctrl-C)")
        _write_report(root, profile, errors)
        print(f"memkit regenerate: interrupted{' during ' + current.stem if current else ''}; "
              "results and figures keep their last good versions", file=sys.stderr)
        return 130
    for folder in (root / "build" / "staging" / profile, root / "build" / "staging"):
        with contextlib.suppress(OSError):  # not empty: a failed notebook's staged output, kept to inspect
            folder.rmdir()
    path = _write_report(root, profile, errors)
    print(f"report: {path}" + (f"; scorecard: {root / 'results' / 'SCORECARD.md'}" if profile in SCORED else ""))
    return 1 if errors else 0


def _write_report(root: Path, profile: str, errors: dict[str, Failure]) -> Path:
    """``results/<profile>/REPORT.md``, and the scorecard over every profile's results (not for ``test``)."""
    path = root / "results" / profile / "REPORT.md"
    atomic_write(path, lambda tmp: Path(tmp).write_text(report(root, profile, errors)))
    if profile in SCORED:
        write_scorecard(root)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="memkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    reg = sub.add_parser("regenerate", help="run the notebooks and write figures, results and the report")
    reg.add_argument("--profile", choices=PROFILES, default="quick")
    reg.add_argument("--only", nargs="+", metavar="NN", help="notebook numbers or names, e.g. 01 03")
    reg.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="a notebook parameter, e.g. -p dataset mnist -p device cuda -p overrides "
                          "'{\"n_models\": 20}' (JSON where the default is not a string)")
    args = parser.parse_args(argv)
    try:
        root = project_root()
        params = parse_parameters([tuple(p) for p in args.parameter], notebooks(root, args.only), args.profile)
        return regenerate(args.profile, args.only, params, root)
    except ParameterError as err:
        print(f"memkit regenerate: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("memkit regenerate: interrupted; results and figures keep their last good versions", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
