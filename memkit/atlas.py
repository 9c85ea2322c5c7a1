"""Per-example memorization scores side by side (notebook 08, the memorization atlas).

Every score maps S training runs to one number per training example n (index = position in the
training split). The scores from training dynamics take tensors recorded after each epoch e = 1..E
for each member s: ``correct`` ``(E, S, N)`` bool (the member classifies n as its given label) and
``p_true`` ``(E, S, N)`` (the softmax probability of the given label). An optional ``mask``
``(S, N)`` bool says which members trained on which examples (members trained on random halves of
the data, see :func:`subset_masks`); the per-member values are then averaged over the members that
trained on the example (all members when ``mask`` is ``None``).

=====================  ===========================================================  ==========
score                  definition                                                   paper
=====================  ===========================================================  ==========
forgetting events      correct → incorrect transitions between consecutive epochs  Toneva 2019
first-learned epoch    first epoch from which the example stays correct             Toneva 2019
confidence             mean over epochs of p(given label)                           Swayamdipta 2020
variability            standard deviation over epochs of p(given label)             Swayamdipta 2020
EL2N                   ‖softmax(f(x)) − onehot(y)‖₂ early in training               Paul 2021
GraNd                  ‖∇_θ ℓ(f_θ(x), y)‖₂ early in training                        Paul 2021
held-out consistency   accuracy of the members that did NOT train on it (C-score)   Jiang 2021
held-out confidence    confidence of the members that did NOT train on it            (soft C-score)
memorization           accuracy when trained on minus when held out                 Feldman & Zhang 2020
=====================  ===========================================================  ==========

:data:`HARDNESS` orients every score so that high means hard / memorized, the direction in which
the rank correlations (:func:`rank_correlations`), the mislabel flags (:func:`flag_auroc`) and the
claims (:func:`claims`) read them.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats
from torch.func import functional_call, grad

from memkit.results import Claim
from memkit.training import Ensemble

#: +1 where a high score means hard / memorized, −1 where a high score means easy.
HARDNESS = {
    "error_1epoch": 1,
    "loss_sensitivity": 1,
    "critical": 1,
    "shallow_correct": -1,
    "forgetting": 1,
    "never_learned": 1,
    "first_learned": 1,
    "confidence": -1,
    "variability": 1,
    "el2n": 1,
    "grand": 1,
    "heldout": -1,
    "heldout_confidence": -1,
    "memorization": 1,
    "cscore_published": -1,
}


def member_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``(S, N)`` → ``(N,)`` float: the mean over the members where ``mask`` is True (all members
    when ``mask`` is None); NaN where no member counts."""
    values = values.float()
    if mask is None:
        return values.mean(0)
    m = mask.to(values.device).float()
    return (values * m).sum(0) / m.sum(0)


