"""Known-answer tests of memkit.shallow: the contingency matrix T, R+, R−, R± (with their
zero-denominator cases) and D's tracked training (D's architectures: test_models.py)."""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from memkit import data, shallow, training


def t_of(t00: int, t01: int, t10: int, t11: int) -> torch.Tensor:
    """A contingency matrix from its four counts (first index D, second M)."""
    return torch.tensor([[t00, t01], [t10, t11]])


# --- T and the ratios -------------------------------------------------------------------------


def test_contingency_counts_by_hand():
    d = torch.tensor([1, 1, 0, 0, 1, 0], dtype=torch.bool)
    m = torch.tensor([1, 0, 1, 0, 1, 1], dtype=torch.bool)
    # n=0,4: both right (T11); n=1: D only (T10); n=2,5: M only (T01); n=3: neither (T00)
    assert torch.equal(shallow.contingency(d, m), t_of(1, 2, 1, 2))


def test_contingency_keeps_leading_axes():
    d = torch.tensor([[[1, 1, 0, 0]], [[0, 0, 0, 0]]], dtype=torch.bool)  # (G=2, S=1, N=4)
    m = torch.tensor([1, 0, 1, 0], dtype=torch.bool)
    t = shallow.contingency(d, m)
    assert t.shape == (2, 1, 2, 2)
    assert torch.equal(t[0, 0], t_of(1, 1, 1, 1)) and torch.equal(t[1, 0], t_of(2, 2, 0, 0))
    assert (t.sum((-2, -1)) == 4).all()


def test_contingency_rejects_mismatched_examples():
    with pytest.raises(ValueError, match="same examples"):
        shallow.contingency(torch.ones(5, dtype=torch.bool), torch.ones(4, dtype=torch.bool))


def test_ratios_by_hand():
    t = t_of(30, 10, 20, 40)  # M right on 50, wrong on 50; D right on 40 of the first, 20 of the second
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every quantity is defined here: no warning
        assert shallow.r_plus(t).item() == pytest.approx(0.8)
        assert shallow.r_minus(t).item() == pytest.approx(0.4)
        assert shallow.r_pm(t).item() == pytest.approx(2.0)
        assert shallow.accuracy_d(t).item() == pytest.approx(0.6)
        assert shallow.accuracy_m(t).item() == pytest.approx(0.5)


def test_poster_formula_is_the_product_not_the_ratio():
    t = t_of(30, 10, 20, 40)
    t00, t01, t10, t11 = 30, 10, 20, 40
    poster = t11 * t10 / (t11 * t10 + t11 * t00 + t01 * t10 + t01 * t00)
    assert poster == pytest.approx((shallow.r_plus(t) * shallow.r_minus(t)).item())
    assert poster != pytest.approx(shallow.r_pm(t).item())


def test_r_pm_is_one_when_d_ignores_m():
    assert shallow.r_pm(t_of(40, 40, 10, 10)).item() == pytest.approx(1.0)


def test_ratios_batched():
    t = torch.stack([t_of(30, 10, 20, 40), t_of(40, 40, 10, 10)])
    assert torch.allclose(shallow.r_pm(t), torch.tensor([2.0, 1.0], dtype=torch.float64))


def test_r_pm_when_d_gets_no_m_incorrect_example_right():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert shallow.r_pm(t_of(5, 3, 0, 2)).item() == math.inf  # R+ = 0.4, R- = 0
        assert shallow.r_pm(t_of(5, 3, 0, 0)).item() == 1.0  # R+ = R- = 0: equal accuracies


def test_empty_m_correct_subset_is_nan_with_a_warning():
    t = t_of(5, 0, 5, 0)  # M right on nothing
    with pytest.warns(RuntimeWarning, match="R\\+ is undefined"):
        assert math.isnan(shallow.r_plus(t).item())
    with pytest.warns(RuntimeWarning, match="R\\+ is undefined"):
        assert math.isnan(shallow.r_pm(t).item())
    assert shallow.r_minus(t).item() == pytest.approx(0.5)


def test_empty_m_incorrect_subset_is_nan_with_a_warning():
    t = t_of(0, 3, 0, 7)  # M right on everything
    with pytest.warns(RuntimeWarning, match="R- is undefined"):
        assert math.isnan(shallow.r_minus(t).item())
    with pytest.warns(RuntimeWarning, match="R- is undefined"):
        assert math.isnan(shallow.r_pm(t).item())


