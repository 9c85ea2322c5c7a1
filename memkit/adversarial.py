"""Critical samples and the critical sample ratio (notebook 04, Arpit et al. 2017 §4, Figs. 7–9).

A point x is *critical* for a classifier f when some x̂ with ‖x − x̂‖∞ ≤ r is classified
differently: argmax_i f_i(x) ≠ argmax_j f_j(x̂). The *critical sample ratio* (CSR) is the
fraction of critical points in a set; it counts the points that have a decision boundary within
r, a measure of how complex the learned function is around the data.

Critical points are searched with the Langevin adversarial sample search (LASS, the paper's
Algorithm 1), run on a whole batch at once by :func:`lass`: from x̃ = x, repeat

    Δ = α·sign(∇_x̃ ℓ(f(x̃), k)) + β·η,   η ~ N(0, I),   x̃ ← Π(x̃ + Δ)

where k is the class predicted at x, ℓ the cross-entropy (so the step moves *away* from k; the
paper's Algorithm 1 writes ∂f_k/∂x, which as written would move towards it), Π the projection onto
the L∞ ball of radius r around x and onto the valid input range, and the gradient is recomputed at
x̃ every step. A point stops (and is critical) as soon as argmax f(x̃) ≠ k; the search gives up
after ``n_iter`` steps. Every point called critical comes with its adversarial point x̃, so the
claim can be checked; a point not called critical may still be critical (the search is a lower
bound on the CSR). :func:`linear_boundary_distance` gives the exact answer for a linear classifier,
and :func:`check_on_linear` measures the search's recall against it (tests and notebook 04).

Units: memkit standardises inputs per channel, so the paper's α = 0.25, β = 0.2, r = 0.3 (on the
0–255 pixel scale) are converted by :func:`lass_settings`, which measures one pixel-scale unit as
(hi − lo)/255 per channel, lo and hi being the channel's smallest and largest clean input (the
standardised images of pixel values 0 and 255 when the raw data span the full range).

The search is written for any model on any batch shape, so that it also serves adversarial
training (notebook 05): inside a :func:`memkit.training.train_seeds` hook,
``lass(models.forward, xb, **search)`` searches every member's batch ``(S', B, ...)`` at once.
:mod:`memkit.critical` tracks the CSR through training (the finding of notebook 04).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from memkit import models, training
from memkit.data import Dataset

Model = Callable[[torch.Tensor], torch.Tensor]

#: The paper's LASS parameters (Arpit et al. 2017 §4), on the 0–255 pixel scale; the iteration
#: budget is not published (our choice).
PAPER_LASS = {"alpha": 0.25, "beta": 0.2, "r": 0.3, "n_iter": 20}


@dataclass(frozen=True)
class AdversarialSearch:
    """What :func:`lass` found for a batch of points; ``batch`` is the batch shape of ``x``
    (``(B,)`` for a plain model, ``(S, B)`` for an ensemble's per-member inputs).

    Attributes:
        x_adv: same shape as ``x``: the adversarial point x̂ of every critical point, the last
            iterate for the others; always within the L∞ ball of radius r and the input range.
        critical: ``batch`` bool: the predicted class at ``x_adv`` differs from that at ``x``.
        y_pred: ``batch`` int64: the class predicted at x (k).
        y_adv: ``batch`` int64: the class predicted at ``x_adv``.
        steps: ``batch`` int64: the number of LASS steps taken (``n_iter`` when none was found).
    """

    x_adv: torch.Tensor
    critical: torch.Tensor
    y_pred: torch.Tensor
    y_adv: torch.Tensor
    steps: torch.Tensor


def _check_nonnegative(**values: float | torch.Tensor) -> None:
    for name, v in values.items():
        if bool(torch.as_tensor(v).lt(0).any()) or bool(torch.as_tensor(v).isnan().any()):
            raise ValueError(
                f"LASS parameter {name} must be >= 0 (in the data's standardised units); "
                f"got {v}. Use lass_settings() to convert pixel-scale values."
            )


def feasible_box(
    x: torch.Tensor, r: float | torch.Tensor, bounds: tuple[float | torch.Tensor, float | torch.Tensor] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-coordinate limits of the search around ``x``: the L∞ ball [x − r, x + r] intersected
    with the input range ``bounds = (lo, hi)`` (broadcastable to ``x``), the range widened where
    needed to contain x itself (noise inputs may lie outside the range of real data). Two tensors
    shaped like ``x``."""
    lower, upper = x - r, x + r
    if bounds is not None:
        lo, hi = (torch.as_tensor(b, dtype=x.dtype, device=x.device) for b in bounds)
        lower = torch.maximum(lower, torch.minimum(lo, x))
        upper = torch.minimum(upper, torch.maximum(hi, x))
    return lower, upper


def lass(
    model: Model,
    x: torch.Tensor,
    *,
    r: float | torch.Tensor,
    alpha: float | torch.Tensor,
    beta: float | torch.Tensor,
    n_iter: int,
    bounds: tuple[float | torch.Tensor, float | torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
) -> AdversarialSearch:
    """Langevin adversarial sample search (Arpit et al. 2017, Algorithm 1) on a batch of points.

    Args:
        model: maps inputs ``(*batch, *input_shape)`` to logits ``(*batch, K)``: an ``nn.Module``
            on ``(B, ...)`` (switched to eval mode during the search), or e.g.
            :meth:`memkit.training.Ensemble.forward` on per-member inputs ``(S, B, ...)``.
        x: ``(*batch, *input_shape)`` the points, in the model's (standardised) input units.
        r: radius of the L∞ ball, the paper's r; a float or a tensor broadcastable to ``x``
            (e.g. ``(C, 1, 1)`` per channel).
        alpha: size of the signed-gradient step, α (same units as r).
        beta: scale of the Gaussian noise, β (same units).
        n_iter: maximum number of steps.
        bounds: the valid input range ``(lo, hi)``, each broadcastable to ``x``; ``None``: unbounded.
        generator: the noise's generator, on ``x``'s device (``None``: a fresh one seeded with 0,
            so the search is deterministic).

    Returns:
        an :class:`AdversarialSearch`; ``critical`` is True only where ``model(x_adv)`` was
        checked to predict another class, with ``‖x_adv − x‖∞ ≤ r`` and ``x_adv`` in ``bounds``.
    """
    if int(n_iter) != n_iter or n_iter < 0:
        raise ValueError(f"n_iter={n_iter} must be a non-negative integer (the maximum number of LASS steps)")
    _check_nonnegative(r=r, alpha=alpha, beta=beta)
    if generator is None:
        generator = torch.Generator(device=x.device).manual_seed(0)
    x = x.detach()
    r, alpha, beta = (torch.as_tensor(v, dtype=x.dtype, device=x.device) for v in (r, alpha, beta))
    lower, upper = feasible_box(x, r, bounds)
    xt = x.clone()
    with training.eval_mode(model), torch.enable_grad():
        for t in range(int(n_iter) + 1):
            xt.requires_grad_(True)
            logits = model(xt)
            if t == 0:
                y_pred = logits.argmax(-1).detach()
                batch = y_pred.shape
                found = torch.zeros(batch, dtype=torch.bool, device=x.device)
                steps = torch.full(batch, int(n_iter), dtype=torch.int64, device=x.device)
                if x.ndim <= len(batch) or logits.ndim != len(batch) + 1:
                    raise ValueError(
                        f"the model maps inputs {tuple(x.shape)} to {tuple(logits.shape)}; LASS "
                        "needs logits (*batch, K) for inputs (*batch, *input_shape)"
                    )
                expand = (*batch, *[1] * (x.ndim - len(batch)))
            y_now = logits.argmax(-1).detach()
            new = (y_now != y_pred) & ~found
            steps[new] = t
            found |= new
            if t == n_iter or bool(found.all()):
                break
            loss = F.cross_entropy(logits.flatten(0, -2), y_pred.flatten(), reduction="sum")
            (grad,) = torch.autograd.grad(loss, xt)
            with torch.no_grad():
                noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                delta = (alpha * grad.sign() + beta * noise) * (~found).view(expand)
                xt = torch.minimum(torch.maximum(xt.detach() + delta, lower), upper)
    return AdversarialSearch(xt.detach(), found, y_pred, y_now, steps)


def critical_sample_ratio(
    model: Model, x: torch.Tensor, *, generator: torch.Generator | None = None, **search: Any
) -> torch.Tensor:
    """CSR: the fraction of the points ``x`` found critical by :func:`lass`.

    ``x``: ``(*batch, B, *input_shape)``; the ratio is taken over the last batch axis (the B
    points), so a plain model on ``(B, ...)`` gives a scalar and an ensemble's ``forward`` on
    ``(S, B, ...)`` gives ``(S,)``, one CSR per member. ``search`` holds :func:`lass`'s ``r,
    alpha, beta, n_iter`` and ``bounds`` (see :func:`lass_settings`). A float tensor in [0, 1].
    """
    return lass(model, x, generator=generator, **search).critical.float().mean(-1)


def input_range(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel smallest and largest value of inputs ``(N, C, *spatial)``: two tensors
    ``(C, 1, ...)`` that broadcast against one input or a batch of them."""
    dims = [0, *range(2, x.ndim)]
    return x.amin(dims, keepdim=True)[0], x.amax(dims, keepdim=True)[0]


def lass_settings(
    x_clean: torch.Tensor,
    *,
    r: float = PAPER_LASS["r"],
    alpha: float | None = None,
    beta: float | None = None,
    n_iter: int = int(PAPER_LASS["n_iter"]),
    scale: float = 255.0,
) -> dict[str, Any]:
    """LASS parameters given on a 0–``scale`` pixel scale, in the standardised units of the data.

    ``x_clean``: ``(N, C, *spatial)`` uncorrupted inputs as the model sees them (e.g. a data set's
    ``x_test``, never corrupted). Per channel, lo and hi are their smallest and largest values and
    one pixel-scale unit is (hi − lo)/``scale`` standardised units; for images whose raw values
    span [0, 255] this is exactly 1/(255·std_c), and [lo, hi] is exactly the valid range.
    ``alpha`` and ``beta`` default to the paper's ratios to the radius (α = 0.25 and β = 0.2 for
    r = 0.3), so that a larger ``r`` is still reached in a few steps.
    Returns the keyword arguments of :func:`lass` and :func:`critical_sample_ratio`:
    ``alpha, beta, r`` as ``(C, 1, ...)`` tensors, ``n_iter``, and ``bounds = (lo, hi)``.
    """
    if scale <= 0:
        raise ValueError(f"scale={scale} must be positive: the pixel value of the data's full range (255)")
    alpha = r * PAPER_LASS["alpha"] / PAPER_LASS["r"] if alpha is None else alpha
    beta = r * PAPER_LASS["beta"] / PAPER_LASS["r"] if beta is None else beta
    _check_nonnegative(alpha=alpha, beta=beta, r=r)
    lo, hi = input_range(x_clean)
    unit = (hi - lo) / scale
    return {"alpha": alpha * unit, "beta": beta * unit, "r": r * unit, "n_iter": n_iter, "bounds": (lo, hi)}


def linear_boundary_distance(
    weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, scale: torch.Tensor | None = None
) -> torch.Tensor:
    """Exact L∞ distance from each point to the decision boundary of a linear classifier.

    For f(x) = W x + b predicting k = argmax f(x), the inputs where class j beats k form the
    half-space (w_k − w_j)·x' + b_k − b_j ≤ 0, at L∞ distance
    d_j = ((w_k − w_j)·x + b_k − b_j) / ‖w_k − w_j‖₁ (the L∞ ball of radius d changes
    (w_k − w_j)·x by at most d·‖w_k − w_j‖₁, attained at a corner), and the prediction can change
    within distance min_j d_j. With ``scale`` ``(D,)`` (e.g. a per-channel radius r flattened to
    the input), distances are in the norm max_i |δ_i| / scale_i: ‖w_k − w_j‖₁ becomes
    Σ_i |w_ki − w_ji|·scale_i, and x is critical for radius ``scale`` exactly when the result is ≤ 1.
    The input range is not taken into account (the points may leave it).

    ``weight``: ``(K, D)``; ``bias``: ``(K,)``; ``x``: ``(B, D)``. Returns ``(B,)`` (inf if K = 1).
    """
    logits = x @ weight.T + bias
    k = logits.argmax(-1)
    margin = logits.gather(1, k[:, None]) - logits  # (B, K): f_k − f_j ≥ 0
    diff = (weight[k][:, None, :] - weight[None]).abs()  # (B, K, D): |w_k − w_j|
    norm = (diff if scale is None else diff * scale).sum(-1)
    d = margin / norm
    d[torch.arange(len(x)), k] = torch.inf
    return d.min(-1).values


@dataclass(frozen=True)
class LinearCheck:
    """LASS against the exact answer on a linear classifier (:func:`check_on_linear`).

    Attributes:
        distance: ``(N,)`` exact L∞ distance of each point to the decision boundary, in units of
            the radius searched (a point is truly critical when it is ≤ 1).
        critical: ``(N,)`` bool: the points LASS called critical.
        factor: the radius searched, as a multiple of the ``r`` asked for (≥ 1).
    """

    distance: np.ndarray
    critical: np.ndarray
    factor: float

    @property
    def recall(self) -> float:
        """Fraction of the truly critical points that LASS found (NaN if there are none)."""
        within = self.distance <= 1
        return float(self.critical[within].mean()) if within.any() else float("nan")

    @property
    def unsound(self) -> int:
        """Number of points called critical although their exact distance exceeds the radius
        (beyond float tolerance): 0 for a correct search."""
        return int((self.critical & (self.distance > 1 + 1e-4)).sum())

    def found_by_distance(self, bins: np.ndarray) -> np.ndarray:
        """Fraction of points called critical in each bin of ``distance`` (NaN for empty bins)."""
        which = np.digitize(self.distance, bins) - 1
        return np.array(
            [self.critical[which == i].mean() if (which == i).any() else np.nan for i in range(len(bins) - 1)]
        )


def check_on_linear(
    model: nn.Module, x: torch.Tensor, search: dict[str, Any], min_fraction: float = 0.05
) -> LinearCheck:
    """Run :func:`lass` on a linear classifier, whose exact answer is known.

    ``model``: an ``nn.Module`` whose only parametrised layer is one ``nn.Linear`` (e.g.
    ``models.build("mlp", shape, K, widths=[])``); ``x``: ``(N, *input_shape)``; ``search``: the keyword
    arguments of :func:`lass` (``bounds`` is dropped: the closed form ignores the input range).
    LASS is scale-free when α, β and r scale together, so if fewer than ``min_fraction`` of the
    points lie within r (a tiny r, such as the paper's on MNIST), the search runs at the radius
    that holds that fraction instead (``factor`` > 1). Each critical point's adversarial point is
    re-checked against the model.
    """
    (linear,) = [m for m in model.modules() if isinstance(m, nn.Linear)]
    search = {k: v for k, v in search.items() if k != "bounds"}
    r = torch.as_tensor(search["r"], dtype=x.dtype, device=x.device).expand(x.shape[1:]).flatten()
    d = linear_boundary_distance(linear.weight.detach(), linear.bias.detach(), x.flatten(1), scale=r)
    factor = max(1.0, float(d.quantile(min_fraction)))
    found = lass(model, x, **{k: v * factor if k in ("r", "alpha", "beta") else v for k, v in search.items()})
    with torch.no_grad(), training.eval_mode(model):
        if not torch.equal(found.critical, model(found.x_adv).argmax(-1) != model(x).argmax(-1)):
            raise AssertionError("LASS called a point critical without a verified adversarial point")
    return LinearCheck((d / factor).cpu().numpy(), found.critical.cpu().numpy(), factor)


def check_linear_models(
    ds: Dataset,
    search: dict[str, Any],
    sgd: training.SGD,
    *,
    n_seeds: int,
    n_points: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> list[LinearCheck]:
    """:func:`check_on_linear` on S = ``n_seeds`` softmax regressions (``models.build("mlp", ...,
    widths=[])``) trained with ``sgd`` on ``ds`` (:func:`memkit.training.train_seeds`), each searched
    on the first ``n_points`` of its training and test inputs (``None``: all) with ``search``
    (:func:`lass_settings`). One :class:`LinearCheck` per seed."""
    factory = models.factory("mlp", ds.input_shape, ds.n_classes, widths=[])
    seeds = training.train_seeds(factory, ds.x_train, ds.y_train, sgd, n_seeds=n_seeds, seed=seed, device=device)
    x = torch.cat([ds.x_train, ds.x_test])[:n_points].to(seeds.device)
    return [check_on_linear(seeds.member(i), x, search) for i in seeds.members]
