"""memkit.regularization: settings, the adversarial-training hook, the quantities with known answers, and
every claim failing on a counterfactual run in which the finding is absent.

Reused, not repeated here: weight decay per member equals ``torch.optim.SGD`` with that decay
(tests/test_training.py::test_per_member_lr_and_weight_decay_equal_torch_sgd), and dropout and noise
layers at per-member rates give the same models batched and per seed
(tests/test_training.py::test_batched_equals_per_seed_with_dropout_and_noise_at_per_member_rates).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memkit import adversarial, data, models, training
from memkit import regularization as reg
from memkit.data import REAL, Kind

RANDY, MIXED = Kind("randY", 1.0), Kind("randY", 0.5)
THRESHOLDS = {
    "k": 3.0,
    "margin": 0.25,
    "noise_target": 0.5,
    "real_target": 0.9,
    "slowdown": 2.0,
    "acc_margin": 0.03,
    "fit_ratio": 0.5,
}
CHOSEN = {"dropout": 0.5, "adversarial": 0.5}


@pytest.fixture(scope="module")
def stack():
    return reg.Stack.of([data.load("digits", kind=k, n_train=120) for k in (REAL, RANDY, MIXED)])


def test_settings_grid_and_options():
    settings = reg.grid({"dropout": [0.2, 0.5], "weight_decay": [1e-3], "adversarial_dropout": [0.5]}, adv_dropout=0.3)
    assert [s.key for s in settings] == [
        "none",
        "dropout0.2",
        "dropout0.5",
        "weight_decay0.001",
        "adversarial_dropout0.5",
    ]
    assert settings[2].noise == {"dropout": 0.5, "input_dropout": 0.0, "input_noise": 0.0, "hidden_noise": 0.0}
    assert settings[3].weight_decay == 1e-3 and settings[3].adversarial == 0 and settings[0].label == "none"
    assert settings[4].noise["dropout"] == 0.3 and settings[4].adversarial == 0.5
    assert reg.runs(settings) == [[0, 3], [1, 2], [4]]  # same layers and same need of LASS train together
    with pytest.raises(ValueError, match="unknown regularizer"):
        reg.Setting("mixup", 0.1)
    with pytest.raises(ValueError, match="strength > 0"):
        reg.Setting("dropout", 0.0)


def test_grid_refuses_a_chosen_strength_it_does_not_train():
    with pytest.raises(ValueError, match=r"chosen dropout=0.3 is not one of its strengths \[0.2, 0.5\]"):
        reg.grid({"dropout": [0.2, 0.5]}, chosen={"dropout": 0.3})
    with pytest.raises(ValueError, match="chosen weight_decay=None"):
        reg.grid({"dropout": [0.5], "weight_decay": [0.01]}, chosen={"dropout": 0.5})
    with pytest.raises(ValueError, match="chosen names regularizers it does not train: dropuot"):
        reg.grid({"dropout": [0.5]}, chosen={"dropout": 0.5, "dropuot": 0.5})


def test_factory_builds_the_settings_layers():
    model = reg.factory("mlp", (1, 8, 8), 10, reg.Setting("input_noise", 0.5), widths=[16])()
    noise = [m for m in model.modules() if isinstance(m, models.GaussianNoise)]
    assert len(noise) == 1 and float(noise[0].rate) == 0.5
    assert not any(isinstance(m, models.Dropout) for m in model.modules())
    with pytest.raises(ValueError, match="'mlp' or 'cnn'"):
        reg.factory("paper_cnn", (3, 32, 32), 10, reg.Setting())


def test_stack_splits_validation_from_test_and_marks_changed_labels(stack):
    assert stack.x_train.shape[:2] == (3, 120) and stack.kinds == (REAL, RANDY, MIXED)
    assert len(stack.x_val) + len(stack.x_test) == 297 and not stack.noisy[0].any()
    mixed = data.load("digits", kind=MIXED, n_train=120)
    assert torch.equal(stack.noisy[2], mixed.y_train != mixed.y_clean) and 0 < int(stack.noisy[2].sum()) <= 60
    with pytest.raises(ValueError, match="inputs must be the same"):
        reg.Stack.of([data.load("digits", n_train=50), data.load("digits", kind=Kind("randX", 1.0), n_train=50)])


def test_adversarial_hook_trains_on_lass_critical_samples_and_is_deterministic(stack):
    factory = models.factory("mlp", (1, 8, 8), 10, widths=[32])
    seeds = training.train_seeds(
        factory, stack.x_train[0], stack.y_train[0], training.SGD(lr=0.1, batch_size=32), n_seeds=2, device="cpu"
    )
    search = adversarial.lass_settings(stack.x_test, r=32.0, n_iter=10)
    hook = reg.adversarial_hook(torch.tensor([0.5, 0.0]), search, seed=7)
    xb, yb = stack.x_train[0][:20].expand(2, 20, 1, 8, 8), stack.y_train[0][:20].expand(2, 20)
    step = training.Step(3, 0, False)
    x1, y1 = hook(seeds, step, xb, yb)
    x2, _ = hook(seeds, step, xb, yb)
    assert torch.equal(x1, x2) and torch.equal(y1, yb)  # deterministic; labels kept
    found = adversarial.lass(seeds.forward, xb[:, :10], generator=torch.Generator().manual_seed(7 + 3), **search)
    swapped = (x1 != xb).flatten(2).any(-1)
    assert found.critical[0].any(), "the search should find critical samples at this radius"
    assert torch.equal(swapped[0, :10], found.critical[0])  # exactly the critical samples of member 0's first f·B
    assert torch.equal(x1[0, :10][found.critical[0]], found.x_adv[0][found.critical[0]])
    assert not swapped[0, 10:].any() and not swapped[1].any()  # the rest, and member 1 (f = 0), are untouched


def test_train_measures_every_member_and_repeats(stack):
    settings = reg.grid({"dropout": [0.5], "weight_decay": [0.01], "adversarial": [0.25]})

    def make(s):
        return reg.factory("mlp", (1, 8, 8), 10, s, widths=[16])

    run = {"n_seeds": 2, "search": adversarial.lass_settings(stack.x_test, r=8.0, n_iter=2), "seed": 3, "device": "cpu"}
    sgd = training.SGD(lr=0.1, batch_size=32, epochs=2)
    a, b = (reg.train(stack, settings, make, sgd, **run) for _ in range(2))
    assert a.train_acc.shape == (4, 3, 2, len(a.epochs)) and a.correct.shape == (4, 3, 2, 120)
    assert list(a.epochs) == [0, 0.25, 0.5, 1, 2]  # 4 updates per epoch: 0, 1, 2 updates, then epochs
    assert np.isnan(a.noisy_acc[:, 0]).all() and np.isfinite(a.noisy_acc[:, 2]).all()
    for q in ("train_acc", "val_acc", "test_acc", "correct"):
        np.testing.assert_array_equal(getattr(a, q), getattr(b, q))
    np.testing.assert_allclose(a.train_acc[..., -1], a.correct.mean(-1))
    with pytest.raises(ValueError, match="LASS parameters"):
        reg.train(stack, settings, make, sgd, n_seeds=1)


# ------------------------------------------------------------------------------- known answers


def curves(mem, gen, t_noise, t_real, fit, final, peak=None, jitter=0.0, budget=40):
    """Synthetic curves for settings none, dropout 0.5, adversarial 0.5 (one value each per argument):
    randY training accuracy steps from 0.1 to ``mem`` at ``t_noise`` (or at the last epoch); real from 0.5 to 0.95 at
    ``t_real``; real val = test = ``gen``; on 50% noise the final noisy fit ``fit`` and test accuracy
    ``final``, with none's val/test higher at epoch 1 (``peak``); ``jitter`` spreads the regularized
    settings' randY accuracy over the three seeds (−, 0, +)."""
    settings = reg.grid({"dropout": [0.5], "adversarial": [0.5]})
    t = np.arange(budget + 1, dtype=float)
    shape = (3, 3, 3, len(t))
    acc, noisy, val = np.zeros(shape), np.full(shape, np.nan), np.zeros(shape)
    s = jitter * np.array([-1.0, 0.0, 1.0])[:, None]
    for g in range(3):
        acc[g, 0] = np.where(t >= t_real[g], 0.95, 0.5)
        acc[g, 1] = np.where(t >= t_noise[g], mem[g], 0.1)
        acc[g, 1, :, -1] = mem[g]  # the final accuracy, reached late when t_noise is beyond the budget
        acc[g, 1] += s if g else 0
        val[g, 0] = gen[g]
        noisy[g, 2] = np.linspace(0.1, fit[g], len(t))
        val[g, 2] = final[g]
    if peak is not None:
        val[0, 2, :, 1] = peak
    correct = np.zeros((3, 3, 3, 10), dtype=bool)
    return reg.Curves(settings, (REAL, RANDY, MIXED), t, acc, noisy, val, val.copy(), correct)


