"""Regularization limits memorization more than learning (notebook 05, Arpit et al. 2017 §5, Figs. 10–11).

Seven regularizers over a range of strengths, and none as the reference (:class:`Setting`): dropout on
the hidden units (rate p), input dropout (p), Gaussian noise on the inputs and on the hidden units (σ,
in standardised units), weight decay (λ), adversarial training (a fraction f of every batch replaced by
the critical samples LASS finds on the current model, :func:`adversarial_hook`) and adversarial
training with dropout. Every setting trains S seeds on real data, randY and real data with a fraction
p of random labels (:class:`Stack`), as members of batched ensembles (:func:`train`, :func:`runs`):
rates are buffers of per-member factories (:func:`factory`), weight decay per member in ``training.SGD``.

Quantities, ``(G, S)`` per setting and seed: :func:`memorization` (Fig. 10's x), :func:`generalization`
(Fig. 10's y: test accuracy at the epoch of best validation accuracy), :func:`noisy_fit` (memorized noisy
labels in mixed data), :func:`time_to` (epochs to a training accuracy, censored) and :func:`effectiveness`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap

from memkit import adversarial, figures, models, training
from memkit.convergence import TimeToFit
from memkit.data import RANDY, REAL, Dataset, Kind
from memkit.results import Claim

#: The regularizers; the first four are the noise options of :func:`memkit.models.mlp` and ``cnn``.
REGULARIZERS = (
    "dropout",
    "input_dropout",
    "input_noise",
    "hidden_noise",
    "weight_decay",
    "adversarial",
    "adversarial_dropout",
)
NOISE = ("dropout", "input_dropout", "input_noise", "hidden_noise")
_TAB10 = cast(Sequence[tuple[float, float, float]], cast(ListedColormap, plt.get_cmap("tab10")).colors)
COLORS = dict(zip(["none", *REGULARIZERS], ["k", *_TAB10[: len(REGULARIZERS)]], strict=True))


@dataclass(frozen=True)
class Setting:
    """One regularizer at one strength (``"none"``: no regularization); ``adv_dropout`` is the
    dropout rate that goes with ``"adversarial_dropout"``."""

    regularizer: str = "none"
    strength: float = 0.0
    adv_dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.regularizer != "none" and self.regularizer not in REGULARIZERS:
            raise ValueError(
                f"unknown regularizer {self.regularizer!r}; use 'none' or one of {', '.join(REGULARIZERS)}"
            )
        if (self.regularizer == "none") != (self.strength == 0) or self.strength < 0:
            raise ValueError(
                f"{self.regularizer} at strength {self.strength}: a regularizer needs a strength > 0, "
                "'none' has strength 0"
            )

    label = property(
        lambda self: "none" if self.regularizer == "none" else f"{self.regularizer.replace('_', ' ')} {self.strength:g}"
    )
    key = property(lambda self: "none" if self.regularizer == "none" else f"{self.regularizer}{self.strength:g}")

    @property
    def noise(self) -> dict[str, float]:
        """The rates of the four noise options of :func:`memkit.models.mlp` / ``cnn`` (0: off)."""
        adv = {"dropout": self.adv_dropout} if self.regularizer == "adversarial_dropout" else {}
        return {n: self.strength if n == self.regularizer else adv.get(n, 0.0) for n in NOISE}

    weight_decay = property(lambda self: self.strength if self.regularizer == "weight_decay" else 0.0)
    #: f, the fraction of each batch searched by LASS and replaced by its critical samples
    adversarial = property(lambda self: self.strength if self.regularizer.startswith("adversarial") else 0.0)


def grid(
    strengths: Mapping[str, Sequence[float]], adv_dropout: float = 0.5, chosen: Mapping[str, float] | None = None
) -> list[Setting]:
    """``none`` followed by every regularizer of ``strengths`` at each of its strengths. ``chosen``
    (one strength per regularizer, shown in Fig. 11) must name one of each regularizer's strengths:
    checked here, before any training."""
    extra = sorted(set(chosen or {}) - set(strengths))
    if extra:
        raise ValueError(
            f"chosen names regularizers it does not train: {', '.join(extra)}; "
            f"give chosen one strength for each of {', '.join(strengths)}"
        )
    for r, ss in strengths.items():
        if chosen is not None and chosen.get(r) not in ss:
            raise ValueError(
                f"chosen {r}={chosen.get(r)} is not one of its strengths {list(ss)}: "
                f"set chosen[{r!r}] to one of them or add it to strengths"
            )
    return [Setting()] + [
        Setting(r, float(s), adv_dropout if r == "adversarial_dropout" else 0.0)
        for r, ss in strengths.items()
        for s in ss
    ]


def factory(
    arch: str, input_shape: Sequence[int], n_classes: int, setting: Setting, **options: Any
) -> training.Factory:
    """``arch`` ("mlp" or "cnn", :func:`memkit.models.factory`) with the noise options of ``setting``:
    the settings of one regularizer build the same layers and differ only in their rates (buffers),
    so they stack into one ensemble."""
    if arch not in ("mlp", "cnn"):
        raise ValueError(f"regularization needs an architecture with noise options, 'mlp' or 'cnn'; got {arch!r}")
    return models.factory(arch, input_shape, n_classes, **{k: v for k, v in setting.noise.items() if v}, **options)


def runs(settings: Sequence[Setting]) -> list[list[int]]:
    """The settings that train as one batched run: those whose models have the same noise layers
    and the same need of LASS. A layer at rate 0 would be the identity, but its random numbers cost
    more than the small networks themselves, so a member without a regularizer does not carry it;
    LASS costs every member of its run, so adversarial settings train apart from the others."""
    groups: dict[tuple, list[int]] = {}
    for g, s in enumerate(settings):
        groups.setdefault((s.adversarial > 0, *(k for k, v in s.noise.items() if v)), []).append(g)
    return list(groups.values())


@dataclass(frozen=True)
class Stack:
    """One data set in D kinds (real, randY, randY at p, ...), stacked for one ensemble.

    ``x_train`` ``(D, N, ...)``, ``y_train`` ``(D, N)`` the labels trained on, ``noisy`` ``(D, N)`` bool:
    the label differs from the clean one; ``x_val``/``y_val`` the first half of the clean test
    split (to choose epochs and settings), ``x_test``/``y_test`` the second half (to report)."""

    name: str
    kinds: tuple[Kind, ...]
    x_train: torch.Tensor
    y_train: torch.Tensor
    noisy: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    @staticmethod
    def of(datasets: Sequence[Dataset]) -> Stack:
        """Stack data sets that differ only in their labels (randY keeps the inputs)."""
        first, half = datasets[0], len(datasets[0].x_test) // 2
        if any(d.corruption == "randX" or not torch.equal(d.x_train, first.x_train) for d in datasets):
            raise ValueError("stack real and randY versions of one data set: their inputs must be the same")
        x, y = first.x_train.expand(len(datasets), *first.x_train.shape), torch.stack([d.y_train for d in datasets])
        noisy = torch.stack([d.y_train != d.y_clean for d in datasets])
        return Stack(
            first.name,
            tuple(d.kind for d in datasets),
            x,
            y,
            noisy,
            first.x_test[:half],
            first.y_test[:half],
            first.x_test[half:],
            first.y_test[half:],
            first.n_classes,
        )


@dataclass(frozen=True)
class Curves:
    """Accuracies of G settings × D kinds × S seeds at T times (in epochs, fractional early on).

    ``train_acc``, ``noisy_acc`` (NaN without noisy examples), ``val_acc``, ``test_acc``: ``(G, D, S, T)``;
    ``correct``: ``(G, D, S, N)`` bool, the final fit of each training example to its label."""

    settings: list[Setting]
    kinds: tuple[Kind, ...]
    epochs: np.ndarray
    train_acc: np.ndarray
    noisy_acc: np.ndarray
    val_acc: np.ndarray
    test_acc: np.ndarray
    correct: np.ndarray

    def at(self, regularizer: str, strength: float | None = None) -> list[int]:
        """Indices of the settings of ``regularizer`` (at ``strength`` only, if given)."""
        return [
            g
            for g, s in enumerate(self.settings)
            if s.regularizer == regularizer and (strength is None or np.isclose(s.strength, strength))
        ]


def adversarial_hook(fractions: torch.Tensor, search: dict[str, Any], seed: int) -> training.Hook:
    """A :func:`memkit.training.train_seeds` hook for adversarial training: member m searches the
    first ⌊f_m·B⌉ examples of its batch with LASS (:func:`memkit.adversarial.lass`, ``search`` from
    :func:`memkit.adversarial.lass_settings`) on its current model (eval mode) and trains on the
    critical samples it finds in their place, with their labels. ``fractions``: ``(S,)`` f per member.
    LASS draws its noise from a generator seeded with ``seed`` + the step, so training is deterministic."""

    def hook(
        seeds: training.Seeds, step: training.Step, xb: torch.Tensor, yb: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = torch.round(fractions[seeds.members] * xb.shape[1]).long().to(xb.device)
        if (k := int(n.max())) == 0:
            return xb, yb
        gen = torch.Generator(device=xb.device).manual_seed(seed + step.step)
        found = adversarial.lass(seeds.forward, xb[:, :k], generator=gen, **search)
        use = found.critical & (torch.arange(k, device=xb.device) < n[:, None])
        xb = xb.clone()
        xb[:, :k] = torch.where(use.view(*use.shape, *[1] * (xb.ndim - 2)), found.x_adv, xb[:, :k])
        return xb, yb

    return hook


def train(
    stack: Stack,
    settings: Sequence[Setting],
    make: Callable[[Setting], training.Factory],
    sgd: training.SGD,
    *,
    n_seeds: int,
    search: dict[str, Any] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> Curves:
    """Train S = ``n_seeds`` seeds of every setting on every kind of ``stack`` and measure them.

    Member (g, d, s) trains ``make(settings[g])`` on kind d with seed index s; the settings of
    each of :func:`runs` train as one batched run, the adversarial ones with :func:`adversarial_hook`
    and LASS parameters ``search``. Accuracies are measured in eval mode before training, after
    1, 2, 4, ... updates within the first epoch, and after every epoch.
    """
    shape = (len(settings), len(stack.kinds), n_seeds)
    per_epoch = training.steps_per_epoch(stack.x_train.shape[1], sgd.batch_size)
    times = [0] + [2**k for k in range(30) if 2**k < per_epoch] + [e * per_epoch for e in range(1, sgd.epochs + 1)]
    out = {q: np.full((*shape, len(times)), np.nan) for q in ("train_acc", "noisy_acc", "val_acc", "test_acc")}
    correct = np.zeros((*shape, stack.x_train.shape[1]), dtype=bool)
    if search is None and any(s.adversarial for s in settings):
        raise ValueError("adversarial settings need LASS parameters: pass search=adversarial.lass_settings(...)")
    for r, group in enumerate(runs(settings)):
        adv = settings[group[0]].adversarial > 0
        cells = [(g, d, s) for g in group for d in range(shape[1]) for s in range(n_seeds)]
        index = torch.tensor([d for _, d, _ in cells])
        flat = [np.ravel_multi_index(c, shape) for c in cells]
        noisy = stack.noisy.to(index.device)[index]
        member_sgd = replace(sgd, weight_decay=tuple(settings[g].weight_decay for g, _, _ in cells))

        def record(
            seeds: training.Seeds,
            step: training.Step,
            flat: list = flat,
            index: torch.Tensor = index,
            noisy: torch.Tensor = noisy,
        ) -> None:
            if step.step not in times:
                return
            t, rows, nz = times.index(step.step), [flat[m] for m in seeds.members], noisy[seeds.members]
            ok = seeds.correct(stack.x_train, stack.y_train, data_index=index).cpu()
            values = {
                "train_acc": ok.float().mean(1),
                "val_acc": seeds.accuracy(stack.x_val, stack.y_val).cpu(),
                "test_acc": seeds.accuracy(stack.x_test, stack.y_test).cpu(),
                "noisy_acc": (ok & nz).sum(1) / nz.sum(1),
            }
            for q, v in values.items():
                out[q].reshape(-1, len(times))[rows, t] = v.numpy()
            if t == len(times) - 1:
                correct.reshape(-1, correct.shape[-1])[rows] = ok.numpy()

        fractions = torch.tensor([settings[g].adversarial for g, _, _ in cells])
        training.train_seeds(
            [make(settings[g]) for g, _, _ in cells],
            stack.x_train,
            stack.y_train,
            member_sgd,
            n_seeds=None,
            seed=seed + 1000 * r,
            device=device,
            callback=record,
            data_index=index,
            hook=adversarial_hook(fractions, search, seed) if adv and search is not None else None,  # checked above
            progress=progress,
            desc=f"{stack.name}: {settings[group[-1]].regularizer}",
        )
    return Curves(list(settings), stack.kinds, np.array(times) / per_epoch, **out, correct=correct)


def _pick(curves: Curves, kind: Kind) -> int:
    if kind not in curves.kinds:
        raise ValueError(f"this run has no {kind.label} data; its kinds are {[k.label for k in curves.kinds]}")
    return curves.kinds.index(kind)


def memorization(curves: Curves, kind: Kind = RANDY) -> np.ndarray:
    """``(G, S)`` final training accuracy on ``kind`` (randY: Fig. 10's x, how much is memorized)."""
    return curves.train_acc[:, _pick(curves, kind), :, -1]


def generalization(curves: Curves, kind: Kind = REAL) -> np.ndarray:
    """``(G, S)`` test accuracy at the epoch of best validation accuracy, trained on ``kind`` (Fig. 10's y)."""
    d = _pick(curves, kind)
    best = np.nanargmax(curves.val_acc[:, d], axis=-1)  # the epoch chosen on validation, per setting and seed
    return np.take_along_axis(curves.test_acc[:, d], best[..., None], -1)[..., 0]


def noisy_fit(curves: Curves, kind: Kind) -> np.ndarray:
    """``(G, S)`` final accuracy on the noisy training examples of ``kind`` against their noisy labels."""
    return curves.noisy_acc[:, _pick(curves, kind), :, -1]


def time_to(curves: Curves, kind: Kind, target: float) -> TimeToFit:
    """T ``(G, S)``: the first measured time (epochs) with training accuracy ≥ ``target`` on ``kind``;
    runs that never reach it are censored at the budget (the last epoch)."""
    reached = curves.train_acc[:, _pick(curves, kind)] >= target
    first = np.where(reached.any(-1), curves.epochs[np.argmax(reached, -1)], curves.epochs[-1])
    return TimeToFit(first, np.asarray(reached.any(-1)), int(curves.epochs[-1]))


def effectiveness(curves: Curves, k: float) -> np.ndarray:
    """``(G, S)`` per seed: the cut in memorization minus k times the cost in generalization,
    both against the unregularized seed with the same index: (m₀ − m) − k·max(y₀ − y, 0)."""
    m, y, g0 = memorization(curves), generalization(curves), curves.at("none")[0]
    return (m[g0] - m) - k * np.maximum(y[g0] - y, 0)


def slowdown_ratio(curves: Curves, g: int, noise_target: float, real_target: float) -> np.ndarray:
    """``(S,)`` how much more setting ``g`` slows fitting randY than fitting real data, per seed:
    [T_noise(g) / T_noise(none)] / [T_real(g) / T_real(none)]. Censored times count conservatively:
    the budget in the numerator's T_noise(g), infinity elsewhere (the ratio falls to 0)."""
    g0 = curves.at("none")[0]
    tn, tr = time_to(curves, RANDY, noise_target), time_to(curves, REAL, real_target)

    def inf(t: TimeToFit, i: int) -> np.ndarray:
        return np.where(t.converged[i], t.epochs[i], np.inf)

    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (tn.epochs[g] / inf(tn, g0)) / (inf(tr, g) / tr.epochs[g0])
    return np.nan_to_num(ratio, nan=0.0)


def best_regularized(curves: Curves, kind: Kind) -> int:
    """The regularized setting a practitioner would pick on data ``kind``: highest mean final validation accuracy."""
    d, regularized = _pick(curves, kind), [g for g, s in enumerate(curves.settings) if s.regularizer != "none"]
    return regularized[int(np.argmax(curves.val_acc[regularized, d, :, -1].mean(-1)))]


def claims(
    curves: Curves,
    *,
    k: float,
    margin: float,
    chosen: Mapping[str, float],
    noise_target: float,
    real_target: float,
    slowdown: float,
    acc_margin: float,
    fit_ratio: float,
    name: str = "",
    asserted: bool = True,
    reported: Sequence[str] = (),
) -> list[Claim]:
    """The notebook's claims, per seed and summarised by the worst seed; the thresholds are arguments, fixed
    in the notebook before the run. Claims whose id (without ``name``) is in ``reported`` are reported only."""
    pre, eff, g0, out = f"{name}-" if name else "", effectiveness(curves, k), curves.at("none")[0], []
    fig10, fig11 = "Arpit et al. 2017 Fig. 10; poster Fig. 5.1", "Arpit et al. 2017 Fig. 11; poster Fig. 5.2"
    talk = "talk: 'Regularization can reduce memorization' (real data + randY)"
    for r in [r for r in ("dropout", "adversarial") if curves.at(r)]:
        g = curves.at(r, chosen[r])[0]
        out += [
            Claim(
                f"{pre}{r}-cuts-memorization",
                f"some strength of {r} cuts randY memorization by far more than it costs in test accuracy on real data",
                f"max over strengths, worst seed: memorization cut − {k:g} × accuracy cost",
                eff[curves.at(r)].min(-1).max(),
                margin,
                ">=",
                fig10,
            ),
            Claim(
                f"{pre}{r}-slows-noise-more",
                f"{r} {chosen[r]:g} slows fitting random labels more than real",
                f"worst seed: [T(randY to {noise_target:g}) / T_none] / [T(real to {real_target:g}) / T_none]",
                slowdown_ratio(curves, g, noise_target, real_target).min(),
                slowdown,
                ">=",
                fig11,
            ),
        ]
    for kind in [kd for kd in curves.kinds if kd.corruption == "randY" and kd.p < 1]:
        g, d = best_regularized(curves, kind), _pick(curves, kind)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.nan_to_num(noisy_fit(curves, kind)[g] / noisy_fit(curves, kind)[g0], nan=np.inf)
        out += [
            Claim(
                f"{pre}{kind.key}-keeps-accuracy",
                f"on {kind.label}, the regularized setting with the best "
                f"validation accuracy ({curves.settings[g].label}) ends within {acc_margin:g} of the test "
                "accuracy of early-stopped training without regularization",
                "worst seed: final test acc − best-epoch test acc of none",
                (curves.test_acc[g, d, :, -1] - generalization(curves, kind)[g0]).min(),
                -acc_margin,
                ">=",
                talk,
            ),
            Claim(
                f"{pre}{kind.key}-fits-fewer-noisy",
                f"on {kind.label}, that setting ({curves.settings[g].label})"
                " fits far fewer noisy labels than no regularization",
                "worst seed: noisy-label fit / none's",
                ratio.max(),
                fit_ratio,
                "<=",
                talk,
            ),
        ]
    best = {r: eff[curves.at(r)].mean(-1).max() for r in _regularizers(curves)}
    adv = max((v for r, v in best.items() if r.startswith("adversarial")), default=np.nan)
    out.append(
        Claim(
            f"{pre}adversarial-most-effective",
            "adversarial training (+ dropout) is the most effective regularizer",
            "best adversarial − best other regularizer, mean effectiveness",
            adv - max(v for r, v in best.items() if not r.startswith("adversarial")),
            0.0,
            ">",
            fig10,
        )
    )
    return [
        replace(c, asserted=asserted and c.id.removeprefix(pre) not in [*reported, "adversarial-most-effective"])
        for c in out
    ]


def time_rows(curves: Curves, noise_target: float, real_target: float) -> tuple[list[str], list[list[Any]]]:
    """Header and rows for ``run.table``: median epochs over seeds to ``noise_target`` on randY and to
    ``real_target`` on real labels ("≥" when censoring hides the median), and the censored runs."""
    tn, tr = time_to(curves, RANDY, noise_target), time_to(curves, REAL, real_target)
    (nlo, nhi), (rlo, rhi) = tn.median(), tr.median()

    def cell(lo: float, hi: float) -> str:
        return f"{lo:.3g}" if np.isfinite(hi) else f"≥{lo:.3g}"

    return (
        [
            "setting",
            f"epochs to {noise_target:.0%} on randY",
            "censored",
            f"epochs to {real_target:.0%} on real",
            "censored",
        ],
        [
            [s.label, cell(nlo[g], nhi[g]), tn.n_censored[g], cell(rlo[g], rhi[g]), tr.n_censored[g]]
            for g, s in enumerate(curves.settings)
        ],
    )


def effectiveness_rows(curves: Curves, k: float) -> tuple[list[str], list[list[Any]]]:
    """Header and rows for ``run.table``: per regularizer, its most effective strength (mean over seeds), the
    memorization and test accuracy there, ranked from the most effective (none first, as the reference)."""
    m, y, eff = memorization(curves).mean(-1), generalization(curves).mean(-1), effectiveness(curves, k).mean(-1)
    best = sorted((max(curves.at(r), key=lambda g: eff[g]) for r in _regularizers(curves)), key=lambda g: -eff[g])
    return (
        ["rank", "regularizer", "best strength", "randY fit", "real test acc", f"effectiveness (k = {k:g})"],
        [
            [
                i,
                curves.settings[g].regularizer,
                curves.settings[g].strength,
                f"{m[g]:.3f}",
                f"{y[g]:.3f}",
                f"{eff[g]:.3f}",
            ]
            for i, g in enumerate([curves.at("none")[0], *best])
        ],
    )


def summary(curves: Curves, k: float) -> dict[str, Any]:
    """For the result JSON: ``(G, S)`` lists of memorization, generalization, effectiveness and, per mixed
    kind, the noisy-label fit and the final test accuracy; ``settings`` names the G rows."""
    per = {
        "memorization": memorization(curves),
        "generalization": generalization(curves),
        "effectiveness": effectiveness(curves, k),
    } | {
        f"{kd.key}_{q}": v
        for d, kd in enumerate(curves.kinds)
        if kd.corruption and kd.p < 1
        for q, v in (("noisy_fit", noisy_fit(curves, kd)), ("final_test_acc", curves.test_acc[:, d, :, -1]))
    }
    return {
        "kinds": [kd.label for kd in curves.kinds],
        "settings": [s.key for s in curves.settings],
        **{q: v.tolist() for q, v in per.items()},
    }


def _regularizers(curves: Curves) -> list[str]:
    return [r for r in REGULARIZERS if curves.at(r)]


def _tradeoff(ax: plt.Axes, curves: Curves, x: np.ndarray, y: np.ndarray) -> None:
    """One curve per regularizer from none through its strengths (the last labelled): means over seeds of
    ``x`` and ``y`` ``(G, S)``, with bars over the seed range; none is the black square."""
    g0 = curves.at("none")[0]
    for r in _regularizers(curves):
        gs = [g0, *curves.at(r)]
        ax.errorbar(
            x[gs].mean(-1),
            y[gs].mean(-1),
            xerr=np.ptp(x[gs], -1) / 2,
            yerr=np.ptp(y[gs], -1) / 2,
            color=COLORS[r],
            marker="o",
            ms=4,
            lw=1.5,
            label=r.replace("_", " "),
        )
        ax.annotate(
            f"{curves.settings[gs[-1]].strength:g}",
            (x[gs[-1]].mean(), y[gs[-1]].mean()),
            fontsize=7,
            color=COLORS[r],
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.plot(x[g0].mean(), y[g0].mean(), "s", color="k", ms=8, label="none", zorder=5)
    ax.legend(fontsize=7, loc="lower right")


def plot_fig10(ax: plt.Axes, curves: Curves) -> None:
    """Fig. 10: test accuracy on real data at the best validation epoch against the final randY training accuracy."""
    _tradeoff(ax, curves, memorization(curves), generalization(curves))
    ax.set(xlabel="final training accuracy on randY (memorization)", ylabel="real test accuracy at best val epoch")


def plot_mixed(ax: plt.Axes, curves: Curves, kind: Kind) -> None:
    """Real data + randY at p: final clean test accuracy against the final fit of the noisy labels; the dotted
    line is no regularization at its best validation epoch."""
    _tradeoff(ax, curves, noisy_fit(curves, kind), curves.test_acc[:, _pick(curves, kind), :, -1])
    ax.axhline(generalization(curves, kind)[curves.at("none")[0]].mean(), color="k", ls=":", lw=1)
    ax.set(
        xlabel=f"final accuracy on the noisy labels ({kind.label})",
        ylabel="final clean test accuracy",
        title=f"{kind.label}: memorization vs learning (dotted: none, early-stopped)",
    )


def plot_fig11(axes: Sequence[plt.Axes], curves: Curves, chosen: Mapping[str, float]) -> None:
    """Fig. 11: training accuracy over epochs on randY (``axes[0]``) and real labels (``axes[1]``), no
    regularization and each regularizer at its chosen strength: mean line and seed band."""
    for ax, kind in zip(axes, (RANDY, REAL), strict=True):
        d = _pick(curves, kind)
        for r in ["none", *_regularizers(curves)]:
            g = curves.at(r, chosen.get(r))[0]
            figures.band(ax, curves.epochs, curves.train_acc[g, d], COLORS[r], curves.settings[g].label, lw=1.5)
        figures.epoch_axis(ax, curves.epochs[-1])
        ax.set(ylabel="training accuracy", title=f"{kind.label} labels", ylim=(0, 1.02))
    axes[0].legend(fontsize=7)


def plot_time(ax: plt.Axes, curves: Curves, target: float) -> None:
    """Epochs to ``target`` training accuracy on randY, per regularizer with strengths rising left to right:
    a dot per seed, a cross per censored run (at the budget); dotted: the median without regularization."""
    t, regs = time_to(curves, RANDY, target), _regularizers(curves)
    for i, r in enumerate(regs):
        for j, g in enumerate(curves.at(r)):
            x, c = np.full(len(t.epochs[g]), i + (j + 1) / (len(curves.at(r)) + 1)), t.converged[g]
            ax.plot(x[c], t.epochs[g][c], "o", color=COLORS[r], ms=4)
            ax.plot(x[~c], t.epochs[g][~c], "x", color=COLORS[r], ms=6)
    ax.axhline(t.median()[0][curves.at("none")[0]], color="k", ls=":", lw=1, label="none (median)")
    ax.set_xticks(np.arange(len(regs)) + 0.5, [r.replace("_", "\n") for r in regs], fontsize=7)
    ax.set(ylabel=f"epochs to {target:.0%} on randY", title="time to memorize (× censored, at the budget)")
    ax.legend(fontsize=7)
