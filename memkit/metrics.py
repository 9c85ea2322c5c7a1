"""Per-example difficulty across seeds (notebook 01, Arpit et al. 2017 Fig. 1).

S models are trained with independent seeds; ``correct[s, n]`` says whether model ``s``
classifies example ``n`` correctly. If every example were equally hard (content-agnostic
learning), the number of models that misclassify example ``n``, ``k_n``, would be
Binomial(S, p̄) with p̄ the mean misclassification rate; shared patterns make some examples
easy for almost every model and others hard, so ``k_n`` is over-dispersed.

General statistics for other notebooks live here too: the Mantel–Haenszel risk ratio over strata
and random permutations within groups (notebook 06's class-level control).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats


def misclassification_rate(correct: torch.Tensor) -> torch.Tensor:
    """Per-example error rate over seeds, k_n / S: ``(S, N)`` bool → ``(N,)`` float in [0, 1]."""
    return (~correct.bool()).float().mean(0)


def _pooled(k: np.ndarray | torch.Tensor, n_models: int,
            groups: np.ndarray | torch.Tensor | None) -> tuple[float, int]:
    """X² = Σ_g Σ_{n∈g} (k_n − S·p̄_g)² / (S·p̄_g·(1 − p̄_g)) and its degrees of freedom N − G."""
    k = np.asarray(k, dtype=float)
    g = np.zeros(len(k), dtype=int) if groups is None else np.asarray(groups)
    x2, dof = 0.0, 0
    for label in np.unique(g):
        kg = k[g == label]
        p = kg.mean() / n_models
        expected = n_models * p * (1 - p)
        if expected == 0:  # every model right (or wrong) on the whole group: no variance to compare
            continue
        x2 += float(((kg - n_models * p) ** 2).sum() / expected)
        dof += len(kg) - 1
    return x2, dof


def dispersion_index(k: np.ndarray | torch.Tensor, n_models: int,
                     groups: np.ndarray | torch.Tensor | None = None) -> float:
    """Dispersion index D = Var(k) / (S·p̄·(1 − p̄)), p̄ = mean(k)/S.

    ``k``: ``(N,)`` per-example error counts out of S = ``n_models``. D ≈ 1 when the counts are
    Binomial(S, p̄) (every example equally hard), D ≫ 1 when difficulty varies between examples.
    With ``groups`` (``(N,)`` labels, e.g. the classes), p̄_g is estimated per group and D is the
    pooled within-group ratio X²/(N − G), which removes differences between whole groups (a
    model that predicts one class more often). NaN when no group has 0 < p̄_g < 1.
    """
    x2, dof = _pooled(k, n_models, groups)
    return x2 / dof if dof > 0 else float("nan")


def binomial_dispersion_test(k: np.ndarray | torch.Tensor, n_models: int,
                             groups: np.ndarray | torch.Tensor | None = None) -> dict[str, float]:
    """Goodness of fit of the counts ``k`` to Binomial(S, p̄): the binomial dispersion test.

    X² = Σ_n (k_n − S·p̄)² / (S·p̄·(1 − p̄)) = (N − 1)·D is χ²-distributed with N − 1 degrees of
    freedom when the counts are binomial with p̄ estimated from the data (N − G and p̄_g per
    group with ``groups``). Returns the statistic, the degrees of freedom, D and the upper-tail
    p-value (small: not binomial, over-dispersed).
    """
    x2, dof = _pooled(k, n_models, groups)
    p_value = float(stats.chi2.sf(x2, dof)) if dof > 0 else float("nan")
    return {"statistic": x2, "dof": dof, "dispersion": x2 / dof if dof > 0 else float("nan"), "p_value": p_value}


def binomial_quantiles(n_examples: int, n_models: int, p: float) -> np.ndarray:
    """The sorted curve Binomial(S, p) noise would give: the ``(i + ½)/N`` quantiles of
    Binomial(S, p)/S for i = 0..N−1, ascending (the reference line of Fig. 1)."""
    q = (np.arange(n_examples) + 0.5) / n_examples
    return stats.binom.ppf(q, n_models, p) / n_models


def mantel_haenszel_risk_ratio(a: torch.Tensor, n1: torch.Tensor, b: torch.Tensor, n0: torch.Tensor) -> torch.Tensor:
    """The Mantel–Haenszel risk ratio over strata (the last axis): the ratio of the event rates
    a/n1 (exposed) and b/n0 (unexposed), combined across strata c with weights n1_c·n0_c/n_c::

        RR_MH = Σ_c a_c·n0_c/n_c / Σ_c b_c·n1_c/n_c,   n_c = n1_c + n0_c.

    It equals the common ratio when every stratum has the same one, and is free of any difference
    between the strata's base rates (Mantel & Haenszel 1959; Greenland & Robins 1985).

    ``a``, ``b``: ``(..., C)`` events among the ``n1``, ``n0`` exposed and unexposed (broadcastable).
    Returns ``(...)`` float64: ``+inf`` when Σ b·n1/n = 0 < Σ a·n0/n; 1 when both sums are 0 but some
    stratum has both groups (no events where they could be compared); NaN when no stratum has both.
    """
    a, n1, b, n0 = (v.double() for v in (a, n1, b, n0))
    n = (n1 + n0).clamp_min(1)
    num, den, weight = (a * n0 / n).sum(-1), (b * n1 / n).sum(-1), (n1 * n0 / n).sum(-1)
    ratio = torch.where(den == 0, torch.where(num == 0, 1.0, torch.inf), num / den.clamp_min(1e-300))
    return torch.where(weight == 0, torch.nan, ratio)


def permute_within_groups(x: torch.Tensor, groups: torch.Tensor, n_perm: int, seed: int = 0) -> torch.Tensor:
    """``n_perm`` random permutations of ``x`` ``(N,)``, each moving values only within their group:
    ``(P, N)``, row p a permutation that keeps every group's multiset of values (``groups``: ``(N,)``
    integer labels). All rows at once: one random key per row and element, sorted by (group, key)."""
    g = torch.Generator().manual_seed(seed)
    keys = groups.double().cpu() + torch.rand(n_perm, len(x), generator=g, dtype=torch.float64) * 0.5
    base = torch.argsort(groups.cpu(), stable=True)  # (N,) the positions, grouped
    out = torch.empty(n_perm, len(x), dtype=x.dtype)
    out[:, base] = x.cpu()[keys.argsort(-1)]  # the k-th position of a group gets a random member's value
    return out
