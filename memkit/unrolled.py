"""Differentiating a loss through a recorded SGD run (reverse mode through the unrolled training,
after Maclaurin et al. 2015): the machinery of notebook 02's loss sensitivity (:mod:`memkit.sensitivity`).

:func:`record_sgd` trains S seeds as one :class:`memkit.training.Ensemble`
with plain mini-batch SGD and keeps every θ_s and every mini-batch. :func:`input_gradients`
then runs one reverse sweep s = T … 1 over the recorded run (reverse-mode differentiation of the
unrolled SGD, checkpointed at every step: each update is re-linearised from the stored θ_{s−1},
so memory grows with the number of steps only through the stored weights). The sweep carries one
adjoint ∂L_t^c/∂θ_s for every evaluation time t ≥ s of a grid and every loss component c at once
(``torch.vmap`` over adjoints and over seeds), and adds each update's derivative with respect to its
mini-batch inputs into ∂L_t^c/∂x. The cost is about (number of steps) × (grid size) vector-Hessian
products; evaluating every step is possible but a grid of times is what the notebook uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, jacrev, vjp

from memkit import training

Params = dict[str, torch.Tensor]


@dataclass
class Recording:
    """An SGD run of S seeds, recorded so that it can be differentiated through.

    Attributes:
        ensemble: the trained :class:`memkit.training.Ensemble` (its weights are θ_T).
        params: name → ``(T + 1, S, *shape)``: θ_s of every member after s = 0 … T updates.
        batches: T tensors ``(S, B_s)`` int64: the training examples of update s (``batches[s-1]``),
            member by member.
        lr: the learning rate η of the updates θ_s = θ_{s−1} − η ∇_θ ℓ_{B_s}(θ_{s−1}).
    """

    ensemble: training.Ensemble
    params: Params
    batches: list[torch.Tensor]
    lr: float

    @property
    def n_steps(self) -> int:
        """T, the number of SGD updates."""
        return len(self.batches)

    @property
    def n_seeds(self) -> int:
        """S, the number of seeds."""
        return len(self.ensemble)

    def at(self, t: int) -> Params:
        """θ_t of every member: name → ``(S, *shape)``."""
        if not 0 <= t <= self.n_steps:
            raise ValueError(f"step t={t} is outside the recorded run 0..{self.n_steps}")
        return {k: v[t] for k, v in self.params.items()}

    @torch.no_grad()
    def logits(self, t: int, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(S, N, K)`` of every member after t updates on inputs ``x`` ``(N, *input_shape)``."""
        base = self.ensemble.base  # the weightless copy of the architecture
        call = torch.vmap(lambda p, b: functional_call(base, (p, b), (x.to(self.ensemble.device),)))
        return call(self.at(t), self.ensemble.buffers)


