"""Regularization limits memorization more than learning (notebook 05, Arpit et al. 2017 §5, Figs. 10–11).

Seven regularizers, each over a range of strengths, plus none as the reference (:class:`Setting`):
dropout on the hidden units (rate p), input dropout (p), Gaussian noise on the inputs (σ, in the
data's standardised units), Gaussian noise on the hidden units (σ), weight decay (λ), adversarial
training (a fraction f of every mini-batch replaced by the critical samples that LASS finds on the
current model, :func:`adversarial_hook`) and adversarial training with dropout. Every setting is
trained, S seeds each, on real data, on randY (all labels random) and on real data with a fraction
p of random labels (:class:`Stack`), as members of one batched ensemble (:func:`train`): the noise
rates are buffers of per-member factories (:func:`factory`), weight decay a per-member tuple of
:class:`memkit.training.SGD`; the adversarial settings form a second batched run, since LASS on
every member would multiply the cost of the others.

Quantities (each ``(G, S)``: G settings × S seeds, from :class:`Curves`):

- :func:`memorization`: the final training accuracy on randY, Fig. 10's x;
- :func:`generalization`: the test accuracy on real data at the epoch of best validation
  accuracy, Fig. 10's y (the epoch is chosen on a validation split, the accuracy read on a
  separate test split);
- :func:`noisy_fit`: with label noise p, the final accuracy on the noisy training examples (the
  ones whose label was changed) against their noisy labels, the memorization a practitioner sees;
- :func:`time_to`: epochs to reach a training accuracy, right-censored at the budget
  (:class:`memkit.capacity.TimeToFit`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch

from memkit import adversarial, figures, models, training
from memkit.capacity import TimeToFit
from memkit.data import REAL, Dataset, Kind
from memkit.results import Claim

#: The regularizers, what their strength is, and the noise option each sets.
REGULARIZERS = {"dropout": "rate p on the hidden units", "input_dropout": "rate p on the inputs",
                "input_noise": "σ of Gaussian noise on the inputs", "hidden_noise": "σ of Gaussian noise on the hidden units",
                "weight_decay": "λ", "adversarial": "fraction f of each batch replaced by critical samples",
                "adversarial_dropout": "fraction f, with dropout at a fixed rate"}
NOISE = ("dropout", "input_dropout", "input_noise", "hidden_noise")
COLORS = dict(zip(["none", *REGULARIZERS], ["k", *plt.get_cmap("tab10").colors[:len(REGULARIZERS)]]))


@dataclass(frozen=True)
class Setting:
    """One regularizer at one strength (``"none"``: no regularization); ``adv_dropout`` is the
    dropout rate that goes with ``"adversarial_dropout"``."""

    regularizer: str = "none"
    strength: float = 0.0
    adv_dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.regularizer != "none" and self.regularizer not in REGULARIZERS:
            raise ValueError(f"unknown regularizer {self.regularizer!r}; use 'none' or one of {', '.join(REGULARIZERS)}")
        if (self.regularizer == "none") != (self.strength == 0) or self.strength < 0:
            raise ValueError(f"{self.regularizer} at strength {self.strength}: a regularizer needs a strength > 0, "
                             "'none' has strength 0")

    @property
    def label(self) -> str:
        return "none" if self.regularizer == "none" else f"{self.regularizer.replace('_', ' ')} {self.strength:g}"

    @property
    def key(self) -> str:
        return "none" if self.regularizer == "none" else f"{self.regularizer}{self.strength:g}"

    @property
    def noise(self) -> dict[str, float]:
        """The rates of the four noise options of :func:`memkit.models.mlp` / ``cnn`` (0: off)."""
        rates = dict.fromkeys(NOISE, 0.0)
        if self.regularizer in NOISE:
            rates[self.regularizer] = self.strength
        if self.regularizer == "adversarial_dropout":
            rates["dropout"] = self.adv_dropout
        return rates

    @property
    def weight_decay(self) -> float:
        return self.strength if self.regularizer == "weight_decay" else 0.0

    @property
    def adversarial(self) -> float:
        """f, the fraction of each batch searched by LASS and replaced by its critical samples."""
        return self.strength if self.regularizer.startswith("adversarial") else 0.0


def grid(strengths: Mapping[str, Sequence[float]], adv_dropout: float = 0.5) -> list[Setting]:
    """``none`` followed by every regularizer of ``strengths`` at each of its strengths."""
    return [Setting()] + [Setting(r, float(s), adv_dropout if r == "adversarial_dropout" else 0.0)
                          for r, ss in strengths.items() for s in ss]


def factory(arch: str, input_shape: Sequence[int], n_classes: int, setting: Setting, **options: Any) -> training.Factory:
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
    LASS in a run costs its every member, so adversarial settings train apart from the others."""
    groups: dict[tuple, list[int]] = {}
    for g, s in enumerate(settings):
        groups.setdefault((s.adversarial > 0, *(k for k, v in s.noise.items() if v)), []).append(g)
    return list(groups.values())