FINDING = {
    "mem": [0.9, 0.4, 0.45],
    "gen": [0.95, 0.95, 0.94],
    "t_noise": [10, 99, 99],
    "t_real": [1, 1, 1],
    "fit": [0.9, 0.1, 0.3],
    "final": [0.6, 0.92, 0.88],
    "peak": 0.9,
}


def test_quantities_known_answers():
    c = curves(**FINDING)
    np.testing.assert_allclose(reg.memorization(c)[:, 0], [0.9, 0.4, 0.45])
    np.testing.assert_allclose(reg.generalization(c, MIXED)[0], 0.9)  # the best validation epoch, read on test
    np.testing.assert_allclose(reg.noisy_fit(c, MIXED)[:, 1], [0.9, 0.1, 0.3])
    t = reg.time_to(c, RANDY, 0.5)
    assert t.epochs[0].tolist() == [10, 10, 10] and not t.converged[1:].any() and t.budget == 40
    np.testing.assert_allclose(reg.effectiveness(c, 3.0)[1], 0.5)  # cut 0.5, no cost
    np.testing.assert_allclose(reg.effectiveness(c, 3.0)[2], 0.45 - 3 * 0.01)
    np.testing.assert_allclose(reg.slowdown_ratio(c, 1, 0.5, 0.9), 4.0)  # censored at 40 epochs: 40/10
    assert reg.best_regularized(c, MIXED) == 1
    with pytest.raises(ValueError, match="no randY 20% data"):
        reg.noisy_fit(c, Kind("randY", 0.2))


