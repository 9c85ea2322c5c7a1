"""Known-answer tests of the Langevin adversarial sample search and the critical sample ratio.

The reference is a linear classifier, whose exact L∞ distance to its decision boundary has a
closed form (:func:`memkit.adversarial.linear_boundary_distance`): the search must find (nearly)
every point closer than r and must never call a point critical without an adversarial point,
inside the ball, that the model classifies differently.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from memkit import adversarial as A
from memkit import data, models, training

# The paper's step sizes relative to its radius: alpha = 0.25, beta = 0.2, r = 0.3.
ALPHA, BETA = 0.25 / 0.3, 0.2 / 0.3


def trained_linear(k: int, d: int, n: int = 1500, seed: int = 0) -> tuple[nn.Linear, torch.Tensor]:
    """A softmax regression fitted to ``k`` Gaussian clusters in ``d`` dimensions, and its inputs."""
    g = torch.Generator().manual_seed(seed)
    centres = 1.5 * torch.randn(k, d, generator=g)
    y = torch.randint(k, (n,), generator=g)
    x = centres[y] + torch.randn(n, d, generator=g)
    torch.manual_seed(seed)
    lin = nn.Linear(d, k)
    opt = torch.optim.SGD(lin.parameters(), lr=0.2)
    for _ in range(200):
        opt.zero_grad()
        F.cross_entropy(lin(x), y).backward()
        opt.step()
    return lin.requires_grad_(False), x


def exact_distance(lin: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return A.linear_boundary_distance(lin.weight, lin.bias, x)


def search(model, x, r, **kw):
    return A.lass(model, x, r=r, alpha=ALPHA * r, beta=BETA * r, n_iter=kw.pop("n_iter", 20), **kw)


def assert_verified(model, x, res, r, bounds=None):
    """Every point called critical has an adversarial point inside the ball (and the input range)
    that the model classifies differently; every iterate stays inside the ball and the range."""
    with torch.no_grad():
        y0, y1 = model(x).argmax(-1), model(res.x_adv).argmax(-1)
    dist = (res.x_adv - x).abs().flatten(1).amax(1)
    assert bool((dist <= r * (1 + 1e-5) + 1e-7).all())
    assert torch.equal(res.critical, y1 != y0)
    assert torch.equal(res.y_pred, y0) and torch.equal(res.y_adv, y1)
    if bounds is not None:
        assert bool((res.x_adv >= bounds[0]).all()) and bool((res.x_adv <= bounds[1]).all())


def test_linear_distance_known_answer():
    # f0 = x1 + x2, f1 = 0: from (1, 1) the nearest boundary point in L∞ is (0, 0), at distance 1.
    w, b = torch.tensor([[1.0, 1.0], [0.0, 0.0]]), torch.zeros(2)
    x = torch.tensor([[1.0, 1.0], [-0.5, 0.25]])
    assert torch.allclose(A.linear_boundary_distance(w, b, x), torch.tensor([1.0, 0.125]))
    # In the norm max(|d1|/2, |d2|/1): ||w0 - w1||_1 weighted by (2, 1) is 3, so d = 2/3, and the
    # corner step -d * (2, 1) lands on the boundary.
    d = A.linear_boundary_distance(w, b, x[:1], scale=torch.tensor([2.0, 1.0]))
    assert torch.allclose(d, torch.tensor([2 / 3]))
    corner = x[:1] - d * torch.tensor([2.0, 1.0])
    assert torch.allclose(corner @ w.T + b, torch.zeros(1, 2), atol=1e-6)


def test_linear_distance_is_the_smallest_flip_along_the_corners():
    # Moving by (d + eps) along the best corner flips the prediction; by (d - eps) nothing does.
    lin, x = trained_linear(4, 6, n=100)
    d = exact_distance(lin, x)
    k = lin(x).argmax(-1)
    corners = torch.tensor(np.array(np.meshgrid(*[[-1.0, 1.0]] * 6)).reshape(6, -1).T, dtype=torch.float32)
    for eps, flips in ((1e-3, True), (-1e-3, False)):
        moved = x[:, None, :] + (d[:, None, None] + eps) * corners[None]  # (B, 64 corners, D)
        changed = (lin(moved).argmax(-1) != k[:, None]).any(1)
        assert bool(changed.all()) == flips and bool(changed.any()) == flips


@pytest.mark.parametrize(("k", "d"), [(2, 20), (10, 30)])
def test_lass_finds_nearly_all_points_within_r_of_a_linear_boundary(k, d):
    lin, x = trained_linear(k, d)
    dist = exact_distance(lin, x)
    r = float(dist.median())
    res = search(lin, x, r)
    truly = dist <= r
    recall = float((res.critical & truly).sum() / truly.sum())
    print(f"K={k}: recall {recall:.3f} on {int(truly.sum())} points within r")
    assert recall >= (0.99 if k == 2 else 0.9)
    near = dist <= 0.75 * r
    assert bool(res.critical[near].all()), "every point well inside the radius is found"
    assert not bool((res.critical & (dist > r * (1 + 1e-5))).any()), "no point beyond r is critical"
    assert_verified(lin, x, res, r)


def test_check_on_linear_widens_a_tiny_radius():
    lin, x = trained_linear(10, 30)
    model = nn.Sequential(nn.Flatten(), lin)
    search = dict(r=1e-4, alpha=ALPHA * 1e-4, beta=BETA * 1e-4, n_iter=20, bounds=(0.0, 1.0))  # bounds ignored
    check = A.check_on_linear(model, x, search)
    assert check.factor > 1 and abs(float((check.distance <= 1).mean()) - 0.05) < 0.01
    assert check.recall >= 0.9 and check.unsound == 0
    assert np.allclose(check.found_by_distance(np.array([0.0, 0.75, 1.0 + 1e-4, 10.0]))[[0, 2]], [1.0, 0.0])
    wide = A.check_on_linear(model, x, search | dict(r=1.0, alpha=ALPHA, beta=BETA))
    assert wide.factor == 1.0


@pytest.mark.parametrize("r", [0.3, 8.0, 32.0])
def test_no_point_beyond_the_exact_distance_is_called_critical(r):
    """Notebook 04's linear check on digits, at the paper's radius and larger: a point is called
    critical only with an adversarial point within r, so its exact distance is at most r (by
    construction: this was a claim of the notebook, and is a test)."""
    ds = data.load("digits", n_train=300, n_test=100)
    sgd = training.SGD(batch_size=32, lr=0.01, momentum=0.9, epochs=5)
    checks = A.check_linear_models(ds, A.lass_settings(ds.x_test, r=r), sgd, n_seeds=3, seed=1)
    assert len(checks) == 3 and all(c.unsound == 0 for c in checks)
    assert all(c.critical[c.distance <= 1].mean() >= 0.85 for c in checks)


def test_verified_on_an_mlp_with_an_input_range():
    torch.manual_seed(0)
    model = models.mlp((1, 8, 8), [64], 10)
    x = torch.rand(200, 1, 8, 8)
    bounds = (torch.zeros(1, 1, 1), torch.ones(1, 1, 1))
    res = search(model, x, 0.1, bounds=bounds)
    assert 0 < int(res.critical.sum()) < len(x)
    assert_verified(model, x, res, 0.1, bounds)
    assert bool((res.steps[res.critical] >= 1).all()) and bool((res.steps[~res.critical] == 20).all())


def test_points_outside_the_range_stay_feasible():
    x = torch.tensor([[-2.0, 0.5, 3.0]])
    lower, upper = A.feasible_box(x, 0.5, (torch.zeros(3), torch.ones(3)))
    assert torch.allclose(lower, torch.tensor([[-2.0, 0.0, 2.5]]))  # may only move towards the range
    assert torch.allclose(upper, torch.tensor([[-1.5, 1.0, 3.0]]))
    assert bool((lower <= x).all()) and bool((x <= upper).all())


def test_zero_radius_finds_nothing():
    lin, x = trained_linear(3, 5, n=100)
    res = A.lass(lin, x, r=0.0, alpha=0.1, beta=0.1, n_iter=5)
    assert not bool(res.critical.any()) and torch.equal(res.x_adv, x)
    assert float(A.critical_sample_ratio(lin, x, r=0.0, alpha=0.1, beta=0.1, n_iter=5)) == 0.0


def test_deterministic_with_a_seeded_generator():
    torch.manual_seed(1)
    model = models.mlp((5,), [32], 3)
    x = torch.randn(100, 5)

    def run(s):
        return search(model, x, 0.3, generator=torch.Generator().manual_seed(s))

    assert torch.equal(run(0).x_adv, run(0).x_adv)
    assert torch.equal(search(model, x, 0.3).x_adv, run(0).x_adv)  # default: seed 0
    assert not torch.equal(run(0).x_adv, run(1).x_adv)


def test_ensemble_layout_matches_its_members():
    ds = data.load("digits", n_train=200, n_test=60)
    ens = training.Ensemble(lambda: models.mlp(ds.input_shape, [32], 10), 3, seed=0)
    training.fit(ens, ds.x_train, ds.y_train, training.SGD(lr=0.05, batch_size=32, epochs=2))
    s = A.lass_settings(ds.x_test, r=12, beta=0.0)
    xs = ds.x_test.expand(3, *ds.x_test.shape)
    res = A.lass(ens.forward, xs, **s)
    assert res.critical.shape == (3, 60) and res.x_adv.shape == xs.shape
    members = torch.stack([A.lass(ens.member(i), ds.x_test, **s).critical for i in range(3)])
    assert float((res.critical == members).float().mean()) >= 0.98
    csr = A.critical_sample_ratio(ens.forward, xs, **s)
    assert csr.shape == (3,) and torch.allclose(csr, res.critical.float().mean(1))
    assert 0 < float(csr.max()) < 1


def test_modules_are_searched_in_eval_mode_and_restored():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    model(torch.randn(64, 4) + 3)  # running statistics that differ from a batch's own
    model.train()
    stats = model[1].running_mean.clone()
    x = torch.randn(50, 4)
    res = search(model, x, 0.2)
    assert model.training and all(m.training for m in model.modules())
    assert torch.equal(model[1].running_mean, stats)
    with torch.no_grad():
        assert torch.equal(res.y_pred, model.eval()(x).argmax(-1))


def test_lass_settings_convert_pixel_units():
    g = torch.Generator().manual_seed(0)
    raw = torch.rand(500, 3, 4, 4, generator=g) * torch.tensor([1.0, 0.5, 0.8]).view(1, 3, 1, 1)
    raw[0], raw[1] = 0.0, 1.0  # every channel spans the full [0, 1] range
    mean, std = raw.mean((0, 2, 3)).view(3, 1, 1), raw.std((0, 2, 3)).view(3, 1, 1)
    x, _ = data.standardize(raw, raw)
    s = A.lass_settings(x)
    assert torch.allclose(s["r"], 0.3 / 255 / std, rtol=1e-4)
    assert torch.allclose(s["alpha"], 0.25 / 255 / std, rtol=1e-4)
    assert torch.allclose(s["beta"], 0.2 / 255 / std, rtol=1e-4)
    assert torch.allclose(s["bounds"][0], -mean / std, atol=1e-5)
    assert torch.allclose(s["bounds"][1], (1 - mean) / std, atol=1e-5)
    assert s["n_iter"] == A.PAPER_LASS["n_iter"]
    wide = A.lass_settings(x, r=3.0)  # alpha and beta keep the paper's ratios to r
    assert torch.allclose(wide["alpha"], 2.5 / 255 / std, rtol=1e-4)
    assert torch.allclose(wide["beta"], 2.0 / 255 / std, rtol=1e-4)


@pytest.mark.parametrize(
    "bad", [dict(r=-0.1), dict(alpha=-1.0), dict(beta=float("nan")), dict(n_iter=-1), dict(n_iter=2.5)]
)
def test_bad_parameters_are_rejected(bad):
    kw = dict(r=0.1, alpha=0.1, beta=0.1, n_iter=3) | bad
    with pytest.raises(ValueError, match=r"LASS|n_iter"):
        A.lass(nn.Linear(2, 2), torch.zeros(4, 2), **kw)


def test_bad_settings_are_rejected():
    x = torch.rand(10, 1, 2, 2)
    with pytest.raises(ValueError, match="scale"):
        A.lass_settings(x, scale=0)
    with pytest.raises(ValueError, match="logits"):
        A.lass(lambda z: z.sum(), x, r=0.1, alpha=0.1, beta=0.1, n_iter=1)
