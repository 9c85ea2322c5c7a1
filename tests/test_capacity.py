"""Known-answer tests of memkit.capacity (notebook 03, Fig. 5): the width for a fraction of the best
accuracy and its rank correlation with the noise level, the validation/test split, the
clean-count control, the batched sweeps, and the counterfactual runs on which each claim fails."""

from __future__ import annotations

import functools
import math

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
    return cap.stack(
        [
            data.Dataset("toy", x0, y0, xv, yv, 2, torch.arange(0), y0),
            data.Dataset("toy", x1, y1, xv, yv, 2, torch.arange(n), y0, "randX", 1.0),
        ]
    )


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


@pytest.mark.parametrize(("widths", "fraction"), [([4, 2, 8], 0.95), ([1, 2, 4], 0.0), ([1, 2], 0.95)])
def test_width_for_fraction_rejects_bad_input(widths, fraction):
    with pytest.raises(ValueError, match=r"must be positive, ascending|must lie in"):
        cap.width_for_fraction_of_best(widths, np.array([0.1, 0.5, 0.9]), fraction)


def test_width_rank_correlation_per_seed():
    needed = np.array([[4, 4, 9], [8, 6, 8], [16, 5, 8]])  # (3 levels, 3 seeds)
    rho = cap.width_rank_correlation([0.0, 0.4, 0.8], needed)
    np.testing.assert_allclose(rho[:2], [1.0, 0.5])
    assert np.isnan(cap.width_rank_correlation([0.0, 0.4, 0.8], np.full((3, 2), 8.0))).all()  # no order
    with pytest.raises(ValueError, match="one row per level"):
        cap.width_rank_correlation([0.0, 0.8], needed[:2])


# ----------------------------------------------------------------------------------- stacks


def test_load_stack_keeps_versions_apart():
    kinds = data.kinds({"randX": [0.5], "randY": [0.5]})
    st = cap.load_stack(functools.partial(data.load, seed=0), "digits", kinds, n_train=100, n_test=30)
    assert st.x_train.shape == (3, 100, 1, 8, 8) and st.n_train == 100
    assert st.y_val.shape == (3, 15) and st.y_test.shape == (3, 15)  # the held-out split, cut in two halves
    held = data.load("digits", n_test=30).y_test
    torch.testing.assert_close(torch.cat([st.y_val[1], st.y_test[1]]), held)  # the held-out split stays clean
    torch.testing.assert_close(st.y_train[1], st.y_train[0])  # randX keeps the labels
    assert (st.x_train[1] != st.x_train[0]).flatten(1).any(1).sum() >= 50  # half of the inputs replaced
    assert (st.y_train[2] != st.y_train[0]).sum() > 0


# --------------------------------------------------------------------------------- training


def test_train_gives_each_member_its_own_data():
    st = toy_stack()
    sgd = training.SGD(lr=0.1, batch_size=8, epochs=2)
    seeds = cap.train(st, 8, sgd, depth=1, n_seeds=2, seed=3)
    assert seeds.batched and cap.data_index(st, 2).tolist() == [0, 0, 1, 1]
    for i in (0, 3):  # seed 0 on version 0, seed 1 on version 1
        d = int(cap.data_index(st, 2)[i])
        ref = training.train_single(
            lambda: models.mlp(st.input_shape, [8], 2), st.x_train[d], st.y_train[d], sgd, seed=seeds.seeds[i]
        )
        torch.testing.assert_close(seeds.member(i)(st.x_val[0]), ref(st.x_val[0]))


def test_train_rejects_an_empty_net():
    with pytest.raises(ValueError, match="width"):
        cap.train(toy_stack(), 0, training.SGD(lr=0.1, batch_size=8), depth=1, n_seeds=1)


def test_clean_subset_keeps_the_examples_noise_leaves_clean():
    real = data.load("digits", n_train=100, n_test=10)
    for corruption in ("randX", "randY"):
        noisy = data.load("digits", n_train=100, n_test=10, corruption=corruption, p=0.8)
        ctrl = cap.clean_subset(real, noisy)
        assert ctrl.n_train == 20 and ctrl.kind == data.REAL
        clean = np.setdiff1d(np.arange(100), noisy.corrupted.numpy())
        torch.testing.assert_close(ctrl.x_train, real.x_train[clean])
        torch.testing.assert_close(ctrl.y_train, real.y_train[clean])
    randx = data.load("digits", n_train=100, n_test=10, corruption="randX", p=0.8)
    torch.testing.assert_close(randx.corrupted, noisy.corrupted)  # one set of clean examples per level
    with pytest.raises(ValueError, match="real"):
        cap.clean_subset(noisy, noisy)


def test_capacity_sweep_chooses_the_epoch_on_validation_and_reports_test():
    st = toy_stack()
    sgd = training.SGD(lr=0.1, batch_size=8)
    a = cap.capacity_sweep(st, [2, 8], sgd, depth=2, n_seeds=2, epochs=3, seed=1, log=None)
    b = cap.capacity_sweep(st, [2, 8], sgd, depth=2, n_seeds=2, epochs=3, seed=1, log=None)
    assert a.shape == (2, 2, 3, 2, 2)  # (widths, val/test, epochs, kinds, seeds)
    torch.testing.assert_close(a, b)
    curves = torch.zeros(1, 2, 3, 1, 1)
    curves[0, 0, :, 0, 0] = torch.tensor([0.5, 0.9, 0.7])  # validation: best at epoch 2
    curves[0, 1, :, 0, 0] = torch.tensor([0.6, 0.8, 0.95])  # test: best at epoch 3, never chosen by it
    assert cap.reported_accuracy(curves).item() == pytest.approx(0.8)
    assert cap.reported_accuracy(curves, "final").item() == pytest.approx(0.95)
    with pytest.raises(ValueError, match="use 'best'"):
        cap.reported_accuracy(a, "median")


