"""memkit.metrics against cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from memkit import metrics

S = 100


def test_misclassification_rate():
    correct = torch.tensor([[True, False, False], [True, True, False]])
    assert metrics.misclassification_rate(correct).tolist() == [0.0, 0.5, 1.0]


def test_binomial_counts_have_dispersion_one_and_pass_the_test():
    k = np.random.default_rng(0).binomial(S, 0.3, size=20000)
    result = metrics.binomial_dispersion_test(k, S)
    assert result["dispersion"] == pytest.approx(1.0, abs=0.03)
    assert result["dof"] == 19999 and result["p_value"] > 0.01


def test_dispersion_by_hand():
    k = np.array([0, 10, 20])  # p̄ = 0.1, Var(k, ddof=1) = 100, S·p̄·(1−p̄) = 9
    assert metrics.dispersion_index(k, S) == pytest.approx(100 / 9)
    assert metrics.binomial_dispersion_test(k, S)["statistic"] == pytest.approx(200 / 9)


def test_easy_and_hard_examples_are_overdispersed():
    k = np.r_[np.zeros(500), np.full(500, S)]  # half always right, half always wrong
    result = metrics.binomial_dispersion_test(k, S)
    assert result["dispersion"] > 50 and result["p_value"] < 1e-12


def test_groups_remove_differences_between_groups():
    rng = np.random.default_rng(1)
    k = np.r_[rng.binomial(S, 0.1, 5000), rng.binomial(S, 0.7, 5000)]
    groups = np.repeat([3, 7], 5000)
    assert metrics.dispersion_index(k, S) > 20
    assert metrics.dispersion_index(k, S, groups) == pytest.approx(1.0, abs=0.05)
    assert metrics.binomial_dispersion_test(k, S, groups)["dof"] == 10000 - 2


def test_no_variance_expected_gives_nan():
    assert math.isnan(metrics.dispersion_index(np.zeros(10), S))
    assert math.isnan(metrics.binomial_dispersion_test(np.full(10, S), S)["p_value"])


def test_binomial_quantiles():
    q = metrics.binomial_quantiles(1000, S, 0.2)
    assert q.shape == (1000,) and np.all(np.diff(q) >= 0)
    assert q.mean() == pytest.approx(0.2, abs=0.01) and q[500] == pytest.approx(0.2, abs=0.011)


def test_mantel_haenszel_risk_ratio_by_hand():
    # stratum 1: 8 of 10 exposed, 1 of 2 unexposed have the event; stratum 2: 1 of 2 and 2 of 10
    a, n1, b, n0 = (torch.tensor(v) for v in ([8, 1], [10, 2], [1, 2], [2, 10]))
    assert metrics.mantel_haenszel_risk_ratio(a, n1, b, n0).item() == pytest.approx((8 * 2 / 12 + 1 * 10 / 12) /
                                                                                    (1 * 10 / 12 + 2 * 2 / 12))
    # the same ratio (2) in every stratum, at different base rates: RR_MH is that ratio
    same = metrics.mantel_haenszel_risk_ratio(torch.tensor([4, 40]), torch.tensor([10, 50]), torch.tensor([1, 10]),
                                              torch.tensor([5, 25]))
    assert same.item() == pytest.approx(2.0)


def test_permute_within_groups_keeps_each_groups_values():
    groups = torch.tensor([0, 1, 0, 2, 1, 0, 2, 2, 1, 0])
    x = torch.arange(10)
    perms = metrics.permute_within_groups(x, groups, n_perm=200, seed=3)
    assert perms.shape == (200, 10)
    for g in range(3):
        assert (perms[:, groups == g].sort(-1).values == x[groups == g]).all()  # same values, same group
    assert len({tuple(p.tolist()) for p in perms}) > 100  # 4!·3!·3! = 864 possible: many different ones
    assert torch.equal(perms, metrics.permute_within_groups(x, groups, n_perm=200, seed=3))
