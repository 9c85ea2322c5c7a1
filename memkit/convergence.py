"""Time to convergence on real data vs noise (notebook 03, Fig. 6).

Arpit et al. 2017, *A Closer Look at Memorization in Deep Networks*, §3.3, Fig. 6 (poster Fig. 2):
T, "how many epochs it takes to reach 100% training accuracy", against the training-set size N
at a fixed width and against the width at a fixed N. For noise T grows much faster with N, and
extra capacity shortens it more, than for real data. Here every (width, N) of a grid is trained
(:func:`convergence_sweep`), so the size effect is measured at every width: it needs a network
that is small for its data, and :func:`relative_slowdown` per width shows where it holds.
Training, data stacks and the MLPs are those of :mod:`memkit.capacity`.

Runs that do not reach 100% training accuracy within the epoch budget are **right-censored**: their
T is only known to exceed the budget. :class:`TimeToFit` keeps them, and every summary is an
interval ``(lo, hi)`` that is exact where the data decide it and open-ended (``hi = inf``) where
censoring hides the answer, so a claim computed from the lower end of an interval is conservative.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from matplotlib.axes import Axes
from tqdm.auto import tqdm

from memkit import figures, results, training
from memkit.capacity import Stack, data_index, load_stack, log_width_axis, train
from memkit.data import Dataset, Kind
from memkit.device import pick_device
from memkit.training import SGD

FIGURE = "Arpit et al. 2017 Fig. 6 (poster Fig. 2)"
Interval = tuple[np.ndarray, np.ndarray]
# A numpy index of the leading axes of a TimeToFit's arrays: an integer, a slice, a list or array of
# indices, or a tuple of them.
Index = int | slice | list[int] | np.ndarray | tuple[int | slice | list[int] | np.ndarray, ...]


@dataclass(frozen=True)
class TimeToFit:
    """T, the number of epochs to 100% training accuracy, of S runs per setting.

    Attributes:
        epochs: ``(..., S)`` int: the first epoch count at whose end every training example was
            classified as labelled (0: before training); ``budget`` for a censored run.
        converged: ``(..., S)`` bool; False marks a right-censored run: T > ``budget``.
        budget: the epoch budget.
        first_fit: ``(..., S, N)`` int or ``None``: the first epoch count at whose end each training
            example was classified as labelled (0: before training; -1: not within the budget).
            Kept by :func:`epochs_to_fit`, dropped by :meth:`stack` (sizes N differ).
    """

    epochs: np.ndarray
    converged: np.ndarray
    budget: int
    first_fit: np.ndarray | None = None

    def __getitem__(self, index: Index) -> TimeToFit:
        """The settings at ``index`` of the leading axes (numpy indexing), without :attr:`first_fit`."""
        return TimeToFit(self.epochs[index], self.converged[index], self.budget)

    @property
    def n_censored(self) -> np.ndarray:
        """``(...)`` number of censored runs per setting."""
        return (~self.converged).sum(-1)

    def median(self) -> Interval:
        """The median of T over the S runs, as an interval ``(lo, hi)`` of ``(...)`` arrays.

        Censored runs count as T = budget for ``lo`` and T = ∞ for ``hi``: lo = hi (exact) when
        fewer than half of the runs are censored, else ``hi = inf`` and ``lo`` a lower bound.
        """
        t = self.epochs.astype(float)
        return np.median(t, -1), np.median(np.where(self.converged, t, np.inf), -1)

    def summary(self) -> dict[str, object]:
        """For the result JSON: the epochs, which runs converged, and the censored count."""
        return {
            "epochs": self.epochs.tolist(),
            "converged": self.converged.tolist(),
            "budget": self.budget,
            "runs": int(self.epochs.size),
            "censored": int(self.n_censored.sum()),
        }

    @staticmethod
    def stack(times: Sequence[TimeToFit]) -> TimeToFit:
        """Stack settings along a new leading axis (all with one budget)."""
        budgets = {t.budget for t in times}
        if len(budgets) != 1:
            raise ValueError(f"cannot stack runs with different epoch budgets {sorted(budgets)}")
        return TimeToFit(np.stack([t.epochs for t in times]), np.stack([t.converged for t in times]), budgets.pop())


def epochs_to_fit(
    stack: Stack,
    width: int,
    sgd: SGD,
    *,
    depth: int,
    n_seeds: int,
    budget: int,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> TimeToFit:
    """Train with ``sgd`` until each member fits its training set (100% training accuracy), checked before
    training and after every epoch; a member that fits stops training (batched: it is frozen,
    ``ensemble.active``, while the others go on) and training ends when all have fit or after
    ``budget`` epochs. Returns T of shape ``(D, S)``, with every example's first fit ``(D, S, N)``."""
    if budget < 1:
        raise ValueError(f"budget={budget} epochs: give at least 1")
    stack, index = stack.to(pick_device(device)), data_index(stack, n_seeds)  # once, not at every check
    epochs = torch.full((len(index),), budget, dtype=torch.int64)
    done = torch.zeros(len(index), dtype=torch.bool)
    first = torch.full((len(index), stack.n_train), -1, dtype=torch.int64)

    def check(models: training.Seeds, step: training.Step) -> bool:
        rows = torch.tensor(models.members)
        if step.step == 0 or step.end_of_epoch:
            right = models.correct(stack.x_train, stack.y_train, index).cpu()  # (S', N)
            first[rows] = torch.where((first[rows] < 0) & right, step.epoch, first[rows])
            fits = right.all(1) & ~done[rows]
            epochs[rows[fits]] = step.epoch
            done[rows] |= fits
            if models.ensemble is not None:  # batched
                models.ensemble.active &= ~done.to(models.device)
        return bool(done[rows].all())

    train(
        stack,
        width,
        replace(sgd, epochs=budget),
        depth=depth,
        n_seeds=n_seeds,
        seed=seed,
        device=device,
        callback=check,
    )
    shape = (len(stack.kinds), n_seeds)
    return TimeToFit(epochs.view(shape).numpy(), done.view(shape).numpy(), budget, first.view(*shape, -1).numpy())