def test_capacity_sweep_shows_progress_when_asked(capsys):
    """Notebook 03 passes progress=True: a bar over the widths (leave=False: cleared when done)."""
    sgd = training.SGD(lr=0.1, batch_size=8)
    cap.capacity_sweep(toy_stack(), [2, 4], sgd, depth=1, n_seeds=1, epochs=1, log=None, progress=True)
    assert "toy capacity:   0%|" in capsys.readouterr().err
    cap.capacity_sweep(toy_stack(), [2], sgd, depth=1, n_seeds=1, epochs=1, log=None)
    assert capsys.readouterr().err == ""


def test_measure_trains_the_kinds_and_the_clean_count_controls(monkeypatch):
    sizes = []

    def fake(stack, widths, sgd, **run):
        sizes.append((len(stack.kinds), stack.n_train, run["epochs"]))
        return torch.rand(len(widths), 2, run["epochs"], len(stack.kinds), run["n_seeds"])

    monkeypatch.setattr(cap, "capacity_sweep", fake)
    kinds = data.kinds({"randX": [0.0, 0.5], "randY": [0.5]})
    c = cap.measure(
        functools.partial(data.load, seed=0),
        "digits",
        kinds,
        [4, 8],
        training.SGD(0.1, 8),
        epochs=2,
        controls=[0.5],
        depth=1,
        n_seeds=2,
        n_train=100,
        n_test=10,
    )
    # real + 2 noisy kinds; then real with the 50 clean examples, for as many updates (13 and 7 per epoch)
    assert sizes == [(3, 100, 2), (1, 50, 4)]
    assert c.accuracy.shape == (2, 3, 2) and c.control.shape == (2, 1, 2) and c.levels == (0.5,)
    with pytest.raises(ValueError, match="controls"):
        cap.measure(
            functools.partial(data.load, seed=0),
            "digits",
            kinds,
            [4],
            training.SGD(0.1, 8),
            epochs=1,
            controls=[0.3],
            depth=1,
            n_seeds=1,
            n_train=50,
            n_test=4,
        )
    with pytest.raises(ValueError, match="real"):
        cap.measure(
            functools.partial(data.load, seed=0),
            "digits",
            kinds[::-1],
            [4],
            training.SGD(0.1, 8),
            epochs=1,
            depth=1,
            n_seeds=1,
            n_train=50,
            n_test=4,
        )


# ------------------------------------------------------------------------------------ claims

LEVELS = (0.0, 0.2, 0.4, 0.6, 0.8)
WIDTHS = (4, 8, 16, 32, 64, 128)


def curves(scale: np.ndarray, n_seeds: int = 3) -> np.ndarray:
    """Accuracy ``(W, len(scale), S)`` that saturates at width ≈ ``scale``, with a little seed noise."""
    w = np.asarray(WIDTHS, dtype=float)[:, None, None]
    jitter = 1 + 0.05 * np.random.default_rng(0).standard_normal((1, len(scale), n_seeds))
    return 0.9 * (1 - np.exp(-3 * w / (np.asarray(scale, dtype=float)[None, :, None] * jitter)))


def capacity(noise_scale: list[float], control_scale: list[float]) -> cap.Capacity:
    """A run with real data at width scale 6 and randX, randY at ``noise_scale`` per level 0.2..0.8."""
    kinds = data.kinds({"randX": LEVELS, "randY": LEVELS})
    acc = curves([6.0, *noise_scale, *noise_scale])
    return cap.Capacity(WIDTHS, tuple(kinds), acc, LEVELS[1:], curves(control_scale))


def held(claims) -> dict[str, bool]:
    return {c.id: c.holds for c in claims}


def test_capacity_claims_hold_where_noise_needs_more_units():
    c = capacity([8.0, 12.0, 20.0, 40.0], [6.0, 5.0, 5.0, 4.0])
    out = cap.claims("toy", c, 0.95)
    assert len(out) == 6 and all(c.holds and c.asserted for c in out), [str(c) for c in out]
    assert not any(c.asserted for c in cap.claims("toy", c, 0.95, asserted=False))


def test_capacity_claims_fail_when_noise_and_real_need_the_same_width():
    out = held(cap.claims("toy", capacity([6.0] * 4, [6.0] * 4), 0.95))  # identical curves for every kind
    assert not any(out.values()), out


def test_capacity_claims_fail_when_the_order_of_levels_is_lost():
    out = held(cap.claims("toy", capacity([40.0, 8.0, 12.0, 20.0], [6.0] * 4), 0.95))  # shuffled levels
    assert not out["toy-capacity-rank-randX"] and not out["toy-capacity-rank-randY"]
    assert out["toy-capacity-randX"]  # the top level alone still needs more: the rank claim is the stricter


def test_capacity_claim_fails_when_fewer_clean_examples_explain_it():
    out = held(cap.claims("toy", capacity([8.0, 12.0, 20.0, 40.0], [8.0, 12.0, 20.0, 40.0]), 0.95))
    assert out["toy-capacity-randX"] and not out["toy-capacity-vs-clean-count-randX"]


def test_plots():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2)
    cap.plot_capacity(a, [4, 8, 16], np.random.default_rng(0).random((3, 2, 2)), [data.REAL, data.RANDX], "randX")
    assert len(a.get_legend().get_texts()) == 2
    cap.plot_needed(b, capacity([8.0, 12.0, 20.0, 40.0], [6.0] * 4), 0.95)
    assert [t.get_text() for t in b.get_legend().get_texts()] == ["randX", "randY", "real, clean examples only"]
    plt.close(fig)
