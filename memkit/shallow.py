"""Do deep networks learn shallow-learnable examples first? (Mangalam & Prabhu 2019; notebook 06)

A shallow model M (an SVM with an RBF kernel, a random forest) is fitted once. A deep network D
is trained from a random initialisation, and after each training step on a grid of steps the test
set is split four ways by which of the two classifies an example correctly: the contingency
matrix T, first index D, second index M (1 = correct)::

                    M incorrect   M correct
    D incorrect        T00           T01
    D correct          T10           T11

From T: D's accuracy on the examples M gets right, R+ = T11 / (T11 + T01); D's accuracy on the
examples M gets wrong, R− = T10 / (T10 + T00); and their ratio R± = R+ / R−. If which test examples
D learns had nothing to do with which ones M can learn, R± would stay at 1; the paper finds that it
peaks early in training and settles slowly to a value above 1.

The module has three parts: T and its ratios (:func:`contingency`, :func:`r_plus`,
:func:`r_minus`, :func:`r_pm`); D's training with T tracked (D built by
:func:`memkit.models.factory`: the 2-layer CNN, or DenseNet121 / ResNet101 for 32×32;
:func:`train_tracked` records the test-set correctness of S seeds at the steps of
:func:`log_step_grid`); and the curves, their figure and the claims. M, the shallow model, is
fitted by :func:`memkit.estimators.fit_shallow`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from memkit import figures, models
from memkit.data import Dataset
from memkit.device import pick_device
from memkit.training import SGD, Seeds, Step, steps_per_epoch, train_seeds

# ---------------------------------------------------------------------------------------------
# The contingency matrix T and the ratios R+, R−, R±
# ---------------------------------------------------------------------------------------------


def contingency(d_correct: torch.Tensor, m_correct: torch.Tensor) -> torch.Tensor:
    """The contingency matrix T of D against M on one set of examples.

    Args:
        d_correct: ``(..., N)`` bool, whether D classifies example n correctly (leading axes, e.g.
            grid steps × seeds, are kept).
        m_correct: ``(N,)`` (or broadcastable to ``d_correct``) bool, whether M does.

    Returns:
        ``(..., 2, 2)`` int64 counts, ``T[..., i, j]`` = number of examples with D-correct = i and
        M-correct = j; so ``T[..., 0, 1]`` is T01, M right and D wrong. The four counts add to N.
    """
    d, m = d_correct.bool(), m_correct.bool().to(d_correct.device)
    if d.shape[-1] != m.shape[-1]:
        raise ValueError(f"d_correct has {d.shape[-1]} examples but m_correct has {m.shape[-1]}: "
                         "both must describe the same examples in the same order")
    counts = [((d == bool(i)) & (m == bool(j))).sum(-1) for i in (0, 1) for j in (0, 1)]
    return torch.stack(counts, -1).unflatten(-1, (2, 2))


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
        warnings.warn(f"{symbol} is undefined (NaN) where M classifies no example {which}: "
                      f"the subset it is D's accuracy on is empty", RuntimeWarning, stacklevel=3)
    return torch.where(empty, torch.nan, t[..., 1, m].double() / n_subset.clamp_min(1).double())


def r_plus(t: torch.Tensor) -> torch.Tensor:
    """R+ = T11 / (T11 + T01): D's accuracy on the examples M classifies correctly.

    ``t``: ``(..., 2, 2)`` from :func:`contingency` → ``(...)`` float64 in [0, 1]. Where M
    classifies *no* example correctly the subset is empty and R+ is undefined: the result is NaN
    there and a ``RuntimeWarning`` says so (it never happens silently).
    """
    return _subset_accuracy(t, 1, "R+")


def r_minus(t: torch.Tensor) -> torch.Tensor:
    """R− = T10 / (T10 + T00): D's accuracy on the examples M classifies incorrectly.

    ``t``: ``(..., 2, 2)`` → ``(...)`` float64 in [0, 1]. Where M classifies *every* example
    correctly R− is undefined: NaN there, with a ``RuntimeWarning``.
    """
    return _subset_accuracy(t, 0, "R-")


def r_pm(t: torch.Tensor) -> torch.Tensor:
    """R± = R+ / R−, the ratio of D's accuracies on the M-correct and the M-incorrect examples.

    1 when D is as accurate on both subsets (D's successes unrelated to M's, as at a random
    initialisation); above 1 when D favours the examples M gets right. The poster's expanded
    formula, T11·T10 / ((T11 + T01)(T10 + T00)), equals R+·R−, not this ratio.

    ``t``: ``(..., 2, 2)`` → ``(...)`` float64. Zero denominators, defined:

    - R− = 0 and R+ > 0 (D right on some M-correct examples but on no M-incorrect one): ``+inf``;
    - R− = 0 and R+ = 0 (D right on neither subset): ``1.0``, equal (zero) accuracies;
    - an empty subset (R+ or R− undefined): NaN, with the ``RuntimeWarning`` of :func:`r_plus`
      or :func:`r_minus`.
    """
    rp, rm = r_plus(t), r_minus(t)
    return torch.where((rp == 0) & (rm == 0), 1.0, rp / rm)


# ---------------------------------------------------------------------------------------------
# D: training with T tracked on a grid of steps
# ---------------------------------------------------------------------------------------------


#: D at paper scale per data set: its architecture (:data:`memkit.models.ARCHS`) and its optimiser
#: (the paper names only the architectures; ``epochs`` is set by the notebook). The 32×32 networks
#: train one seed after another (batch norm) under bfloat16 autocast on CUDA.
PAPER_D: dict[str, tuple[str, SGD]] = {
    "mnist": ("cnn", SGD(lr=0.01, batch_size=64, momentum=0.9)),
    "cifar10": ("densenet121", SGD(lr=0.1, batch_size=64, momentum=0.9, weight_decay=1e-4,
                                   schedule="cosine", augment=True, autocast=True)),
    "cifar100": ("resnet101", SGD(lr=0.1, batch_size=128, momentum=0.9, weight_decay=5e-4,
                                  schedule="cosine", augment=True, autocast=True)),
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
        raise ValueError(f"total_steps={total_steps}, steps_per_epoch={steps_per_epoch} must be >= 1 "
                         f"and n_log={n_log} >= 0")
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

    def contingency(self, m_correct: torch.Tensor) -> torch.Tensor:
        """``(G, S, 2, 2)`` T of every seed at every grid step against M's ``(N,)`` correctness."""
        return contingency(self.correct, m_correct)

    def first_right(self) -> np.ndarray:
        """``(S, N)`` per seed and test example, the epoch of the first grid step from which the
        seed classifies the example correctly at every later grid step (to the end); NaN when it
        is wrong at the end."""
        stays = self.correct.flip(0).cummin(0).values.flip(0)  # (G, S, N): right from here to the end
        n_right = stays.sum(0).numpy()
        first = self.epochs[np.clip(len(self.steps) - n_right, 0, len(self.steps) - 1)]
        return np.where(n_right > 0, first, np.nan)


