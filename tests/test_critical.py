"""Tests of the CSR through training and of notebook 04's claims (:mod:`memkit.critical`)."""

from __future__ import annotations

from dataclasses import replace

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
    kw = dict(
        epochs=[2, 0, 1],
        n_seeds=2,
        sgd=training.SGD(batch_size=32, lr=0.05, momentum=0.9),
        search=A.lass_settings(ds.x_test, r=12, beta=0.0),
        seed=3,
    )

    def factory():
        return models.mlp(ds.input_shape, [32], 10)

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


# ------------------------------------------------------------------ claims: a run with the finding and without

EPOCHS = np.array([0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64])
T, PEAK, S = len(EPOCHS), 4, 3
LEVELS = [0.2, 0.5, 0.8]
ALL_LEVELS = [data.Kind(c, p) for c in ("randX", "randY") for p in LEVELS]


def curve(csr, val=0.9, noisy=np.nan) -> C.CSRCurves:
    """S identical seeds with these ``(T,)`` curves (or constants)."""

    def tile(v):
        return np.tile(np.broadcast_to(np.asarray(v, float), (T,)), (S, 1))

    return C.CSRCurves(
        EPOCHS, tile(np.linspace(0.1, 1, T)), tile(val), tile(noisy), tile(csr), np.zeros((S, 10), bool), batched=True
    )


def after_peak(start: float, end: float) -> np.ndarray:
    """``start`` up to the validation peak, then a straight line to ``end``."""
    return np.r_[np.full(PEAK + 1, start), np.linspace(start, end, T - PEAK)[1:]]


def with_finding() -> dict[data.Kind, C.CSRCurves]:
    """The paper's picture: CSR low on real data, high at once on randX, later on randY; with label
    noise validation accuracy peaks (epoch index 4) before the noisy labels are fit, then drops while
    the CSR grows, the more so the more noise; noisy inputs raise the CSR a little."""
    curves = {
        data.REAL: curve(0.05),
        data.RANDX: curve(np.r_[0.05, np.full(T - 1, 0.6)]),
        data.RANDY: curve(np.r_[0.05, 0.1, 0.2, 0.3, np.full(T - 4, 0.6)]),
    }
    for p in LEVELS:
        val = np.r_[np.linspace(0.2, 0.85, PEAK + 1), after_peak(0.85, 0.8 - 0.1 * p)[PEAK + 1 :]]
        curves[data.Kind("randY", p)] = curve(after_peak(0.05, 0.05 + 0.5 * p), val, after_peak(0.1, 0.9))
        curves[data.Kind("randX", p)] = curve(after_peak(0.05, 0.05 + 0.2 * p))
    return curves


def checks(found: bool = True) -> list[A.LinearCheck]:
    """Linear checks: LASS finds every truly critical point (distance <= 1), or none."""
    d = np.array([0.2, 0.5, 0.9, 1.5, 3.0])
    return [A.LinearCheck(d, (d <= 1) & found, 1.0)] * S


RADII = [0.3, 8.0]


def by_radius(gap: float = 0.3) -> dict[data.Kind, np.ndarray]:
    """CSR at r = 0.3 and 8: noise ``gap`` above real data at both."""
    return {
        data.REAL: np.tile([0.0, 0.05], (S, 1)),
        data.RANDX: np.tile([gap, 0.6], (S, 1)),
        data.RANDY: np.tile([gap, 0.6], (S, 1)),
    }


def failing(curves, lin=None, radius=None) -> set[str]:
    cs = C.claims("d", curves, lin or checks(), LEVELS, radius or by_radius(), RADII)
    return {c.id.removeprefix("d-") for c in cs if not c.holds}


def swap(curves, a, b):
    curves[a], curves[b] = curves[b], curves[a]
    return curves


def flat(curves):
    return {k: replace(c, csr=np.full_like(c.csr, 0.3)) for k, c in curves.items()}


def seed_without_finding(curves):
    """Seed 2 of randX behaves as real data: the mean over seeds still shows the finding."""
    csr = curves[data.RANDX].csr.copy()
    csr[2] = curves[data.REAL].csr[2]
    curves[data.RANDX] = replace(curves[data.RANDX], csr=csr)
    return curves


def relabel_levels(curves, corruption):
    """The noise levels' runs in reverse order (p = 0.2 gets p = 0.8's run ...)."""
    runs = [curves[data.Kind(corruption, p)] for p in LEVELS]
    curves.update({data.Kind(corruption, p): c for p, c in zip(LEVELS, runs[::-1], strict=True)})
    return curves


