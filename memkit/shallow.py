"""Do deep networks learn shallow-learnable examples first? (Mangalam & Prabhu 2019; notebook 06)

A shallow model M (:func:`memkit.estimators.fit_shallow`) is fitted once; a deep network D trains
from a random initialisation (:func:`train_tracked`), and at each step of a grid the test set is
split by which of the two is right: the contingency matrix T (first index D, second M, 1 = correct;
T01 = M right, D wrong). R+ = T11/(T11 + T01) is D's accuracy on the examples M gets right,
R− = T10/(T10 + T00) on those it gets wrong, R± = R+/R−: 1 if D's successes have nothing to do with
M's; the paper finds an early peak and a slow fall to a value above 1.

R± also rises if D merely learns first the *classes* M is good at. The control: R± against M's marks
shuffled within each class (:func:`class_shuffled`), and R±_MH, R+/R− within classes combined by
Mantel–Haenszel (:func:`r_pm_mh`); :func:`claims` speak about the excess over that control.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from memkit import figures, metrics, models
from memkit.data import Dataset
from memkit.device import pick_device
from memkit.results import Claim
from memkit.training import SGD, Seeds, Step, steps_per_epoch, train_seeds

# --- The contingency matrix T and the ratios R+, R−, R± --------------------------------------


def contingency(d_correct: torch.Tensor, m_correct: torch.Tensor) -> torch.Tensor:
    """The contingency matrix T of D against M: ``T[..., i, j]`` counts the examples with D-correct = i
    and M-correct = j (T01: M right, D wrong; the four add to N). ``d_correct``: ``(..., N)`` bool,
    leading axes (e.g. grid steps × seeds) kept; ``m_correct``: ``(N,)`` bool → ``(..., 2, 2)`` int64."""
    return contingency_by_class(d_correct, m_correct, torch.zeros(m_correct.shape[-1], dtype=torch.long))[..., 0, :, :]


def accuracy_d(t: torch.Tensor) -> torch.Tensor:
    """Accuracy of D, (T10 + T11) / N: ``(..., 2, 2)`` → ``(...)`` float64 in [0, 1]."""
    return t[..., 1, :].sum(-1).double() / t.sum((-2, -1)).double()


def accuracy_m(t: torch.Tensor) -> torch.Tensor:
    """Accuracy of M, (T01 + T11) / N: ``(..., 2, 2)`` → ``(...)`` float64 in [0, 1]."""
    return t[..., :, 1].sum(-1).double() / t.sum((-2, -1)).double()


def _subset_accuracy(t: torch.Tensor, m: int, symbol: str) -> torch.Tensor:
    """D's accuracy on the examples with M-correct = ``m``; NaN (with a warning) where there are none."""
    n_subset = t[..., :, m].sum(-1)
    empty = n_subset == 0
    if bool(empty.any()):
        which = "correctly" if m else "incorrectly"
        warnings.warn(
            f"{symbol} is undefined (NaN) where M classifies no example {which}: "
            f"the subset it is D's accuracy on is empty",
            RuntimeWarning,
            stacklevel=3,
        )
    return torch.where(empty, torch.nan, t[..., 1, m].double() / n_subset.clamp_min(1).double())


def r_plus(t: torch.Tensor) -> torch.Tensor:
    """R+ = T11 / (T11 + T01), D's accuracy on the examples M classifies correctly: ``(..., 2, 2)`` →
    ``(...)`` float64; NaN with a ``RuntimeWarning`` where M classifies no example correctly."""
    return _subset_accuracy(t, 1, "R+")


def r_minus(t: torch.Tensor) -> torch.Tensor:
    """R− = T10 / (T10 + T00), D's accuracy on the examples M classifies incorrectly: ``(..., 2, 2)`` →
    ``(...)`` float64; NaN with a ``RuntimeWarning`` where M classifies every example correctly."""
    return _subset_accuracy(t, 0, "R-")


def r_pm(t: torch.Tensor) -> torch.Tensor:
    """R± = R+ / R−, the ratio of D's accuracies on the M-correct and the M-incorrect examples:
    ``(..., 2, 2)`` → ``(...)`` float64. (The poster's expanded formula, T11·T10 / ((T11 + T01)(T10 + T00)),
    equals R+·R−, not this ratio.) Zero denominators: R− = 0 < R+ gives ``+inf``; R− = R+ = 0 gives 1
    (equal, zero accuracies); an empty subset gives NaN with the ``RuntimeWarning`` of :func:`r_plus` /
    :func:`r_minus`."""
    rp, rm = r_plus(t), r_minus(t)
    return torch.where((rp == 0) & (rm == 0), 1.0, rp / rm)


