"""memkit.sensitivity and memkit.unrolled: loss sensitivity through the unrolled training, checked
against finite differences of retrained models and against the plain input gradient; the claims of
notebook 02, which must fail on counterfactual runs in which the finding is absent."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from memkit import data, metrics, models, training
from memkit import sensitivity as S
from memkit import unrolled as U

# --- unrolled derivative ----------------------------------------------------------------------

N, D, K = 8, 4, 3
SGD = training.SGD(epochs=3, batch_size=3, lr=0.5)  # 3 updates an epoch, the last of 2
RUN = dict(n_seeds=2, seed=1, device="cpu")


def _factory():
    return models.mlp((1, D), [5, 5], K)


def _tiny():
    g = torch.Generator().manual_seed(0)
    return torch.randn(N, 1, D, generator=g, dtype=torch.float64), torch.arange(N) % K


def _class_losses(traj, t, x, y):
    """(S, K): the class terms L_t(y=i) of every member, by a plain forward pass."""
    w = S.class_weights(y, K).double()
    return torch.stack([w @ F.cross_entropy(lg, y, reduction="none") for lg in traj.logits(t, x)])


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def test_unrolled_derivative_equals_finite_differences_of_retrained_models(float64):
    """Perturb one training example along a random direction, retrain the same steps from the same
    seeds, and compare the change of every class term L_t(y=i) with the unrolled derivative."""
    x, y = _tiny()
    traj = U.record_sgd(_factory, x, y, SGD, **RUN)
    times = [0, 4, traj.n_steps]
    grads = U.input_gradients(traj, x, y, times, S.class_weights(y, K))  # (S, G, K, N, 1, D)
    assert grads.shape == (2, 3, K, N, 1, D) and traj.n_steps == 9
    eps, gen = 1e-6, torch.Generator().manual_seed(1)
    for n in range(N):
        v = torch.randn(1, D, generator=gen, dtype=torch.float64)
        change = []
        for sign in (1, -1):
            xp = x.clone()
            xp[n] += sign * eps * v
            tp = U.record_sgd(_factory, xp, y, SGD, **RUN)
            change.append(torch.stack([_class_losses(tp, t, xp, y) for t in times], 1))  # (S, G, K)
        fd = (change[0] - change[1]) / (2 * eps)
        analytic = (grads[:, :, :, n] * v).sum((-2, -1))
        assert torch.allclose(analytic, fd, atol=1e-8, rtol=1e-5), (n, analytic, fd)
    # the examples of other classes do move each class term, through the training only
    assert grads[:, 1:, 0, y != 0].abs().sum() > 0
    assert grads[:, 0, 0, y != 0].abs().sum() == 0  # at t = 0 only the direct term exists


def test_recorded_batches_replay_the_recorded_weights(float64):
    x, y = _tiny()
    traj = U.record_sgd(_factory, x, y, SGD, **RUN)
    model = _factory()
    for s, idx in enumerate(traj.batches, start=1):
        model.load_state_dict({k: v[0] for k, v in traj.at(s - 1).items()})
        model.zero_grad()
        F.cross_entropy(model(x[idx[0]]), y[idx[0]]).backward()
        for name, p in model.named_parameters():
            assert torch.allclose(traj.at(s)[name][0], p.detach() - SGD.lr * p.grad, atol=1e-12)
    assert [len(b[0]) for b in traj.batches[:3]] == [3, 3, 2]  # N = 8 in batches of 3


def test_plain_sensitivity_is_the_per_example_input_gradient_over_n(float64):
    x, y = _tiny()
    traj = U.record_sgd(_factory, x, y, SGD, **RUN)
    times = [2, traj.n_steps]
    plain = S.input_gradient_sensitivity(traj, x, y, times)
    for k, t in enumerate(times):
        model = _factory()
        model.load_state_dict({name: v[1] for name, v in traj.at(t).items()})
        xr = x.clone().requires_grad_()
        F.cross_entropy(model(xr), y, reduction="sum").backward()  # row n: ∂ℓ_n/∂x_n
        assert torch.allclose(plain[1, k], xr.grad.abs().sum((1, 2)) / N)
    # at t = 0 no update has happened: the unrolled and the plain derivative coincide
    assert torch.allclose(S.loss_sensitivity(traj, x, y, [0]), S.input_gradient_sensitivity(traj, x, y, [0]))


def test_per_class_terms_add_up_to_the_total_loss(float64):
    x, y = _tiny()
    traj = U.record_sgd(_factory, x, y, SGD, **RUN)
    times = [1, 5, traj.n_steps]
    per_class, total = S.per_class_loss_sensitivity(traj, x, y, times, K)
    assert per_class.shape == (2, 3, K, N)
    assert torch.allclose(total, S.loss_sensitivity(traj, x, y, times))


def test_plain_class_matrix_is_diagonal_and_the_unrolled_one_is_not(float64):
    x, y = _tiny()
    traj = U.record_sgd(_factory, x, y, SGD, **RUN)
    times = U.eval_steps(traj.n_steps, 3)
    unrolled = S.class_matrix(S.per_class_loss_sensitivity(traj, x, y, times, K)[0].mean(1), y, K)
    plain = S.class_matrix(S.per_class_loss_sensitivity(traj, x, y, times, K, through_training=False)[0].mean(1), y, K)
    assert plain.shape == unrolled.shape == (2, K, K)
    assert torch.all(S.off_diagonal_share(plain) == 0)
    assert torch.all(S.off_diagonal_share(unrolled) > 0.01)


def test_a_grid_of_times_agrees_with_every_step():
    """The values at grid times do not depend on the grid, and the Gini coefficient of ḡ from one
    evaluation per epoch (as the notebook's profiles use) is close to the one from every step."""
    ds = data.load("digits", n_train=200)
    traj = U.record_sgd(
        lambda: models.mlp(ds.input_shape, [16, 16], 10),
        ds.x_train,
        ds.y_train,
        training.SGD(epochs=20, batch_size=40, lr=0.2),
        n_seeds=2,
        seed=0,
        device="cpu",
    )
    with S.single_threaded(torch.device("cpu")):
        every = S.loss_sensitivity(traj, ds.x_train, ds.y_train, range(1, traj.n_steps + 1))  # (S, T=100, N)
    grid = U.eval_steps(traj.n_steps, 20)  # the end of every epoch
    assert grid == list(range(5, 101, 5))
    coarse = S.loss_sensitivity(traj, ds.x_train, ds.y_train, grid)
    assert torch.allclose(coarse, every[:, [t - 1 for t in grid]], rtol=1e-4, atol=1e-9)
    g_every, g_grid = metrics.gini(every.mean(1)), metrics.gini(coarse.mean(1))
    assert torch.allclose(g_grid, g_every, atol=0.025), (g_grid, g_every)


# --- helpers ---------------------------------------------------------------------------------


def test_eval_steps():
    assert U.eval_steps(100, 4) == [25, 50, 75, 100]
    assert U.eval_steps(5, 10) == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="must be positive"):
        U.eval_steps(0, 3)


