"""memkit.atlas and memkit.atlas_run: every score on a hand-worked case, the comparisons on known
inputs, the score table's round trip, and every claim failing on shuffled scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from memkit import atlas, atlas_run, training
from memkit.data import Dataset

# E = 4 epochs, S = 1 member, N = 4 examples: forgotten twice and wrong at the end; never learned;
# learned at epoch 2 for good; always right.
CORRECT = torch.tensor([[1, 0, 0, 1], [0, 0, 1, 1], [1, 0, 1, 1], [0, 0, 1, 1]]).bool()[:, None, :]


def test_forgetting_events_by_hand():
    events, never = atlas.forgetting_events(CORRECT)
    assert events.tolist() == [2.0, 4.0, 0.0, 0.0]  # never learned counts as E = 4, above any learned example
    assert never.tolist() == [0.0, 1.0, 0.0, 0.0]


def test_forgetting_events_average_over_the_members_that_trained():
    correct = torch.cat([CORRECT, torch.ones_like(CORRECT)], 1)  # member 1 always right
    mask = torch.tensor([[True, True, True, True], [False, True, True, True]])
    events, never = atlas.forgetting_events(correct, mask)
    assert events.tolist() == [2.0, 2.0, 0.0, 0.0]  # example 0: member 0 only; example 1: mean of 4 and 0
    assert never.tolist() == [0.0, 0.5, 0.0, 0.0]


def test_first_learned_epoch_by_hand():
    assert atlas.first_learned_epoch(CORRECT).tolist() == [5.0, 5.0, 2.0, 1.0]  # E + 1 when wrong at the end


def test_confidence_and_variability_by_hand():
    p = torch.tensor([[0.2, 1.0], [0.6, 1.0]])[:, None, :]  # (E=2, S=1, N=2)
    assert atlas.confidence(p).tolist() == pytest.approx([0.4, 1.0])
    assert atlas.variability(p).tolist() == pytest.approx([0.2, 0.0])  # population σ over epochs


def test_el2n_by_hand():
    probs = torch.tensor([[[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]])  # (S=1, N=2, K=3)
    assert atlas.el2n(probs, torch.tensor([0, 0])).tolist() == pytest.approx([math.sqrt(0.5), math.sqrt(2)])


def test_grand_matches_the_closed_form_of_a_linear_model():
    # ℓ = CE(Wx + b, y): ∇_W ℓ = (p − e_y) xᵀ, ∇_b ℓ = p − e_y, so ‖∇_θ ℓ‖ = ‖p − e_y‖·√(‖x‖² + 1)
    ens = training.Ensemble(lambda: nn.Linear(3, 4), 2, seed=0, device="cpu")
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 2, 3, 0])
    probs = ens.logits(x).softmax(-1)
    residual = torch.linalg.vector_norm(probs - torch.nn.functional.one_hot(y, 4), dim=-1)
    want = residual * torch.sqrt((x**2).sum(1) + 1)
    torch.testing.assert_close(atlas.grand(ens, x, y), want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(atlas.grand(ens, x, y, members=[1], max_elements=1), want[1:], rtol=1e-5, atol=1e-6)


def test_subset_masks_are_balanced_complementary_halves():
    masks = atlas.subset_masks(10, 6, seed=3)
    assert masks.sum(1).tolist() == [5] * 6
    assert masks.sum(0).tolist() == [3] * 10  # every example trained on by S/2 members, held out by S/2
    assert bool((masks[0] ^ masks[1]).all()) and not bool((masks[0] == masks[2]).all())
    with pytest.raises(ValueError, match="even"):
        atlas.subset_masks(10, 3)


def test_heldout_consistency_and_memorization_by_hand():
    correct = torch.tensor([[1, 1], [0, 1], [1, 0], [1, 1]]).bool()  # (S=4, N=2)
    mask = torch.tensor([[1, 1], [0, 0], [1, 0], [0, 1]]).bool()  # example 0: trained by 0, 2; example 1: by 0, 3
    assert atlas.heldout_consistency(correct, mask).tolist() == [0.5, 0.5]
    assert atlas.memorization(correct, mask).tolist() == [0.5, 0.5]


def test_rank_correlations_on_known_inputs():
    rng = np.random.default_rng(0)
    a = rng.normal(size=500)
    corr = atlas.rank_correlations({"a": a, "cube": a**3, "minus": -a, "noise": rng.normal(size=500)}, n_boot=100)
    assert corr.pair("a", "cube") == pytest.approx((1.0, 1.0, 1.0))  # any monotone transform: ρ = 1
    assert corr.pair("a", "minus")[0] == pytest.approx(-1.0)
    rho, lo, hi = corr.pair("a", "noise")
    assert lo < rho < hi and lo < 0 < hi and hi - lo < 0.25  # ≈ ±2/√N


def test_rank_correlations_interval_covers_a_known_correlation():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(2, 2000))
    x, y = z[0], 0.6 * z[0] + 0.8 * z[1]  # Pearson 0.6 → Spearman (6/π)·asin(0.3) ≈ 0.582
    _, lo, hi = atlas.rank_correlations({"x": x, "y": y}, n_boot=200).pair("x", "y")
    assert lo < 6 / math.pi * math.asin(0.3) < hi


def test_flag_auroc_and_precision_on_known_inputs():
    assert atlas.flag_auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)  # sklearn's example
    assert atlas.flag_auroc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0
    assert atlas.flag_auroc([4, 3, 2, 1], [0, 0, 1, 1]) == 0.0
    # two corrupted examples; the two highest scores are one corrupted, one clean
    assert atlas.precision_at_noise_rate([0.9, 0.8, 0.1, 0.7], [1, 0, 0, 1]) == 0.5
    diff, lo, hi = atlas.auroc_difference(
        np.array([1, 2, 3, 4.0] * 20), np.array([4, 3, 2, 1.0] * 20), np.array([0, 0, 1, 1] * 20), n_boot=50
    )
    assert diff == 1.0 and lo == hi == 1.0


def test_oriented_turns_easy_scores_around():
    out = atlas.oriented({"confidence": [0.2, 0.9], "el2n": [0.1, 0.3]})
    assert out["confidence"].tolist() == [-0.2, -0.9] and out["el2n"].tolist() == [0.1, 0.3]
    assert atlas.label("heldout") == "−heldout" and atlas.label("forgetting") == "forgetting"


def test_train_on_subsets_member_equals_a_single_model_on_its_subset():
    torch.manual_seed(0)
    x, y = torch.randn(24, 1, 2, 3), torch.randint(0, 3, (24,))
    masks = atlas.subset_masks(24, 2, seed=0)

    def make() -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(6, 3))

    sgd = training.SGD(lr=0.1, batch_size=5, epochs=3)
    ens, dyn = atlas_run.train_on_subsets(make, x, y, masks, sgd, device="cpu", early_epoch=2)
    assert dyn.correct.shape == dyn.p_true.shape == (3, 2, 24) and dyn.probs_early.shape == (2, 24, 3)
    assert dyn.grand_early.shape == (2, 24)
    sub = masks[1].nonzero().flatten()
    single = training.train_single(make, x[sub], y[sub], sgd, seed=ens.seeds[1], device="cpu")
    torch.testing.assert_close(ens.member(1)(x), single(x), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        dyn.p_true[-1, 1], single(x).softmax(-1)[torch.arange(24), y].detach(), rtol=1e-4, atol=1e-5
    )


def _tiny_atlas() -> atlas_run.Atlas:
    y_clean = torch.tensor([0, 1, 2, 0, 1, 2])
    y = torch.tensor([0, 1, 0, 0, 2, 2])  # examples 2 and 4 relabelled; 5 drawn but unchanged
    ds = Dataset(
        "digits",
        torch.zeros(6, 1, 2, 2),
        y,
        torch.zeros(2, 1, 2, 2),
        torch.tensor([0, 1]),
        3,
        torch.tensor([2, 4, 5]),
        y_clean,
        "randY",
        0.5,
        ("zero", "one", "two"),
    )
    scores = {"heldout": np.array([1.0, 0.75, 0.0, 0.5, 0.125, 1 / 3]), "forgetting": np.arange(6) / 7.0}
    return atlas_run.Atlas("digits randY 50%", ds, scores, np.zeros((1, 6)), published=np.linspace(0, 1, 6))


def test_score_table_round_trip(tmp_path):
    a = _tiny_atlas()
    assert a.corrupted.tolist() == [False, False, True, False, True, False]  # 5 kept its label: not mislabeled
    csv_path, npz_path = atlas_run.score_table(a, tmp_path / "08_digits")
    table = atlas_run.load_table(csv_path)
    assert list(table) == [
        "index",
        "label",
        "label_clean",
        "class",
        "corrupted",
        "forgetting",
        "heldout",
        "cscore_published",
    ]
    assert table["index"].tolist() == list(range(6)) and table["label"].tolist() == [0, 1, 0, 0, 2, 2]
    assert table["class"].tolist() == ["zero", "one", "zero", "zero", "two", "two"]
    assert table["corrupted"].tolist() == [0, 0, 1, 0, 1, 0]
    np.testing.assert_allclose(table["heldout"], a.scores["heldout"], rtol=1e-5)
    with np.load(npz_path) as z:  # numpy alone, no memkit
        np.testing.assert_array_equal(z["heldout"], a.scores["heldout"])
        assert z["classes"].tolist() == ["zero", "one", "two"]


def test_extremes_and_disagreements():
    assert atlas_run.extremes(np.array([3, 1, 2, 5, 4]), 2).tolist() == [1, 2, 4, 3]
    assert atlas_run.extremes(np.array([0, 0, 0, 1, 1]), 1, tiebreak=np.array([5, 4, 3, 2, 1])).tolist() == [2, 3]
    a, b = np.array([1.0, 2, 3, 4]), np.array([4.0, 2, 3, 1])  # example 3: hardest by a, easiest by b
    assert atlas_run.disagreements(a, b, 1).tolist() == [3, 0]


# ---------------------------------------------------------------------------------------------
# Claims: hold on a synthetic atlas with a shared difficulty, fail when the scores are shuffled
# ---------------------------------------------------------------------------------------------


def _synthetic(shuffle: bool, n: int = 1500, seed: int = 0) -> list[atlas.AtlasScores]:
    rng = np.random.default_rng(seed)
    hard = rng.normal(size=n)  # the examples' shared difficulty
    noisy = lambda s: s * hard + rng.normal(size=n)  # noqa: E731  a score that sees it through noise
    real = {
        "confidence": noisy(-1),
        "heldout": noisy(-1),
        "el2n": noisy(1),
        "forgetting": noisy(1),
        "error_1epoch": noisy(1),
    }
    mislabeled = rng.random(n) < 0.2
    flagged = {"heldout": -(mislabeled + 0.3 * rng.normal(size=n))}
    baseline = mislabeled + 1.5 * rng.normal(size=(3, n))  # three single models, noisier
    if shuffle:
        real = {k: rng.permutation(v) for k, v in real.items()}
        flagged = {k: rng.permutation(v) for k, v in flagged.items()}
    return [
        atlas.AtlasScores("cifar10-subset", real, np.zeros(n, bool), published=-hard),
        atlas.AtlasScores("digits randY 20%", flagged, mislabeled, baseline),
    ]


def test_claims_hold_when_the_scores_share_a_difficulty():
    claims = atlas.claims(_synthetic(shuffle=False), n_boot=100)
    assert [c.id for c in claims] == [
        "cifar10-subset-scores-agree",
        "cifar10-subset-cscore",
        "digits-randY-20-flags-mislabeled",
    ]
    assert all(c.holds for c in claims), [str(c) for c in claims]


def test_claims_are_asserted_only_on_the_named_data_sets():
    claims = atlas.claims(_synthetic(shuffle=False, n=300), n_boot=20, asserted={"cifar10-subset"})
    assert {c.id: c.asserted for c in claims} == {
        "cifar10-subset-scores-agree": True,
        "cifar10-subset-cscore": True,
        "digits-randY-20-flags-mislabeled": False,
    }


def test_every_claim_fails_on_shuffled_scores():
    claims = atlas.claims(_synthetic(shuffle=True), n_boot=100)
    assert len(claims) == 3 and not any(c.holds for c in claims), [str(c) for c in claims]


def test_critical_finds_the_points_near_a_linear_boundary():
    ens = training.Ensemble(lambda: nn.Linear(1, 2), 2, seed=0, device="cpu")
    with torch.no_grad():  # both members: class 1 iff x > 0
        ens.params["weight"].copy_(torch.tensor([[[-1.0], [1.0]]] * 2))
        ens.params["bias"].zero_()
    x = torch.tensor([[-2.0], [-0.05], [0.05], [3.0]])
    search = dict(r=0.1, alpha=0.05, beta=0.0, n_iter=5)
    out = atlas_run.critical(training.Seeds(range(2), ens.seeds, ensemble=ens), x, search, n_members=1)
    assert out.tolist() == [[False, True, True, False]]


def test_other_notebooks_joins_arrays_by_data_set_and_split(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEMKIT_OUTPUT", str(tmp_path))
    folder = tmp_path / "results" / "quick"
    folder.mkdir(parents=True)
    np.savez(
        folder / "03_capacity_convergence.npz",
        **{
            "digits/train/real/first_fit_epoch": np.array([[1, 2, 3, 4], [3, 2, 1, 0]]),  # (S, N): mean over seeds
            "digits/train/real/corrupted": np.array([False, True, False, True]),
            "digits/test/real/first_fit_epoch": np.arange(3),
            "mnist/train/real/first_fit_epoch": np.arange(4),
            "digits/train/randX100/first_fit_epoch": np.arange(2),  # a run on the first 2 examples
            "digits/train/randX100/rate": np.float64(0.5),
        },
    )  # no examples: skipped
    np.savez(
        folder / "04_critical_samples.npz",
        **{
            "digits/train/real/index": np.array([3, 0, 9]),
            "digits/train/real/critical": np.array([[1, 0, 1], [1, 1, 1]]),
        },
    )
    cols = atlas_run.other_notebooks(
        "digits", "train", 4, "quick", ("03_capacity_convergence", "04_critical_samples", "06_shallow_first")
    )
    assert sorted(cols) == [
        "03_capacity_convergence:randX100/first_fit_epoch",
        "03_capacity_convergence:real/corrupted",
        "03_capacity_convergence:real/first_fit_epoch",
        "04_critical_samples:real/critical",
    ]
    np.testing.assert_array_equal(cols["03_capacity_convergence:randX100/first_fit_epoch"], [0, 1, np.nan, np.nan])
    assert cols["03_capacity_convergence:real/first_fit_epoch"].tolist() == [2, 2, 2, 2]
    assert cols["03_capacity_convergence:real/corrupted"].tolist() == [0, 1, 0, 1]
    np.testing.assert_array_equal(cols["04_critical_samples:real/critical"], [0.5, np.nan, np.nan, 1.0])
    out = capsys.readouterr().out
    assert "randX100/rate" in out and "06_shallow_first: no arrays" in out
