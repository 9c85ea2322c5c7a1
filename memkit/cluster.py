"""``memkit regenerate --cluster ray``: the same runs as a local ``memkit regenerate``, as Ray tasks.

Each run (notebook × data set × seed, :mod:`memkit.grid`) is one Ray task that asks for
``--cpus-per-run`` CPUs (default 1) and ``--gpus-per-run`` GPUs (default: 1 in the ``paper``
profile when the cluster has GPUs, else none). On the worker the task writes the notebook into a
temporary folder and executes it with :func:`memkit.runner.run_notebook` (papermill, the output in a
worker-side staging folder through ``MEMKIT_OUTPUT``), and returns the failure (or ``None``) and
every file it staged (the executed notebook, result JSON, ``.npz``, figures, saved models) as bytes
through Ray's object store. The driver writes them into its own staging folder and moves them into
``results/``, ``figures/`` and ``build/executed/`` with :func:`memkit.runner.finish`, exactly as
after a local run; the report and the scorecard are then written by :func:`memkit.runner.regenerate`.

A failed task (a failing cell, or a worker that died or was killed: tasks are not retried) is
reported with its notebook, parameters and failing cell, and the other tasks go on. Ctrl-C cancels
every task that has not finished; files move only by atomic renames, with Ctrl-C held back meanwhile.

The workers must import the same memkit: on this machine (``ray start --head``) they do through
``PYTHONPATH``; on other machines install it there (e.g. the cluster launcher's ``setup_commands``),
with the data under ``$MEMKIT_DATA``, which the tasks get from the driver's environment.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import memkit
from memkit.grid import Job
from memkit.parameters import ParameterError
from memkit.runner import Failure, _deferred_interrupt, finish, run_notebook, staging

INSTALL = 'pip install "memkit-replication[cluster]"'


class RayMissing(ParameterError):
    """``--cluster ray`` without Ray installed."""


def require_ray() -> Any:
    """The ``ray`` module, or :class:`RayMissing` with the line that installs it."""
    try:
        import ray
    except ImportError:
        raise RayMissing(f"--cluster ray needs Ray, which is not installed here; install it with: {INSTALL}") from None
    return ray


def execute(
    nb_name: str, source: bytes, profile: str, params: dict[str, Any]
) -> tuple[Failure | None, dict[str, bytes]]:
    """The Ray task (on a worker): run the notebook ``source`` and return its failure (or ``None``)
    and its staged files by path relative to the staging folder (``<nb>.ipynb``, ``output/...``)."""
    tmp = Path(tempfile.mkdtemp(prefix="memkit-run-"))
    try:
        nb = tmp / "notebooks" / nb_name
        nb.parent.mkdir()
        nb.write_bytes(source)
        stage = tmp / "stage"
        failure = run_notebook(nb, profile, params, stage, progress=False)
        files = sorted(p for p in stage.rglob("*") if p.is_file())
        return failure, {p.relative_to(stage).as_posix(): p.read_bytes() for p in files}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def describe(resources: dict[str, float]) -> str:
    """The cluster's resources in words: ``2 CPUs, 1 GPU, 7.6 GiB memory, 1 node``."""
    nodes = sum(1 for k in resources if k.startswith("node:") and not k.startswith("node:__internal"))
    return (
        f"{resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs, "
        f"{resources.get('memory', 0) / 2**30:.1f} GiB memory, {nodes} node{'s' if nodes != 1 else ''}"
    )


def _environment() -> dict[str, str]:
    """What the tasks' workers (and their kernels) need from this environment: where memkit is, the data."""
    here = str(Path(memkit.__file__).resolve().parents[1])
    paths = [here] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != here]
    env = {"PYTHONPATH": os.pathsep.join(paths), "MPLBACKEND": os.environ.get("MPLBACKEND", "Agg")}
    return env | {k: os.environ[k] for k in ("MEMKIT_DATA", "XDG_CACHE_HOME") if os.environ.get(k)}