# ------------------------------------------------------------------------------------------ data

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
        first = datasets[0]
        if any(d.corruption == "randX" or not torch.equal(d.x_train, first.x_train) for d in datasets):
            raise ValueError("stack real and randY versions of one data set: their inputs must be the same")
        half = len(first.x_test) // 2
        return Stack(first.name, tuple(d.kind for d in datasets), first.x_train[None].expand(len(datasets), *first.x_train.shape),
                     torch.stack([d.y_train for d in datasets]), torch.stack([d.y_train != d.y_clean for d in datasets]),
                     first.x_test[:half], first.y_test[:half], first.x_test[half:], first.y_test[half:], first.n_classes)

    def index(self, kind: Kind) -> int:
        return self.kinds.index(kind)


# -------------------------------------------------------------------------------------- training

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
        return [g for g, s in enumerate(self.settings) if s.regularizer == regularizer and
                (strength is None or np.isclose(s.strength, strength))]


def measure_times(steps_per_epoch: int, epochs: int) -> list[int]:
    """The steps after which accuracies are measured: 0, 1, 2, 4, ... within the first epoch, then every epoch end."""
    early = [0] + [2 ** k for k in range(20) if 2 ** k < steps_per_epoch]
    return early + [e * steps_per_epoch for e in range(1, epochs + 1)]


def adversarial_hook(fractions: torch.Tensor, search: dict[str, Any], seed: int) -> training.Hook:
    """A :func:`memkit.training.train_seeds` hook for adversarial training: member m searches the
    first ⌊f_m·B⌉ examples of its batch with LASS (:func:`memkit.adversarial.lass`, ``search`` from
    :func:`memkit.adversarial.lass_settings`) on its current model (eval mode) and trains on the
    critical samples it finds in their place, with their labels. ``fractions``: ``(S,)`` f per member.
    LASS draws its noise from a generator seeded with ``seed`` + the step, so training is deterministic."""
    def hook(seeds: training.Seeds, step: training.Step, xb: torch.Tensor, yb: torch.Tensor):
        n = torch.round(fractions[seeds.members] * xb.shape[1]).long().to(xb.device)
        k = int(n.max())
        if k == 0:
            return xb, yb
        gen = torch.Generator(device=xb.device).manual_seed(seed + step.step)
        found = adversarial.lass(seeds.forward, xb[:, :k], generator=gen, **search)
        use = found.critical & (torch.arange(k, device=xb.device) < n[:, None])
        xb = xb.clone()
        xb[:, :k] = torch.where(use.view(*use.shape, *[1] * (xb.ndim - 2)), found.x_adv, xb[:, :k])
        return xb, yb
    return hook