def set_labels(curves, **arrays):
    return curves | {
        data.Kind("randY", p): replace(
            curves[data.Kind("randY", p)], **{k: np.tile(v, (S, 1)) for k, v in arrays.items()}
        )
        for p in LEVELS
    }


COUNTERFACTUALS = {
    "real and randX swapped": (lambda c: swap(c, data.REAL, data.RANDX), {"randX-early", "randX-higher"}),
    "real and randY swapped": (lambda c: swap(c, data.REAL, data.RANDY), {"randY-higher"}),
    "randY rises as early as randX": (lambda c: c | {data.RANDY: c[data.RANDX]}, {"randY-later"}),
    "flat CSR": (
        flat,
        {
            "randX-early",
            "randX-higher",
            "randY-later",
            "randY-higher",
            "csr-grows-with-noise-fit",
            "csr-rises-with-label-noise",
            "csr-rises-with-input-noise",
        },
    ),
    "one seed without the finding": (seed_without_finding, {"randX-early", "randX-higher"}),
    "noisy labels fit from the start": (
        lambda c: set_labels(c, noisy_acc=np.full(T, 0.9)),
        {"val-peak-before-noise-fit"},
    ),
    "validation accuracy never drops": (
        lambda c: set_labels(c, val_acc=np.linspace(0.2, 0.9, T)),
        {"noise-fit-hurts-val", "csr-grows-with-noise-fit"},
    ),
    "label-noise levels reversed": (lambda c: relabel_levels(c, "randY"), {"csr-rises-with-label-noise"}),
    "input-noise levels reversed": (lambda c: relabel_levels(c, "randX"), {"csr-rises-with-input-noise"}),
}


def test_claims_hold_with_the_finding():
    cs = C.claims("d", with_finding(), checks(), LEVELS, by_radius(), RADII)
    assert [c for c in cs if not c.holds] == []
    assert len(cs) == 11 and [c.id for c in cs if not c.asserted] == ["d-randY-later", "d-noise-higher-at-paper-r"]


@pytest.mark.parametrize("name", sorted(COUNTERFACTUALS))
def test_claims_fail_without_the_finding(name):
    change, expected = COUNTERFACTUALS[name]
    assert expected <= failing(change(with_finding()))  # others may fail too (e.g. a swap moves real data)


def test_search_and_radius_claims_fail_without_their_finding():
    assert failing(with_finding(), lin=checks(found=False)) == {"lass-recall"}
    assert failing(with_finding(), radius=by_radius(gap=0.0)) == {"noise-higher-at-paper-r"}


def test_every_claim_has_a_counterfactual():
    ids = {c.id.removeprefix("d-") for c in C.claims("d", with_finding(), checks(), LEVELS, by_radius(), RADII)}
    covered = set().union(*(e for _, e in COUNTERFACTUALS.values())) | {"lass-recall", "noise-higher-at-paper-r"}
    assert ids == covered


def test_claims_are_reported_only_when_asked_and_without_radii():
    cs = C.claims("d", with_finding(), checks(), LEVELS, asserted=False)
    assert len(cs) == 10 and not any(c.asserted for c in cs)


def test_per_seed_validation_peak():
    c = curve(0.1, val=np.linspace(0, 1, T))
    c = replace(c, val_acc=np.stack([np.linspace(0, 1, T), np.r_[0, 1, np.zeros(T - 2)], np.linspace(0, 1, T)]))
    assert list(c.val_peaks) == [T - 1, 1, T - 1] and np.allclose(c.at_val_peak("val_acc"), 1.0)


def test_csr_by_radius_grows_with_r_and_matches_the_search():
    ds = data.load("digits", n_train=200, n_test=40)
    seeds = training.train_seeds(
        lambda: models.mlp(ds.input_shape, [32], 10),
        ds.x_train,
        ds.y_train,
        training.SGD(batch_size=32, lr=0.05, epochs=3),
        n_seeds=2,
    )
    v = C.csr_by_radius(seeds, ds.x_test, ds.x_test, [0.0, 8.0, 64.0], n_iter=10, seed=1)
    assert v.shape == (2, 3) and (v[:, 0] == 0).all() and (np.diff(v, axis=1) >= 0).all() and v[:, 2].min() > 0
    one = A.critical_sample_ratio(
        seeds.forward,
        ds.x_test.expand(2, *ds.x_test.shape),
        generator=torch.Generator().manual_seed(1),
        **A.lass_settings(ds.x_test, r=8.0, n_iter=10),
    )
    assert np.allclose(v[:, 1], one.numpy())