def train_tracked(ds: Dataset, arch: str, sgd: SGD, *, n_seeds: int, n_log: int = 50, seed: int = 0,
                  device: str | torch.device | None = None, progress: bool = True) -> Trajectory:
    """Train S = ``n_seeds`` seeds of D (architecture ``arch``, :func:`memkit.models.factory`) from
    random initialisations on ``ds`` for ``sgd.epochs`` epochs and record, after each step of
    ``log_step_grid(total, steps_per_epoch, n_log)``, which test examples each seed classifies
    correctly (in eval mode).

    Training is :func:`memkit.training.train_seeds` with ``sgd``: one batched Ensemble for models
    without batch norm, else (DenseNet121, ResNet101) one seed after another; both give the same
    model for a seed (to float tolerance).
    """
    if n_seeds < 1:
        raise ValueError(f"n_seeds={n_seeds} must be at least 1")
    if sgd.augment and ds.x_train.ndim != 4:
        raise ValueError(f"augment=True needs images (N, C, H, W); {ds.name} inputs are "
                         f"{tuple(ds.x_train.shape)}: set augment=False")
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
    seeds = train_seeds(factory, ds.x_train, ds.y_train, sgd, n_seeds=n_seeds, seed=seed, device=device,
                        callback=record, progress=progress, desc=f"{ds.name} {arch}")
    correct = torch.cat([torch.stack(r) for r in rows.values()], dim=1)  # (G, S, N)
    return Trajectory(np.asarray(sorted(want)), per_epoch, correct, seeds.seeds, time.perf_counter() - t0,
                      "ensemble" if seeds.batched else "loop")


# ---------------------------------------------------------------------------------------------
# R± over training: summaries, the poster's figure, the paper's numbers
# ---------------------------------------------------------------------------------------------

