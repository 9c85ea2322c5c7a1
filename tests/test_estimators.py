"""Known-answer tests of memkit.estimators: the shallow models M of notebook 06 (SVM, random forest)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memkit import estimators


def blobs(n: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two well separated Gaussian blobs in 5-D, shaped (N, 1, 5)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 1, 5, generator=g) + 6.0 * y[:, None, None]
    return x, y


def test_subsample():
    assert np.array_equal(estimators.subsample(10, None, 0), np.arange(10))
    assert np.array_equal(estimators.subsample(10, 50, 0), np.arange(10))
    idx = estimators.subsample(10, 3, 0)
    assert len(set(idx.tolist())) == 3 and np.all(np.diff(idx) > 0)
    assert np.array_equal(idx, estimators.subsample(10, 3, 0))
    with pytest.raises(ValueError, match="n_fit"):
        estimators.subsample(10, 0, 0)


def test_rbf_gamma_is_sklearns_scale():
    from sklearn.svm import SVC

    x, y = blobs()
    xs = estimators.flatten(x)
    assert estimators.rbf_gamma(xs) == pytest.approx(SVC(gamma="scale").fit(xs, y.numpy())._gamma)


@pytest.mark.parametrize("options", [{}, {"n_components": 1000, "n_fit": 100}])
def test_fit_svm_exact_and_nystroem(options):
    x, y = blobs()
    m = estimators.fit_svm(x, y, **options)
    assert m.kind == "svm" and m.n_fit == options.get("n_fit", 200)
    correct = m.correct(x, y)
    assert correct.dtype == torch.bool and correct.shape == (200,) and bool(correct.all())
    if options:
        assert "100 components" in m.details["method"]  # clipped to the examples it is fitted on


def test_forest_early_stopping_rule():
    x, y = blobs()
    # separable: the out-of-bag accuracy is 0.995 with 20 trees (one example without enough OOB votes)
    # and 1.0 with 40; that gain, 0.005, is below tol = 0.01, so growing stops at 40 trees
    easy = estimators.fit_forest(x, y, chunk=20, tol=0.01, max_trees=200, n_jobs=1)
    assert easy.details["n_trees"] == 40 and easy.model.n_estimators == 40
    assert [n for n, _ in easy.details["oob"]] == [20, 40] and easy.details["oob"][-1][1] == 1.0
    # in general: every gain before the last is >= tol, the last one < tol
    noisy = estimators.fit_forest(x + 3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1)), y,
                               chunk=5, tol=0.01, max_trees=200, n_jobs=1)
    gains = np.diff([acc for _, acc in noisy.details["oob"]])
    assert np.all(gains[:-1] >= 0.01) and gains[-1] < 0.01
    # a tolerance no gain can fall below never stops early
    never = estimators.fit_forest(x, y, chunk=5, tol=-1.0, max_trees=20, n_jobs=1)
    assert never.details["n_trees"] == 20
    assert bool(never.correct(x, y).all())
    with pytest.raises(ValueError, match="chunk"):
        estimators.fit_forest(x, y, chunk=0)


def test_fit_shallow_rejects_unknown_kind():
    x, y = blobs()
    with pytest.raises(ValueError, match="unknown shallow model"):
        estimators.fit_shallow("knn", x, y)