def test_peak_per_seed_ignores_nan():
    r = torch.tensor([[1.0, 1.0], [3.0, math.nan], [2.0, 5.0]])  # (G=3, S=2)
    values, steps = shallow.peak(r, np.array([0, 5, 10]))
    assert values.tolist() == [3.0, 5.0] and steps.tolist() == [5, 10]


def test_log_step_grid():
    g = shallow.log_step_grid(100, 10, n_log=5)
    assert g[0] == 0 and g[-1] == 100 and 1 in g
    assert set(range(10, 101, 10)) <= set(g.tolist())
    assert np.all(np.diff(g) > 0) and g.dtype == np.int64
    assert np.sum(g < 10) >= 2  # log-spaced: points inside the first epoch
    with pytest.raises(ValueError, match="total_steps"):
        shallow.log_step_grid(0, 10)


# --- D ----------------------------------------------------------------------------------------


def test_paper_d():
    assert shallow.paper_d("cifar10-subset")[0] == "densenet121"
    assert shallow.paper_d("cifar100")[1].schedule == "cosine"
    assert shallow.paper_d("fashion-mnist") == shallow.PAPER_D["mnist"]


def test_augment_batch_flips_or_keeps_without_padding():
    x = torch.randn(16, 3, 8, 8)
    out = training.augment_batch(x, torch.Generator().manual_seed(0), pad=0)
    for a, b in zip(out, x, strict=True):
        assert torch.equal(a, b) or torch.equal(a, b.flip(-1))
    shifted = training.augment_batch(torch.ones(16, 1, 8, 8), torch.Generator().manual_seed(0), pad=2)
    assert shifted.shape == (16, 1, 8, 8) and (shifted.flatten(1).sum(1) >= 36).all()  # ≥ 6×6 ones kept


def test_train_tracked_ensemble_matches_the_per_seed_loop(monkeypatch):
    ds = data.load("digits", n_train=96, n_test=100)
    sgd = training.SGD(batch_size=32, lr=0.05, momentum=0.9, epochs=2)
    loop = shallow.train_tracked(ds, "cnn", sgd, n_seeds=2, n_log=3, seed=1, device="cpu", progress=False)
    monkeypatch.setattr(training, "is_convolutional", lambda factory: False)  # batched, as on a GPU
    traj = shallow.train_tracked(ds, "cnn", sgd, n_seeds=2, n_log=3, seed=1, device="cpu", progress=False)
    grid = shallow.log_step_grid(6, 3, n_log=3)
    assert traj.method == "ensemble" and np.array_equal(traj.steps, grid)
    assert traj.correct.shape == (len(grid), 2, 100) and traj.correct.dtype == torch.bool
    assert traj.epochs[-1] == 2.0
    assert loop.method == "loop" and loop.seeds == traj.seeds  # a CNN's seeds loop on a CPU
    assert (loop.correct == traj.correct).float().mean() > 0.99  # the same models, to float tolerance
    c = shallow.curves(traj, traj.correct[-1, 0], ds.y_test, n_perm=10)  # M := seed 0 of D at the end: T01 = T10 = 0
    assert c.t.shape == (len(grid), 2, 2, 2)
    assert c.t[-1, 0, 0, 1] == 0 and c.t[-1, 0, 1, 0] == 0 and c.r_pm[-1, 0] == math.inf
    assert c.acc_m == pytest.approx(c.acc_d[-1, 0])


def test_train_tracked_checks_its_arguments():
    ds = data.load("digits", n_train=64, n_test=10)
    sgd = training.SGD(lr=0.1, batch_size=8)
    with pytest.raises(ValueError, match="n_seeds"):
        shallow.train_tracked(ds, "cnn", sgd, n_seeds=0, device="cpu")
    signals = replace(ds, x_train=ds.x_train.flatten(2), x_test=ds.x_test.flatten(2))  # (N, 1, 64)
    with pytest.raises(ValueError, match="augment"):
        shallow.train_tracked(signals, "cnn", replace(sgd, augment=True), n_seeds=1, device="cpu")