def train(stack: Stack, settings: Sequence[Setting], make: Callable[[Setting], training.Factory], sgd: training.SGD, *,
          n_seeds: int, search: dict[str, Any] | None = None, seed: int = 0, device: str | torch.device | None = None,
          progress: bool = False) -> Curves:
    """Train S = ``n_seeds`` seeds of every setting on every kind of ``stack`` and measure them.

    Member (g, d, s) trains ``make(settings[g])`` on kind d with seed index s; the settings of
    each of :func:`runs` train as one batched run, the adversarial ones with :func:`adversarial_hook`
    and LASS parameters ``search``. Accuracies are measured in eval mode at :func:`measure_times`.
    """
    G, D, S = len(settings), len(stack.kinds), n_seeds
    per_epoch = training.steps_per_epoch(stack.x_train.shape[1], sgd.batch_size)
    times = measure_times(per_epoch, sgd.epochs)
    shape = (G, D, S)
    out = {q: np.full((*shape, len(times)), np.nan) for q in ("train_acc", "noisy_acc", "val_acc", "test_acc")}
    correct = np.zeros((*shape, stack.x_train.shape[1]), dtype=bool)
    if search is None and any(s.adversarial for s in settings):
        raise ValueError("adversarial settings need LASS parameters: pass search=adversarial.lass_settings(...)")
    for r, group in enumerate(runs(settings)):
        adv = settings[group[0]].adversarial > 0
        cells = [(g, d, s) for g in group for d in range(D) for s in range(S)]
        index = torch.tensor([d for _, d, _ in cells])
        flat = [np.ravel_multi_index(c, shape) for c in cells]
        noisy = stack.noisy.to(index.device)[index]
        member_sgd = replace(sgd, weight_decay=tuple(settings[g].weight_decay for g, _, _ in cells))

        def record(seeds: training.Seeds, step: training.Step) -> None:
            if step.step not in times:
                return
            t, rows = times.index(step.step), [flat[m] for m in seeds.members]
            ok = seeds.correct(stack.x_train, stack.y_train, data_index=index).cpu()
            nz = noisy[seeds.members]
            values = {"train_acc": ok.float().mean(1), "val_acc": seeds.accuracy(stack.x_val, stack.y_val).cpu(),
                      "test_acc": seeds.accuracy(stack.x_test, stack.y_test).cpu(),
                      "noisy_acc": (ok & nz).sum(1) / nz.sum(1)}
            for q, v in values.items():
                out[q].reshape(-1, len(times))[rows, t] = v.numpy()
            if t == len(times) - 1:
                correct.reshape(-1, correct.shape[-1])[rows] = ok.numpy()

        fractions = torch.tensor([settings[g].adversarial for g, _, _ in cells])
        training.train_seeds([make(settings[g]) for g, _, _ in cells], stack.x_train, stack.y_train, member_sgd,
                             n_seeds=None, seed=seed + 1000 * r, device=device, callback=record, data_index=index,
                             hook=adversarial_hook(fractions, search, seed) if adv else None, progress=progress,
                             desc=f"{stack.name}: {settings[group[-1]].regularizer}")
    return Curves(list(settings), stack.kinds, np.array(times) / per_epoch, **out, correct=correct)


# ------------------------------------------------------------------------------------ quantities

def _pick(curves: Curves, kind: Kind) -> int:
    if kind not in curves.kinds:
        raise ValueError(f"this run has no {kind.label} data; its kinds are {[k.label for k in curves.kinds]}")
    return curves.kinds.index(kind)


def memorization(curves: Curves, kind: Kind = Kind("randY", 1.0)) -> np.ndarray:
    """``(G, S)`` final training accuracy on ``kind`` (randY: Fig. 10's x, how much is memorized)."""
    return curves.train_acc[:, _pick(curves, kind), :, -1]


def generalization(curves: Curves, kind: Kind = REAL) -> np.ndarray:
    """``(G, S)`` test accuracy at the epoch of best validation accuracy, trained on ``kind`` (Fig. 10's y)."""
    d = _pick(curves, kind)
    best = np.nanargmax(curves.val_acc[:, d], axis=-1)
    return np.take_along_axis(curves.test_acc[:, d], best[..., None], -1)[..., 0]


def noisy_fit(curves: Curves, kind: Kind) -> np.ndarray:
    """``(G, S)`` final accuracy on the noisy training examples of ``kind`` against their noisy labels."""
    return curves.noisy_acc[:, _pick(curves, kind), :, -1]


def time_to(curves: Curves, kind: Kind, target: float) -> TimeToFit:
    """T ``(G, S)``: the first measured time (epochs) with training accuracy ≥ ``target`` on ``kind``;
    runs that never reach it are censored at the budget (the last epoch)."""
    acc = curves.train_acc[:, _pick(curves, kind)]
    reached = acc >= target
    first = np.where(reached.any(-1), curves.epochs[np.argmax(reached, -1)], curves.epochs[-1])
    return TimeToFit(first, reached.any(-1), int(curves.epochs[-1]))


def effectiveness(curves: Curves, k: float) -> np.ndarray:
    """``(G, S)`` per seed: the cut in memorization minus k times the cost in generalization,
    both against the unregularized seed with the same index: (m₀ − m) − k·max(y₀ − y, 0)."""
    m, y = memorization(curves), generalization(curves)
    g0 = curves.at("none")[0]
    return (m[g0] - m) - k * np.maximum(y[g0] - y, 0)


