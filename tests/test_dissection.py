"""Known answers for notebook 07's quantities (memkit.dissection, memkit.gan) and the
counterfactual test of each of its claims."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from memkit import dissection as dz
from memkit import gan, models, training


def linear(w: torch.Tensor, b: torch.Tensor) -> nn.Linear:
    m = nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        m.weight.copy_(w), m.bias.copy_(b)
    return m


def test_gradient_magnitude_matches_hand_computation_on_a_linear_model():
    torch.manual_seed(0)
    w, b = torch.randn(3, 5), torch.randn(3)
    x, y = torch.randn(7, 5), torch.randint(3, (7,))
    # ∂ℓ/∂x = Wᵀ(softmax(Wx + b) − onehot(y)) for the cross-entropy ℓ of one example
    p = torch.softmax(x @ w.T + b, -1) - F.one_hot(y, 3)
    expected = (p @ w).abs().sum(1).mean()
    assert torch.allclose(dz.gradient_magnitude(linear(w, b), x, y, batch_size=3), expected, atol=1e-6)


def test_gradient_magnitude_of_an_ensemble_is_per_member():
    x, y = torch.randn(9, 1, 2, 2), torch.randint(3, (9,))
    ens = training.Ensemble(lambda: models.mlp((1, 2, 2), [], 3), 3, seed=0, device="cpu")
    got = dz.gradient_magnitude(ens, x, y, batch_size=4)
    want = torch.stack([dz.gradient_magnitude(ens.member(i), x, y) for i in range(3)])
    assert got.shape == (3,) and torch.allclose(got, want, atol=1e-6)
    assert all(p.grad is None for p in ens.params.values())
    data_index = torch.tensor([1, 0, 1])  # member s on data set data_index[s]
    xs, ys = torch.stack([x, -x]), torch.stack([y, y])
    got = dz.gradient_magnitude(ens, xs, ys, data_index=data_index)
    want = torch.stack([dz.gradient_magnitude(ens.member(i), xs[d], ys[d]) for i, d in enumerate(data_index)])
    assert torch.allclose(got, want, atol=1e-6)


class ToyG(nn.Module):
    """A fixed generator: z ↦ tanh(Az), shaped (1, 2, 2)."""

    nz = 3

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 4)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.lin(z)).view(-1, 1, 2, 2)


def test_activation_maximisation_raises_the_objective_monotonically():
    torch.manual_seed(0)
    G, f = ToyG(), models.mlp((1, 2, 2), [8], 3)
    z0, cls = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    out = dz.activation_maximisation(f, G, cls, z0, lr=0.01, n_iter=100)
    assert out.objective.shape == (101, 6)
    assert (out.objective.diff(dim=0) >= -1e-6).all()
    assert (out.objective[-1] > out.objective[0]).all()
    assert torch.allclose(dz.class_objective(f, G(out.z), cls), out.objective[-1], atol=1e-5)
    assert torch.allclose(out.x, G(out.z), atol=1e-6)


def test_dissect_shapes():
    torch.manual_seed(0)
    pt = dz.dissect(models.mlp((1, 2, 2), [8], 3), ToyG(), 3, n_z=4, n_iter=5)
    assert pt.x0.shape == (4, 1, 2, 2) and pt.x_star.shape == (3, 4, 1, 2, 2) and pt.objective.shape == (6, 3, 4)


def constant(logits: list[float]) -> nn.Module:
    """A model whose output is ``logits`` for every input."""
    return nn.Sequential(nn.Flatten(), linear(torch.zeros(len(logits), 4), torch.tensor(logits)))


def test_kl_distance_zero_for_identical_models_and_closed_form():
    x = torch.randn(3, 5, 1, 2, 2)  # C = 3 classes, 5 latent seeds
    f = models.mlp((1, 2, 2), [8], 3)
    assert torch.allclose(dz.kl_distance(f, f, x), torch.zeros(5), atol=1e-6)
    a, b = [1.0, 0.0, -1.0], [0.0, 2.0, 0.0]
    p, q = torch.softmax(torch.tensor(a), 0), torch.softmax(torch.tensor(b), 0)
    closed = float((p * (p / q).log()).sum())
    got = dz.kl_distance(constant(a), constant(b), x)
    assert got.shape == (5,) and torch.allclose(got, torch.full((5,), closed), atol=1e-6)


def test_fitting_time_and_hunting_stage():
    acc = np.array([[0.1, 0.1, 0.3, 0.7, 1.0], [0.1, 0.6, 1.0, 1.0, 1.0], [0.1, 0.1, 0.1, 0.1, 0.2]])
    t = dz.fitting_time(acc, np.arange(5))
    assert t[0] == pytest.approx(2.5) and t[1] == pytest.approx(0.8) and math.isnan(t[2])
    g = np.array([[1.0, 0.5, 2.0, 10.0, 3.0], [1.0, 9.0, 10.0, 2.0, 1.0], [1.0, 0.5, 0.5, 0.5, 10.0]])
    c = dz.Curves(np.arange(5), g, acc, acc)
    assert dz.hunting_epochs(c, 10).tolist() == [1.0, 0.0, 3.0]


def test_train_stops_members_at_the_target_and_records_curves():
    torch.manual_seed(0)
    x, y = torch.randn(64, 1, 2, 2), torch.randint(2, (64,))
    y[:32] = 0
    x[:32] += 3.0  # easy: class 0 is shifted
    tr = dz.train(
        models.factory("mlp", (1, 2, 2), 2, widths=[16]),
        x,
        y,
        training.SGD(lr=0.1, batch_size=16, epochs=30, momentum=0.9),
        n_seeds=3,
        seed=0,
        stop_at=0.7,
        test=(x, y),
        track=True,
        device="cpu",
    )
    assert len(tr.models) == 3 and (tr.train_acc >= 0.7).all() and (tr.epochs < 30).all()
    assert tr.curves.g_bar.shape == tr.curves.train_acc.shape == (3, len(tr.curves.epochs))
    assert not np.isnan(tr.curves.g_bar).any()


def test_train_loops_over_seeds_for_batch_norm():
    def bn_factory():
        return nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))

    x, y = torch.randn(2, 32, 1, 2, 2), torch.randint(2, (2, 32))
    tr = dz.train(
        bn_factory,
        x,
        y,
        training.SGD(lr=0.05, batch_size=8, epochs=3),
        n_seeds=2,
        seed=0,
        track=True,
        data_index=[0, 1],
        device="cpu",
    )
    assert len(tr.models) == 2 and not tr.seeds.batched and tr.curves.g_bar.shape == (2, 4)
    assert not np.isnan(tr.curves.g_bar).any()


def test_train_stops_the_same_in_the_batched_and_the_looped_path():
    torch.manual_seed(0)
    x, y = torch.randn(48, 1, 2, 2), torch.randint(2, (48,))
    x[y == 0] += 2.0
    fac = models.factory("mlp", (1, 2, 2), 2, widths=[8])
    sgd = training.SGD(lr=0.1, batch_size=16, epochs=20, momentum=0.9)
    runs = [
        dz.train(fac, x, y, sgd, n_seeds=2, seed=0, stop_at=0.9, track=True, device="cpu", batched=b)
        for b in (True, False)
    ]
    assert runs[0].seeds.batched and not runs[1].seeds.batched
    assert runs[0].epochs.tolist() == runs[1].epochs.tolist()
    assert np.allclose(runs[0].curves.g_bar, runs[1].curves.g_bar, rtol=1e-3)


def toy_images(n: int = 256) -> torch.Tensor:
    """Bright squares at random places on a dark 8×8 canvas."""
    g = torch.Generator().manual_seed(0)
    x = torch.full((n, 1, 8, 8), -1.0)
    for i, (r, c) in enumerate(torch.randint(0, 5, (n, 2), generator=g)):
        x[i, 0, r : r + 3, c : c + 3] = 1.0
    return x


def test_gan_shapes_for_every_input_size():
    for shape in ((1, 8, 8), (1, 14, 14), (1, 28, 28), (3, 32, 32)):
        cfg = gan.GANConfig(shape, nz=100, ngf=8, ndf=8)
        G, D = gan.Generator(cfg), gan.Discriminator(cfg)
        x = G(torch.randn(2, 100))
        assert x.shape == (2, *shape) and D(x).shape == (2,)
    with pytest.raises(ValueError, match="even image side"):
        gan.Generator(gan.GANConfig((1, 7, 7)))


def test_gan_training_fools_the_discriminator_and_is_deterministic():
    x = toy_images()
    a = gan.train_gan(x, epochs=6, batch_size=32, seed=0, ngf=8, ndf=8, device="cpu")
    acc = a.history["fake_acc"]
    assert max(acc[:2]) > acc[-1], acc  # D sees through G early, less so once G has trained
    b = gan.train_gan(x, epochs=1, batch_size=32, seed=0, ngf=8, ndf=8, device="cpu")
    c = gan.train_gan(x, epochs=1, batch_size=32, seed=0, ngf=8, ndf=8, device="cpu")
    assert torch.equal(b.sample(4), c.sample(4))
    assert a.sample(64).amin() >= -1 - 1e-5 and a.sample(64).amax() <= 1 + 1e-5  # the data's range


def test_gan_weights_round_trip_and_cache(tmp_path):
    x = toy_images(64)
    net = gan.train_gan(x, epochs=1, batch_size=32, seed=0, ngf=8, ndf=8, device="cpu")
    path = gan.save_gan(net, tmp_path / "g.pt")
    back = gan.load_gan(path, "cpu")
    assert torch.equal(back.sample(8), net.sample(8)) and back.history == net.history
    z = torch.randn(5, 100)
    with torch.no_grad():
        assert torch.equal(back.D(net.G(z)), net.D(net.G(z)))
    kw = dict(epochs=1, batch_size=32, seed=0, ngf=8, ndf=8)
    _, loaded = gan.cached_gan(path, x, device="cpu", **kw)
    assert loaded
    _, loaded = gan.cached_gan(path, x, device="cpu", **{**kw, "epochs": 2})
    assert not loaded  # other settings: trained again (and saved)
    _, loaded = gan.cached_gan(path, x, device="cpu", retrain=True, **{**kw, "epochs": 2})
    assert not loaded


# --- claims: a run with every finding, and counterfactual runs without one ---------------------------


def finding_run() -> dict:
    epochs = np.arange(31)
    shift = np.array([0.0, 3.0, 6.0])[:, None]  # random labels: seeds start fitting at different times
    acc_r = np.clip(0.1 + (epochs - 10 - shift) * 0.1, 0.1, 1.0)
    g_r = np.where(epochs < 10 + shift, 0.1, 10.0)
    acc_t = np.clip(0.5 + epochs * 0.25 + np.array([[0.0], [0.01], [0.02]]), 0.1, 1.0)
    acc_t[:, 0] = 0.1
    g_t = np.where(epochs >= 1, 5.0, 0.1) + 0 * shift
    curves = {"true": dz.Curves(epochs, g_t, acc_t, acc_t), "random": dz.Curves(epochs, g_r, acc_r, acc_r)}
    rng = np.random.default_rng(0)
    dist = {
        (label, kind): rng.uniform(0.9, 1.1, 20) * (0.05 if label == "true" else 2.0)
        for label in ("true", "random")
        for kind in dz.PAIR_KINDS
    }
    levels = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    noise = np.stack([rng.uniform(0.9, 1.1, 20) * (0.05 + 2 * p) for p in levels])
    return dict(dist=dist, noise_levels=levels, noise_dist=noise, curves=curves, n_classes=10)


def held(run: dict) -> dict[str, bool]:
    return {c.id: c.holds for c in dz.claims(**run)}


def test_claims_hold_when_the_findings_are_there():
    assert all(held(finding_run()).values()), held(finding_run())


def test_reported_only_claims_are_not_asserted():
    run = finding_run()
    ids = [c.id for c in dz.asserted(dz.claims(**run, prefix="cifar10-subset"))]
    assert len(ids) == 4 and "cifar10-subset-no-hunting-true" not in ids


def test_claim_n_ways_fails_when_true_and_random_pairs_are_alike():
    run = finding_run()
    run["dist"] = {(label, kind): run["dist"]["true", kind] for label, kind in run["dist"]}
    assert not held(run)["n-ways-to-memorize"]
    run = finding_run()  # one pair kind alike is enough to fail (the worst kind counts)
    run["dist"]["random", "arch"] = run["dist"]["true", "arch"] * 2
    assert not held(run)["n-ways-to-memorize"]


def test_claim_noise_level_fails_on_a_flat_or_falling_curve():
    run = finding_run()
    run["noise_dist"] = run["noise_dist"][::-1]
    assert not held(run)["noise-level"]
    run["noise_dist"] = np.random.default_rng(1).uniform(0.9, 1.1, run["noise_dist"].shape)
    assert not held(run)["noise-level"]


def test_hunting_and_paths_claims_fail_with_the_curves_swapped():
    run = finding_run()
    run["curves"] = {"true": run["curves"]["random"], "random": run["curves"]["true"]}
    h = held(run)
    assert not h["hunting-random"] and not h["no-hunting-true"] and not h["n-paths"]


def test_paths_claim_fails_when_random_seeds_follow_one_path():
    run = finding_run()
    c = run["curves"]["random"]
    run["curves"]["random"] = dz.Curves(
        c.epochs, np.repeat(c.g_bar[:1], 3, 0), np.repeat(c.train_acc[:1], 3, 0), c.test_acc
    )
    h = held(run)
    assert not h["n-paths"] and h["hunting-random"]


def test_claims_fail_when_random_labels_are_never_fitted():
    run = finding_run()
    c = run["curves"]["random"]
    run["curves"]["random"] = dz.Curves(c.epochs, c.g_bar, np.full_like(c.train_acc, 0.1), c.test_acc)
    assert not held(run)["n-paths"]  # no fitting time: NaN never holds
