"""Capacity and time to convergence on real data vs noise (notebook 03).

Arpit et al. 2017, *A Closer Look at Memorization in Deep Networks*, §3.3, Figs. 5–6 (poster
"Deep Nets Don't Learn via Memorization", Figs. 1–2):

- **Capacity** (Fig. 5): validation accuracy of 2-layer ReLU MLPs (``depth`` hidden layers of
  equal width, 2 in the paper) against the number of hidden units per layer, for noise levels p
  of randX and randY. Real data reaches near-maximal accuracy with few units; the more noise, the
  more units are needed. Summarised by
  :func:`width_for_fraction_of_best`, the width at which a curve reaches a fraction (0.95) of its
  best accuracy.
- **Time to convergence** (Fig. 6): T, the number of epochs to 100% training accuracy, against
  the training-set size N at a fixed width and against the width at a fixed N. For noise T grows
  much faster with N, and extra capacity shortens it more, than for real data.

One :class:`memkit.training.Ensemble` trains every noise level × seed at once: the D versions of
the data set are stacked (:class:`Stack`) and member ``d·S + s`` trains seed ``s`` on version ``d``
(``fit(..., data_index=...)``). Widths are separate ensembles: zero-padding narrow nets into the
widest one would be exact only with each block re-initialised at its own fan-in, and at paper scale
(widths up to 4096) it would multiply the compute by about the number of widths.

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

from memkit import data, figures, models, training
from memkit.data import Kind
from memkit.training import SGD

Interval = tuple[np.ndarray, np.ndarray]


# ----------------------------------------------------------------------------------------- data

@dataclass(frozen=True)
class Stack:
    """D versions of one data set, one per kind of data (:class:`memkit.data.Kind`), stacked so that one ensemble
    trains on all of them.

    Attributes:
        x_train: ``(D, N, *input_shape)`` float32, version ``d`` corrupted as ``kinds[d]``.
        y_train: ``(D, N)`` int64, the labels each version is trained on.
        x_val, y_val: ``(D, M, *input_shape)`` and ``(D, M)``: the clean held-out split (the data
            set's test split), standardised with version ``d``'s training statistics.
    """

    name: str
    kinds: tuple[Kind, ...]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    n_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[2:])

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[1])

    def to(self, device: str | torch.device) -> Stack:
        """A copy with every tensor on ``device`` (no copy for tensors already there)."""
        return replace(self, **{k: getattr(self, k).to(device) for k in ("x_train", "y_train", "x_val", "y_val")})


def load_stack(name: str, kinds: Sequence[Kind], *, n_train: int | None = None, n_val: int | None = None,
               size: int | None = None, seed: int = 0) -> Stack:
    """Load data set ``name`` once per kind with :func:`memkit.data.load` and stack the versions.

    The first ``n_train`` training and ``n_val`` test examples are kept (``None``: all); ``seed``
    fixes which examples are corrupted and the noise.
    """
    if not kinds:
        raise ValueError("kinds is empty: pass at least one kind, e.g. [data.REAL] for real data")
    sets = [data.load(name, n_train=n_train, n_test=n_val, size=size, corruption=k.corruption, p=k.p, seed=seed)
            for k in kinds]
    return Stack(name, tuple(kinds), *(torch.stack([getattr(d, a) for d in sets])
                                       for a in ("x_train", "y_train", "x_test", "y_test")), sets[0].n_classes)


# ------------------------------------------------------------------------------------- training

def ensemble(stack: Stack, width: int, *, depth: int, n_seeds: int, seed: int = 0,
             device: str | torch.device | None = None) -> tuple[training.Ensemble, torch.Tensor]:
    """An ensemble of D·S MLPs with ``depth`` hidden layers of ``width`` units: member ``d·S + s``
    is seed ``s`` on version ``d`` of ``stack``. Returns it and its ``(D·S,)`` data index."""
    if width < 1 or depth < 1 or n_seeds < 1:
        raise ValueError(f"width={width}, depth={depth}, n_seeds={n_seeds}: each must be at least 1")
    d = len(stack.kinds)
    ens = training.Ensemble(lambda: models.mlp(stack.input_shape, [width] * depth, stack.n_classes),
                            d * n_seeds, seed=seed, device=device)
    return ens, torch.arange(d, device=ens.device).repeat_interleave(n_seeds)


def validation_curves(stack: Stack, width: int, sgd: SGD, *, depth: int, n_seeds: int, epochs: int,
                      seed: int = 0, device: str | torch.device | None = None) -> torch.Tensor:
    """Validation accuracy after every epoch of ``sgd`` (its ``epochs`` replaced by ``epochs``):
    ``(epochs, D, S)`` on the CPU, in [0, 1]."""
    ens, index = ensemble(stack, width, depth=depth, n_seeds=n_seeds, seed=seed, device=device)
    stack = stack.to(ens.device)  # once, not at every evaluation
    curves: list[torch.Tensor] = []

    def record(ens: training.Ensemble, step: training.Step) -> None:
        if step.end_of_epoch:
            curves.append(ens.accuracy(stack.x_val, stack.y_val, data_index=index).view(-1, n_seeds).cpu())

    training.fit(ens, stack.x_train, stack.y_train, replace(sgd, epochs=epochs), callback=record, data_index=index)
    return torch.stack(curves)


def validation_accuracy(curves: torch.Tensor, how: str = "best") -> torch.Tensor:
    """Reduce validation curves ``(..., epochs, D, S)`` (from :func:`validation_curves` or
    :func:`capacity_sweep`) over the epochs to ``(..., D, S)``: ``"best"`` takes the best epoch
    (early stopping on the held-out split), ``"final"`` the last."""
    if how == "best":
        return curves.max(-3).values
    if how == "final":
        return curves[..., -1, :, :]
    raise ValueError(f"how={how!r}: use 'best' (best epoch) or 'final' (last epoch)")


def capacity_sweep(stack: Stack, widths: Sequence[int], sgd: SGD, *, depth: int, n_seeds: int, epochs: int,
                   seed: int = 0, device: str | torch.device | None = None,
                   log: Callable[[str], None] | None = print, progress: bool = False) -> torch.Tensor:
    """Fig. 5's runs: :func:`validation_curves` for every width, ``(W, epochs, D, S)``;
    ``progress`` shows a bar over the widths."""
    out = []
    for w in tqdm(widths, desc=f"{stack.name} capacity", unit="width", disable=not progress, leave=False):
        t0 = time.perf_counter()
        out.append(validation_curves(stack, w, sgd, depth=depth, n_seeds=n_seeds, epochs=epochs, seed=seed,
                                     device=device))
        if log:
            log(f"{stack.name}: width {w}: {epochs} epochs in {time.perf_counter() - t0:.1f} s")
    return torch.stack(out)


def width_for_fraction_of_best(widths: Sequence[int], accuracy: np.ndarray | torch.Tensor,
                               fraction: float = 0.95) -> np.ndarray:
    """The width at which validation accuracy first reaches ``fraction`` of its best.

    ``accuracy``: ``(W, ...)``, one curve over ``widths`` (ascending) for every trailing index;
    the best is the curve's maximum over the widths. Between two grid widths the crossing is
    interpolated linearly in log(width); a curve already above the target at the smallest width
    gives the smallest width (an upper bound). Returns ``(...)`` floats in units of hidden units.
    """
    w = np.asarray(widths, dtype=float)
    acc = np.asarray(accuracy, dtype=float)
    if w.ndim != 1 or len(w) != len(acc) or np.any(np.diff(w) <= 0) or w[0] <= 0:
        raise ValueError(f"widths {list(widths)} must be positive, ascending, one per row of accuracy "
                         f"(shape {acc.shape})")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction={fraction} must lie in (0, 1]")

    def crossing(curve: np.ndarray) -> float:
        target = fraction * curve.max()
        i = int(np.argmax(curve >= target))
        if i == 0:
            return float(w[0])
        a0, a1, l0, l1 = curve[i - 1], curve[i], np.log(w[i - 1]), np.log(w[i])
        return float(np.exp(l0 + (target - a0) / (a1 - a0) * (l1 - l0)))

    return np.apply_along_axis(crossing, 0, acc)


# ---------------------------------------------------------------------------- time to convergence

@dataclass(frozen=True)
class TimeToFit:
    """T, the number of epochs to 100% training accuracy, of S runs per setting.

    Attributes:
        epochs: ``(..., S)`` int: the first epoch count at whose end every training example was
            classified as labelled (0: before training); ``budget`` for a censored run.
        converged: ``(..., S)`` bool; False marks a right-censored run: T > ``budget``.
        budget: the epoch budget.
    """

    epochs: np.ndarray
    converged: np.ndarray
    budget: int

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
        return {"epochs": self.epochs.tolist(), "converged": self.converged.tolist(), "budget": self.budget,
                "runs": int(self.epochs.size), "censored": int(self.n_censored.sum())}

    @staticmethod
    def stack(times: Sequence[TimeToFit]) -> TimeToFit:
        """Stack settings along a new leading axis (all with one budget)."""
        budgets = {t.budget for t in times}
        if len(budgets) != 1:
            raise ValueError(f"cannot stack runs with different epoch budgets {sorted(budgets)}")
        return TimeToFit(np.stack([t.epochs for t in times]), np.stack([t.converged for t in times]), budgets.pop())


def epochs_to_fit(stack: Stack, width: int, sgd: SGD, *, depth: int, n_seeds: int, budget: int,
                  seed: int = 0, device: str | torch.device | None = None) -> TimeToFit:
    """Train with ``sgd`` until each member fits its training set (100% training accuracy), checked before
    training and after every epoch; a member that fits is frozen (``ens.active``) and training
    stops when all have fit or after ``budget`` epochs. Returns T of shape ``(D, S)``."""
    if budget < 1:
        raise ValueError(f"budget={budget} epochs: give at least 1")
    ens, index = ensemble(stack, width, depth=depth, n_seeds=n_seeds, seed=seed, device=device)
    stack = stack.to(ens.device)  # once, not at every check
    epochs = torch.full((len(ens),), budget, dtype=torch.int64)

    def check(ens: training.Ensemble, step: training.Step) -> bool:
        if step.step == 0 or step.end_of_epoch:
            fits = (ens.accuracy(stack.x_train, stack.y_train, data_index=index) == 1) & ens.active
            epochs[fits.cpu()] = step.epoch
            ens.active &= ~fits
        return not bool(ens.active.any())

    training.fit(ens, stack.x_train, stack.y_train, replace(sgd, epochs=budget), callback=check, data_index=index)
    shape = (len(stack.kinds), n_seeds)
    return TimeToFit(epochs.view(shape).numpy(), (~ens.active).view(shape).cpu().numpy(), budget)


def convergence_sweep(name: str, kinds: Sequence[Kind], sgd: SGD, *, sizes: Sequence[int], widths: Sequence[int],
                      n_fixed: int, width_fixed: int, depth: int, n_seeds: int, budget: int,
                      size: int | None = None, seed: int = 0, device: str | torch.device | None = None,
                      log: Callable[[str], None] | None = print,
                      progress: bool = False) -> tuple[TimeToFit, TimeToFit]:
    """Fig. 6's runs: T against the training-set size (``sizes``, width ``width_fixed``) and
    against the width (``widths``, size ``n_fixed``). The setting both share is trained once.
    ``progress`` shows a bar over the settings.

    Returns ``(by_size, by_width)``: TimeToFit of shapes ``(len(sizes), D, S)`` and ``(len(widths), D, S)``.
    """
    if not sizes or not widths:
        raise ValueError(f"sizes={list(sizes)} and widths={list(widths)} must each name at least one setting")
    points = list(dict.fromkeys([(n, width_fixed) for n in sizes] + [(n_fixed, w) for w in widths]))
    runs: dict[tuple[int, int], TimeToFit] = {}
    for n, w in tqdm(points, desc=f"{name} time to fit", unit="setting", disable=not progress, leave=False):
        t0 = time.perf_counter()
        stack = load_stack(name, kinds, n_train=n, n_val=1, size=size, seed=seed)
        runs[n, w] = epochs_to_fit(stack, w, sgd, depth=depth, n_seeds=n_seeds, budget=budget, seed=seed,
                                   device=device)
        if log:
            lo, hi = runs[n, w].median()
            medians = ", ".join(f"{k.label} {m:.0f}" if np.isfinite(h) else f"{k.label} ≥{m:.0f}"
                                for k, m, h in zip(kinds, lo, hi))
            log(f"{name}: N={n} width {w}: median T {medians} epochs; {int(runs[n, w].n_censored.sum())} of "
                f"{runs[n, w].epochs.size} runs censored; {time.perf_counter() - t0:.1f} s")
    return (TimeToFit.stack([runs[n, width_fixed] for n in sizes]),
            TimeToFit.stack([runs[n_fixed, w] for w in widths]))


def divide(a: Interval, b: Interval) -> Interval:
    """The interval of a/b for positive intervals ``a`` and ``b``: ``(a_lo / b_hi, a_hi / b_lo)``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(a[0] / b[1]), np.asarray(a[1] / b[0])


def normalised_time(t: TimeToFit, ref: int) -> Interval:
    """Median T at every setting of the leading axis divided by the median T at setting ``ref``
    (the poster's normalised time to convergence): an interval of ``(P, ...)`` arrays."""
    lo, hi = t.median()
    return divide((lo, hi), (lo[ref], hi[ref]))


def relative_slowdown(t: TimeToFit, num: int, den: int, kind: int, real: int = 0) -> float:
    """How much more T changes for ``kind`` than for real data between settings ``num`` and ``den``:
    [T_kind(num) / T_kind(den)] / [T_real(num) / T_real(den)], with T the median over seeds.

    Returns the lower end of the interval that censoring leaves (0 or NaN when it leaves no bound), so a
    claim ``> threshold`` on it is conservative. E.g. ``num`` the largest training set and ``den``
    the smallest (time grows faster for noise), or ``num`` the narrowest net and ``den`` the
    widest (capacity shortens noise fitting more).
    """
    lo, hi = t.median()
    change = divide((lo[num], hi[num]), (lo[den], hi[den]))
    return float(divide((change[0][kind], change[1][kind]), (change[0][real], change[1][real]))[0])


# ------------------------------------------------------------------------------------- figures

def _log_axis(ax: Axes, ticks: Sequence[int]) -> None:
    """A log-2 x axis labelled with the grid's own values."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(ticks), [str(t) for t in ticks])
    ax.minorticks_off()


def plot_capacity(ax: Axes, widths: Sequence[int], accuracy: torch.Tensor, kinds: Sequence[Kind], corruption: str,
                  fraction: float = 0.95) -> None:
    """Fig. 5, one panel: validation accuracy ``(W, D, S)`` against width for real data and each
    level of ``corruption``: mean over seeds, band from the worst to the best seed, and a
    triangle at the width reaching ``fraction`` of the curve's best."""
    acc = np.asarray(accuracy, dtype=float)
    for d, kind in enumerate(kinds):
        if kind.corruption not in (None, corruption):
            continue
        color, mean = kind.color, acc[:, d].mean(-1)
        label = f"p = {kind.p:.1f}" + (" (real)" if kind.corruption is None else "")
        figures.band(ax, widths, acc[:, d].T, color, label, marker="o", ms=4)
        w_f = float(width_for_fraction_of_best(widths, mean, fraction))
        ax.plot([w_f], [np.interp(np.log(w_f), np.log(widths), mean)], "v", color=color, ms=9, mec="k", mew=0.5)
    _log_axis(ax, widths)
    ax.set_xlabel("hidden units per layer")
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"{corruption}: {'inputs' if corruption == 'randX' else 'labels'} of a fraction p replaced")
    ax.legend(title=f"▼ reaches {fraction:.0%} of its best", fontsize=8, title_fontsize=8, loc="lower right")