def contingency_by_class(d_correct: torch.Tensor, m_correct: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """T within each class: ``(..., C, 2, 2)``; summed over the class axis it is :func:`contingency`.

    ``d_correct``: ``(..., N)`` bool; ``labels``: ``(N,)`` classes 0..C−1 (C = largest + 1);
    ``m_correct``: ``(N,)`` bool, or ``(P, N)`` for P versions of M at once (e.g. shuffled marks), which
    gives ``(..., P, C, 2, 2)``. Counted with one matrix product (exact in float32 below 2²⁴ examples).
    """
    n = labels.shape[0]
    if d_correct.shape[-1] != n or m_correct.shape[-1] != n:
        raise ValueError(
            f"d_correct, m_correct and labels describe {d_correct.shape[-1]}, {m_correct.shape[-1]} and "
            f"{n} examples: all must describe the same examples in the same order"
        )
    onehot = torch.nn.functional.one_hot(labels.long().cpu()).T.float()  # (C, N)
    m = m_correct.float().cpu().reshape(-1, n)  # (P, N)
    d = d_correct.float().cpu().unsqueeze(-2) * onehot  # (..., C, N)
    t11 = torch.einsum("...cn,pn->...pc", d, m)
    t10, t01 = d.sum(-1).unsqueeze(-2) - t11, m @ onehot.T - t11
    t = torch.stack([onehot.sum(-1) - t11 - t10 - t01, t01, t10, t11], -1).unflatten(-1, (2, 2)).round().long()
    return t if m_correct.ndim == 2 else t.squeeze(-4)


def r_pm_mh(t_by_class: torch.Tensor) -> torch.Tensor:
    """R±_MH, the class-conditional R±: R+ / R− within each class c, combined by Mantel–Haenszel
    (:func:`memkit.metrics.mantel_haenszel_risk_ratio`)::

        R±_MH = Σ_c T11_c·(T10_c + T00_c)/n_c  /  Σ_c T10_c·(T11_c + T01_c)/n_c.

    1 when, within every class, D is as often right on M's correct as on M's incorrect examples, however
    M's and D's accuracies differ between classes; R± itself also rises when D merely learns first the
    classes M is good at. ``t_by_class``: ``(..., C, 2, 2)`` (:func:`contingency_by_class`) → ``(...)``.
    """
    t = t_by_class
    return metrics.mantel_haenszel_risk_ratio(t[..., 1, 1], t[..., :, 1].sum(-1), t[..., 1, 0], t[..., :, 0].sum(-1))


def class_shuffled(
    d_correct: torch.Tensor, m_correct: torch.Tensor, labels: torch.Tensor, n_perm: int, seed: int = 0, chunk: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """The class-level control: R± and R±_MH of D against M's marks permuted within each class
    (:func:`memkit.metrics.permute_within_groups`; M's per-class accuracies kept, which example of a
    class M gets right made random). ``d_correct``: ``(G, S, N)``; returns two ``(G, S, P)`` arrays,
    P = ``n_perm``, every permutation at once (``chunk`` grid steps at a time bound the memory)."""
    perms = metrics.permute_within_groups(m_correct.bool(), labels, n_perm, seed)
    raw, mh = [], []
    for d in d_correct.split(chunk):
        t = contingency_by_class(d, perms, labels)  # (chunk, S, P, C, 2, 2)
        raw.append(r_pm(t.sum(-3)))
        mh.append(r_pm_mh(t))
    return torch.cat(raw).numpy(), torch.cat(mh).numpy()


# --- D: training with T tracked on a grid of steps -------------------------------------------


#: D at paper scale per data set: its architecture (:data:`memkit.models.ARCHS`) and its optimiser
#: (the paper names only the architectures; ``epochs`` is set by the notebook). The 32×32 networks
#: train one seed after another (batch norm) under bfloat16 autocast on CUDA.
PAPER_D: dict[str, tuple[str, SGD]] = {
    "mnist": ("cnn", SGD(lr=0.01, batch_size=64, momentum=0.9)),
    "cifar10": (
        "densenet121",
        SGD(lr=0.1, batch_size=64, momentum=0.9, weight_decay=1e-4, schedule="cosine", augment=True, autocast=True),
    ),
    "cifar100": (
        "resnet101",
        SGD(lr=0.1, batch_size=128, momentum=0.9, weight_decay=5e-4, schedule="cosine", augment=True, autocast=True),
    ),
}


def paper_d(dataset: str) -> tuple[str, SGD]:
    """The paper's D for ``dataset`` as ``(arch, sgd)``: DenseNet121 for CIFAR-10 (and its subset),
    ResNet101 for CIFAR-100, the 2-layer CNN for every other data set (as for MNIST)."""
    key = {"cifar10-subset": "cifar10"}.get(dataset, dataset)
    return PAPER_D.get(key, PAPER_D["mnist"])


def log_step_grid(total_steps: int, steps_per_epoch: int, n_log: int = 50) -> np.ndarray:
    """The training steps after which T is measured: 0 (the random initialisation), ``n_log``
    steps log-spaced between 1 and ``total_steps`` (dense early, so that a peak within the first
    epoch is resolved) and the end of every epoch. Sorted, unique, int64, within [0, total_steps]."""
    if total_steps < 1 or steps_per_epoch < 1 or n_log < 0:
        raise ValueError(
            f"total_steps={total_steps}, steps_per_epoch={steps_per_epoch} must be >= 1 and n_log={n_log} >= 0"
        )
    log = np.rint(np.geomspace(1, total_steps, n_log)) if n_log else np.array([])
    epochs = np.arange(steps_per_epoch, total_steps + 1, steps_per_epoch)
    return np.unique(np.concatenate([[0], log, epochs, [total_steps]]).astype(np.int64))


@dataclass
class Trajectory:
    """D's test-set correctness on a grid of training steps, for S seeds.

    Attributes:
        steps: ``(G,)`` SGD updates done at each grid point (0 = the random initialisation).
        steps_per_epoch: updates per epoch, to convert steps to epochs.
        correct: ``(G, S, N)`` bool on the CPU: seed s of D classifies test example n correctly
            after ``steps[g]`` updates.
        seeds: the S seeds (initialisation and data order) of D.
        train_s: wall-clock seconds of training and evaluation.
        method: ``"ensemble"`` (S seeds as one batched model) or ``"loop"`` (one seed at a time).
    """

    steps: np.ndarray
    steps_per_epoch: int
    correct: torch.Tensor
    seeds: list[int]
    train_s: float
    method: str

    @property
    def epochs(self) -> np.ndarray:
        """``(G,)`` the grid in epochs (fractions of an epoch early on)."""
        return self.steps / self.steps_per_epoch

    def first_right(self) -> np.ndarray:
        """``(S, N)`` per seed and test example, the epoch of the first grid step from which the
        seed classifies the example correctly at every later grid step (to the end); NaN when it
        is wrong at the end."""
        stays = self.correct.flip(0).cummin(0).values.flip(0)  # (G, S, N): right from here to the end
        n_right = stays.sum(0).numpy()
        first = self.epochs[np.clip(len(self.steps) - n_right, 0, len(self.steps) - 1)]
        return np.where(n_right > 0, first, np.nan)


def train_tracked(
    ds: Dataset,
    arch: str,
    sgd: SGD,
    *,
    n_seeds: int,
    n_log: int = 50,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> Trajectory:
    """Train S = ``n_seeds`` seeds of D (architecture ``arch``, :func:`memkit.models.factory`) from
    random initialisations on ``ds`` for ``sgd.epochs`` epochs and record, after each step of
    ``log_step_grid(total, steps_per_epoch, n_log)``, which test examples each seed classifies
    correctly (in eval mode).

    Training is :func:`memkit.training.train_seeds` with ``sgd`` (batched, or one seed after another
    for batch norm: DenseNet121, ResNet101).
    """
    if n_seeds < 1:
        raise ValueError(f"n_seeds={n_seeds} must be at least 1")
    if sgd.augment and ds.x_train.ndim != 4:
        raise ValueError(
            f"augment=True needs images (N, C, H, W); {ds.name} inputs are {tuple(ds.x_train.shape)}: set augment=False"
        )
    device = pick_device(device)
    factory = models.factory(arch, ds.input_shape, ds.n_classes)
    per_epoch = steps_per_epoch(ds.n_train, sgd.batch_size)
    want = set(log_step_grid(sgd.epochs * per_epoch, per_epoch, n_log).tolist())
    x_test, y_test = ds.x_test.to(device), ds.y_test.to(device)
    rows: dict[tuple[int, ...], list[torch.Tensor]] = {}

    def record(trained: Seeds, step: Step) -> None:
        if step.step in want:
            rows.setdefault(tuple(trained.members), []).append(trained.correct(x_test, y_test).cpu())

    t0 = time.perf_counter()
    seeds = train_seeds(
        factory,
        ds.x_train,
        ds.y_train,
        sgd,
        n_seeds=n_seeds,
        seed=seed,
        device=device,
        callback=record,
        progress=progress,
        desc=f"{ds.name} {arch}",
    )
    correct = torch.cat([torch.stack(r) for r in rows.values()], dim=1)  # (G, S, N)
    return Trajectory(
        np.asarray(sorted(want)),
        per_epoch,
        correct,
        seeds.seeds,
        time.perf_counter() - t0,
        "ensemble" if seeds.batched else "loop",
    )


# --- R± over training: summaries, the poster's figure, the paper's numbers -------------------

#: The paper's final test accuracies in % (poster, "Final maximum accuracies achieved by these
#: classifiers"), with the name of its D.
PAPER_ACCURACY: dict[str, dict[str, Any]] = {
    "mnist": {"svm": 97.92, "rf": 96.14, "D": 98.8, "arch": "2-layer CNN"},
    "cifar10": {"svm": 40.08, "rf": 35.86, "D": 95.04, "arch": "DenseNet121"},
    "cifar100": {"svm": 14.42, "rf": 14.26, "D": 77.78, "arch": "ResNet101"},
}


#: Thresholds of :func:`claims`, fixed before the runs they judge (see the notebook for how each was chosen).
START_MAX = 1.0  # |log2 R±_MH| at step 0: within a factor 2 of 1
PEAK_OVER_FINAL = 1.5  # peak R±_MH / final R±_MH
NULL_PERCENTILE = 95  # of the class-shuffled control


@dataclass(frozen=True)
class Curves:
    """T of S seeds of D against one M at every grid step, the quantities read from it and their
    class-shuffled control (:func:`curves` computes them).

    Attributes:
        steps: ``(G,)`` SGD updates done (0 = random initialisation).
        steps_per_epoch: updates per epoch.
        t: ``(G, S, 2, 2)`` int64 contingency matrices (:func:`contingency`).
        r_plus, r_minus, r_pm: ``(G, S)`` R+ (D's accuracy on the M-correct test examples), R−
            (on the M-incorrect ones) and R± = R+/R−.
        r_pm_mh: ``(G, S)`` the class-conditional R±_MH (:func:`r_pm_mh`).
        acc_d: ``(G, S)`` accuracy of D.
        null_r_pm, null_r_pm_mh: ``(G, S, P)`` R± and R±_MH against P class-shuffled Ms (:func:`class_shuffled`).
    """

    steps: np.ndarray
    steps_per_epoch: int
    t: torch.Tensor
    r_plus: np.ndarray
    r_minus: np.ndarray
    r_pm: np.ndarray
    r_pm_mh: np.ndarray
    acc_d: np.ndarray
    null_r_pm: np.ndarray
    null_r_pm_mh: np.ndarray

    @property
    def epochs(self) -> np.ndarray:
        """``(G,)`` the grid in epochs."""
        return self.steps / self.steps_per_epoch

    @property
    def acc_m(self) -> float:
        """Accuracy of M (the same at every step and for every seed)."""
        return float(accuracy_m(self.t[0, 0]))


def curves(
    traj: Trajectory, m_correct: torch.Tensor, labels: torch.Tensor, n_perm: int = 1000, seed: int = 0
) -> Curves:
    """The :class:`Curves` of trajectory ``traj`` against M's ``(N,)`` test correctness, with
    ``labels`` ``(N,)`` the test classes and ``n_perm`` class-shuffled Ms (drawn from ``seed``)."""
    t = contingency(traj.correct, m_correct)
    mh = r_pm_mh(contingency_by_class(traj.correct, m_correct, labels)).numpy()
    null = class_shuffled(traj.correct, m_correct, labels, n_perm, seed)
    return Curves(
        traj.steps,
        traj.steps_per_epoch,
        t,
        r_plus(t).numpy(),
        r_minus(t).numpy(),
        r_pm(t).numpy(),
        mh,
        accuracy_d(t).numpy(),
        *null,
    )


def peak(r: np.ndarray | torch.Tensor, x: np.ndarray, until: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """The largest value of a curve ``(G, ...)`` over the grid ``x`` ``(G,)`` up to ``x <= until``, and
    the ``x`` where it is first reached, NaN ignored, +inf kept (R− = 0 < R+): two ``(...)`` arrays."""
    r = np.asarray(r, dtype=float)
    r = np.where(np.isnan(r), -np.inf, r)[np.asarray(x) <= until]
    return r.max(0), np.asarray(x)[r.argmax(0)]


def per_seed(c: Curves) -> dict[str, np.ndarray]:
    """The values the claims read, per seed (``(S,)`` each): R± and R±_MH at step 0, at their peak
    (and its epoch), at their peak in the first epoch, at the end; the class-shuffled control's
    median and :data:`NULL_PERCENTILE` th percentile of the same statistic; T01 at the end."""

    def q(null: np.ndarray) -> np.ndarray:  # an attained value: no inf − inf
        return np.percentile(null, NULL_PERCENTILE, axis=-1, method="higher")

    first, null_first = peak(c.r_pm, c.epochs, 1.0)[0], peak(c.null_r_pm, c.epochs, 1.0)[0]
    first_mh, null_first_mh = peak(c.r_pm_mh, c.epochs, 1.0)[0], peak(c.null_r_pm_mh, c.epochs, 1.0)[0]
    peak_mh, peak_mh_epoch = peak(c.r_pm_mh, c.epochs)
    return {
        "start": c.r_pm[0],
        "start_mh": c.r_pm_mh[0],
        "peak": peak(c.r_pm, c.epochs)[0],
        "peak_epoch": peak(c.r_pm, c.epochs)[1],
        "end": c.r_pm[-1],
        "peak_1": first,
        "null_peak_1_median": np.median(null_first, -1),
        "null_peak_1_q": q(null_first),
        "peak_mh": peak_mh,
        "peak_mh_epoch": peak_mh_epoch,
        "peak_mh_1": first_mh,
        "null_peak_mh_1_q": q(null_first_mh),
        "end_mh": c.r_pm_mh[-1],
        "null_end_mh_q": q(c.null_r_pm_mh[-1]),
        "null_end_median": np.median(c.null_r_pm[-1], -1),
        "t01": c.t[-1, :, 0, 1].numpy(),
    }


def claims(
    s: dict[str, np.ndarray], prefix: str, figure: str, asserted: bool = True, reported_only: Sequence[str] = ()
) -> list[Claim]:
    """The paper's claims as excesses over the class-level control, each the worst seed of ``s``
    (:func:`per_seed`); ``prefix`` (e.g. ``"mnist1d-svm"``) starts every id and statement. A claim is
    asserted when ``asserted`` and its id ends with no ``"-" + r`` for ``r`` in ``reported_only``
    (``"examples-end"``: for every M; ``"svm-examples-end"``: for the SVM only)."""
    null = f"{NULL_PERCENTILE}th percentile of it with M shuffled within classes"
    rows = [
        (
            "start-within-class",
            (
                "R± starts near 1 within classes: at random initialisation every seed's "
                "class-conditional R±_MH is within a factor 2 of 1"
            ),
            "max over seeds of |log2 R±_MH(step 0)|",
            np.max(np.abs(np.log2(s["start_mh"]))),
            START_MAX,
            "<",
        ),
        (
            "early-beyond-classes",
            "in the first epoch R± peaks higher than M's per-class accuracies alone give",
            f"min over seeds of peak R± (epoch <= 1) - {null}",
            np.min(s["peak_1"] - s["null_peak_1_q"]),
            0.0,
            ">",
        ),
        (
            "examples-first",
            (
                "D learns M's easy examples first, not only M's easy classes: within classes R±_MH "
                "peaks in the first epoch above its class-shuffled control"
            ),
            f"min over seeds of peak R±_MH (epoch <= 1) - {null}",
            np.min(s["peak_mh_1"] - s["null_peak_mh_1_q"]),
            0.0,
            ">",
        ),
        (
            "examples-peak-early",
            "R±_MH reaches its peak within the first epoch",
            "latest R±_MH peak over seeds (epochs)",
            np.max(s["peak_mh_epoch"]),
            1.0,
            "<=",
        ),
        (
            "examples-peak-falls",
            "R±_MH then falls: its peak is at least 1.5 times its final value",
            "min over seeds of peak R±_MH / final R±_MH",
            np.min(s["peak_mh"] / s["end_mh"]),
            PEAK_OVER_FINAL,
            ">=",
        ),
        (
            "examples-end",
            (
                "R±_MH settles above its class-shuffled control: at the end D is still more often right on "
                "the examples M gets right than on those of the same class M gets wrong"
            ),
            f"min over seeds of final R±_MH - {null}",
            np.min(s["end_mh"] - s["null_end_mh_q"]),
            0.0,
            ">",
        ),
    ]
    return [
        Claim(
            f"{prefix}-{key}",
            f"{prefix}: {text}",
            metric,
            float(value),
            threshold,
            op,
            figure,
            asserted and not any(f"{prefix}-{key}".endswith(f"-{r}") for r in reported_only),
        )
        for key, text, metric, value, threshold, op in rows
    ]


#: Colours of the curves in :func:`plot_curves` (quantities of T, not kinds of data).
CURVE_COLORS = {
    "R±": "#222222",
    "R±_MH": "#8c564b",
    "null": "#bbbbbb",
    "R+": "#2ca02c",
    "R-": "#d62728",
    "D": "#1f77b4",
    "M": "#7f7f7f",
    "T00": "#7f7f7f",
    "T01": "#ff7f0e",
    "T10": "#9467bd",
    "T11": "#2ca02c",
}


def plot_curves(axes: Sequence[Any], c: Curves, title: str) -> None:
    """The poster's three panels for one data set and one M, on three axes (one column): R± (log
    scale) with its class-shuffled control (grey: 5th to 95th percentile over seeds and shuffles) and the
    class-conditional R±_MH; R+, R− and D's accuracy (M's dashed); the four counts of T. Lines are means
    over the seeds, bands span min to max over the seeds; x is the training step on a symlog axis
    (linear below 1: a peak within the first epoch stays visible), the end of the first epoch dotted."""
    x = c.steps
    ax1, ax2, ax3 = axes
    null = np.where(np.isfinite(c.null_r_pm), c.null_r_pm, np.nan).reshape(len(x), -1)
    ax1.fill_between(
        x,
        *np.nanpercentile(null, [5, 95], axis=1),
        color=CURVE_COLORS["null"],
        alpha=0.5,
        lw=0,
        label="R±, M shuffled within classes (5–95%)",
    )
    figures.band(ax1, x, c.r_pm.T, CURVE_COLORS["R±"], "R± = R+ / R−")
    figures.band(ax1, x, c.r_pm_mh.T, CURVE_COLORS["R±_MH"], "R±_MH (within classes)")
    ax1.set_yscale("log")
    ax1.axhline(1.0, color="k", lw=0.8, ls=":")
    ax1.annotate(
        "1 epoch",
        (c.steps_per_epoch, 1),
        xytext=(-3, -3),
        textcoords="offset points",
        xycoords=("data", "axes fraction"),
        ha="right",
        va="top",
        fontsize=8,
    )
    ax1.set_ylabel("R±")
    ax1.set_title(title)
    figures.band(ax2, x, c.r_plus.T, CURVE_COLORS["R+"], "R+ (D on M-correct)")
    figures.band(ax2, x, c.r_minus.T, CURVE_COLORS["R-"], "R− (D on M-incorrect)")
    figures.band(ax2, x, c.acc_d.T, CURVE_COLORS["D"], "accuracy of D")
    ax2.axhline(c.acc_m, color=CURVE_COLORS["M"], lw=1.2, ls="--", label="accuracy of M")
    ax2.set_ylabel("accuracy")
    ax2.set_ylim(0, 1.02)
    t = c.t.numpy()
    for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)):
        figures.band(ax3, x, t[:, :, i, j].T, CURVE_COLORS[f"T{i}{j}"], f"T{i}{j}")
    ax3.set_ylabel("test examples")
    ax3.set_xlabel("training step of D (symlog)")
    for ax in axes:
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(0, x[-1])
        ax.axvline(c.steps_per_epoch, color="k", lw=0.8, ls=":")
        ax.legend(fontsize=7, loc="best")