def forgetting_events(correct: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Forgetting events (Toneva et al. 2019, *An Empirical Study of Example Forgetting*).

    A forgetting event is a transition from correctly to incorrectly classified between two
    consecutive evaluations e−1, e. ``correct``: ``(E, S, N)`` bool. An example that a member
    never classifies correctly is *never learned*; Toneva et al. rank those as the most forgotten,
    so for that member its count is E (more than the ⌊E/2⌋ events a learned example can have).

    Returns ``(events, never_learned)``, both ``(N,)`` float averaged over the members (``mask``:
    those that trained on the example): the mean count, and the fraction of members that never
    learned it.
    """
    c = correct.bool()
    events = (c[:-1] & ~c[1:]).sum(0).float()  # (S, N)
    never = ~c.any(0)
    events = torch.where(never, float(c.shape[0]), events)
    return member_mean(events, mask), member_mean(never, mask)


def first_learned_epoch(correct: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The first epoch from which the example stays correctly classified (Toneva et al. 2019's
    learning event; notebook 06's "first step from which D is right", per epoch).

    ``correct``: ``(E, S, N)`` bool after epochs 1..E. Per member: the smallest e in 1..E with
    the example correct at every evaluation e..E, and E + 1 when it is wrong at the last one.
    Returns ``(N,)`` float, averaged over the members (``mask``: those that trained on it).
    """
    c = correct.bool()
    n_epochs = c.shape[0]
    stays = c.flip(0).cumprod(0).flip(0).bool()  # stays[e]: correct at every evaluation from e on
    first = n_epochs + 1 - stays.sum(0)  # (S, N) in 1..E+1
    return member_mean(first, mask)


def confidence(p_true: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Confidence μ (Swayamdipta et al. 2020, *Dataset Cartography*): the mean over the E epochs
    of the probability of the given label, ``(E, S, N)`` → ``(N,)``, averaged over members."""
    return member_mean(p_true.float().mean(0), mask)


def variability(p_true: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Variability σ (Swayamdipta et al. 2020): the standard deviation over the E epochs of the
    probability of the given label (population σ, divided by E), ``(E, S, N)`` → ``(N,)``,
    averaged over members."""
    return member_mean(p_true.float().std(0, correction=0), mask)


def el2n(probs: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """EL2N (Paul et al. 2021, *Deep Learning on a Data Diet*): ‖softmax(f(x)) − onehot(y)‖₂,
    from members early in training, averaged over members.

    ``probs``: ``(S, N, K)`` softmax outputs; ``y``: ``(N,)`` the given labels. Returns ``(N,)``
    in [0, √2].
    """
    onehot = F.one_hot(y.to(probs.device), probs.shape[-1]).to(probs.dtype)
    return member_mean(torch.linalg.vector_norm(probs - onehot, dim=-1), mask)


def grand(
    ens: Ensemble, x: torch.Tensor, y: torch.Tensor, members: Sequence[int] | None = None, max_elements: int = 2**25
) -> torch.Tensor:
    """GraNd (Paul et al. 2021): the norm of each example's loss gradient with respect to the
    parameters, ‖∇_θ ℓ(f_θ(x_n), y_n)‖₂, for every member of ``ens`` (or ``members``).

    Per-example gradients by ``torch.func.vmap(grad(...))`` over examples and over members, in
    chunks of examples small enough that the per-example gradients hold at most
    ``max_elements`` numbers. ``x``: ``(N, *input_shape)``, ``y``: ``(N,)``. Returns ``(S', N)``;
    average it over members (with a mask) for the score.
    """
    idx = list(range(len(ens))) if members is None else list(members)
    params = {k: v.detach()[idx] for k, v in ens.params.items()}
    buffers = {k: v[idx] for k, v in ens.buffers.items()}
    n_params = sum(v[0].numel() for v in params.values())

    Weights = dict[str, torch.Tensor]

    def loss(p: Weights, b: Weights, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(ens.base, (p, b), (xi[None],)), yi[None])

    def sq_norm(p: Weights, b: Weights, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        return sum((g**2).sum() for g in grad(loss)(p, b, xi, yi).values())

    per_member = torch.vmap(torch.vmap(sq_norm, in_dims=(None, None, 0, 0)), in_dims=(0, 0, None, None))
    chunk = max(1, max_elements // (len(idx) * n_params))
    x, y = x.to(ens.device), y.to(ens.device)
    out = [per_member(params, buffers, x[i : i + chunk], y[i : i + chunk]) for i in range(0, len(x), chunk)]
    return torch.cat(out, 1).sqrt()


def subset_masks(n: int, n_models: int, seed: int = 0) -> torch.Tensor:
    """Which member trains on which example: ``(S, N)`` bool, every member on ⌊N/2⌋ examples.

    Members come in complementary pairs (member 2i on a random half, member 2i+1 on the other
    half), so every example is held out by at least S/2 members and trained on by S/2 (with odd
    N, one example per pair by neither): the half-subset design of Feldman & Zhang (2020) and
    Jiang et al. (2021), balanced. ``n_models`` must be even.
    """
    if n_models < 2 or n_models % 2:
        raise ValueError(f"n_models={n_models}: the half-subset design needs an even number of members (>= 2)")
    g = torch.Generator().manual_seed(seed)
    m = n // 2
    masks = torch.zeros(n_models, n, dtype=torch.bool)
    for i in range(0, n_models, 2):
        order = torch.randperm(n, generator=g)
        masks[i, order[:m]] = True
        masks[i + 1, order[m : 2 * m]] = True
    return masks


def heldout_consistency(correct: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The held-out consistency / C-score estimate (Jiang et al. 2021): the accuracy on each
    example of the members that did not train on it. ``correct``, ``mask``: ``(S, N)`` bool
    (``mask``: trained on it). ``(N,)`` in [0, 1]; high means easy (regular)."""
    return member_mean(correct, ~mask.bool())


def memorization(correct: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Feldman & Zhang's (2020) memorization estimate: the accuracy on each example of the
    members that trained on it minus that of the members that did not, ``(S, N)`` → ``(N,)`` in
    [−1, 1]; high means the example is only right when it is in the training set."""
    return member_mean(correct, mask.bool()) - heldout_consistency(correct, mask)


# ---------------------------------------------------------------------------------------------
# Comparing scores
# ---------------------------------------------------------------------------------------------


def oriented(scores: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The scores turned so that high means hard / memorized (:data:`HARDNESS`), as float arrays."""
    return {k: HARDNESS.get(k, 1) * np.asarray(v, dtype=float) for k, v in scores.items()}


def label(name: str) -> str:
    """How an oriented score is labelled in tables and figures: ``−confidence`` for a negated one."""
    return name if HARDNESS.get(name, 1) > 0 else f"−{name}"


@dataclass
class Correlations:
    """Spearman's ρ between scores with percentile bootstrap intervals over the examples.

    ``names`` (k,), ``rho``, ``lo``, ``hi``: ``(k, k)``; ``level`` the interval's coverage."""

    names: list[str]
    rho: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    level: float = 0.95
    n_boot: int = 0

    def pair(self, a: str, b: str) -> tuple[float, float, float]:
        """(ρ, lower, upper) of the pair ``a``, ``b``."""
        i, j = self.names.index(a), self.names.index(b)
        return float(self.rho[i, j]), float(self.lo[i, j]), float(self.hi[i, j])


def _spearman_matrix(values: np.ndarray) -> np.ndarray:
    """``(k, N)`` → ``(k, k)``: the Pearson correlation of the ranks (average ranks for ties)."""
    ranks = stats.rankdata(values, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.corrcoef(ranks)


def rank_correlations(
    scores: Mapping[str, np.ndarray], n_boot: int = 200, seed: int = 0, level: float = 0.95
) -> Correlations:
    """Spearman's rank correlation between every pair of scores (each ``(N,)``, same examples),
    with percentile bootstrap intervals: the examples are resampled with replacement ``n_boot``
    times and ρ recomputed. Examples where any score is NaN are left out; a constant score gives
    NaN correlations."""
    names = list(scores)
    values = np.stack([np.asarray(scores[k], dtype=float) for k in names])
    values = values[:, np.isfinite(values).all(0)]
    rng = np.random.default_rng(seed)
    boot = (
        np.stack(
            [_spearman_matrix(values[:, rng.integers(0, values.shape[1], values.shape[1])]) for _ in range(n_boot)]
        )
        if n_boot
        else np.full((1, len(names), len(names)), np.nan)
    )
    tail = 100 * (1 - level) / 2
    lo, hi = np.nanpercentile(boot, [tail, 100 - tail], axis=0) if n_boot else (boot[0], boot[0])
    return Correlations(names, _spearman_matrix(values), lo, hi, level, n_boot)


def flag_auroc(score: np.ndarray, corrupted: np.ndarray) -> float:
    """How well a score (high = suspicious) flags the corrupted examples: the area under the ROC
    curve (``sklearn.metrics.roc_auc_score``), the probability that a random corrupted example
    scores higher than a random clean one (0.5: no better than chance)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.asarray(corrupted, dtype=bool), np.asarray(score, dtype=float)))


def precision_at_noise_rate(score: np.ndarray, corrupted: np.ndarray) -> float:
    """Precision of flagging the M highest-scoring examples, M the true number of corrupted ones
    (what a practitioner who knows the noise rate would remove): ``sklearn.metrics.precision_score``."""
    from sklearn.metrics import precision_score

    corrupted = np.asarray(corrupted, dtype=bool)
    flagged = np.zeros(len(corrupted), dtype=bool)
    flagged[np.argsort(-np.asarray(score, dtype=float), kind="stable")[: int(corrupted.sum())]] = True
    return float(precision_score(corrupted, flagged, zero_division=0.0))


def auroc_difference(
    score: np.ndarray,
    baseline: np.ndarray,
    corrupted: np.ndarray,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """AUROC(score) − AUROC(baseline) for flagging ``corrupted``, with a paired percentile
    bootstrap interval over the examples: (difference, lower, upper)."""
    score, baseline, corrupted = (np.asarray(a) for a in (score, baseline, corrupted))
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        i = rng.integers(0, len(score), len(score))
        if corrupted[i].all() or not corrupted[i].any():
            continue
        diffs.append(flag_auroc(score[i], corrupted[i]) - flag_auroc(baseline[i], corrupted[i]))
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(diffs, [tail, 100 - tail]) if diffs else (np.nan, np.nan)
    return flag_auroc(score, corrupted) - flag_auroc(baseline, corrupted), float(lo), float(hi)


# ---------------------------------------------------------------------------------------------
# Claims
# ---------------------------------------------------------------------------------------------

#: Pairs that should agree (both oriented to high = hard), fixed before the first run:
#: learning speed vs held-out consistency (Jiang et al. 2021 §5), EL2N vs forgetting (Paul et al.
#: 2021 §4), notebook 01's one-epoch error rate vs held-out consistency (new here).
AGREEING_PAIRS = (("confidence", "heldout"), ("el2n", "forgetting"), ("error_1epoch", "heldout"))
THRESHOLDS = {"agree": 0.2, "cscore": 0.3, "flag": 0.02}


@dataclass
class AtlasScores:
    """What :func:`claims` needs from one data set's atlas: ``name`` (e.g. ``"digits"`` or
    ``"digits randY 20%"``), the ``scores`` (name → ``(N,)``), ``corrupted`` ``(N,)`` bool (all
    False for real data), ``baseline_loss`` ``(S_b, N)``: the final training loss of S_b single
    models trained on the whole set, and ``published`` ``(N,)`` C-scores or None."""

    name: str
    scores: dict[str, np.ndarray]
    corrupted: np.ndarray
    baseline_loss: np.ndarray | None = None
    published: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


def claims(
    atlases: Sequence[AtlasScores], n_boot: int = 200, seed: int = 0, asserted: bool | Container[str] = True
) -> list[Claim]:
    """The notebook's claims, each a lower bound of a 95% bootstrap interval over examples
    (``asserted``: True, False, or the names of the atlases whose claims are asserted, e.g. those
    of the profile's default data sets; the others are reported only):

    - on real data, the :data:`AGREEING_PAIRS` agree far above chance: the smallest lower bound
      of their Spearman ρ > 0.2 (for shuffled scores ρ ≈ 0 ± 1/√N);
    - with published C-scores, the held-out consistency's Spearman ρ with them: lower bound > 0.3;
    - with randY-corrupted examples, held-out consistency flags them better than the best of the
      single-model final losses: lower bound of the AUROC difference > 0.02.
    """
    out = []
    for a in atlases:
        key = a.name.replace(" ", "-").replace("%", "")
        check = asserted if isinstance(asserted, bool) else a.name in asserted
        if not a.corrupted.any():
            pairs = [p for p in AGREEING_PAIRS if p[0] in a.scores and p[1] in a.scores]
            sub = oriented({k: a.scores[k] for k in {n for p in pairs for n in p}})
            corr = rank_correlations(sub, n_boot, seed)
            worst = min(corr.pair(*p)[1] for p in pairs)
            out.append(
                Claim(
                    f"{key}-scores-agree",
                    f"{a.name}: per-example scores from different papers rank the "
                    "examples alike: " + ", ".join(f"{label(p)}~{label(q)}" for p, q in pairs),
                    "smallest lower 95% bound of Spearman rho",
                    worst,
                    THRESHOLDS["agree"],
                    ">",
                    "Jiang et al. 2021 §5; Paul et al. 2021",
                    check,
                )
            )
        if a.published is not None:
            pub = {"heldout": a.scores["heldout"], "cscore_published": a.published}
            _, lo, _ = rank_correlations(pub, n_boot, seed).pair("heldout", "cscore_published")
            out.append(
                Claim(
                    f"{key}-cscore",
                    f"{a.name}: the held-out consistency estimate agrees with the published C-scores",
                    "lower 95% bound of Spearman rho",
                    lo,
                    THRESHOLDS["cscore"],
                    ">",
                    "Jiang et al. 2021",
                    check,
                )
            )
        if a.corrupted.any() and a.baseline_loss is not None:
            base = max(np.asarray(a.baseline_loss), key=lambda loss: flag_auroc(loss, a.corrupted))
            _, lo, _ = auroc_difference(-np.asarray(a.scores["heldout"]), base, a.corrupted, n_boot, seed)
            out.append(
                Claim(
                    f"{key}-flags-mislabeled",
                    f"{a.name}: held-out consistency flags the mislabeled examples "
                    "better than the final loss of one model (the best of the baseline models)",
                    "lower 95% bound of AUROC(−heldout) − AUROC(loss)",
                    lo,
                    THRESHOLDS["flag"],
                    ">",
                    "Feldman & Zhang 2020; Jiang et al. 2021",
                    check,
                )
            )
    return out