def held(**changes) -> dict[str, bool]:
    found = reg.claims(curves(**{**FINDING, **changes}), chosen=CHOSEN, **THRESHOLDS)
    return {c.id: c.holds for c in found}


def test_claims_hold_when_the_finding_is_present():
    ok = held()
    assert all(v for k, v in ok.items() if k != "adversarial-most-effective"), ok
    assert not ok["adversarial-most-effective"]  # measured: dropout beats adversarial in this run


def test_claims_fail_when_regularization_cuts_learning_as_much_as_memorization():
    ok = held(gen=[0.95, 0.45, 0.45])  # memorization cut 0.5, generalization cut 0.5
    assert not ok["dropout-cuts-memorization"] and not ok["adversarial-cuts-memorization"]


def test_claims_fail_when_regularization_slows_learning_as_much_as_memorization():
    ok = held(mem=[0.9, 0.9, 0.9], t_noise=[10, 30, 30], t_real=[1, 3, 3])
    assert not ok["dropout-slows-noise-more"] and not ok["adversarial-slows-noise-more"]
    assert not held(t_noise=[50, 99, 99])["dropout-slows-noise-more"]  # none memorizes only at the end: no slow-down


def test_mixed_claims_fail_without_an_effect_or_at_a_cost_in_accuracy():
    same = held(fit=[0.9, 0.9, 0.9], final=[0.6, 0.6, 0.6])  # regularizers change nothing
    assert not same["randY50-fits-fewer-noisy"] and not same["randY50-keeps-accuracy"]
    costly = held(fit=[0.9, 0.05, 0.3], final=[0.6, 0.8, 0.7])  # fewer noisy labels, but learning lost too
    assert costly["randY50-fits-fewer-noisy"] and not costly["randY50-keeps-accuracy"]


def test_claims_are_summarised_by_the_worst_seed_and_flags_pass_through():
    ok = held(jitter=0.3)  # the mean cut is still 0.5, but the worst seed cuts only 0.2 < 0.25
    assert not ok["dropout-cuts-memorization"] and held()["dropout-cuts-memorization"]
    found = reg.claims(
        curves(**FINDING), chosen=CHOSEN, name="d", reported=["adversarial-cuts-memorization"], **THRESHOLDS
    )
    flags = {c.id: c.asserted for c in found}
    assert flags["d-dropout-cuts-memorization"] and flags["d-adversarial-slows-noise-more"]
    assert not flags["d-adversarial-cuts-memorization"] and not flags["d-adversarial-most-effective"]
    assert not any(c.asserted for c in reg.claims(curves(**FINDING), chosen=CHOSEN, asserted=False, **THRESHOLDS))