def convergence_sweep(
    load: Callable[..., Dataset],
    name: str,
    kinds: Sequence[Kind],
    sgd: SGD,
    *,
    sizes: Sequence[int],
    widths: Sequence[int],
    depth: int,
    n_seeds: int,
    budget: int,
    size: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    log: Callable[[str], None] | None = print,
    progress: bool = False,
) -> tuple[TimeToFit, np.ndarray]:
    """Fig. 6's runs: T at every training-set size in ``sizes`` (the first N examples) and every
    width in ``widths``. ``load`` as in :func:`memkit.capacity.load_stack`; ``progress`` shows a
    bar over the settings.

    Returns T of shape ``(len(widths), len(sizes), D, S)`` (a slice is either panel of Fig. 6) and
    the per-example first fit ``(len(widths), D, S, max(sizes))`` at the largest size
    (:attr:`TimeToFit.first_fit`).
    """
    if not sizes or not widths:
        raise ValueError(f"sizes={list(sizes)} and widths={list(widths)} must each name at least one setting")
    runs: dict[tuple[int, int], TimeToFit] = {}
    bar = tqdm(
        total=len(sizes) * len(widths), desc=f"{name} time to fit", unit="setting", disable=not progress, leave=False
    )
    for n in sizes:
        stack = load_stack(load, name, kinds, n_train=n, n_test=2, size=size)  # once per size
        for w in widths:
            bar.update()
            t0 = time.perf_counter()
            t = runs[w, n] = epochs_to_fit(
                stack, w, sgd, depth=depth, n_seeds=n_seeds, budget=budget, seed=seed, device=device
            )
            if log:
                lo, hi = t.median()
                medians = ", ".join(
                    f"{k.label} {m:.0f}" if np.isfinite(h) else f"{k.label} ≥{m:.0f}"
                    for k, m, h in zip(kinds, lo, hi, strict=True)
                )
                log(
                    f"{name}: N={n} width {w}: median T {medians} epochs; {int(t.n_censored.sum())} of "
                    f"{t.epochs.size} runs censored; {time.perf_counter() - t0:.1f} s"
                )
    bar.close()
    grid = TimeToFit.stack([TimeToFit.stack([runs[w, n] for n in sizes]) for w in widths])
    first_fit: list[np.ndarray] = []
    for w in widths:
        f = runs[w, max(sizes)].first_fit
        assert f is not None  # fit_times records every example's first fit
        first_fit.append(f)
    return grid, np.stack(first_fit)


