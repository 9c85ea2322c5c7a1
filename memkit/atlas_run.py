"""Measuring the memorization atlas (notebook 08): one batched run, its score table and figures.

:func:`train_on_subsets` trains S members of one architecture with
:func:`memkit.training.train_seeds` (batched), member s on its own subset of the training set (``masks[s]``,
:func:`memkit.atlas.subset_masks`: random halves in complementary pairs), each in its own data
order, and records after every epoch which examples each member gets right and the probability it
gives their label. Every dynamics score of :mod:`memkit.atlas` is computed from that one run,
averaged over the members that trained on the example; the held-out scores come from the members
that did not. :func:`measure` adds the scores of the other notebooks (02's loss sensitivity ḡ,
04's critical points, 06's shallow-learnable examples) and the mislabel baseline (the final loss
of single models trained on the whole set), and returns an :class:`Atlas`; :func:`score_table`
writes it as CSV and npz with one row per training example, readable without memkit.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from memkit import adversarial, atlas, estimators, experiment, models, results, sensitivity, training
from memkit.data import Dataset
from memkit.results import atomic_write, save_arrays


@dataclass
class Dynamics:
    """A recorded half-subset run: ``masks`` ``(S, N)`` (member s trained on example n),
    ``correct`` and ``p_true`` ``(E, S, N)`` after epochs 1..E, ``probs_early`` ``(S, N, K)`` and
    ``grand_early`` ``(S', N)`` after ``early_epoch`` epochs."""

    masks: torch.Tensor
    correct: torch.Tensor
    p_true: torch.Tensor
    probs_early: torch.Tensor
    grand_early: torch.Tensor
    early_epoch: int


def recipe(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    """The settings for data set ``name``: ``cfg`` with its ``train`` entry (data-set name →
    training settings) resolved: ``train[name]``, else ``train[family]`` (``"cifar10"`` for
    ``"cifar10-subset"``), else ``train["default"]``."""
    table = cfg["train"]
    key = next((k for k in (name, name.removesuffix("-subset"), "default") if k in table), None)
    if key is None:
        raise ValueError(f"no training settings for {name!r}: add it (or 'default') to the 'train' setting")
    return {**{k: v for k, v in cfg.items() if k != "train"}, **table[key]}


def train_on_subsets(
    make: training.Factory,
    x: torch.Tensor,
    y: torch.Tensor,
    masks: torch.Tensor,
    sgd: training.SGD,
    *,
    seed: int = 0,
    device: str | torch.device | None = None,
    early_epoch: int = 1,
    n_grand: int | None = None,
) -> tuple[training.Seeds, Dynamics]:
    """Train S = ``len(masks)`` members with ``sgd`` (:func:`memkit.training.train_seeds`, batched),
    member s on the examples where ``masks[s]`` is True (every row the same count M), each in the
    data order of its own seed.

    After every epoch the members classify all N training examples (trained on or not); after
    ``early_epoch`` epochs their softmax outputs and the GraNd norms of the first ``n_grand``
    members (all when None) are kept. ``x``: ``(N, *input_shape)``, ``y``: ``(N,)``.
    """
    counts = masks.sum(1)
    if not bool((counts == counts[0]).all()):
        raise ValueError("every member needs the same number of training examples (rows of masks with equal sums)")
    if not 1 <= early_epoch <= sgd.epochs:
        raise ValueError(f"early_epoch={early_epoch} must lie in 1..epochs={sgd.epochs}")
    correct, p_true, early = [], [], {}

    def record(members: training.Seeds, step: training.Step) -> None:
        if not step.end_of_epoch:
            return
        yd = y.to(members.device)
        logp = members.logits(x).log_softmax(-1)  # (S, N, K)
        p_true.append(logp.gather(-1, yd.expand(len(members), -1)[..., None])[..., 0].exp().cpu())
        correct.append((logp.argmax(-1) == yd).cpu())
        if step.epoch == early_epoch:
            early["probs"] = logp.exp().cpu()
            if members.ensemble is None:  # train_seeds(batched=True) below: always an ensemble
                raise TypeError("GraNd needs the batched ensemble")
            early["grand"] = atlas.grand(members.ensemble, x, y, range(n_grand or len(members))).cpu()

    subsets = torch.stack([m.nonzero().flatten() for m in masks])  # (S, M)
    seeds = training.train_seeds(
        make, x, y, sgd, n_seeds=len(masks), seed=seed, device=device, subsets=subsets, callback=record, batched=True
    )
    return seeds, Dynamics(
        masks, torch.stack(correct), torch.stack(p_true), early["probs"], early["grand"], early_epoch
    )


def shallow_correct(
    x: torch.Tensor,
    y: torch.Tensor,
    kind: estimators.ShallowKind = "svm",
    n_folds: int = 2,
    seed: int = 0,
    **options: Any,
) -> torch.Tensor:
    """Notebook 06's M, held out: ``(N,)`` bool, whether a shallow model (``"svm"``/``"rf"``,
    :func:`memkit.estimators.fit_shallow`) fitted on the other folds classifies each example right."""
    fold = torch.from_numpy(np.random.default_rng(seed).permutation(len(x)) % n_folds)
    out = torch.zeros(len(x), dtype=torch.bool)
    for k in range(n_folds):
        model = estimators.fit_shallow(kind, x[fold != k], y[fold != k], seed=seed, **options)
        out[fold == k] = model.correct(x[fold == k], y[fold == k])
    return out


def critical(
    seeds: training.Seeds, x: torch.Tensor, search: dict[str, Any], n_members: int | None = None, chunk: int = 256
) -> torch.Tensor:
    """Notebook 04's criticality per member and example: ``(S', N)`` bool, whether the LASS search
    (:func:`memkit.adversarial.lass`, ``search`` from :func:`memkit.adversarial.lass_settings`)
    finds a differently classified point within the radius r of the example, for the first
    ``n_members`` members (all when None)."""
    ens = seeds.ensemble
    if ens is None:
        raise ValueError(
            "critical() searches the members of a batched ensemble: train them with train_seeds(batched=True)"
        )
    n = n_members or len(ens)
    weights = {k: v[:n] for k, v in (ens.params | ens.buffers).items()}
    model = torch.vmap(lambda w, xs: functional_call(ens.base, w, (xs,)))
    x = x.to(ens.device)
    return torch.cat(
        [
            adversarial.lass(lambda xs: model(weights, xs), xb.expand(n, *xb.shape), **search).critical.cpu()
            for xb in x.split(chunk)
        ],
        1,
    )


def final_losses(
    make: training.Factory,
    x: torch.Tensor,
    y: torch.Tensor,
    sgd: training.SGD,
    *,
    n_models: int,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """The mislabel baseline: ``(S_b, N)`` per-example cross-entropy of ``n_models`` single models,
    each trained with ``sgd`` on the whole training set (:func:`memkit.training.train_seeds`, seed ``seed + 1``)."""
    logits = training.train_seeds(make, x, y, sgd, n_seeds=n_models, seed=seed + 1, device=device).logits(x)
    return (
        F.cross_entropy(logits.flatten(0, 1), y.to(logits.device).repeat(n_models), reduction="none")
        .view(n_models, -1)
        .cpu()
    )


@dataclass
class Atlas:
    """Every score of one data set: ``name`` (``"digits"``, ``"digits randY 20%"``), the data set,
    ``scores`` (name → ``(N,)`` float numpy), ``baseline_loss`` ``(S_b, N)``, ``published`` C-scores
    or None, ``timings`` (seconds per part)."""

    name: str
    data: Dataset
    scores: dict[str, np.ndarray]
    baseline_loss: np.ndarray
    published: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def corrupted(self) -> np.ndarray:
        """``(N,)`` bool: the corrupted examples. For randY, those whose label changed (a random
        label equals the true one with probability 1/K: such an example is not mislabeled)."""
        if self.data.corruption == "randY":
            return (self.data.y_train != self.data.y_clean).numpy()
        out = np.zeros(self.data.n_train, dtype=bool)
        out[self.data.corrupted.numpy()] = self.data.corruption is not None
        return out

    def for_claims(self) -> atlas.AtlasScores:
        return atlas.AtlasScores(self.name, self.scores, self.corrupted, self.baseline_loss, self.published)


def measure(
    ds: Dataset,
    cfg: dict[str, Any],
    *,
    name: str,
    seed: int = 0,
    device: torch.device | None = None,
    published: np.ndarray | None = None,
) -> Atlas:
    """All scores of one data set from the settings ``cfg``: ``model`` (``arch`` and the options of
    :func:`memkit.models.factory`),
    ``n_models`` (even), ``epochs``, ``batch_size``, ``lr``, ``momentum``, ``early_epoch``,
    ``n_grand`` (even), ``n_baseline``; optional parts (None or 0 to skip):

    - ``lass``: keyword arguments of :func:`memkit.adversarial.lass_settings`, the search run on
      the first ``n_critical`` members (all when None);
    - ``shallow``: ``"svm"``, ``"rf"``, or a dict of ``kind`` and the options of
      :func:`memkit.estimators.fit_shallow`;
    - ``sensitivity``: keyword arguments of :func:`memkit.sensitivity.measure`, its ``sgd`` as a dict
      of :class:`memkit.training.SGD`'s fields.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    make = models.factory(**cfg["model"], input_shape=ds.input_shape, n_classes=ds.n_classes)
    sgd = training.SGD(lr=cfg["lr"], batch_size=cfg["batch_size"], epochs=cfg["epochs"], momentum=cfg["momentum"])
    masks = atlas.subset_masks(ds.n_train, cfg["n_models"], seed)
    members, dyn = train_on_subsets(
        make,
        ds.x_train,
        ds.y_train,
        masks,
        sgd,
        seed=seed,
        device=device,
        early_epoch=cfg["early_epoch"],
        n_grand=cfg["n_grand"],
    )
    forgetting, never = atlas.forgetting_events(dyn.correct, masks)
    scores = {
        "error_1epoch": 1 - atlas.member_mean(dyn.correct[0], masks),
        "forgetting": forgetting,
        "never_learned": never,
        "first_learned": atlas.first_learned_epoch(dyn.correct, masks),
        "confidence": atlas.confidence(dyn.p_true, masks),
        "variability": atlas.variability(dyn.p_true, masks),
        "el2n": atlas.el2n(dyn.probs_early, ds.y_train, masks),
        "grand": atlas.member_mean(dyn.grand_early, masks[: len(dyn.grand_early)]),
        "heldout": atlas.heldout_consistency(dyn.correct[-1], masks),
        "heldout_confidence": atlas.confidence(dyn.p_true, ~masks),
        "memorization": atlas.memorization(dyn.correct[-1], masks),
    }
    timings["subsets_s"] = time.perf_counter() - t0
    if cfg.get("lass"):
        t0 = time.perf_counter()
        search = adversarial.lass_settings(ds.x_test.to(members.device), **cfg["lass"])
        n = cfg.get("n_critical") or len(members)
        scores["critical"] = atlas.member_mean(critical(members, ds.x_train, search, n), masks[:n])
        timings["critical_s"] = time.perf_counter() - t0
    if cfg.get("shallow"):
        t0 = time.perf_counter()
        spec = {"kind": cfg["shallow"]} if isinstance(cfg["shallow"], str) else dict(cfg["shallow"])
        scores["shallow_correct"] = shallow_correct(ds.x_train, ds.y_train, seed=seed, **spec).float()
        timings["shallow_s"] = time.perf_counter() - t0
    if cfg.get("sensitivity"):
        t0 = time.perf_counter()
        options = {k: v for k, v in cfg["sensitivity"].items() if k != "sgd"}
        sgd_g = training.SGD(**cfg["sensitivity"]["sgd"])
        run = sensitivity.measure(ds.x_train, ds.y_train, ds.n_classes, sgd=sgd_g, seed=seed, device=device, **options)
        scores["loss_sensitivity"] = run.g.mean((0, 1))
        timings["sensitivity_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    base = final_losses(make, ds.x_train, ds.y_train, sgd, n_models=cfg["n_baseline"], seed=seed, device=device)
    timings["baseline_s"] = time.perf_counter() - t0
    arrays = {k: v.double().numpy() for k, v in scores.items()}
    return Atlas(name, ds, arrays, base.numpy(), published, timings)


# ---------------------------------------------------------------------------------------------
# The score table
# ---------------------------------------------------------------------------------------------


def score_table(a: Atlas, path: str | Path, extra: dict[str, np.ndarray] | None = None) -> tuple[Path, Path]:
    """Write the atlas as ``<path>.csv`` and ``<path>.npz``, one row per training example.

    Columns: ``index`` (position in the training split), ``label`` (the label trained on),
    ``label_clean`` (before corruption), ``class`` (its name), ``corrupted`` (0/1), then every
    score, then the ``extra`` columns (e.g. :func:`other_notebooks`). The npz holds the same
    columns as arrays (``class`` as strings) and ``classes``; both load with numpy alone
    (:func:`load_table`).
    """
    path = Path(path)
    n = a.data.n_train
    columns: dict[str, np.ndarray] = {
        "index": np.arange(n),
        "label": a.data.y_train.numpy(),
        "label_clean": a.data.y_clean.numpy(),
        "class": np.array([a.data.classes[k] for k in a.data.y_train.tolist()]),
        "corrupted": a.corrupted.astype(int),
        **{k: np.asarray(v) for k, v in sorted(a.scores.items())},
        **{k: np.asarray(v) for k, v in (extra or {}).items()},
    }
    if a.published is not None:
        columns["cscore_published"] = np.asarray(a.published)

    def write_csv(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(list(columns))
            for row in zip(*columns.values(), strict=True):
                w.writerow([f"{v:.6g}" if isinstance(v, (float, np.floating)) else v for v in row])

    csv_path = atomic_write(path.with_suffix(".csv"), write_csv)
    npz_path = save_arrays(path.with_suffix(".npz"), {"classes": np.array(a.data.classes), **columns})
    return csv_path, npz_path


def load_table(path: str | Path) -> dict[str, np.ndarray]:
    """Read a CSV written by :func:`score_table` back as columns (numbers as float or int)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    out = {}
    for j, name in enumerate(rows[0]):
        col = [r[j] for r in rows[1:]]
        try:
            out[name] = np.array(col, dtype=int if name in ("index", "label", "label_clean", "corrupted") else float)
        except ValueError:
            out[name] = np.array(col)
    return out


# ---------------------------------------------------------------------------------------------
# Arrays the notebooks 01-06 wrote (issue #14)
# ---------------------------------------------------------------------------------------------

NOTEBOOKS = (
    "01_easy_examples",
    "02_loss_sensitivity",
    "03_capacity_convergence",
    "04_critical_samples",
    "06_shallow_first",
)


def other_notebooks(
    dataset: str, split: str, n: int, profile: str, notebooks: tuple[str, ...] = NOTEBOOKS
) -> dict[str, np.ndarray]:
    """The per-example arrays that other notebooks saved (:meth:`memkit.experiment.Run.save_arrays`)
    for ``dataset``'s ``split`` (``"train"``/``"test"``) in ``profile``, as ``(n,)`` float columns
    named ``"<notebook>:<rest of the key>"`` (e.g. ``"03_capacity_convergence:real/first_fit_epoch"``).

    Generic: an array of shape ``(..., M)`` (per seed and example) is averaged over its leading
    axes; its example i is example i here (:func:`memkit.data.load` keeps the first examples of a
    split, so a run on fewer examples fills the first M rows, NaN after them, and a run on more,
    e.g. at paper scale, gives its first n). A group of arrays with an ``index`` array (e.g.
    notebook 04's ``(S, B)`` marks of the B examples ``index``) is placed at those examples.
    Absent files, and arrays that match no example here, are skipped with a printed note.
    """
    out: dict[str, np.ndarray] = {}
    prefix = f"{dataset}/{split}/"
    for nb in notebooks:
        path = results.result_path(profile, nb, ".npz")
        if not path.exists():
            print(f"{nb}: no arrays at {path} (run notebook {nb[:2]} in the {profile} profile to add its columns)")
            continue
        arrays = {k.removeprefix(prefix): v for k, v in experiment.load_arrays(path).items() if k.startswith(prefix)}
        for key, a in sorted(arrays.items()):
            group, _, leaf = key.rpartition("/")
            if leaf == "index" or a.dtype.kind not in "biuf":
                continue
            index = arrays.get(f"{group}/index" if group else "index")
            target = np.arange(a.shape[-1] if a.ndim else 0) if index is None else np.asarray(index)
            keep = target < n
            if a.ndim == 0 or a.shape[-1] != len(target) or not keep.any():
                print(f"{nb}: {prefix}{key} (shape {a.shape}) matches none of this run's {n} examples; skipped")
                continue
            col = np.full(n, np.nan)
            col[target[keep]] = a.reshape(-1, a.shape[-1]).astype(float).mean(0)[keep]
            out[f"{nb}:{key}"] = col
    return out


# ---------------------------------------------------------------------------------------------
# Figures and selections
# ---------------------------------------------------------------------------------------------


def plot_correlations(ax: plt.Axes, corr: atlas.Correlations) -> None:
    """Heatmap of Spearman's ρ between the oriented scores, each cell annotated with ρ and its
    bootstrap interval."""
    k = len(corr.names)
    im = ax.imshow(corr.rho, vmin=-1, vmax=1, cmap="RdBu_r")
    for i in range(k):
        for j in range(k):
            if i != j:
                ax.text(
                    j,
                    i,
                    f"{corr.rho[i, j]:.2f}\n[{corr.lo[i, j]:.2f},{corr.hi[i, j]:.2f}]",
                    ha="center",
                    va="center",
                    fontsize=5.5,
                )
    labels = [atlas.label(n) for n in corr.names]
    ax.set_xticks(range(k), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), labels, fontsize=8)
    ax.grid(False)
    plt.colorbar(im, ax=ax, fraction=0.046, label="Spearman ρ (high = hard for both)")


def plot_distributions(axes: np.ndarray, a: Atlas, names: list[str]) -> None:
    """One histogram per score: the clean examples and the corrupted ones of a corrupted set."""
    bad = a.corrupted
    for ax, name in zip(axes.flat, names, strict=False):
        v = a.scores[name]
        bins = np.histogram_bin_edges(v[np.isfinite(v)], bins=25)
        ax.hist(v[~bad], bins=bins, density=True, alpha=0.6, label="clean", color="#1f77b4")
        ax.hist(v[bad], bins=bins, density=True, alpha=0.6, label=f"{a.data.corruption}", color="#2ca02c")
        ax.set_title(name, fontsize=9)
        ax.set_yticks([])
    axes.flat[0].legend(fontsize=7)


def extremes(score: np.ndarray, n: int, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``n`` lowest then the ``n`` highest values of ``score``; ties (scores such as
    held-out accuracy take few values) ordered by ``tiebreak``, then by index."""
    keys = (
        [np.asarray(score, dtype=float)]
        if tiebreak is None
        else [np.asarray(tiebreak, dtype=float), np.asarray(score, dtype=float)]
    )
    order = np.lexsort(keys)
    return np.concatenate([order[:n], order[-n:]])


def disagreements(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` examples that score ``a`` ranks hardest relative to ``b`` (largest
    rank of a minus rank of b, both oriented high = hard), then the ``n`` it ranks easiest."""
    from scipy.stats import rankdata

    gap = rankdata(a) - rankdata(b)
    order = np.argsort(-gap, kind="stable")
    return np.concatenate([order[:n], order[::-1][:n]])
