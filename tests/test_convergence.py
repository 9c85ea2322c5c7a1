"""Known-answer tests of memkit.convergence (notebook 03, Fig. 6): censored times to convergence,
the per-seed relative slowdown, the sweep over widths and sizes, and the counterfactual runs on which
each claim fails."""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np
import pytest
import torch

from memkit import convergence as conv
from memkit import data, models, training
from tests.test_capacity import toy_stack

# ---------------------------------------------------------------------------- censored times

def times(epochs, converged, budget=50) -> conv.TimeToFit:
    return conv.TimeToFit(np.array(epochs), np.array(converged, dtype=bool), budget)


def test_median_of_censored_runs_is_an_interval():
    lo, hi = times([[3, 5, 7], [3, 9, 50], [4, 50, 50]], [[1, 1, 1], [1, 1, 0], [1, 0, 0]]).median()
    np.testing.assert_array_equal(lo, [5, 9, 50])  # one censored run of three: the median is still known
    np.testing.assert_array_equal(hi, [5, 9, np.inf])  # two of three: only a lower bound
    np.testing.assert_array_equal(times([[4, 50]], [[1, 0]]).median()[1], [np.inf])  # even S: mean of the middle two


def test_relative_slowdown_known_answer_and_conservative_under_censoring():
    # settings (small N, large N) x kinds (real, noise) x 3 seeds
    exact = times([[[10, 10, 10], [10, 10, 20]], [[20, 20, 20], [80, 80, 40]]], np.ones((2, 2, 3)))
    np.testing.assert_allclose(conv.relative_slowdown(exact, num=1, den=0, kind=1), [4.0, 4.0, 1.0])  # per seed
    censored = times([[[10] * 3, [10] * 3], [[20] * 3, [50] * 3]], [[[1] * 3] * 2, [[1] * 3, [0] * 3]])
    np.testing.assert_allclose(conv.relative_slowdown(censored, 1, 0, 1), 2.5)  # T ≥ 50: growth ≥ 5, vs 2
    real_censored = times([[[10] * 3, [10] * 3], [[50] * 3, [80] * 3]], [[[1] * 3] * 2, [[0] * 3, [1] * 3]])
    assert not (conv.relative_slowdown(real_censored, 1, 0, 1) > 0).any()  # real's growth unbounded: no bound


def test_normalised_time_divides_by_the_reference_setting():
    lo, hi = conv.normalised_time(times([[[10, 10, 10]], [[30, 30, 30]]], np.ones((2, 1, 3))), ref=0)
    np.testing.assert_allclose(lo[:, 0], [1.0, 3.0])
    np.testing.assert_allclose(hi[:, 0], [1.0, 3.0])


def test_stack_needs_one_budget():
    with pytest.raises(ValueError, match="budget"):
        conv.TimeToFit.stack([times([[1]], [[1]], 10), times([[1]], [[1]], 20)])


def test_indexing_picks_settings():
    t = times([[[1, 2], [3, 4]], [[5, 6], [7, 8]]], np.ones((2, 2, 2)))
    np.testing.assert_array_equal(t[1].epochs, [[5, 6], [7, 8]])
    np.testing.assert_array_equal(t[[1, 0], 0].epochs, [[5, 6], [1, 2]])


def test_epochs_to_fit_is_the_first_epoch_at_100_percent():
    st = toy_stack()
    sgd = training.SGD(lr=0.2, batch_size=8)
    t = conv.epochs_to_fit(st, 16, sgd, depth=1, n_seeds=2, budget=200, seed=0)
    assert t.epochs.shape == (2, 2) and t.converged.all()
    assert (t.epochs[0] < t.epochs[1]).all()  # separable blobs fit before noise
    seeds = training.member_seeds(0, 4)
    member, d = 2, 1  # seed 0 on the noise: retrain it alone, one epoch short and exactly T
    for epochs, fits in ((int(t.epochs[d, 0]) - 1, False), (int(t.epochs[d, 0]), True)):
        model = training.train_single(lambda: models.mlp(st.input_shape, [16], 2), st.x_train[d], st.y_train[d],
                                      replace(sgd, epochs=epochs), seed=seeds[member])
        with torch.no_grad():
            assert bool((model(st.x_train[d]).argmax(-1) == st.y_train[d]).all()) is fits
    # every example is first fit at or before T (it may be forgotten and fit again before T)
    assert t.first_fit.shape == (2, 2, 24) and (t.first_fit >= 0).all() and (t.first_fit.max(-1) <= t.epochs).all()


def test_epochs_to_fit_censors_runs_that_do_not_fit():
    st = toy_stack()
    t = conv.epochs_to_fit(st, 1, training.SGD(lr=0.01, batch_size=8), depth=1, n_seeds=2, budget=2)
    assert not t.converged[1].any()  # one hidden unit cannot fit 24 noise points in 2 epochs
    np.testing.assert_array_equal(t.epochs[1], [2, 2])
    assert t.n_censored[1] == 2
    assert (t.first_fit[1] == -1).any(1).all()  # some noise examples never fit