def _unpack(files: dict[str, bytes], stage: Path) -> None:
    """Write a task's files into the driver's staging folder for the run (scratch space: only
    :func:`memkit.runner.commit` moves them into ``results/`` and ``figures/``)."""
    shutil.rmtree(stage, ignore_errors=True)
    for rel, data in files.items():
        path = stage / rel
        if stage not in path.resolve().parents:
            raise ValueError(f"a task returned a file outside its staging folder: {rel}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def run(
    jobs: list[Job],
    profile: str,
    root: Path,
    errors: dict[str, Failure],
    *,
    address: str | None = None,
    cpus: float | None = None,
    gpus: float | None = None,
) -> list[str] | None:
    """Run ``jobs`` as Ray tasks (connecting to ``address``, or Ray's default, unless Ray is already
    initialised) and commit each one's files as it finishes; failures go into ``errors``. Returns
    ``None``, or on Ctrl-C the names of the runs it cancelled."""
    from tqdm.auto import tqdm

    ray = require_ray()
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except ConnectionError as err:
            raise ParameterError(
                f"--address {address}: no Ray cluster there ({err}); start one with "
                "`ray start --head`, or leave --address out to start one for this run"
            ) from None
    try:
        resources = ray.cluster_resources()
        gpus = gpus if gpus is not None else (1.0 if profile == "paper" and resources.get("GPU", 0) >= 1 else 0.0)
        cpus = cpus if cpus is not None else 1.0
        slots = (
            min(math.floor(resources.get(k, 0) / n) for k, n in (("CPU", cpus), ("GPU", gpus)) if n > 0)
            if cpus or gpus
            else len(jobs)
        )
        print(
            f"Ray cluster: {describe(resources)}; {len(jobs)} run(s), each asking for {cpus:g} CPU(s)"
            f"{f' and {gpus:g} GPU(s)' if gpus else ''}: at most {slots} at a time",
            flush=True,
        )
        if slots < 1:
            raise ParameterError(
                f"no node of the Ray cluster ({describe(resources)}) can run a task that asks for "
                f"{cpus:g} CPUs and {gpus:g} GPUs: change --cpus-per-run / --gpus-per-run"
            )
        task = ray.remote(execute).options(
            num_cpus=cpus, num_gpus=gpus, max_retries=0, runtime_env={"env_vars": _environment()}
        )
        pending = {task.remote(job.nb.name, job.nb.read_bytes(), profile, job.params): job for job in jobs}
        return _collect(ray, pending, profile, root, errors, slots, tqdm(total=len(jobs), desc="runs", unit="run"))
    finally:
        if started:
            ray.shutdown()


def _collect(
    ray: Any, pending: dict[Any, Job], profile: str, root: Path, errors: dict[str, Failure], slots: int, bar: Any
) -> list[str] | None:
    """Commit each task's files as it finishes; the bar's postfix counts done, running, queued, failed."""
    failed, shown = 0, None
    try:
        while pending:
            counts = {
                "done": bar.n - failed,
                "running": min(len(pending), slots),
                "queued": max(len(pending) - slots, 0),
                "failed": failed,
            }
            if counts != shown:
                bar.set_postfix(counts)
                shown = counts
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                job = pending.pop(ref)
                try:
                    failure, files = ray.get(ref)
                except ray.exceptions.RayError as err:  # the worker died, was killed, the task could not start
                    lines = [line for line in str(err).splitlines() if line.strip()]
                    failure, files = (
                        Failure(f"the Ray task failed: {type(err).__name__}: {lines[-1] if lines else ''}".strip()),
                        {},
                    )
                with _deferred_interrupt():  # its files as a whole: staged here, then moved into place
                    _unpack(files, staging(root, profile, job))
                    finish(job, profile, failure, root, errors)
                if failure is not None:
                    failed += 1
                    where = f" in {failure.where()}" if failure.where() else ""
                    bar.write(
                        f"  {job.describe(every=True)}: FAILED{where}: "
                        f"{failure.error.splitlines()[0] if failure.error else ''}"
                    )
                bar.update()
        bar.set_postfix({"done": bar.n - failed, "running": 0, "queued": 0, "failed": failed})
    except KeyboardInterrupt:
        for ref in pending:  # KeyboardInterrupt in the task: papermill shuts its kernel down
            ray.cancel(ref)
        _, stuck = ray.wait(list(pending), num_returns=len(pending), timeout=10.0)
        for ref in stuck:  # only those still running (force-cancelling a finished task crashes Ray 2.60)
            ray.cancel(ref, force=True)
        return sorted(job.name for job in pending.values())
    finally:
        bar.close()
    return None