def test_running_mean_and_class_matrix_known_answers():
    g = torch.tensor([[[1.0, 2.0], [3.0, 6.0], [5.0, 1.0]]])  # (S=1, G=3, N=2)
    assert torch.equal(S.running_mean(g), torch.tensor([[[1.0, 2.0], [2.0, 4.0], [3.0, 3.0]]]))
    y = torch.tensor([0, 1, 1])
    per_class = torch.tensor([[1.0, 2.0, 4.0], [0.5, 8.0, 10.0]])  # (K=2, N=3): row i = class term i
    m = S.class_matrix(per_class, y, 2)
    assert torch.equal(m, torch.tensor([[1.0, 3.0], [0.5, 9.0]]))  # column j: mean over examples of class j
    assert S.off_diagonal_share(m).item() == pytest.approx(3.5 / 13.5)
    with pytest.raises(ValueError, match="no training example"):
        S.class_matrix(per_class, torch.tensor([0, 0, 0]), 2)


def test_off_diagonal_structure_is_zero_for_uniform_cross_talk():
    d = torch.tensor([2.0, 4.0, 1.0, 8.0])  # rows of very different scale, each off-diagonal cell 0.3 × its diagonal
    uniform = torch.diag(d) + 0.3 * d[:, None] * (1 - torch.eye(4))
    assert S.off_diagonal_structure(uniform).item() == pytest.approx(0.0, abs=1e-12)
    one_pair = torch.eye(4) + 1e-3
    one_pair[2, 1] = 0.9
    assert S.off_diagonal_structure(one_pair).item() > 0.8
    assert S.off_diagonal_structure(torch.stack([uniform, one_pair])).shape == (2,)


def test_bad_arguments_are_explained(float64):
    x, y = _tiny()
    traj = U.record_sgd(_factory, x, y, SGD, **RUN)
    with pytest.raises(ValueError, match="times must lie"):
        S.loss_sensitivity(traj, x, y, [traj.n_steps + 1])
    with pytest.raises(ValueError, match="weights must be"):
        U.input_gradients(traj, x, y, [1], torch.ones(2, N - 1))
    with pytest.raises(ValueError, match="follows plain SGD"):
        U.record_sgd(_factory, x, y, replace(SGD, momentum=0.9), **RUN)
    with pytest.raises(ValueError, match="outside the recorded run"):
        traj.at(-1)