def slowdown_ratio(curves: Curves, g: int, noise_target: float, real_target: float) -> np.ndarray:
    """``(S,)`` how much more setting ``g`` slows fitting randY than fitting real data, per seed:
    [T_noise(g) / T_noise(none)] / [T_real(g) / T_real(none)]. Censored times count conservatively:
    the budget in the numerator's T_noise(g), infinity elsewhere (the ratio falls to 0)."""
    g0 = curves.at("none")[0]
    tn, tr = time_to(curves, Kind("randY", 1.0), noise_target), time_to(curves, REAL, real_target)
    inf = lambda t, i: np.where(t.converged[i], t.epochs[i], np.inf)  # noqa: E731
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (tn.epochs[g] / inf(tn, g0)) / (inf(tr, g) / tr.epochs[g0])
    return np.nan_to_num(ratio, nan=0.0)


def best_regularized(curves: Curves, kind: Kind) -> int:
    """The regularized setting a practitioner would pick on data ``kind``: highest mean final validation accuracy."""
    d = _pick(curves, kind)
    regularized = [g for g, s in enumerate(curves.settings) if s.regularizer != "none"]
    return regularized[int(np.argmax(curves.val_acc[regularized, d, :, -1].mean(-1)))]


def claims(curves: Curves, *, k: float, margin: float, chosen: Mapping[str, float], noise_target: float,
           real_target: float, slowdown: float, acc_margin: float, fit_ratio: float, name: str = "",
           asserted: bool = True, reported: Sequence[str] = ()) -> list[Claim]:
    """The notebook's claims, per seed and summarised by the worst seed (thresholds are arguments,
    fixed in the notebook's settings before the run); the claims of the regularizers in ``reported``
    are reported only. See the notebook for each statement."""
    fig10, fig11, talk = "Arpit et al. 2017 Fig. 10; poster Fig. 5.1", "Arpit et al. 2017 Fig. 11; poster Fig. 5.2", \
        "talk: 'Regularization can reduce memorization' (real data + randY)"
    pre, eff, out = f"{name}-" if name else "", effectiveness(curves, k), []
    for r in ("dropout", "adversarial"):
        sure = asserted and r not in reported
        out.append(Claim(f"{pre}{r}-cuts-memorization", f"some strength of {r} cuts randY memorization by far more than "
                         "it costs in test accuracy on real data", f"max over strengths, worst seed: memorization cut − "
                         f"{k:g} × accuracy cost", float(eff[curves.at(r)].min(-1).max()), margin, ">=", fig10, sure))
        g = curves.at(r, chosen[r])[0]
        out.append(Claim(f"{pre}{r}-slows-noise-more", f"{r} {chosen[r]:g} slows fitting random labels more than real ones",
                         f"worst seed: [T(randY to {noise_target:g}) / T_none] / [T(real to {real_target:g}) / T_none]",
                         float(slowdown_ratio(curves, g, noise_target, real_target).min()), slowdown, ">=", fig11, sure))
    g0 = curves.at("none")[0]
    for kind in curves.kinds:
        if kind.corruption != "randY" or kind.p == 1:
            continue
        g, d = best_regularized(curves, kind), _pick(curves, kind)
        best_none = generalization(curves, kind)[g0]
        out.append(Claim(f"{pre}{kind.key}-keeps-accuracy", f"on {kind.label}, the regularized setting with the best "
                         f"validation accuracy ({curves.settings[g].label}) keeps test accuracy at the end of training "
                         f"within {acc_margin:g} of early-stopped training without regularization",
                         "worst seed: final test acc − best-epoch test acc of none",
                         float((curves.test_acc[g, d, :, -1] - best_none).min()), -acc_margin, ">=", talk, asserted))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = noisy_fit(curves, kind)[g] / noisy_fit(curves, kind)[g0]
        out.append(Claim(f"{pre}{kind.key}-fits-fewer-noisy", f"on {kind.label}, that setting ({curves.settings[g].label}) "
                         "fits far fewer noisy labels than no regularization", "worst seed: noisy-label fit / that of none",
                         float(np.nan_to_num(ratio, nan=np.inf).max()), fit_ratio, "<=", talk, asserted))
    score = eff.mean(-1)
    best = {r: float(score[curves.at(r)].max()) for r in REGULARIZERS if curves.at(r)}
    adv = max(best.get("adversarial", -np.inf), best.get("adversarial_dropout", -np.inf))
    other = max(v for r, v in best.items() if not r.startswith("adversarial"))
    out.append(Claim(f"{pre}adversarial-most-effective", "adversarial training (+ dropout) is the most effective regularizer",
                     "best adversarial − best other regularizer, mean effectiveness", adv - other, 0.0, ">", fig10, False))
    return out