def divide(a: Interval, b: Interval) -> Interval:
    """The interval of a/b for positive intervals ``a`` and ``b``: ``(a_lo / b_hi, a_hi / b_lo)``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(a[0] / b[1]), np.asarray(a[1] / b[0])


def normalised_time(t: TimeToFit, ref: int) -> Interval:
    """Median T at every setting of the leading axis divided by the median T at setting ``ref``
    (the poster's normalised time to convergence): an interval of ``(P, ...)`` arrays."""
    lo, hi = t.median()
    return divide((lo, hi), (lo[ref], hi[ref]))


def relative_slowdown(t: TimeToFit, num: int, den: int, kind: int, real: int = 0) -> np.ndarray:
    """How much more T changes for ``kind`` than for real data between settings ``num`` and ``den``
    of the leading axis of ``t`` ``(P, D, S)``, per seed s:
    [T_kind,s(num) / T_kind,s(den)] / [T_real,s(num) / T_real,s(den)].

    Returns ``(S,)``: the lower end of the interval that censoring leaves (0 when it leaves no
    bound; a censored run's T lies in [budget, ∞)), so a claim ``min > threshold`` is conservative.
    E.g. ``num`` the largest training set and ``den`` the smallest (time grows faster for noise),
    or ``num`` the narrowest net and ``den`` the widest (capacity shortens noise fitting more).
    """
    lo, hi = t.epochs.astype(float), np.where(t.converged, t.epochs, np.inf)
    change = divide((lo[num], hi[num]), (lo[den], hi[den]))
    return divide((change[0][kind], change[1][kind]), (change[0][real], change[1][real]))[0]


def noisiest(kinds: Sequence[Kind]) -> list[int]:
    """Indices of the noisiest kind of each corruption in ``kinds`` (the kinds the claims are made for)."""
    top = {k.corruption: max(j.p for j in kinds if j.corruption == k.corruption) for k in kinds if k.corruption}
    return [d for d, k in enumerate(kinds) if k.corruption and k.p == top[k.corruption]]


def claims(
    name: str,
    t: TimeToFit,
    kinds: Sequence[Kind],
    sizes: Sequence[int],
    widths: Sequence[int],
    *,
    width: int,
    n: int,
    asserted: bool = True,
) -> list[results.Claim]:
    """Fig. 6's claims for data set ``name`` from T ``(W, N, D, S)`` (:func:`convergence_sweep`), for
    the noisiest kind of each corruption, each the worst seed of :func:`relative_slowdown` > 1.5
    (the noise's change half again as large as real data's):

    - ``time-vs-size``: from the smallest to the largest N at ``width``; the same at the widest
      width is reported only (the effect needs a network small for its data);
    - ``time-vs-capacity``: from the widest to the narrowest net at ``n`` examples.
    """
    wi, ni, n_lo, n_hi = list(widths).index(width), list(sizes).index(n), int(np.argmin(sizes)), int(np.argmax(sizes))
    w_lo, w_hi = int(np.argmin(widths)), int(np.argmax(widths))
    out = []
    for d in noisiest(kinds):
        k = kinds[d]
        for w in dict.fromkeys([wi, w_hi]):
            out.append(
                results.Claim(
                    f"{name}-time-vs-size-{k.key}" + ("" if w == wi else f"-width{widths[w]}"),
                    f"time to fit grows with data size faster for {k.label} than for real data (width {widths[w]})",
                    f"T growth N={sizes[n_hi]} vs {sizes[n_lo]}: {k.label} / real, worst seed",
                    relative_slowdown(t[w, [n_hi, n_lo]], 0, 1, d).min(),
                    1.5,
                    ">",
                    FIGURE,
                    asserted and w == wi,
                )
            )
        out.append(
            results.Claim(
                f"{name}-time-vs-capacity-{k.key}",
                f"extra capacity shortens fitting {k.label} more than real data",
                f"T ratio width {widths[w_lo]} vs {widths[w_hi]} (N={n}): {k.label} / real, worst seed",
                relative_slowdown(t[[w_lo, w_hi], ni], 0, 1, d).min(),
                1.5,
                ">",
                FIGURE,
                asserted,
            )
        )
    return out


# ------------------------------------------------------------------------------------- figures


def plot_time(ax: Axes, x: Sequence[int], t: TimeToFit, kinds: Sequence[Kind], ref: int, xlabel: str) -> None:
    """Fig. 6, one panel: median T over seeds divided by the median at setting ``ref``, against
    ``x``, censored runs counted at the budget. Filled circles: exact; open triangles: a lower
    bound (the median is censored). A dotted curve: the median at ``ref`` is itself censored, so
    the curve is not a normalised time. Small dots: single runs divided by the median at ``ref``;
    crosses: censored runs, at the budget. The legend counts the censored runs."""
    lo, hi = t.median()
    _, bound_hi = normalised_time(t, ref)
    xs = np.asarray(x, dtype=float)
    for d, kind in enumerate(kinds):
        color, ref_exact = kind.color, bool(np.isfinite(hi[ref, d]))
        y, exact = lo[:, d] / lo[ref, d], np.isfinite(bound_hi[:, d])
        n_cens, n_runs = int(t.n_censored[:, d].sum()), t.converged[:, d].size
        label = f"{kind.label} ({n_cens}/{n_runs} censored{'' if ref_exact else '; reference censored'})"
        ax.plot(xs, y, "-" if ref_exact else ":", color=color, lw=2, label=label)
        ax.plot(xs[exact], y[exact], "o", color=color, ms=6)
        ax.plot(xs[~exact], y[~exact], "^" if ref_exact else "o", mfc="white", mec=color, mew=1.5, ms=8)
        runs, c = t.epochs[:, d] / lo[ref, d], t.converged[:, d]
        grid = np.broadcast_to(xs[:, None], runs.shape)
        ax.plot(grid[c], runs[c], ".", color=color, alpha=0.5, ms=4)
        ax.plot(grid[~c], runs[~c], "x", color=color, alpha=0.8, ms=5)
    ax.axhline(1.0, color="0.5", lw=0.8, zorder=0)
    log_width_axis(ax, x)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"normalised time: T / T({xlabel.split()[0]} = {x[ref]})")
    ax.legend(fontsize=8, title="open ▲ / ×: censored (≥)", title_fontsize=8)