def test_first_right_is_the_step_from_which_a_seed_stays_right():
    correct = torch.tensor([[0, 1, 1, 0], [1, 0, 1, 0], [1, 1, 1, 0]], dtype=torch.bool)[:, None]  # (G=3, S=1, N=4)
    traj = shallow.Trajectory(np.array([0, 5, 10]), 10, correct, [0], 0.0, "ensemble")
    # n=0: right from step 5 on; n=1: right at 0 and 10 but wrong at 5, so from 10; n=2: always; n=3: never
    np.testing.assert_array_equal(traj.first_right(), [[0.5, 1.0, 0.0, np.nan]])


def test_peak_keeps_an_infinite_ratio():
    r = np.array([[1.0, np.nan], [np.inf, 2.0], [3.0, 1.0]])
    best, at = shallow.peak(r, np.array([0, 10, 20]))
    assert best[0] == np.inf and at[0] == 10 and best[1] == 2.0 and at[1] == 10


# --- the class-level control: R± within classes and against class-shuffled M ------------------


def test_contingency_by_class_by_hand():
    d = torch.tensor([1, 1, 0, 0, 1, 0], dtype=torch.bool)
    m = torch.tensor([1, 0, 1, 0, 1, 1], dtype=torch.bool)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    t = shallow.contingency_by_class(d, m, labels)
    # class 0 (n=0,1,2): T11 (n=0), T10 (n=1), T01 (n=2); class 1 (n=3,4,5): T00 (n=3), T11 (n=4), T01 (n=5)
    assert torch.equal(t, torch.stack([t_of(0, 1, 1, 1), t_of(1, 1, 0, 1)]))
    assert torch.equal(t.sum(-3), shallow.contingency(d, m))
    both = shallow.contingency_by_class(d[None].expand(3, 6), torch.stack([m, ~m]), labels)  # (3, P, C, 2, 2)
    assert both.shape == (3, 2, 2, 2, 2) and torch.equal(both[1, 1], shallow.contingency_by_class(d, ~m, labels))


def test_r_pm_mh_by_hand():
    # class A: T11 = 8, T01 = 2, T10 = 1, T00 = 1 (R+ 0.8, R- 0.5: 1.6); class B: T11 = 1, T01 = 1, T10 = 2,
    # T00 = 8 (R+ 0.5, R- 0.2: 2.5). Pooled: R+ 9/12, R- 3/12, R± = 3, inflated by the classes (M and D both
    # better on A). Mantel-Haenszel: (8·2/12 + 1·10/12) / (1·10/12 + 2·2/12) = 26/14.
    t = torch.stack([t_of(1, 2, 1, 8), t_of(8, 1, 2, 1)])
    assert shallow.r_pm(t.sum(0)).item() == pytest.approx(3.0)
    assert shallow.r_pm_mh(t).item() == pytest.approx(26 / 14)
    assert shallow.r_pm_mh(torch.stack([t_of(30, 10, 20, 40), t_of(3, 1, 2, 4)])).item() == pytest.approx(2.0)


def test_r_pm_mh_zero_cases():
    assert shallow.r_pm_mh(t_of(5, 3, 0, 2)[None]).item() == math.inf  # D right on M-correct only
    assert shallow.r_pm_mh(t_of(5, 3, 0, 0)[None]).item() == 1.0  # D right on nothing
    assert math.isnan(shallow.r_pm_mh(torch.stack([t_of(5, 0, 5, 0), t_of(0, 3, 0, 7)])).item())  # no class has both
    # a class where D is right on everything (an untrained D predicting it) counts the same on both sides
    assert shallow.r_pm_mh(torch.stack([t_of(0, 0, 4, 6), t_of(3, 7, 0, 0)])).item() == 1.0


def test_class_shuffled_keeps_per_class_accuracy_of_m():
    labels = torch.arange(300) % 3
    m = torch.rand(300, generator=torch.Generator().manual_seed(0)) < torch.tensor([0.9, 0.5, 0.1])[labels]
    d = m[None, None].clone()  # (G=1, S=1): D right exactly where M is
    raw, mh = shallow.class_shuffled(d, m, labels, n_perm=50, seed=0)
    assert raw.shape == mh.shape == (1, 1, 50)
    assert shallow.r_pm_mh(shallow.contingency_by_class(d, m, labels)).item() == math.inf
    assert np.all(np.isfinite(mh)) and np.median(mh) == pytest.approx(1.0, abs=0.5)  # within classes: chance
    assert np.median(raw) > 2  # across classes: M's per-class accuracies alone give R± > 1


