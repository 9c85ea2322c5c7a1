"""Tests of the CSR through training and of notebook 04's claims (:mod:`memkit.critical`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memkit import adversarial as A
from memkit import critical as C
from memkit import data, models, training


def test_csr_points():
    ds = data.load("digits", n_test=50)
    assert torch.equal(C.csr_points(ds, 20), ds.x_test[:20])
    noise = C.csr_points(data.load("digits", n_test=50, corruption="randX", p=1.0), 20)
    assert noise.shape == (20, 1, 8, 8) and not torch.equal(noise, ds.x_test[:20])


def test_csr_through_training_batched_and_sequential_agree(monkeypatch):
    ds = data.load("digits", n_train=100, n_test=30, corruption="randY", p=0.5)
    kw = dict(epochs=[2, 0, 1], n_seeds=2, sgd=training.SGD(batch_size=32, lr=0.05, momentum=0.9),
              search=A.lass_settings(ds.x_test, r=12, beta=0.0), seed=3)
    factory = lambda: models.mlp(ds.input_shape, [32], 10)  # noqa: E731
    batched = C.csr_through_training(factory, ds, ds.x_test, **kw)
    monkeypatch.setattr(training, "needs_loop", lambda factory: True)  # the per-seed path for the same model
    plain = C.csr_through_training(factory, ds, ds.x_test, **kw)
    assert batched.batched and not plain.batched
    assert list(batched.epochs) == [0, 1, 2] and batched.csr.shape == (2, 3)
    for q in ("train_acc", "val_acc", "noisy_acc", "csr"):
        assert np.allclose(getattr(batched, q), getattr(plain, q), atol=0.03), q
    assert np.isfinite(batched.noisy_acc).all() and batched.val_peak in (0, 1, 2)
    assert batched.critical.shape == (2, 30) and batched.critical.dtype == bool
    assert np.allclose(batched.critical.mean(1), batched.csr[:, -1])
    assert batched.models is not None and len(batched.models) == 2


def test_csr_through_training_rejects_bad_epochs():
    ds = data.load("digits", n_train=50, n_test=10)
    kw = dict(n_seeds=1, sgd=training.SGD(batch_size=10, lr=0.1), search=A.lass_settings(ds.x_test))
    with pytest.raises(ValueError, match="epochs"):
        C.csr_through_training(lambda: models.mlp(ds.input_shape, [8], 10), ds, ds.x_test, epochs=[], **kw)