def plot_time(ax: Axes, x: Sequence[int], t: TimeToFit, kinds: Sequence[Kind], ref: int, xlabel: str) -> None:
    """Fig. 6, one panel: median T over seeds divided by the median at setting ``ref``, against
    ``x``, censored runs counted at the budget. Filled circles: exact; open triangles: a lower
    bound (the median is censored). A dotted curve: the median at ``ref`` is itself censored, so
    the curve is not a normalised time. Small dots: single runs divided by the median at ``ref``;
    crosses: censored runs, at the budget. The legend counts the censored runs."""
    lo, hi = t.median()
    bound_lo, bound_hi = normalised_time(t, ref)
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
    _log_axis(ax, x)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"normalised time: T / T({xlabel.split()[0]} = {x[ref]})")
    ax.legend(fontsize=8, title="open ▲ / ×: censored (≥)", title_fontsize=8)


def time_table(x: Sequence[int], t: TimeToFit, kinds: Sequence[Kind], what: str) -> str:
    """Markdown table of T in epochs, one row per kind, one column per setting ``x``: the median
    over seeds (``≥budget`` when censoring hides it), [min–max] over the runs that converged, and
    the number of censored runs."""
    def cell(e: np.ndarray, c: np.ndarray) -> str:
        lo, hi = TimeToFit(e, c, t.budget).median()
        text = f"{lo:.0f}" if np.isfinite(hi) else f"≥{t.budget}"
        if c.any():
            text += f" [{e[c].min()}–{e[c].max()}]"
        return text + (f", {int((~c).sum())}/{len(c)} cens." if not c.all() else "")

    head = f"| kind \\ {what} | " + " | ".join(str(v) for v in x) + " |"
    rows = [f"| {k.label} | " + " | ".join(cell(t.epochs[i, d], t.converged[i, d]) for i in range(len(x))) + " |"
            for d, k in enumerate(kinds)]
    return "\n".join([head, "|" + "---|" * (len(x) + 1), *rows])