# --- claims, each on a run with its finding and on a counterfactual run without it -------------

N_CLASSES, PER_CLASS, M_ACC = 3, 400, (0.95, 0.5, 0.05)
STEPS = np.array([0, 1, 2, 3, 5, 8, 10, 20, 40, 70, 100])  # 10 steps per epoch
R_PLUS = np.array([0.1, 0.15, 0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.98])
R_MINUS = np.array([0.1, 0.1, 0.1, 0.12, 0.15, 0.2, 0.3, 0.5, 0.65, 0.75, 0.8])


def synthetic(world: str, n_seeds: int = 3, seed: int = 0) -> tuple[shallow.Curves, dict[str, np.ndarray]]:
    """Curves of D against M on 3 classes where M is right on 95%, 50%, 5%; D's accuracy at each grid step
    is R_PLUS on M-correct and R_MINUS on M-incorrect examples in the world ``"examples"`` (the finding);
    in ``"classes"`` D is better on M's better classes but, within a class, blind to M's marks; in
    ``"independent"`` D ignores M; ``"rising"`` has D's accuracy growing to the end on M-correct examples
    only (R± never peaks)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(N_CLASSES * PER_CLASS) % N_CLASSES
    m = torch.rand(len(labels), generator=g) < torch.tensor(M_ACC)[labels]
    acc_m = torch.tensor(M_ACC)[labels].double()
    rp, rm = torch.tensor(R_PLUS)[:, None], torch.tensor(R_MINUS)[:, None]
    p = {
        "examples": torch.where(m, rp, rm),
        "classes": rm + (rp - rm) * acc_m,  # per class, as much better as M is on that class
        "independent": (rp + rm).expand(-1, len(labels)) / 2,
        "rising": torch.where(m, torch.tensor(np.linspace(0.1, 0.98, len(STEPS)))[:, None], 0.1),
    }[world]
    correct = torch.rand(len(STEPS), n_seeds, len(labels), generator=g, dtype=torch.float64) < p[:, None, :]
    traj = shallow.Trajectory(STEPS, 10, correct, list(range(n_seeds)), 0.0, "ensemble")
    c = shallow.curves(traj, m, labels, n_perm=200, seed=seed)
    return c, shallow.per_seed(c)


def held(world: str) -> dict[str, bool]:
    _, s = synthetic(world)
    return {c.id.removeprefix("x-"): c.holds for c in shallow.claims(s, "x", "")}


def test_claims_hold_on_a_run_with_the_finding():
    assert all(held("examples").values()), held("examples")


def test_a_class_level_effect_alone_fails_the_example_claims():
    _, s = synthetic("classes")
    assert np.min(s["peak_1"]) > 1.5 and np.min(s["end"]) > 1.1  # the plain R± claims of before would pass
    h = held("classes")
    assert not h["early-beyond-classes"] and not h["examples-first"] and not h["examples-end"]
    assert h["start-within-class"]


def test_d_blind_to_m_fails_every_excess_claim():
    h = held("independent")
    assert not h["early-beyond-classes"] and not h["examples-first"] and not h["examples-end"]
    assert not h["examples-peak-falls"]


def test_a_curve_that_never_peaks_fails_the_peak_claims():
    h = held("rising")
    assert not h["examples-peak-early"] and not h["examples-peak-falls"]
    assert h["examples-first"] and h["examples-end"]


def test_start_fails_when_d_already_follows_m_at_initialisation():
    _, s = synthetic("examples")
    s = {**s, "start_mh": np.array([1.0, 3.0, 1.1])}  # one seed starts at 3
    assert not next(c.holds for c in shallow.claims(s, "x", "") if c.id == "x-start-within-class")


def test_claims_asserted_unless_reported_only():
    _, s = synthetic("examples")
    claims = shallow.claims(
        s, "d-svm", "", reported_only=("examples-end", "rf-examples-first", "svm-start-within-class")
    )
    assert [c.id for c in claims if not c.asserted] == ["d-svm-start-within-class", "d-svm-examples-end"]
    assert not any(c.asserted for c in shallow.claims(s, "x", "", asserted=False))