def test_measure_returns_consistent_shapes():
    ds = data.load("digits", n_train=100)
    run = S.measure(
        ds.x_train,
        ds.y_train,
        10,
        widths=[8, 8],
        n_seeds=2,
        sgd=training.SGD(epochs=2, batch_size=50, lr=0.1),
        n_times=3,
        n_times_class=2,
        device="cpu",
    )
    assert run.g.shape == run.g_plain.shape == (2, 3, 100)
    assert run.accuracy.shape == run.gini().shape == (2, 3)
    assert run.class_matrix.shape == run.class_matrix_plain.shape == (2, 2, 10, 10)
    assert run.times.tolist() == [1, 3, 4] and run.epochs.tolist() == [0.5, 1.5, 2.0]  # 2 steps an epoch
    assert np.all(S.off_diagonal_share(run.class_matrix_plain).numpy() == 0)


def test_running_mean_accepts_a_negative_dim():
    g = torch.arange(24, dtype=torch.float64).view(2, 3, 4)
    assert torch.equal(S.running_mean(g, dim=-2), S.running_mean(g, dim=1))


# --- claims: they hold with the finding and fail without it -----------------------------------

HALF = data.Kind("randX", 0.5)


def _fake(values: torch.Tensor, off: torch.Tensor | None = None) -> S.SensitivityRun:
    """A run whose ḡ is ``values`` ``(S, N)`` at each of two steps, with per-class matrices
    ``(S, K, K)`` of diagonal 1 and off-diagonal ``off`` (if given)."""
    n_seeds = len(values)
    m = None if off is None else (torch.eye(off.shape[-1]) + off * (1 - torch.eye(off.shape[-1])))[:, None]
    return S.SensitivityRun(
        torch.tensor([1, 2]),
        torch.tensor([1.0, 2.0]),
        values[:, None].repeat(1, 2, 1),
        values[:, None].repeat(1, 2, 1),
        torch.ones(n_seeds, 2),
        m,
        m,
        torch.tensor([2]),
    )


def _runs(real_sigma=1.5, swap=False, same=False, off_real=None):
    """Per kind, fake runs for the true labels and for one class per example: on real data ḡ is
    log-normal (a few examples carry much: high Gini) and the cross-class matrix has large, uneven
    off-diagonal cells; on randX ḡ is nearly equal and the off-diagonal small and even; 50% randX between."""
    gen = torch.Generator().manual_seed(0)
    n_seeds, n, k = 3, 500, 10
    heavy = torch.exp(real_sigma * torch.randn(n_seeds, n, generator=gen))
    flat = 1 + 0.1 * torch.rand(n_seeds, n, generator=gen)
    half = torch.cat([heavy[:, : n // 2], flat[:, n // 2 :]], 1)
    uneven = 0.2 + 0.8 * torch.rand(n_seeds, k, k, generator=gen) ** 4 if off_real is None else off_real
    even = 0.1 + 0.01 * torch.rand(n_seeds, k, k, generator=gen)
    g = {data.REAL: (heavy, uneven), data.RANDX: (flat, even), HALF: (half, None)}
    if swap:
        g[data.REAL], g[data.RANDX] = (flat, even), (heavy, uneven)
    if same:
        g = dict.fromkeys(g, (flat, even))
    labels = {kind: _fake(v, off if kind != HALF else None) for kind, (v, off) in g.items()}
    return labels, {kind: _fake(v) for kind, (v, _) in g.items()}


def _holds(labels, examples):
    return {c.id.removeprefix("toy-"): c.holds for c in S.claims(labels, examples, "toy")}


def test_claims_hold_with_the_finding():
    claims = S.claims(*_runs(), "toy")
    assert [c.id for c in claims] == ["toy-" + k for k in S.THRESHOLDS]
    assert all(c.holds for c in claims), [str(c) for c in claims]
    assert [c.asserted for c in claims] == [True, True, False, True, True]  # one class per example: reported only
    assert not any(c.asserted for c in S.claims(*_runs(), "toy", asserted=False))


def test_claims_fail_when_real_and_noise_are_swapped_or_alike():
    assert not any(_holds(*_runs(swap=True)).values())
    assert not any(_holds(*_runs(same=True)).values())


def test_claims_fail_when_one_seed_lacks_the_finding():
    labels, examples = _runs()
    for runs in (labels, examples):
        runs[data.REAL] = replace(runs[data.REAL], g=runs[data.REAL].g.clone())
        runs[data.REAL].g[2] = runs[data.RANDX].g[2]  # seed 2: real ḡ as even as noise
    held = _holds(labels, examples)
    assert not held["labels-real-vs-randX"] and not held["labels-real-vs-half"]
    assert not held["examples-real-vs-noise"]  # seed 2 widens the spread beyond the gap


def test_offdiag_claims_fail_for_even_cross_talk_on_real_data():
    even = 0.1 + 0.01 * torch.rand(3, 10, 10, generator=torch.Generator().manual_seed(5))
    held = _holds(*_runs(off_real=even))
    assert not held["offdiag-real-vs-randX"] and not held["offdiag-structured"]
    assert held["labels-real-vs-randX"]