#: The paper's final test accuracies in % (poster, "Final maximum accuracies achieved by these
#: classifiers"), with the name of its D.
PAPER_ACCURACY: dict[str, dict[str, Any]] = {
    "mnist": {"svm": 97.92, "rf": 96.14, "D": 98.8, "arch": "2-layer CNN"},
    "cifar10": {"svm": 40.08, "rf": 35.86, "D": 95.04, "arch": "DenseNet121"},
    "cifar100": {"svm": 14.42, "rf": 14.26, "D": 77.78, "arch": "ResNet101"},
}


def peak(r: torch.Tensor | np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per seed, the largest value of a ``(G, S)`` curve over the grid ``x`` ``(G,)`` (steps or
    epochs) and the ``x`` at which it is first reached, NaN entries ignored: two ``(S,)`` arrays."""
    r = np.asarray(r, dtype=float)
    r = np.where(np.isnan(r), -np.inf, r)  # keep +inf (R− = 0 < R+) a peak of +inf
    return r.max(0), np.asarray(x)[r.argmax(0)]


@dataclass(frozen=True)
class Curves:
    """T of S seeds of D against one M at every grid step, and the quantities read from it
    (:func:`curves` computes them).

    Attributes:
        steps: ``(G,)`` SGD updates done (0 = random initialisation).
        steps_per_epoch: updates per epoch.
        t: ``(G, S, 2, 2)`` int64 contingency matrices (:func:`contingency`).
        r_plus, r_minus, r_pm: ``(G, S)`` R+ (D's accuracy on the M-correct test examples), R−
            (on the M-incorrect ones) and R± = R+/R−.
        acc_d: ``(G, S)`` accuracy of D.
    """

    steps: np.ndarray
    steps_per_epoch: int
    t: torch.Tensor
    r_plus: np.ndarray
    r_minus: np.ndarray
    r_pm: np.ndarray
    acc_d: np.ndarray

    @property
    def epochs(self) -> np.ndarray:
        """``(G,)`` the grid in epochs."""
        return self.steps / self.steps_per_epoch

    @property
    def acc_m(self) -> float:
        """Accuracy of M (the same at every step and for every seed)."""
        return float(accuracy_m(self.t[0, 0]))

    def start_pooled(self) -> float:
        """R± at the random initialisation, from T summed over the seeds (less dependent on the
        class that one untrained D happens to predict than any single seed's value)."""
        return float(r_pm(self.t[0].sum(0)))

    def peak(self) -> tuple[np.ndarray, np.ndarray]:
        """Per seed, the highest R± and the epoch at which it is reached: two ``(S,)`` arrays."""
        return peak(self.r_pm, self.epochs)


def curves(traj: Trajectory, m_correct: torch.Tensor) -> Curves:
    """The :class:`Curves` of trajectory ``traj`` against M's ``(N,)`` test correctness."""
    t = traj.contingency(m_correct)
    return Curves(traj.steps, traj.steps_per_epoch, t, r_plus(t).numpy(), r_minus(t).numpy(), r_pm(t).numpy(),
                  accuracy_d(t).numpy())


#: Colours of the curves in :func:`plot_curves` (quantities of T, not kinds of data).
CURVE_COLORS = {"R±": "#222222", "R+": "#2ca02c", "R-": "#d62728", "D": "#1f77b4", "M": "#7f7f7f",
                "T00": "#7f7f7f", "T01": "#ff7f0e", "T10": "#9467bd", "T11": "#2ca02c"}


def plot_curves(axes: Sequence[Any], c: Curves, title: str) -> None:
    """The poster's three panels for one data set and one M, on three axes (one column):
    R± over training; R+, R− and D's accuracy (M's dashed); the four counts of T. Lines are means
    over the seeds, bands span min to max over the seeds; x is the training step on a symlog axis
    (linear below 1), with the end of the first epoch dotted."""
    x = c.steps
    ax1, ax2, ax3 = axes
    figures.band(ax1, x, c.r_pm.T, CURVE_COLORS["R±"], "R± = R+ / R−")
    ax1.axhline(1.0, color="k", lw=0.8, ls=":")
    ax1.annotate("1 epoch", (c.steps_per_epoch, 1), xytext=(-3, -3), textcoords="offset points",
                 xycoords=("data", "axes fraction"), ha="right", va="top", fontsize=8)
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
