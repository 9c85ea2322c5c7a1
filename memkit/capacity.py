"""Capacity: how many hidden units real data and noise need (notebook 03, Fig. 5).

Arpit et al. 2017, *A Closer Look at Memorization in Deep Networks*, §3.3, Fig. 5 (poster
"Deep Nets Don't Learn via Memorization", Fig. 1): held-out accuracy of 2-layer ReLU MLPs
(``depth`` hidden layers of equal width, 2 in the paper) against the number of hidden units per
layer, for noise levels p of randX and randY. Real data reaches near-maximal accuracy with few
units; "as noise is increased, higher capacity is needed to achieve maximal performance".
Summarised by :func:`width_for_fraction_of_best`, the width W(p) at which a curve reaches a
fraction (0.95) of its best accuracy, and by the rank correlation of W(p) with p
(:func:`width_rank_correlation`). The epoch of each run is chosen on a **validation** split and
the accuracy reported on a separate **test** split: both halves of the data set's held-out split
(:func:`load_stack`). A **clean-count control** (:func:`clean_subset`) trains on real data with
only the (1−p)·N examples that noise at level p leaves clean, so that "noise needs more units"
is not "fewer clean examples need more units".

One call of :func:`memkit.training.train_seeds` trains every noise level × seed at once: the D
versions of the data set are stacked (:class:`Stack`) and member ``d·S + s`` trains seed ``s`` on
version ``d`` (``data_index``). Widths are separate runs: zero-padding narrow nets into the widest
one would be exact only with each block re-initialised at its own fan-in, and at paper scale
(widths up to 4096) it would multiply the compute by about the number of widths. Time to
convergence (Fig. 6) is :mod:`memkit.convergence`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from matplotlib.axes import Axes
from scipy.stats import spearmanr
from tqdm.auto import tqdm

from memkit import figures, models, results, training
from memkit.data import REAL, Dataset, Kind
from memkit.device import pick_device
from memkit.training import SGD

FIGURE = "Arpit et al. 2017 Fig. 5 (poster Fig. 1)"

# ----------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Stack:
    """D versions of one data set, one per kind of data (:class:`memkit.data.Kind`), stacked so that one
    ensemble trains on all of them.

    Attributes:
        x_train: ``(D, N, *input_shape)`` float32, version ``d`` corrupted as ``kinds[d]``.
        y_train: ``(D, N)`` int64, the labels each version is trained on.
        x_val, y_val: ``(D, M_val, *input_shape)`` and ``(D, M_val)``: the validation split (chooses
            the epoch), the first half of the data set's clean held-out split, standardised with
            version ``d``'s training statistics.
        x_test, y_test: the test split (reports the accuracy), the second half.
    """

    name: str
    kinds: tuple[Kind, ...]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[2:])

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[1])

    def to(self, device: str | torch.device) -> Stack:
        """A copy with every tensor on ``device`` (no copy for tensors already there)."""
        tensors = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
        return replace(self, **{k: getattr(self, k).to(device) for k in tensors})


def stack(sets: Sequence[Dataset]) -> Stack:
    """Stack versions of one data set (same sizes, e.g. one per kind) into a :class:`Stack`; the
    held-out split of each is cut in two halves: validation (first) and test (second)."""
    if not sets:
        raise ValueError("no data sets to stack: pass at least one, e.g. [run.load(name)]")
    x_tr, y_tr, x_ho, y_ho = (
        torch.stack([getattr(d, a) for d in sets]) for a in ("x_train", "y_train", "x_test", "y_test")
    )
    half = x_ho.shape[1] // 2
    return Stack(
        sets[0].name,
        tuple(d.kind for d in sets),
        x_tr,
        y_tr,
        x_ho[:, :half],
        y_ho[:, :half],
        x_ho[:, half:],
        y_ho[:, half:],
        sets[0].n_classes,
    )


def load_stack(load: Callable[..., Dataset], name: str, kinds: Sequence[Kind], **options: object) -> Stack:
    """Load data set ``name`` once per kind with ``load`` and :func:`stack` the versions.

    ``load(name, kind=..., **options)``: :meth:`memkit.experiment.Run.load` (sized for the
    profile, corrupted with the run's seed) or :func:`memkit.data.load` with a ``seed``;
    ``options`` e.g. ``n_train``, ``n_test`` (held-out examples, split in half), ``size``.
    """
    if not kinds:
        raise ValueError("kinds is empty: pass at least one kind, e.g. [data.REAL] for real data")
    return stack([load(name, kind=k, **options) for k in kinds])


def clean_subset(real: Dataset, noisy: Dataset) -> Dataset:
    """The clean-count control of ``noisy``: ``real`` (the same data set uncorrupted) restricted
    to the (1−p)·N training examples that ``noisy`` left unchanged (its ``corrupted`` indices
    removed; they are the same for randX and randY at one p and seed), in their original order."""
    if real.corruption is not None or real.n_train != noisy.n_train:
        raise ValueError("clean_subset needs the real data set of the same size as the noisy one")
    keep = torch.ones(real.n_train, dtype=torch.bool)
    keep[noisy.corrupted] = False
    return replace(real, x_train=real.x_train[keep], y_train=real.y_train[keep], y_clean=real.y_clean[keep])


# ------------------------------------------------------------------------------------- training


def train(
    stack: Stack,
    width: int,
    sgd: SGD,
    *,
    depth: int,
    n_seeds: int,
    seed: int = 0,
    device: str | torch.device | None = None,
    callback: training.Callback | None = None,
) -> training.Seeds:
    """Train D·S MLPs with ``depth`` hidden layers of ``width`` units with ``sgd``
    (:func:`memkit.training.train_seeds`): member ``d·S + s`` is seed ``s`` on version ``d`` of
    ``stack``, its data set index :func:`data_index`. ``callback`` as in ``train_seeds``."""
    if width < 1 or depth < 1 or n_seeds < 1:
        raise ValueError(f"width={width}, depth={depth}, n_seeds={n_seeds}: each must be at least 1")
    net = models.factory("mlp", stack.input_shape, stack.n_classes, widths=[width] * depth)
    return training.train_seeds(
        net,
        stack.x_train,
        stack.y_train,
        sgd,
        n_seeds=len(stack.kinds) * n_seeds,
        seed=seed,
        device=device,
        callback=callback,
        data_index=data_index(stack, n_seeds),
    )


def data_index(stack: Stack, n_seeds: int) -> torch.Tensor:
    """``(D·S,)`` int64: the version of ``stack`` that member ``d·S + s`` trains on (``d``)."""
    return torch.arange(len(stack.kinds)).repeat_interleave(n_seeds)


def heldout_curves(
    stack: Stack,
    width: int,
    sgd: SGD,
    *,
    depth: int,
    n_seeds: int,
    epochs: int,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Validation and test accuracy after every epoch of ``sgd`` (its ``epochs`` replaced by
    ``epochs``): ``(2, epochs, D, S)`` on the CPU, in [0, 1]; ``[0]`` validation, ``[1]`` test."""
    stack, index = stack.to(pick_device(device)), data_index(stack, n_seeds)  # once, not every epoch
    curves = torch.zeros(2, epochs, len(index))

    def record(models: training.Seeds, step: training.Step) -> None:
        if step.end_of_epoch:
            for i, (x, y) in enumerate(((stack.x_val, stack.y_val), (stack.x_test, stack.y_test))):
                curves[i, step.epoch - 1, models.members] = models.accuracy(x, y, index).cpu()

    train(
        stack,
        width,
        replace(sgd, epochs=epochs),
        depth=depth,
        n_seeds=n_seeds,
        seed=seed,
        device=device,
        callback=record,
    )
    return curves.view(2, epochs, -1, n_seeds)


def reported_accuracy(curves: torch.Tensor, epoch: str = "best") -> torch.Tensor:
    """Reduce held-out curves ``(..., 2, epochs, D, S)`` (:func:`heldout_curves`,
    :func:`capacity_sweep`) to the test accuracy ``(..., D, S)`` at one epoch per run: ``"best"``
    the (first) epoch of highest validation accuracy (early stopping on the validation split),
    ``"final"`` the last. The test split never chooses anything."""
    val, test = curves.unbind(-4)
    if epoch == "best":
        return test.gather(-3, val.argmax(-3, keepdim=True)).squeeze(-3)
    if epoch == "final":
        return test[..., -1, :, :]
    raise ValueError(f"epoch={epoch!r}: use 'best' (best validation epoch) or 'final' (last epoch)")


def capacity_sweep(
    stack: Stack,
    widths: Sequence[int],
    sgd: SGD,
    *,
    depth: int,
    n_seeds: int,
    epochs: int,
    seed: int = 0,
    device: str | torch.device | None = None,
    log: Callable[[str], None] | None = print,
    progress: bool = False,
) -> torch.Tensor:
    """Fig. 5's runs: :func:`heldout_curves` for every width, ``(W, 2, epochs, D, S)``;
    ``progress`` shows a bar over the widths."""
    out = []
    for w in tqdm(widths, desc=f"{stack.name} capacity", unit="width", disable=not progress, leave=False):
        t0 = time.perf_counter()
        out.append(heldout_curves(stack, w, sgd, depth=depth, n_seeds=n_seeds, epochs=epochs, seed=seed, device=device))
        if log:
            log(f"{stack.name} (N={stack.n_train}): width {w}: {epochs} epochs in {time.perf_counter() - t0:.1f} s")
    return torch.stack(out)


# --------------------------------------------------------------------------------- the quantity


def width_for_fraction_of_best(
    widths: Sequence[int], accuracy: np.ndarray | torch.Tensor, fraction: float = 0.95
) -> np.ndarray:
    """W, the width at which held-out accuracy first reaches ``fraction`` of its best.

    ``accuracy``: ``(W, ...)``, one curve over ``widths`` (ascending) for every trailing index;
    the best is the curve's maximum over the widths. Between two grid widths the crossing is
    interpolated linearly in log(width); a curve already above the target at the smallest width
    gives the smallest width (an upper bound). Returns ``(...)`` floats in units of hidden units.
    """
    w = np.asarray(widths, dtype=float)
    acc = np.asarray(accuracy, dtype=float)
    if w.ndim != 1 or len(w) != len(acc) or np.any(np.diff(w) <= 0) or w[0] <= 0:
        raise ValueError(
            f"widths {list(widths)} must be positive, ascending, one per row of accuracy (shape {acc.shape})"
        )
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


def width_rank_correlation(levels: Sequence[float], needed: np.ndarray) -> np.ndarray:
    """Spearman's ρ between the noise level p and the width needed, per seed.

    ``levels``: the P noise levels (0 for real data); ``needed``: ``(P, S)`` widths
    (:func:`width_for_fraction_of_best`). Returns ``(S,)`` in [−1, 1]; NaN for a seed whose widths
    are all equal (no order at all). ρ = 1: more noise always needs more units."""
    needed = np.asarray(needed, dtype=float)
    if needed.ndim != 2 or len(needed) != len(levels) or len(levels) < 3:
        raise ValueError(f"needed of shape {needed.shape}: give (P, S), one row per level of {list(levels)}, P ≥ 3")
    return np.array([spearmanr(levels, col).statistic if np.ptp(col) > 0 else np.nan for col in needed.T])


@dataclass(frozen=True)
class Capacity:
    """Fig. 5's measurements of one data set.

    Attributes:
        widths: the W widths, ascending. kinds: the D kinds (real first).
        accuracy: ``(W, D, S)`` test accuracy at the epoch chosen on the validation split.
        levels: the P noise levels > 0 that have a clean-count control.
        control: ``(W, P, S)`` the same for real data with only the examples that level p leaves clean.
    """

    widths: tuple[int, ...]
    kinds: tuple[Kind, ...]
    accuracy: np.ndarray
    levels: tuple[float, ...]
    control: np.ndarray

    def needed(self, fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """W per seed: ``(D, S)`` for the kinds and ``(P, S)`` for the controls."""
        return (
            width_for_fraction_of_best(self.widths, self.accuracy, fraction),
            width_for_fraction_of_best(self.widths, self.control, fraction),
        )

    def summary(self, fraction: float) -> dict[str, object]:
        """For the result JSON: the grid, the per-seed accuracies and the widths needed (:meth:`needed`)."""
        w_kind, w_ctrl = self.needed(fraction)
        return {
            "widths": list(self.widths),
            "kinds": [k.label for k in self.kinds],
            "accuracy": self.accuracy.tolist(),
            "control_levels": list(self.levels),
            "control_accuracy": self.control.tolist(),
            "width_needed": w_kind.tolist(),
            "control_width_needed": w_ctrl.tolist(),
        }

    def ladder(self, corruption: str) -> tuple[list[float], list[int]]:
        """The noise levels of ``corruption`` with real data as p = 0, and their indices in :attr:`kinds`."""
        rows = [d for d, k in enumerate(self.kinds) if k.corruption in (None, corruption)]
        return [self.kinds[d].p for d in rows], rows


def measure(
    load: Callable[..., Dataset],
    name: str,
    kinds: Sequence[Kind],
    widths: Sequence[int],
    sgd: SGD,
    *,
    epochs: int,
    epoch: str = "best",
    controls: Sequence[float] = (),
    depth: int,
    n_seeds: int,
    seed: int = 0,
    device: str | torch.device | None = None,
    log: Callable[[str], None] | None = print,
    progress: bool = False,
    **options: object,
) -> Capacity:
    """Fig. 5's runs on data set ``name`` (``load`` and ``options`` as in :func:`load_stack`;
    ``kinds`` real first): every kind at every width for ``epochs`` epochs, and the clean-count
    control of each noise level in ``controls`` (:func:`clean_subset`; randX and randY at one p
    leave the same examples clean) for as many SGD updates (so more epochs of its smaller set: it
    is not under-trained), each reduced to the test accuracy at the epoch chosen by ``epoch``
    (:func:`reported_accuracy`). ``progress`` shows a bar over the widths of each sweep."""
    sets = [load(name, kind=k, **options) for k in kinds]
    if not sets or sets[0].kind != REAL:
        raise ValueError(f"kinds {[str(k) for k in kinds]}: put real data first (data.kinds does)")

    def run(s: Stack, n_epochs: int) -> torch.Tensor:
        curves = capacity_sweep(
            s,
            widths,
            sgd,
            epochs=n_epochs,
            depth=depth,
            n_seeds=n_seeds,
            seed=seed,
            device=device,
            log=log,
            progress=progress,
        )
        return reported_accuracy(curves, epoch)

    acc = run(stack(sets), epochs)
    noisy, control = {d.p: d for d in sets if d.corruption}, []
    if not set(controls) <= set(noisy):
        raise ValueError(f"controls {list(controls)}: each must be a noise level of kinds ({sorted(noisy)})")
    for p in sorted(controls):
        clean = clean_subset(sets[0], noisy[p])
        steps = epochs * training.steps_per_epoch(sets[0].n_train, sgd.batch_size)
        n_epochs = round(steps / training.steps_per_epoch(clean.n_train, sgd.batch_size))
        control.append(run(stack([clean]), n_epochs))
    return Capacity(
        tuple(widths),
        tuple(kinds),
        acc.numpy(),
        tuple(sorted(controls)),
        torch.cat(control, 1).numpy() if control else np.zeros((len(widths), 0, n_seeds)),
    )


def claims(name: str, c: Capacity, fraction: float, *, asserted: bool = True) -> list[results.Claim]:
    """Fig. 5's claims for data set ``name``, each from per-seed widths W (fraction ``fraction`` of
    the best) and summarised by the worst seed, for randX and randY:

    - ``capacity-rank``: ρ(p, W) over every level (:func:`width_rank_correlation`) > 0.8, i.e.
      ≥ 0.9 for five untied levels: at most one adjacent swap, the exact one-sided 5% level of
      the permutation test (5 of the 120 orders);
    - ``capacity``: W(top p) / W(real) > 2, one step of the doubling width grid;
    - ``capacity-vs-clean-count``: W(top p) / W(real data with only its clean examples) > 2.
    """
    w_kind, w_ctrl = c.needed(fraction)
    out = []
    for corruption in ("randX", "randY"):
        levels, rows = c.ladder(corruption)
        if len(rows) < 2:
            continue
        top, p_top = rows[int(np.argmax(levels))], max(levels)
        if len(rows) >= 3:
            rho = width_rank_correlation(levels, w_kind[rows])
            out.append(
                results.Claim(
                    f"{name}-capacity-rank-{corruption}",
                    f"the more {corruption} noise, the more units are needed",
                    f"Spearman ρ(p, W) over p = {', '.join(f'{p:g}' for p in levels)}, worst seed",
                    np.nan if np.isnan(rho).any() else rho.min(),
                    0.8,
                    ">",
                    FIGURE,
                    asserted,
                )
            )
        label = c.kinds[top].label
        out.append(
            results.Claim(
                f"{name}-capacity-{corruption}",
                f"{label} needs more capacity for near-best accuracy than real data",
                f"W({fraction:.0%} of best): {label} / real, worst seed",
                (w_kind[top] / w_kind[0]).min(),
                2.0,
                ">",
                FIGURE,
                asserted,
            )
        )
        if p_top in c.levels:
            ctrl = w_ctrl[c.levels.index(p_top)]
            out.append(
                results.Claim(
                    f"{name}-capacity-vs-clean-count-{corruption}",
                    f"{label} needs more capacity than real data with only its {1 - p_top:.0%} clean examples",
                    f"W({fraction:.0%} of best): {label} / real with its clean examples, worst seed",
                    (w_kind[top] / ctrl).min(),
                    2.0,
                    ">",
                    FIGURE,
                    asserted,
                )
            )
    return out


# ------------------------------------------------------------------------------------- figures


def log_width_axis(ax: Axes, ticks: Sequence[int]) -> None:
    """A log-2 x axis labelled with the grid's own values."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(ticks), [str(t) for t in ticks])
    ax.minorticks_off()


def plot_capacity(
    ax: Axes,
    widths: Sequence[int],
    accuracy: np.ndarray,
    kinds: Sequence[Kind],
    corruption: str,
    fraction: float = 0.95,
) -> None:
    """Fig. 5, one panel: test accuracy ``(W, D, S)`` against width for real data and each
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
    log_width_axis(ax, widths)
    ax.set_xlabel("hidden units per layer")
    ax.set_ylabel("test accuracy (epoch chosen on validation)")
    ax.set_title(f"{corruption}: {'inputs' if corruption == 'randX' else 'labels'} of a fraction p replaced")
    ax.legend(title=f"▼ reaches {fraction:.0%} of its best", fontsize=8, title_fontsize=8, loc="lower right")


def plot_needed(ax: Axes, c: Capacity, fraction: float) -> None:
    """W per seed against the noise level p: randX, randY and the clean-count control (real data
    with only the (1−p)·N clean examples), mean over seeds with the band from worst to best seed."""
    w_kind, w_ctrl = c.needed(fraction)
    for corruption in ("randX", "randY"):
        levels, rows = c.ladder(corruption)
        figures.band(ax, levels, w_kind[rows].T, Kind(corruption, 1.0).color, corruption, marker="o")
    real = w_kind[[d for d, k in enumerate(c.kinds) if k == REAL]]
    figures.band(
        ax, [0.0, *c.levels], np.concatenate([real, w_ctrl]).T, "0.3", "real, clean examples only", ls="--", marker="s"
    )
    ax.set_yscale("log", base=2)
    ax.set_xlabel("noise level p (control: (1−p)·N real examples)")
    ax.set_ylabel(f"width W for {fraction:.0%} of best")
    ax.legend(fontsize=8)