def record_sgd(
    factory: training.Factory,
    x: torch.Tensor,
    y: torch.Tensor,
    sgd: training.SGD,
    *,
    n_seeds: int,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> Recording:
    """Train ``n_seeds`` seeds with plain mini-batch SGD (``sgd`` without momentum, weight decay,
    schedule or augmentation: the updates the unrolled derivative follows) and record the run:
    θ_s after every update and every mini-batch.

    The training is :func:`memkit.training.fit` on a fresh :class:`memkit.training.Ensemble` built
    from ``factory`` and ``seed``, so member i's initialisation and data order are those of
    ``member_seeds(seed, n_seeds)[i]``, as in :func:`memkit.training.train_seeds`.
    ``x``: ``(N, *input_shape)``; ``y``: ``(N,)``.
    Memory: (T + 1)·S·P floats for P weights per model, T = epochs·⌈N / batch_size⌉.
    """
    plain = training.SGD(lr=sgd.lr, batch_size=sgd.batch_size, epochs=sgd.epochs)
    if sgd != plain or isinstance(sgd.lr, tuple):
        raise ValueError(
            f"{sgd}: the unrolled derivative follows plain SGD; use one float lr and leave momentum, "
            "weight_decay, schedule, augment and autocast at their defaults"
        )
    ens = training.Ensemble(factory, n_seeds, seed=seed, device=device)
    snapshots: list[Params] = []
    batches: list[torch.Tensor] = []

    def keep(e: training.Ensemble, step: training.Step) -> None:
        snapshots.append({k: v.detach().clone() for k, v in e.params.items()})
        if step.batch is not None:
            batches.append(step.batch)

    training.fit(ens, x, y, sgd, callback=keep)
    params = {k: torch.stack([s[k] for s in snapshots]) for k in snapshots[0]}
    return Recording(ens, params, batches, sgd.lr)


def eval_steps(n_steps: int, n_points: int) -> list[int]:
    """``n_points`` evaluation times t spread evenly over 1 … T (T = ``n_steps``), ending at T;
    all of 1 … T when ``n_points`` ≥ T."""
    if n_steps < 1 or n_points < 1:
        raise ValueError(f"n_steps={n_steps} and n_points={n_points} must be positive")
    n = min(n_points, n_steps)
    return sorted({round(t) for t in np.linspace(n_steps / n, n_steps, n)})


def input_gradients(
    traj: Recording,
    x: torch.Tensor,
    y: torch.Tensor,
    times: Sequence[int],
    weights: torch.Tensor | None = None,
    *,
    through_training: bool = True,
) -> torch.Tensor:
    """∂L_t^c/∂x_n for every evaluation time t, loss component c and training example n.

    L_t^c = Σ_n W[c, n] ℓ(f_{θ_t}(x_n), y_n) with ``weights`` W ``(C, N)`` (default: one component,
    the mean training loss L_t, W = 1/N; :func:`memkit.sensitivity.class_weights` gives the class terms L_t(y=i)).
    With ``through_training`` the derivative runs through the recorded SGD updates (the paper's
    unrolled derivative); without, θ_t is held fixed (the plain input gradient).

    Args:
        traj: the recorded run (:func:`record_sgd`), trained on ``x``, ``y``.
        x, y: the training set the run used, ``(N, *input_shape)`` and ``(N,)``.
        times: evaluation steps t in 0 … T, e.g. :func:`eval_steps` (sorted, repeats dropped).

    Returns:
        ``(S, G, C, N, *input_shape)`` in ``x``'s dtype, on the run's device, G the number of distinct
        times. Memory: that many floats (S·G·C·N·D), e.g. 5·10·10·1000·196 ≈ 100 M (0.4 GB) for the
        per-class terms of the paper's 14×14 MNIST on 10 evaluation steps.

    Raises:
        FloatingPointError: the derivative overflowed (SGD chaotic over the horizon: lower ``lr``).
    """
    times = sorted({int(t) for t in times})
    if not times or times[0] < 0 or times[-1] > traj.n_steps:
        raise ValueError(f"times must lie in 0..{traj.n_steps} (the recorded steps); got {times[:3]}…{times[-3:]}")
    ens, dev = traj.ensemble, traj.ensemble.device
    x, y = x.to(dev), y.to(dev)
    w = (torch.full((1, len(x)), 1 / len(x)) if weights is None else weights).to(dev, x.dtype)
    if w.ndim != 2 or w.shape[1] != len(x):
        raise ValueError(f"weights must be (C, N) = (C, {len(x)}); got {tuple(w.shape)}")
    base, lr, buffers = ens.base, traj.lr, ens.buffers
    n_comp, n_grid, n_seeds = w.shape[0], len(times), traj.n_seeds

    def losses(p: Params, b: Params, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(base, (p, b), (xs,)), ys, reduction="none")

    def components(p: Params, b: Params, xs: torch.Tensor) -> torch.Tensor:  # L_t^c, (C,)
        return w @ losses(p, b, xs, y)

    def update(p: Params, b: Params, xb: torch.Tensor, yb: torch.Tensor) -> Params:  # θ_s from θ_{s−1}
        g = grad(lambda q: losses(q, b, xb, yb).mean())(p)
        return {k: p[k] - lr * g[k] for k in p}

    def update_vjp(
        p: Params, b: Params, xb: torch.Tensor, yb: torch.Tensor, cot: Params
    ) -> tuple[Params, torch.Tensor]:
        pull = vjp(lambda q, xq: update(q, b, xq, yb), p, xb)[1]  # vjp without has_aux: (output, pullback)
        return torch.vmap(pull)(cot)  # (dθ_{s−1}: (M, *shape), dx_B: (M, B, *input_shape))

    direct = torch.vmap(jacrev(components, argnums=(0, 2)), in_dims=(0, 0, None))
    backward = torch.vmap(update_vjp)
    # out[i, n, k·C + c] = ∂L_{t_k}^c/∂x_n for member i; layout (S, N, M, …): a mini-batch is one index_put_
    out = x.new_zeros(n_seeds, len(x), n_grid * n_comp, *x.shape[1:])
    adj = {k: v.new_zeros(n_seeds, n_grid * n_comp, *v.shape[2:]) for k, v in traj.params.items()}
    rows = torch.arange(n_seeds, device=dev)[:, None]
    for s in range(times[-1], -1, -1):  # s: θ_s, the weights after s updates
        first = next(k for k, t in enumerate(times) if t >= s) * n_comp  # rows with t_k ≥ s are live
        if s in times:  # the direct term of L_s: ∂L_s^c/∂θ_s and ∂L_s^c/∂x at fixed θ_s
            k = times.index(s) * n_comp
            d_theta, d_x = direct(traj.at(s), buffers, x)
            out[:, :, k : k + n_comp] += d_x.transpose(1, 2)
            for name in adj:
                adj[name][:, k : k + n_comp] += d_theta[name]
        if s == 0 or not through_training:
            continue
        idx = traj.batches[s - 1]
        live = {name: a[:, first:] for name, a in adj.items()}
        d_theta, d_xb = backward(traj.at(s - 1), buffers, x[idx], y[idx], live)
        for name in adj:
            adj[name][:, first:] = d_theta[name]
        out[:, :, first:].index_put_((rows.expand_as(idx), idx), d_xb.transpose(1, 2), accumulate=True)
    if not bool(torch.isfinite(out).all()):
        raise FloatingPointError(
            f"the derivative through {times[-1]} SGD steps overflowed: with lr={lr} the unrolled training "
            "is chaotic over this horizon (small changes grow step after step). Lower lr or the number of "
            "epochs, or evaluate fewer steps (times)."
        )
    return out.unflatten(2, (n_grid, n_comp)).transpose(1, 2).transpose(2, 3)