def time_rows(curves: Curves, noise_target: float, real_target: float) -> tuple[list[str], list[list[str]]]:
    """Header and rows for ``run.table``: median epochs over seeds to ``noise_target`` on randY and to
    ``real_target`` on real labels ("≥" when censoring hides the median), and the censored runs."""
    def median(t: TimeToFit, g: int) -> str:
        lo, hi = t.median()
        return f"{lo[g]:.3g}" if np.isfinite(hi[g]) else f"≥{lo[g]:.3g}"

    tn, tr = time_to(curves, Kind("randY", 1.0), noise_target), time_to(curves, REAL, real_target)
    return (["setting", f"epochs to {noise_target:.0%} on randY", "censored", f"epochs to {real_target:.0%} on real", "censored"],
            [[s.label, median(tn, g), int(tn.n_censored[g]), median(tr, g), int(tr.n_censored[g])]
             for g, s in enumerate(curves.settings)])


def effectiveness_rows(curves: Curves, k: float) -> tuple[list[str], list[list[str]]]:
    """Header and rows for ``run.table``: per regularizer, its most effective strength (mean over seeds), the
    memorization and test accuracy there, ranked from the most effective."""
    m, y, eff = memorization(curves), generalization(curves), effectiveness(curves, k).mean(-1)
    g0 = curves.at("none")[0]
    best = sorted(((max(curves.at(r), key=lambda g: eff[g]), r) for r in _regularizers(curves)), key=lambda t: -eff[t[0]])
    return (["rank", "regularizer", "best strength", "randY fit", "real test acc", f"effectiveness (k = {k:g})"],
            [[0, "none", "", f"{m[g0].mean():.3f}", f"{y[g0].mean():.3f}", "0"]] +
            [[i + 1, r, f"{curves.settings[g].strength:g}", f"{m[g].mean():.3f}", f"{y[g].mean():.3f}", f"{eff[g]:.3f}"]
             for i, (g, r) in enumerate(best)])


def summary(curves: Curves, k: float) -> dict[str, Any]:
    """For the result JSON: per setting, the mean and per-seed memorization, generalization,
    effectiveness, and per mixed kind the noisy-label fit and final test accuracy."""
    m, y, eff = memorization(curves), generalization(curves), effectiveness(curves, k)
    out: dict[str, Any] = {"epochs": curves.epochs.tolist(), "kinds": [kd.label for kd in curves.kinds]}
    for g, s in enumerate(curves.settings):
        out[s.key] = {"memorization": m[g].tolist(), "generalization": y[g].tolist(), "effectiveness": eff[g].tolist(),
                      **{f"{kd.key}": {"noisy_fit": noisy_fit(curves, kd)[g].tolist(),
                                       "final_test_acc": curves.test_acc[g, d, :, -1].tolist()}
                         for d, kd in enumerate(curves.kinds) if kd.corruption and kd.p < 1}}
    return out


def findings(curves: Curves, claims: Sequence[Claim], thresholds: Mapping[str, float], name: str) -> str:
    """What this run found, in Markdown, with its numbers: the unregularized reference, the most
    effective regularizer, and the claims that held and did not."""
    m, y = memorization(curves), generalization(curves)
    g0, k = curves.at("none")[0], thresholds["k"]
    rows = effectiveness_rows(curves, k)[1]
    first, adv = rows[1], [r for r in rows[1:] if str(r[1]).startswith("adversarial")]
    text = [f"**{name}.** Without regularization the network fits {m[g0].mean():.0%} of the random labels "
            f"(randY, mean over {m.shape[1]} seeds) and reaches {y[g0].mean():.1%} test accuracy on real data. "
            f"The most effective regularizer in this run is **{first[1]}** at {first[2]} (randY fit {first[3]}, "
            f"real test accuracy {first[4]}, effectiveness {first[5]})."]
    if adv:
        text.append(f"Adversarial training ranks {', '.join(f'{r[1]} #{r[0]}' for r in adv)} of {len(rows) - 1}"
                    + ("." if first[1].startswith("adversarial") else ": it is **not** the most effective here, "
                       "unlike the paper's remark."))
    held = [c.id for c in claims if c.holds]
    failed = [f"{c.id} ({c.value:.3g}, needs {c.op} {c.threshold:.3g})" for c in claims if not c.holds]
    text.append(f"Claims that held: {', '.join(held) or 'none'}. Did not hold: {', '.join(failed) or 'none'}.")
    return " ".join(text) + "\n"


# --------------------------------------------------------------------------------------- figures

def _regularizers(curves: Curves) -> list[str]:
    return [r for r in REGULARIZERS if curves.at(r)]