def test_convergence_sweep_trains_every_width_and_size(monkeypatch, capsys):
    calls = []

    def fake(stack, width, sgd, *, depth, n_seeds, budget, seed, device):
        calls.append((stack.n_train, width))
        shape = (len(stack.kinds), n_seeds)
        return conv.TimeToFit(np.full(shape, stack.n_train + width), np.ones(shape, bool), budget,
                              np.zeros((*shape, stack.n_train), int))

    monkeypatch.setattr(conv, "epochs_to_fit", fake)
    t, first = conv.convergence_sweep(functools.partial(data.load, seed=0), "digits", [data.REAL], training.SGD(0.1, 8),
                                      sizes=[50, 100], widths=[4, 16], depth=1, n_seeds=2, budget=5, log=None,
                                      progress=True)
    assert "digits time to fit:   0%|" in capsys.readouterr().err
    assert calls == [(50, 4), (50, 16), (100, 4), (100, 16)]
    assert t.epochs.shape == (2, 2, 1, 2) and first.shape == (2, 1, 2, 100)
    np.testing.assert_array_equal(t.epochs[:, :, 0, 0], [[54, 104], [66, 116]])


# ------------------------------------------------------------------------------------ claims

KINDS = (data.REAL, data.Kind("randX", 0.5), data.RANDX, data.RANDY)
SIZES, WIDTHS = (100, 400, 1500), (16, 64, 256)


def grid(noise: np.ndarray, real: np.ndarray | None = None, budget: int = 300) -> conv.TimeToFit:
    """T ``(W, N, D, S=3)``: real data from ``real`` (default: 30 epochs everywhere), every noise kind from
    ``noise`` ``(W, N)``, runs at the budget censored."""
    real = np.full((3, 3), 30.0) if real is None else real
    per_kind = np.stack([real, noise, noise, noise], -1)  # (W, N, D)
    epochs = np.repeat(per_kind[..., None], 3, -1).astype(int) + np.arange(3)  # seeds differ by an epoch
    epochs = np.minimum(epochs, budget)
    return conv.TimeToFit(epochs, epochs < budget, budget)


def claims(t: conv.TimeToFit) -> dict[str, bool]:
    return {c.id: c.holds for c in conv.claims("toy", t, KINDS, SIZES, WIDTHS, width=16, n=400) if c.asserted}


# noise: T grows with N and falls with the width, much more than real data's 30 epochs
FINDING = np.array([[40.0, 150.0, 300.0], [30.0, 60.0, 120.0], [30.0, 35.0, 40.0]])


def test_time_claims_hold_on_a_run_with_the_finding():
    out = conv.claims("toy", grid(FINDING), KINDS, SIZES, WIDTHS, width=16, n=400)
    assert [c.id for c in out] == ["toy-time-vs-size-randX100", "toy-time-vs-size-randX100-width256",
                                   "toy-time-vs-capacity-randX100", "toy-time-vs-size-randY100",
                                   "toy-time-vs-size-randY100-width256", "toy-time-vs-capacity-randY100"]
    assert all(c.holds for c in out if c.asserted) and all(c.asserted for c in out if "width256" not in c.id)
    assert not any(c.holds for c in out if "width256" in c.id)  # the widest net fits noise as fast at any N


def test_time_claims_fail_when_noise_and_real_take_the_same_time():
    assert not any(claims(grid(FINDING, real=FINDING)).values())


def test_time_claims_fail_when_real_time_is_censored():
    real = np.full((3, 3), 30.0)
    real[0, 2] = 300.0  # real data at the largest N never fits: no lower bound on the relative growth
    assert not claims(grid(FINDING, real=real))["toy-time-vs-size-randX100"]


def test_noisiest_kind_of_each_corruption():
    assert conv.noisiest(KINDS) == [2, 3]


def test_plots_mark_censoring():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [data.REAL, data.RANDX]
    # (2 sizes, 2 kinds, 3 seeds): the noise's reference median (first size) is itself censored
    t = times([[[10, 12, 11], [50, 50, 40]], [[12, 12, 13], [50, 50, 50]]],
              [[[1, 1, 1], [0, 0, 1]], [[1, 1, 1], [0, 0, 0]]])
    fig, (a, b) = plt.subplots(1, 2)
    conv.plot_time(a, [100, 200], t, kinds, ref=0, xlabel="N")
    labels = [text.get_text() for text in a.get_legend().get_texts()]
    assert labels == ["real (0/6 censored)", "randX 100% (5/6 censored; reference censored)"]
    assert a.get_lines()[0].get_linestyle() == "-" and a.get_lines()[5].get_linestyle() == ":"
    conv.plot_size_effect(b, grid(FINDING), KINDS, SIZES, WIDTHS)
    assert [t.get_text() for t in b.get_legend().get_texts()] == [k.label for k in KINDS[1:]]
    plt.close(fig)


def test_time_rows_show_censored_medians():
    t = times([[[10, 12, 11], [50, 50, 40]]], [[[1, 1, 1], [0, 0, 1]]])
    header, rows = conv.time_rows([100], t, [data.REAL, data.RANDY], "N")
    assert header == ["kind \\ N", "100"]
    assert rows == [["real", "11 [10–12]"], ["randY 100%", "≥50 [40–40], 2/3 cens."]]


def test_summary_counts_censored_runs():
    summary = times([[3, 50], [4, 5]], [[1, 0], [1, 1]]).summary()
    assert summary == {"epochs": [[3, 50], [4, 5]], "converged": [[True, False], [True, True]], "budget": 50,
                       "runs": 4, "censored": 1}
