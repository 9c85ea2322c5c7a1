"""Known-answer tests of memkit.capacity (notebook 03): the width for a fraction of the best
accuracy, censored times to convergence and the batched sweeps."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from memkit import capacity as cap
from memkit import data, models, training


def blobs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two well separated Gaussian blobs in 6-D: ``(n, 1, 6)`` inputs, labels 0/1."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    return torch.randn(n, 1, 6, generator=g) + 3.0 * (2 * y[:, None, None] - 1), y


def toy_stack(n: int = 24) -> cap.Stack:
    """Version 0: separable blobs (real); version 1: Gaussian inputs with random labels (noise)."""
    g = torch.Generator().manual_seed(2)
    (x0, y0), (xv, yv) = blobs(n), blobs(20, seed=1)
    x1, y1 = torch.randn(n, 1, 6, generator=g), torch.randint(2, (n,), generator=g)
    return cap.Stack("toy", (data.REAL, data.RANDX), torch.stack([x0, x1]), torch.stack([y0, y1]),
                     torch.stack([xv, xv]), torch.stack([yv, yv]), 2)


# ------------------------------------------------------------------------ width for a fraction

def test_width_for_fraction_interpolates_in_log_width():
    # target 0.95 lies half-way between 0.9 (width 2) and 1.0 (width 4): 2·√2 in log-width
    assert cap.width_for_fraction_of_best([1, 2, 4], np.array([0.5, 0.9, 1.0])) == pytest.approx(2 * math.sqrt(2))
    # the best is the curve's own maximum, even if accuracy falls again at larger widths
    assert cap.width_for_fraction_of_best([1, 2, 4, 8], np.array([0.2, 0.4, 0.8, 0.7]), 0.5) == pytest.approx(2.0)


def test_width_for_fraction_per_curve_and_at_the_grid_edge():
    acc = np.array([[0.96, 0.5], [0.98, 0.9], [1.0, 1.0]])  # (W=3, 2 curves)
    out = cap.width_for_fraction_of_best([8, 16, 32], acc)
    assert out.shape == (2,)
    assert out[0] == 8.0  # already above 95% of its best at the smallest width
    assert out[1] == pytest.approx(16 * math.sqrt(2))


@pytest.mark.parametrize("widths, fraction", [([4, 2, 8], 0.95), ([1, 2, 4], 0.0), ([1, 2], 0.95)])
def test_width_for_fraction_rejects_bad_input(widths, fraction):
    with pytest.raises(ValueError):
        cap.width_for_fraction_of_best(widths, np.array([0.1, 0.5, 0.9]), fraction)


# ---------------------------------------------------------------------------- censored times

def times(epochs, converged, budget=50) -> cap.TimeToFit:
    return cap.TimeToFit(np.array(epochs), np.array(converged, dtype=bool), budget)


def test_median_of_censored_runs_is_an_interval():
    lo, hi = times([[3, 5, 7], [3, 9, 50], [4, 50, 50]], [[1, 1, 1], [1, 1, 0], [1, 0, 0]]).median()
    np.testing.assert_array_equal(lo, [5, 9, 50])  # one censored run of three: the median is still known
    np.testing.assert_array_equal(hi, [5, 9, np.inf])  # two of three: only a lower bound
    np.testing.assert_array_equal(times([[4, 50]], [[1, 0]]).median()[1], [np.inf])  # even S: mean of the middle two


def test_relative_slowdown_known_answer_and_conservative_under_censoring():
    # settings (small N, large N) x kinds (real, noise) x 3 seeds
    exact = times([[[10] * 3, [10] * 3], [[20] * 3, [80] * 3]], np.ones((2, 2, 3)))
    assert cap.relative_slowdown(exact, num=1, den=0, kind=1) == pytest.approx(4.0)  # (80/10) / (20/10)
    censored = times([[[10] * 3, [10] * 3], [[20] * 3, [50] * 3]], [[[1] * 3] * 2, [[1] * 3, [0] * 3]])
    assert cap.relative_slowdown(censored, 1, 0, 1) == pytest.approx(2.5)  # T ≥ 50: growth ≥ 5, vs 2
    real_censored = times([[[10] * 3, [10] * 3], [[50] * 3, [80] * 3]], [[[1] * 3] * 2, [[0] * 3, [1] * 3]])
    assert not cap.relative_slowdown(real_censored, 1, 0, 1) > 0  # real's growth unbounded: no claim possible


def test_normalised_time_divides_by_the_reference_setting():
    lo, hi = cap.normalised_time(times([[[10, 10, 10]], [[30, 30, 30]]], np.ones((2, 1, 3))), ref=0)
    np.testing.assert_allclose(lo[:, 0], [1.0, 3.0])
    np.testing.assert_allclose(hi[:, 0], [1.0, 3.0])


def test_stack_needs_one_budget():
    with pytest.raises(ValueError, match="budget"):
        cap.TimeToFit.stack([times([[1]], [[1]], 10), times([[1]], [[1]], 20)])


# ----------------------------------------------------------------------------------- stacks

def test_load_stack_keeps_versions_apart():
    kinds = data.kinds({"randX": [0.5], "randY": [0.5]})
    st = cap.load_stack("digits", kinds, n_train=100, n_val=30, seed=0)
    assert st.x_train.shape == (3, 100, 1, 8, 8) and st.y_val.shape == (3, 30) and st.n_train == 100
    torch.testing.assert_close(st.y_val[1], st.y_val[0])  # the held-out split stays clean
    torch.testing.assert_close(st.y_train[1], st.y_train[0])  # randX keeps the labels
    assert (st.x_train[1] != st.x_train[0]).flatten(1).any(1).sum() >= 50  # half of the inputs replaced
    assert (st.y_train[2] != st.y_train[0]).sum() > 0


# --------------------------------------------------------------------------------- training

def test_fit_with_data_index_trains_each_member_on_its_own_data():
    st = toy_stack()
    ens, index = cap.ensemble(st, 8, depth=1, n_seeds=2, seed=3)
    training.fit(ens, st.x_train, st.y_train, training.SGD(lr=0.1, batch_size=8, epochs=2), data_index=index)
    for i in (0, 3):  # seed 0 on version 0, seed 1 on version 1
        d = int(index[i])
        ref = training.train_single(lambda: models.mlp(st.input_shape, [8], 2), st.x_train[d], st.y_train[d],
                                    training.SGD(lr=0.1, batch_size=8, epochs=2), seed=ens.seeds[i])
        torch.testing.assert_close(ens.member(i)(st.x_val[0]), ref(st.x_val[0]))


def test_fit_rejects_a_bad_data_index():
    st = toy_stack()
    ens, _ = cap.ensemble(st, 4, depth=1, n_seeds=1)
    with pytest.raises(ValueError, match="data_index"):
        training.fit(ens, st.x_train, st.y_train, training.SGD(lr=0.1, batch_size=8), data_index=torch.tensor([0, 5]))


def test_epochs_to_fit_is_the_first_epoch_at_100_percent():
    st = toy_stack()
    sgd = training.SGD(lr=0.2, batch_size=8)
    t = cap.epochs_to_fit(st, 16, sgd, depth=1, n_seeds=2, budget=200, seed=0)
    assert t.epochs.shape == (2, 2) and t.converged.all()
    assert (t.epochs[0] < t.epochs[1]).all()  # separable blobs fit before noise
    ens, index = cap.ensemble(st, 16, depth=1, n_seeds=2, seed=0)
    member, d = 2, 1  # seed 0 on the noise: retrain it alone, one epoch short and exactly T
    for epochs, fits in ((int(t.epochs[d, 0]) - 1, False), (int(t.epochs[d, 0]), True)):
        model = training.train_single(lambda: models.mlp(st.input_shape, [16], 2), st.x_train[d], st.y_train[d],
                                      replace(sgd, epochs=epochs), seed=ens.seeds[member])
        with torch.no_grad():
            assert bool((model(st.x_train[d]).argmax(-1) == st.y_train[d]).all()) is fits


def test_epochs_to_fit_censors_runs_that_do_not_fit():
    st = toy_stack()
    t = cap.epochs_to_fit(st, 1, training.SGD(lr=0.01, batch_size=8), depth=1, n_seeds=2, budget=2)
    assert not t.converged[1].any()  # one hidden unit cannot fit 24 noise points in 2 epochs
    np.testing.assert_array_equal(t.epochs[1], [2, 2])
    assert t.n_censored[1] == 2


def test_capacity_sweep_shapes_and_determinism():
    st = toy_stack()
    sgd = training.SGD(lr=0.1, batch_size=8)
    a = cap.capacity_sweep(st, [2, 8], sgd, depth=2, n_seeds=2, epochs=3, seed=1, log=None)
    b = cap.capacity_sweep(st, [2, 8], sgd, depth=2, n_seeds=2, epochs=3, seed=1, log=None)
    assert a.shape == (2, 3, 2, 2)  # (widths, epochs, kinds, seeds)
    torch.testing.assert_close(a, b)
    best, final = cap.validation_accuracy(a), cap.validation_accuracy(a, "final")
    assert best.shape == (2, 2, 2) and (best >= final).all()
    torch.testing.assert_close(best[1], a[1].max(0).values)
    torch.testing.assert_close(final[1], a[1, -1])
    with pytest.raises(ValueError):
        cap.validation_accuracy(a, "median")


def test_convergence_sweep_trains_the_shared_setting_once(monkeypatch):
    calls = []

    def fake(stack, width, sgd, *, depth, n_seeds, budget, seed, device):
        calls.append((stack.n_train, width))
        return cap.TimeToFit(np.full((len(stack.kinds), n_seeds), stack.n_train + width), np.ones((1, n_seeds), bool)
                             .repeat(len(stack.kinds), 0), budget)

    monkeypatch.setattr(cap, "epochs_to_fit", fake)
    by_n, by_w = cap.convergence_sweep("digits", [data.REAL], training.SGD(0.1, 8), sizes=[50, 100], widths=[4, 16],
                                       n_fixed=100, width_fixed=16, depth=1, n_seeds=2, budget=5, log=None)
    assert sorted(calls) == [(50, 16), (100, 4), (100, 16)]
    np.testing.assert_array_equal(by_n.epochs[:, 0, 0], [66, 116])
    np.testing.assert_array_equal(by_w.epochs[:, 0, 0], [104, 116])


def test_plots_mark_censoring():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [data.REAL, data.RANDX]
    # (2 sizes, 2 kinds, 3 seeds): the noise's reference median (first size) is itself censored
    t = times([[[10, 12, 11], [50, 50, 40]], [[12, 12, 13], [50, 50, 50]]],
              [[[1, 1, 1], [0, 0, 1]], [[1, 1, 1], [0, 0, 0]]])
    fig, (a, b) = plt.subplots(1, 2)
    cap.plot_time(a, [100, 200], t, kinds, ref=0, xlabel="N")
    labels = [text.get_text() for text in a.get_legend().get_texts()]
    assert labels == ["real (0/6 censored)", "randX 100% (5/6 censored; reference censored)"]
    assert a.get_lines()[0].get_linestyle() == "-" and a.get_lines()[5].get_linestyle() == ":"
    cap.plot_capacity(b, [4, 8, 16], torch.rand(3, 2, 2), kinds, "randX")
    assert len(b.get_legend().get_texts()) == 2
    plt.close(fig)


def test_time_table_shows_censored_medians():
    t = times([[[10, 12, 11], [50, 50, 40]]], [[[1, 1, 1], [0, 0, 1]]])
    table = cap.time_table([100], t, [data.REAL, data.RANDY], "N")
    assert "| real | 11 [10–12] |" in table and "| randY 100% | ≥50 [40–40], 2/3 cens. |" in table


def test_summary_counts_censored_runs():
    summary = times([[3, 50], [4, 5]], [[1, 0], [1, 1]]).summary()
    assert summary == {"epochs": [[3, 50], [4, 5]], "converged": [[True, False], [True, True]], "budget": 50,
                       "runs": 4, "censored": 1}


def test_sweeps_show_progress_when_asked(capsys):
    """Notebook 03 passes progress=True: a bar over the widths and one over the settings."""
    st = toy_stack()
    cap.capacity_sweep(st, [2, 4], training.SGD(lr=0.1, batch_size=8), depth=1, n_seeds=1, epochs=1, log=None,
                       progress=True)
    assert "toy capacity:   0%|" in capsys.readouterr().err  # a bar (leave=False: cleared when done)
    cap.capacity_sweep(st, [2], training.SGD(lr=0.1, batch_size=8), depth=1, n_seeds=1, epochs=1, log=None)
    assert capsys.readouterr().err == ""
    cap.convergence_sweep("digits", [data.REAL], training.SGD(0.1, 8), sizes=[20], widths=[4], n_fixed=20,
                          width_fixed=4, depth=1, n_seeds=1, budget=1, log=None, progress=True)
    assert "digits time to fit:   0%|" in capsys.readouterr().err