def plot_fig10(ax: plt.Axes, curves: Curves) -> None:
    """Fig. 10: y = test accuracy at the best validation epoch (real data) against x = final randY
    training accuracy, one curve per regularizer through its strengths (from none); mean over seeds
    with the seed range as error bars."""
    m, y = memorization(curves), generalization(curves)
    g0 = curves.at("none")[0]
    for r in _regularizers(curves):
        gs = [g0, *curves.at(r)]
        ax.errorbar(m[gs].mean(-1), y[gs].mean(-1), xerr=np.ptp(m[gs], -1) / 2, yerr=np.ptp(y[gs], -1) / 2,
                    color=COLORS[r], marker="o", ms=4, lw=1.5, capsize=0, label=r.replace("_", " "))
        ax.annotate(f"{curves.settings[gs[-1]].strength:g}", (m[gs[-1]].mean(), y[gs[-1]].mean()), fontsize=7,
                    color=COLORS[r], xytext=(3, 3), textcoords="offset points")
    ax.plot(m[g0].mean(), y[g0].mean(), "s", color="k", ms=8, label="none", zorder=5)
    ax.set(xlabel="final training accuracy on randY (memorization)", ylabel="test accuracy on real data at best val epoch")
    ax.legend(fontsize=7, loc="lower right")


def plot_mixed(ax: plt.Axes, curves: Curves, kind: Kind) -> None:
    """Real data + randY at p: clean test accuracy at the end of training against the fit of the noisy labels."""
    fit, d = noisy_fit(curves, kind), _pick(curves, kind)
    acc = curves.test_acc[:, d, :, -1]
    g0 = curves.at("none")[0]
    for r in _regularizers(curves):
        gs = [g0, *curves.at(r)]
        ax.plot(fit[gs].mean(-1), acc[gs].mean(-1), "o-", color=COLORS[r], ms=4, label=r.replace("_", " "))
    ax.plot(fit[g0].mean(), acc[g0].mean(), "s", color="k", ms=8, label="none", zorder=5)
    ax.axhline(generalization(curves, kind)[g0].mean(), color="k", ls=":", lw=1, label="none, early-stopped")
    ax.set(xlabel=f"final accuracy on the noisy labels ({kind.label})", ylabel="final clean test accuracy",
           title=f"{kind.label}: memorization vs learning")


def plot_fig11(axes: Sequence[plt.Axes], curves: Curves, chosen: Mapping[str, float]) -> None:
    """Fig. 11: training accuracy over epochs on randY (``axes[0]``) and real labels (``axes[1]``), no
    regularization and each regularizer at its chosen strength: mean line and seed band."""
    for ax, kind in zip(axes, (Kind("randY", 1.0), REAL)):
        d = _pick(curves, kind)
        for r in ["none", *_regularizers(curves)]:
            g = curves.at(r, chosen.get(r))[0]
            figures.band(ax, curves.epochs, curves.train_acc[g, d], COLORS[r], curves.settings[g].label, lw=1.5)
        figures.epoch_axis(ax, curves.epochs[-1])
        ax.set(ylabel="training accuracy", title=f"{kind.label} labels", ylim=(0, 1.02))
    axes[0].legend(fontsize=7)


def plot_time(ax: plt.Axes, curves: Curves, target: float) -> None:
    """Epochs to reach ``target`` training accuracy on randY against strength, per regularizer: one dot per
    seed, crosses for censored runs (plotted at the budget); the dotted line is no regularization's median."""
    t = time_to(curves, Kind("randY", 1.0), target)
    for i, r in enumerate(_regularizers(curves)):
        gs = curves.at(r)
        for j, g in enumerate(gs):
            x = np.full(t.epochs.shape[-1], i + (j + 1) / (len(gs) + 1))
            c = t.converged[g]
            ax.plot(x[c], t.epochs[g][c], "o", color=COLORS[r], ms=4)
            ax.plot(x[~c], t.epochs[g][~c], "x", color=COLORS[r], ms=6)
    lo, hi = t.median()
    ax.axhline(lo[curves.at("none")[0]], color="k", ls=":", lw=1, label="none (median)")
    regs = _regularizers(curves)
    ax.set_xticks(np.arange(len(regs)) + 0.5, [r.replace("_", "\n") for r in regs], fontsize=7)
    ax.set(ylabel=f"epochs to {target:.0%} randY training accuracy", title="time to memorize (× censored, ≥ budget); "
           "strengths rise left to right")
    ax.legend(fontsize=7)
