"""memkit.easy: the dispersion of one experiment, and notebook 01's claims, which must hold with the
finding and fail on counterfactual runs without it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memkit import data, easy

S, N, K = 100, 2000, 10
REAL, RANDX, RANDY = data.REAL, data.RANDX, data.RANDY


def _correct(p_right: np.ndarray, seed: int) -> torch.Tensor:
    """``(S, N)``: model s right on example n with probability ``p_right[n]``, independently."""
    return torch.from_numpy(np.random.default_rng(seed).random((S, len(p_right))) < p_right)


def _experiment(kind: str, seed: int) -> torch.Tensor:
    """real: most examples easy, some hard (p_right from a U-shaped Beta); randX: every example
    equally hard (binomial counts); randY: moderately different difficulties."""
    rng = np.random.default_rng(1000 + seed)
    p = {"real": rng.beta(0.5, 0.2, N), "randX": np.full(N, 0.3), "randY": rng.beta(6, 10, N)}[kind]
    return _correct(p, seed)


LABELS = np.arange(N) % K


def _repeats(kinds: dict, n_repeats: int = 3) -> dict:
    return {k: [easy.dispersion(_experiment(kinds[k], r), LABELS) for r in range(n_repeats)] for k in kinds}


def _holds(repeats, **options) -> dict[str, bool]:
    return {c.id.removeprefix("toy-"): c.holds for c in easy.claims(repeats, "toy", **options)}


FINDING = {REAL: "real", RANDX: "randX", RANDY: "randY"}


def test_dispersion_of_binomial_and_of_mixed_difficulty():
    binomial = easy.dispersion(_experiment("randX", 0), LABELS)
    assert binomial.p_bar == pytest.approx(0.7, abs=0.01)
    assert binomial.overall["dispersion"] == pytest.approx(1.0, abs=0.1) and binomial.overall["p_value"] > 0.001
    assert binomial.within_class["dof"] == N - K
    assert easy.dispersion(_experiment("real", 0), LABELS).overall["dispersion"] > 20


def test_claims_hold_with_the_finding():
    claims = easy.claims(_repeats(FINDING), "toy", cscore_rho=[0.3, 0.4, 0.35])
    assert all(c.holds for c in claims), [str(c) for c in claims]
    assert [c.asserted for c in claims] == [True, True, False, True, True, True]  # "binomial": reported only
    assert not any(c.asserted for c in easy.claims(_repeats(FINDING), "toy", asserted=False))


def test_claims_fail_when_real_and_randX_are_swapped():
    held = _holds(_repeats({REAL: "randX", RANDX: "real", RANDY: "randY"}))
    assert not any(held.values()), held


def test_randY_claims_fail_when_its_counts_are_like_randX_or_like_real():
    assert not _holds(_repeats({REAL: "real", RANDX: "randX", RANDY: "randX"}))["randY-above-randX"]
    assert not _holds(_repeats({REAL: "real", RANDX: "randX", RANDY: "real"}))["randY-below-real"]


def test_one_repeat_without_the_finding_fails_the_claims():
    repeats = _repeats(FINDING)
    repeats[REAL][2] = easy.dispersion(_experiment("randX", 7), LABELS)  # repeat 2: real as flat as noise
    repeats[RANDX][1] = easy.dispersion(_experiment("randY", 8), LABELS)  # repeat 1: randX over-dispersed
    held = _holds(repeats, cscore_rho=[0.3, 0.05, 0.4])
    assert not held["real-vs-randX"] and not held["randX-low-dispersion"] and not held["randX-binomial"]
    assert not held["cscore"]
