"""The notebook run object: what every notebook does around its experiment, in one place.

A notebook's setup and its end::

    run = experiment.Run("01_easy_examples", SETTINGS, profile=profile, dataset=dataset, seed=seed,
                         device=device, overrides=overrides)
    for name in run.datasets:
        with run.timer(name):
            ...                                   # train, measure: run.cfg["n_models"], run.device
        run.save_arrays(f"{name}/train", error_rate=rates)  # per-example, (N,)
        run.save_figure(fig, f"01_sorted_errors_{name}")
        run.claim(f"{name}-real-vs-randX", "statement", "metric", value, 5.0, ">", "Arpit et al. Fig. 1")
    run.finish(extra={...})

:class:`Run` resolves the profile (``$MEMKIT_PROFILE`` wins, with a printed note), checks the
settings and their overrides (:func:`memkit.profiles.settings`) and the data sets, picks the
device and applies the one precision policy (:func:`precision`), sets the figure style, and keeps
the timings, per-example arrays and claims until :meth:`Run.finish` writes them:
``results/<profile>/<notebook>.json`` (:func:`memkit.results.write_result`) and, next to it,
``results/<profile>/<notebook>.npz`` (:func:`load_arrays` reads it back). Trained models go to
``results/<profile>/<notebook>/<name>.pt`` at once (:meth:`Run.save_models`).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from memkit import data, figures, profiles, results
from memkit.device import pick_device

#: The notebook parameters every run records besides its settings.
PARAMETERS = ("profile", "dataset", "seed", "device", "overrides")


def precision(device: torch.device) -> str:
    """The one precision policy of every notebook, applied to ``device``; returns it in words.

    CUDA: TF32 for matrix products and cuDNN convolutions (several times faster on recent GPUs,
    about 1e-3 relative error; training is float32 otherwise). CPU and MPS: nothing changes.
    """
    if device.type != "cuda":
        return "float32"
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return "float32 with TF32 matmul and cuDNN"


class Run:
    """One run of a notebook: profile, settings, data sets, device, timings, arrays, claims.

    Args:
        notebook: the notebook's name, ``"01_easy_examples"``; names its result files.
        settings: one dict of settings per profile (``{"test": {...}, "quick": {...}, "paper": {...}}``),
            each with a ``"datasets"`` list (the default data sets) and the same setting names; an
            optional ``"per_dataset"`` dict changes settings for one data set (:meth:`settings_for`).
        profile, dataset, seed, device, overrides: the notebook's parameters. ``dataset``: one name or
            a list (``None``: the profile's ``datasets``); ``device``: ``None`` picks one
            (:func:`memkit.pick_device`); ``overrides``: settings to change, checked by name and type
            (the claims of a run with overrides are reported, not asserted: :meth:`record`).

    Attributes:
        notebook. profile: the profile in force (``$MEMKIT_PROFILE`` if set). ``cfg``: its settings
        with the overrides. ``datasets``: the data sets to run. ``device``: a :class:`torch.device`;
        ``precision``: the policy applied to it, in words (:func:`precision`). ``seed``.
        ``parameters``: profile, dataset, seed, device, overrides and the settings, for the result JSON.
        ``timings``: seconds per :meth:`timer` name. ``claims``: the claims made so far.
    """

    def __init__(
        self,
        notebook: str,
        settings: dict[str, dict[str, Any]],
        *,
        profile: str = "quick",
        dataset: str | Sequence[str] | None = None,
        seed: int = 0,
        device: str | torch.device | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        if not re.fullmatch(r"[0-9]{2}_\w+", notebook):
            raise ValueError(
                f"notebook name {notebook!r} should be the file's name without .ipynb, e.g. '01_easy_examples'"
            )
        self.notebook = notebook
        self.profile = profiles.resolve_profile(profile)
        if self.profile != profile:
            print(
                f"Note: $MEMKIT_PROFILE={self.profile} overrides this notebook's profile={profile!r}; "
                f"unset MEMKIT_PROFILE to run the {profile!r} profile."
            )
        self.cfg = profiles.settings(self.profile, settings, overrides)
        clash = sorted(set(self.cfg) & set(PARAMETERS))
        if clash:
            raise ValueError(f"setting(s) {', '.join(clash)} share a name with a notebook parameter; rename them")
        if "datasets" not in self.cfg:
            raise ValueError(
                f"the {self.profile} settings have no 'datasets': add datasets=[...] (the default "
                f"data sets, e.g. ['digits']) to every profile"
            )
        self.datasets = profiles.resolve_datasets(dataset, self.cfg["datasets"])
        profiles.check_applies(notebook, self.datasets)
        for name, changes in self.cfg.get("per_dataset", {}).items():
            try:
                profiles.resolve_datasets(name, [])
                if not isinstance(changes, dict) or {"datasets", "per_dataset"} & set(changes):
                    raise ValueError("give a dict of the settings to change, other than datasets and per_dataset")
                profiles.settings(self.profile, settings, changes)
            except ValueError as err:
                raise ValueError(f"per_dataset[{name!r}] in the {self.profile} settings: {err}") from None
        self.seed = seed
        self.device = pick_device(device)
        self.precision = precision(self.device)
        figures.style()
        self.parameters = dict(
            profile=self.profile,
            dataset=dataset,
            seed=seed,
            device=str(self.device),
            overrides=overrides or {},
            **self.cfg,
        )
        if overrides:
            print("overrides change the profile's settings: claims are reported, not asserted")
        self.timings: dict[str, float] = {}
        self.claims: list[results.Claim] = []
        self._arrays: dict[str, np.ndarray] = {}
        self._timed_s, self._depth = 0.0, 0
        print(
            f"{notebook}: profile={self.profile} datasets={self.datasets} seed={seed} device={self.device} "
            f"({self.precision})\nsettings: {self.cfg}"
        )

    # ------------------------------------------------------------------------------------ timing

    @contextmanager
    def timer(self, name: str) -> Iterator[None]:
        """Time the block: adds its wall-clock seconds to ``timings[name]`` (a name used twice adds up).
        ``timings["total_s"]``, written by :meth:`finish`, sums the outermost timed blocks."""
        if name == "total_s":
            raise ValueError("'total_s' is the sum that finish() writes; give the timer another name")
        self._depth += 1
        t0 = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t0
            self._depth -= 1
            self.timings[name] = self.timings.get(name, 0.0) + dt
            if self._depth == 0:
                self._timed_s += dt

    # -------------------------------------------------------------------------------------- data

    def settings_for(self, name: str) -> dict[str, Any]:
        """The settings for data set ``name``: :attr:`cfg` changed by the profile's
        ``per_dataset[name]`` (e.g. ``per_dataset={"mnist1d": {"widths": [...]}}`` where a data set
        needs more capacity to show the finding), except settings the run's ``overrides`` set (unless
        they override ``per_dataset`` itself). Only what a notebook reads from this dict changes: read
        every per-data-set setting through it."""
        changes = self.cfg.get("per_dataset", {}).get(name, {})
        overridden = set() if "per_dataset" in self.parameters["overrides"] else set(self.parameters["overrides"])
        return {**self.cfg, **{k: v for k, v in changes.items() if k not in overridden}}

    def one_dataset(self) -> str:
        """The data set of a notebook that runs one at a time; a ``ValueError`` saying how to run
        several when ``dataset`` named more than one."""
        if len(self.datasets) != 1:
            raise ValueError(
                f"{self.notebook} runs one data set at a time, not {self.datasets}: run it once per data set "
                f"(memkit regenerate --only {self.notebook[:2]} -p dataset '{json.dumps(self.datasets)}' "
                f"runs one after another)"
            )
        return self.datasets[0]

    def load(self, name: str, kind: data.Kind = data.REAL, **options: Any) -> data.Dataset:
        """Data set ``name`` of ``kind`` (:func:`memkit.data.load`), sized for this profile.

        ``options`` are :func:`memkit.data.load`'s (``n_train``, ``n_test``, ``size``, ...); one
        that is ``None`` or absent takes the profile's default for the data set
        (:data:`memkit.profiles.DATA_LIMITS`: e.g. 2000 MNIST examples at 14×14 in ``quick``), so
        that any profile works with any data set. The corruption is seeded with the run's seed.
        """
        given = {k: v for k, v in options.items() if v is not None}
        return data.load(name, kind=kind, **{"seed": self.seed, **profiles.data_limits(self.profile, name), **given})

    # ------------------------------------------------------------------------------------- files

    def save_figure(self, fig: Any, name: str) -> list[Path]:
        """Save ``fig`` as ``figures/<profile>/<name>.png`` (:func:`memkit.figures.save_figure`)."""
        return figures.save_figure(fig, name, self.profile)

    def save_arrays(self, key: str, **arrays: Any) -> None:
        """Keep per-example arrays for ``results/<profile>/<notebook>.npz``, written by :meth:`finish`.

        ``key``: ``"<dataset>/<split>"``, optionally more parts (``"digits/train/randX50"``); each
        array is stored as ``"<key>/<name>"``. An array: numpy or torch, numbers, bools or strings,
        e.g. ``(N,)`` per-example scores or ``(S, N)`` per seed and example, with example ``i``
        the data set's example ``i`` (:func:`memkit.data.load` keeps the original order).
        """
        if not re.fullmatch(r"[^/\s]+(/[^/\s]+)+", key):
            raise ValueError(f"array key {key!r} should be '<dataset>/<split>' (no spaces), e.g. 'digits/train'")
        if not arrays:
            raise ValueError(f"no arrays given for {key!r}: pass them by name, save_arrays({key!r}, rate=rate)")
        for name, value in arrays.items():
            full = f"{key}/{name}"
            if full in self._arrays:
                raise ValueError(
                    f"array {full!r} was already saved in this run; give each array its own key "
                    f"or name (e.g. add the kind's key: Kind.key)"
                )
            a = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
            if a.dtype.kind not in "biufcUS":
                raise ValueError(
                    f"array {full!r} has dtype {a.dtype}; save numbers, bools or strings "
                    f"(convert objects to one of them)"
                )
            self._arrays[full] = a

    def _models_path(self, name: str, notebook: str | None = None) -> Path:
        """``results/<profile>/<notebook>/<name>.pt``: where :meth:`save_models` writes ``name``."""
        if not re.fullmatch(r"[\w.-]+", name):
            raise ValueError(f"model name {name!r} should be file-safe: letters, digits, '_', '-', '.'")
        return results.result_path(self.profile, notebook or self.notebook, "") / f"{name}.pt"

    def save_models(self, name: str, models: Any) -> Path:
        """Save trained models' state dicts now, atomically, to ``results/<profile>/<notebook>/<name>.pt``; return it.

        ``models``: S trained seeds (anything with ``state_dicts()``, e.g. :class:`memkit.training.Seeds`),
        one :class:`torch.nn.Module`, or a sequence of modules. Stored as a list of S state dicts of
        CPU tensors; :meth:`load_models` reads them back.
        """
        if hasattr(models, "state_dicts"):
            states = list(models.state_dicts())
        elif isinstance(models, nn.Module):
            states = [models.state_dict()]
        elif isinstance(models, Sequence) and models and all(isinstance(m, nn.Module) for m in models):
            states = [m.state_dict() for m in models]
        else:
            raise TypeError(
                f"cannot save {type(models).__name__}: pass trained seeds (with state_dicts()), "
                f"an nn.Module or a list of them"
            )
        cpu = [{k: v.detach().cpu() for k, v in s.items()} for s in states]
        buffer = io.BytesIO()
        torch.save(cpu, buffer)
        return results.atomic_write(self._models_path(name), lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))

    def load_models(self, name: str, notebook: str | None = None) -> list[dict[str, torch.Tensor]]:
        """The S state dicts saved as ``name`` by this notebook (or by ``notebook``) in this profile,
        on the CPU. Rebuild a model with ``m = factory(); m.load_state_dict(states[s])``."""
        path = self._models_path(name, notebook)
        if not path.exists():
            raise FileNotFoundError(
                f"no saved models at {path}: run {notebook or self.notebook} in the "
                f"{self.profile} profile first (it calls save_models({name!r}, ...))"
            )
        return torch.load(path, map_location="cpu", weights_only=True)

    # ------------------------------------------------------------------------------------ claims

    def claim(
        self,
        id: str,
        statement: str,
        metric: str,
        value: float,
        threshold: float,
        op: str = ">",
        figure: str = "",
        asserted: bool = True,
    ) -> results.Claim:
        """Record the claim ``value <op> threshold`` (:class:`memkit.results.Claim`) and return it.
        ``asserted=False``: reported in the table and the JSON but never fails the notebook (see
        :meth:`record` for when the run makes a claim reported only)."""
        return self.record([results.Claim(id, statement, metric, value, threshold, op, figure, asserted)])[0]

    def record(self, claims: Iterable[results.Claim]) -> list[results.Claim]:
        """Record claims computed elsewhere, e.g. by a finding module's ``claims(...)``; return them.
        Each claim id may be used once per run. A claim on a data set that is not one of the
        profile's defaults (its id starts with the data set's name) and every claim of a run with
        ``overrides`` are reported, not asserted: the thresholds were fixed for the profile's own
        data and settings."""
        claims = [dataclasses.replace(c, asserted=False) if self._reported_only(c) else c for c in claims]
        for c in claims:
            if any(d.id == c.id for d in self.claims):
                raise ValueError(
                    f"claim id {c.id!r} is already used in this run; give each claim its own id "
                    f"(e.g. prefix the data set's name)"
                )
            self.claims.append(c)
        return claims

    def _reported_only(self, claim: results.Claim) -> bool:
        name, _ = results.split_claim_id(claim.id)
        if name is None:  # a claim without a data set's name: reported unless every data set is a default
            return bool(self.parameters["overrides"]) or any(d not in self.cfg["datasets"] for d in self.datasets)
        return bool(self.parameters["overrides"]) or name not in self.cfg["datasets"]

    @staticmethod
    def table(header: list[str], rows: list[list[Any]]) -> Any:
        """``rows`` under ``header`` as Markdown for the notebook to show (:func:`memkit.results.markdown_table`)."""
        from IPython.display import Markdown

        return Markdown(results.markdown_table(header, rows))

    def finish(self, extra: dict[str, Any] | None = None) -> Path:
        """Write the result JSON (parameters, timings with ``total_s``, environment, claims, ``extra``)
        and the saved arrays, show the claim table, then assert the asserted claims in the ``test``
        and ``quick`` profiles (:func:`memkit.results.check`). Returns the JSON's path."""
        timings = {**self.timings, "total_s": self._timed_s}
        path = results.write_result(
            self.notebook, self.profile, self.parameters, self.claims, timings, self.device, extra
        )
        npz = results.result_path(self.profile, self.notebook, ".npz")
        if self._arrays:
            results.save_arrays(npz, self._arrays)
            print(f"wrote {path} and {npz.name} ({len(self._arrays)} arrays)")
        else:
            npz.unlink(missing_ok=True)  # an earlier run's arrays would not belong to this result
            print(f"wrote {path}")
        from IPython.display import Markdown, display

        display(Markdown(results.table(self.claims)))
        results.check(self.claims, self.profile)
        return path


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The per-example arrays of a result, ``results/<profile>/<notebook>.npz``, as plain numpy
    arrays keyed ``"<dataset>/<split>/<name>"`` (:meth:`Run.save_arrays`)."""
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