def time_rows(x: Sequence[int], t: TimeToFit, kinds: Sequence[Kind], what: str) -> tuple[list[str], list[list[str]]]:
    """A table of T in epochs (header, rows for :meth:`memkit.experiment.Run.table`), one row per
    kind, one column per setting ``x``: the median over seeds (``≥budget`` when censoring hides
    it), [min–max] over the runs that converged, and the number of censored runs."""

    def cell(e: np.ndarray, c: np.ndarray) -> str:
        lo, hi = TimeToFit(e, c, t.budget).median()
        text = f"{lo:.0f}" if np.isfinite(hi) else f"≥{t.budget}"
        if c.any():
            text += f" [{e[c].min()}–{e[c].max()}]"
        return text + (f", {int((~c).sum())}/{len(c)} cens." if not c.all() else "")

    return (
        [f"kind \\ {what}", *map(str, x)],
        [[k.label, *(cell(t.epochs[i, d], t.converged[i, d]) for i in range(len(x)))] for d, k in enumerate(kinds)],
    )


def plot_size_effect(
    ax: Axes, t: TimeToFit, kinds: Sequence[Kind], sizes: Sequence[int], widths: Sequence[int], threshold: float = 1.5
) -> None:
    """Where the size effect holds: :func:`relative_slowdown` from the smallest to the largest N
    against the width, for every noise kind: mean over seeds and the band from worst to best seed
    (lower bounds where runs are censored), with 1 (no effect) and the claims' ``threshold``."""
    hi, lo = int(np.argmax(sizes)), int(np.argmin(sizes))
    for d, k in enumerate(kinds):
        if k.corruption:
            per_seed = np.stack([relative_slowdown(t[i, [hi, lo]], 0, 1, d) for i in range(len(widths))])
            figures.band(ax, widths, per_seed.T, k.color, k.label, marker="o")
    ax.axhline(1.0, color="0.5", lw=0.8, zorder=0)
    ax.axhline(threshold, color="k", lw=0.8, ls=":", zorder=0)
    log_width_axis(ax, widths)
    ax.set_xlabel("width (hidden units per layer)")
    ax.set_ylabel(f"T growth N={sizes[hi]} vs {sizes[lo]}, relative to real")
    ax.legend(fontsize=8, title=f"dotted: claim threshold {threshold:g}", title_fontsize=8)
