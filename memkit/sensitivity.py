"""Loss sensitivity through training, its Gini coefficient, and the per-class matrix
(notebook 02; Arpit et al. 2017, §3.2, Figs. 3–4).

**The paper's quantity.** L_t is the training loss after t SGD updates,
L_t = (1/N) Σ_n ℓ(f_{θ_t}(x_n), y_n), and x a training example. The loss sensitivity of x at step t is

    g_x^t = ‖∂L_t/∂x‖₁,

where the derivative is taken *through the unrolled training* (after Maclaurin et al. 2015): x
changes L_t directly, through its own term ℓ(f_{θ_t}(x), y), and through θ_t, since every SGD
update θ_s = θ_{s−1} − η ∇_θ ℓ_{B_s}(θ_{s−1}) whose mini-batch B_s held x moved the weights a little
differently. ḡ_x = (1/T) Σ_t g_x^t averages it over the steps; its Gini coefficient over the
training examples measures how unequally the examples drive the loss (:func:`gini`).

**The plain input gradient** (Gu & Tresp's G(x), up to the factor 1/N) holds θ_t fixed:
‖∂L_t/∂x‖₁ at fixed θ_t = (1/N) ‖∂ℓ(f_{θ_t}(x), y)/∂x‖₁. It sees only the direct term, so the
part of the loss that belongs to class i does not depend on examples of other classes at all.

**Per class** (Fig. 4): with L_t(y=i) = (1/N) Σ_{n: y_n=i} ℓ_n(θ_t), the part of L_t from class-i
examples, ḡ_{i,j} = E_{x of class j} (1/T) Σ_t ‖∂L_t(y=i)/∂x‖₁: how much the training examples of
class j move the loss on class i (:func:`class_matrix`). Through the unrolled training it has
off-diagonal mass (examples of one class shape the features another class uses); with the plain
input gradient it is exactly diagonal.

**How it is computed.** :func:`record_sgd` trains S seeds as one :class:`memkit.training.Ensemble`
with plain mini-batch SGD and keeps every θ_s and every mini-batch. :func:`unrolled_input_gradients`
then runs one reverse sweep s = T … 1 over the recorded run (reverse-mode differentiation of the
unrolled SGD, checkpointed at every step: each update is re-linearised from the stored θ_{s−1},
so memory grows with the number of steps only through the stored weights). The sweep carries one
adjoint ∂L_t^c/∂θ_s for every evaluation time t ≥ s of a grid and every loss component c at once
(``torch.vmap`` over adjoints and over seeds), and adds each update's derivative with respect to its
mini-batch inputs into ∂L_t^c/∂x. The cost is about (number of steps) × (grid size) vector-Hessian
products; evaluating every step is possible but a grid of times is what the notebook uses.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, jacrev, vjp

from memkit import data, figures, training
from memkit.device import pick_device
from memkit.models import mlp

Params = dict[str, torch.Tensor]


def gini(values: torch.Tensor | np.ndarray, dim: int = -1) -> torch.Tensor:
    """The Gini coefficient of non-negative ``values`` along ``dim``.

    G = Σ_a Σ_b |v_a − v_b| / (2 n² v̄), computed from the sorted values v_(1) ≤ … ≤ v_(n) as
    G = Σ_i (2i − n − 1) v_(i) / (n Σ_i v_i). 0 when all values are equal, (n − 1)/n when one value
    out of n carries everything; invariant to scaling and to the order of the values. NaN where all
    values are zero. Returns ``values``' shape without ``dim``, float64.
    """
    v = torch.as_tensor(values, dtype=torch.float64).movedim(dim, -1)
    if v.shape[-1] == 0:
        raise ValueError("gini needs at least one value along dim")
    if bool((v < 0).any()):
        raise ValueError("gini is defined for non-negative values (e.g. norms of gradients); got a negative one")
    n = v.shape[-1]
    rank = torch.arange(1, n + 1, dtype=v.dtype, device=v.device)
    sorted_v = v.sort(dim=-1).values
    return ((2 * rank - n - 1) * sorted_v).sum(-1) / (n * v.sum(-1))


@dataclass
class Trajectory:
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
    def n_models(self) -> int:
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


def record_sgd(factory: training.Factory, x: torch.Tensor, y: torch.Tensor, sgd: training.SGD, *,
               n_seeds: int, seed: int = 0, device: str | torch.device | None = None) -> Trajectory:
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
        raise ValueError(f"{sgd}: the unrolled derivative follows plain SGD; use one float lr and leave momentum, "
                         "weight_decay, schedule, augment and autocast at their defaults")
    ens = training.Ensemble(factory, n_seeds, seed=seed, device=device)
    snapshots: list[Params] = []
    batches: list[torch.Tensor] = []

    def keep(e: training.Ensemble, step: training.Step) -> None:
        snapshots.append({k: v.detach().clone() for k, v in e.params.items()})
        if step.batch is not None:
            batches.append(step.batch)

    training.fit(ens, x, y, sgd, callback=keep)
    params = {k: torch.stack([s[k] for s in snapshots]) for k in snapshots[0]}
    return Trajectory(ens, params, batches, sgd.lr)


def step_grid(n_steps: int, n_points: int) -> list[int]:
    """``n_points`` evaluation times t spread evenly over 1 … T (T = ``n_steps``), ending at T;
    all of 1 … T when ``n_points`` ≥ T."""
    if n_steps < 1 or n_points < 1:
        raise ValueError(f"n_steps={n_steps} and n_points={n_points} must be positive")
    return sorted({int(round(t)) for t in np.linspace(n_steps / min(n_points, n_steps), n_steps, min(n_points, n_steps))})


def class_weights(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Weights ``(K, N)`` that split L_t into its class terms: W[i, n] = [y_n = i] / N, so that
    L_t(y=i) = Σ_n W[i, n] ℓ_n(θ_t) and Σ_i L_t(y=i) = L_t."""
    return F.one_hot(y, n_classes).T.to(torch.float32) / len(y)


def unrolled_input_gradients(traj: Trajectory, x: torch.Tensor, y: torch.Tensor, times: Sequence[int],
                             weights: torch.Tensor | None = None, *,
                             through_training: bool = True) -> torch.Tensor:
    """∂L_t^c/∂x_n for every evaluation time t, loss component c and training example n.

    L_t^c = Σ_n W[c, n] ℓ(f_{θ_t}(x_n), y_n) with ``weights`` W ``(C, N)`` (default: one component,
    the mean training loss L_t, W = 1/N; :func:`class_weights` gives the class terms L_t(y=i)).
    With ``through_training`` the derivative runs through the recorded SGD updates (the paper's
    unrolled derivative); without, θ_t is held fixed (the plain input gradient).

    Args:
        traj: the recorded run (:func:`record_sgd`), trained on ``x``, ``y``.
        x, y: the training set the run used, ``(N, *input_shape)`` and ``(N,)``.
        times: evaluation steps t in 0 … T, e.g. :func:`step_grid` (sorted, repeats dropped).

    Returns:
        ``(S, G, C, N, *input_shape)`` in ``x``'s dtype, on the run's device, G the number of distinct
        times. Memory: that many floats (S·G·C·N·D), e.g. 5·10·10·1000·196 ≈ 100 M (0.4 GB) for the
        per-class terms of the paper's 14×14 MNIST on 10 evaluation steps.

    Raises:
        FloatingPointError: the derivative overflowed (SGD chaotic over the horizon: lower ``lr``).
    """
    times = sorted(set(int(t) for t in times))
    if not times or times[0] < 0 or times[-1] > traj.n_steps:
        raise ValueError(f"times must lie in 0..{traj.n_steps} (the recorded steps); got {times[:3]}…{times[-3:]}")
    ens, dev = traj.ensemble, traj.ensemble.device
    x, y = x.to(dev), y.to(dev)
    w = (torch.full((1, len(x)), 1 / len(x)) if weights is None else weights).to(dev, x.dtype)
    if w.ndim != 2 or w.shape[1] != len(x):
        raise ValueError(f"weights must be (C, N) = (C, {len(x)}); got {tuple(w.shape)}")
    base, lr, buffers = ens.base, traj.lr, ens.buffers
    n_comp, n_grid, n_models = w.shape[0], len(times), traj.n_models

    def losses(p: Params, b: Params, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(base, (p, b), (xs,)), ys, reduction="none")

    def components(p: Params, b: Params, xs: torch.Tensor) -> torch.Tensor:  # L_t^c, (C,)
        return w @ losses(p, b, xs, y)

    def update(p: Params, b: Params, xb: torch.Tensor, yb: torch.Tensor) -> Params:  # θ_s from θ_{s−1}
        g = grad(lambda q: losses(q, b, xb, yb).mean())(p)
        return {k: p[k] - lr * g[k] for k in p}

    def update_vjp(p: Params, b: Params, xb: torch.Tensor, yb: torch.Tensor, cot: Params):
        _, pull = vjp(lambda q, xq: update(q, b, xq, yb), p, xb)
        return torch.vmap(pull)(cot)  # (dθ_{s−1}: (M, *shape), dx_B: (M, B, *input_shape))

    direct = torch.vmap(jacrev(components, argnums=(0, 2)), in_dims=(0, 0, None))
    backward = torch.vmap(update_vjp)
    # out[i, n, k·C + c] = ∂L_{t_k}^c/∂x_n for member i; layout (S, N, M, …): a mini-batch is one index_put_
    out = x.new_zeros(n_models, len(x), n_grid * n_comp, *x.shape[1:])
    adj = {k: v.new_zeros(n_models, n_grid * n_comp, *v.shape[2:]) for k, v in traj.params.items()}
    rows = torch.arange(n_models, device=dev)[:, None]
    for s in range(times[-1], -1, -1):  # s: θ_s, the weights after s updates
        first = next(k for k, t in enumerate(times) if t >= s) * n_comp  # rows with t_k ≥ s are live
        if s in times:  # the direct term of L_s: ∂L_s^c/∂θ_s and ∂L_s^c/∂x at fixed θ_s
            k = times.index(s) * n_comp
            d_theta, d_x = direct(traj.at(s), buffers, x)
            out[:, :, k:k + n_comp] += d_x.transpose(1, 2)
            for name in adj:
                adj[name][:, k:k + n_comp] += d_theta[name]
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
            "epochs, or evaluate fewer steps (times).")
    return out.unflatten(2, (n_grid, n_comp)).transpose(1, 2).transpose(2, 3)


def _norm(g: torch.Tensor, n_input_dims: int, ord: float) -> torch.Tensor:
    return torch.linalg.vector_norm(g.flatten(-n_input_dims), ord=ord, dim=-1)


def loss_sensitivity(traj: Trajectory, x: torch.Tensor, y: torch.Tensor, times: Sequence[int], *,
                     ord: float = 1) -> torch.Tensor:
    """The paper's loss sensitivity g_x^t = ‖∂L_t/∂x‖ through the unrolled training, ``(S, G, N)``.

    ``times``: the evaluation steps (G of them); ``ord``: the norm (the paper's ℓ1; ℓ2 and ℓ∞ "gave
    very similar results"). See :func:`unrolled_input_gradients` for the arguments and the cost.
    """
    return _norm(unrolled_input_gradients(traj, x, y, times)[:, :, 0], x.ndim - 1, ord)


def input_gradient_sensitivity(traj: Trajectory, x: torch.Tensor, y: torch.Tensor, times: Sequence[int], *,
                               ord: float = 1) -> torch.Tensor:
    """The plain input gradient ‖∂L_t/∂x‖ with θ_t held fixed, = (1/N)‖∂ℓ(f_{θ_t}(x), y)/∂x‖
    (Gu & Tresp's G(x) divided by N), ``(S, G, N)``: the direct term of :func:`loss_sensitivity`."""
    g = unrolled_input_gradients(traj, x, y, times, through_training=False)[:, :, 0]
    return _norm(g, x.ndim - 1, ord)


def per_class_loss_sensitivity(traj: Trajectory, x: torch.Tensor, y: torch.Tensor, times: Sequence[int],
                               n_classes: int, *, through_training: bool = True,
                               ord: float = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """‖∂L_t(y=i)/∂x_n‖ for every class term i, and ‖∂L_t/∂x_n‖, from one sweep.

    Returns ``(per_class, total)``: ``(S, G, K, N)`` and ``(S, G, N)``; since L_t = Σ_i L_t(y=i),
    ``total`` is the norm of the summed class gradients (equal to :func:`loss_sensitivity`, or
    :func:`input_gradient_sensitivity` without ``through_training``).
    """
    g = unrolled_input_gradients(traj, x, y, times, class_weights(y, n_classes), through_training=through_training)
    return _norm(g, x.ndim - 1, ord), _norm(g.sum(2), x.ndim - 1, ord)


def running_mean(g: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """ḡ as training progresses: the mean of g^t over the evaluation times up to each one,
    along ``dim`` (the grid axis of :func:`loss_sensitivity`'s ``(S, G, N)``)."""
    dim %= g.ndim
    counts = torch.arange(1, g.shape[dim] + 1, device=g.device, dtype=g.dtype)
    return g.cumsum(dim) / counts.view(-1, *[1] * (g.ndim - dim - 1))


def class_matrix(per_class: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Fig. 4's matrix ḡ_{i,j} = E_{x of class j} ḡ_x(L(y=i)): ``per_class`` ``(..., K, N)`` (already
    averaged over time, e.g. ``per_class.mean(1)``) → ``(..., K, K)``, row i the loss's class,
    column j the examples' class."""
    onehot = F.one_hot(y.to(per_class.device), n_classes).to(per_class.dtype)  # (N, K)
    counts = onehot.sum(0)
    if bool((counts == 0).any()):
        raise ValueError(f"class(es) {torch.nonzero(counts == 0).flatten().tolist()} have no training example")
    return per_class @ onehot / counts


def off_diagonal_share(matrix: torch.Tensor) -> torch.Tensor:
    """The share of a per-class matrix's total off its diagonal, Σ_{i≠j} ḡ_{i,j} / Σ_{i,j} ḡ_{i,j},
    ``(..., K, K)`` → ``(...)``: 0 for the plain input gradient, larger when examples of one class
    move the loss on others (shared patterns)."""
    eye = torch.eye(matrix.shape[-1], dtype=torch.bool, device=matrix.device)
    return matrix.masked_fill(eye, 0).sum((-2, -1)) / matrix.sum((-2, -1))


@dataclass
class SensitivityRun:
    """Loss sensitivity of S seeds trained on one training set, at G evaluation steps.

    Attributes:
        times: ``(G,)`` the evaluation steps t (SGD updates done).
        epochs: ``(G,)`` the same in epochs (t / updates per epoch).
        g: ``(S, G, N)`` the paper's g_x^t = ‖∂L_t/∂x‖₁ through the unrolled training.
        g_plain: ``(S, G, N)`` the plain input gradient ‖∂L_t/∂x‖₁ at fixed θ_t.
        accuracy: ``(S, G)`` training accuracy at each evaluation step.
        class_matrix, class_matrix_plain: ``(S, G_c, K, K)`` Fig. 4's matrix of ‖∂L_t(y=i)/∂x‖₁
            averaged over the examples x of class j, through the training and plain, at the steps
            ``class_times``; ``.mean(1)`` is ḡ_{i,j}. ``None`` if not asked for.
        class_times: ``(G_c,)`` the evaluation steps of the per-class matrices.
    """

    times: torch.Tensor
    epochs: torch.Tensor
    g: torch.Tensor
    g_plain: torch.Tensor
    accuracy: torch.Tensor
    class_matrix: torch.Tensor | None = None
    class_matrix_plain: torch.Tensor | None = None
    class_times: torch.Tensor | None = None

    def gini(self, plain: bool = False) -> torch.Tensor:
        """``(S, G)``: the Gini coefficient over examples of ḡ_x averaged up to each evaluation step
        (Fig. 3's curve), of the unrolled sensitivity or, with ``plain``, of the input gradient."""
        return gini(running_mean(self.g_plain if plain else self.g))


def measure(x: torch.Tensor, y: torch.Tensor, n_classes: int, *, widths: Sequence[int], n_seeds: int,
            sgd: training.SGD, n_times: int, n_times_class: int = 0, seed: int = 0,
            device: str | torch.device | None = None) -> SensitivityRun:
    """Train S = ``n_seeds`` seeds of a ReLU MLP (``widths``) with plain mini-batch ``sgd`` on ``(x, y)`` and
    measure its loss sensitivity on ``n_times`` evaluation steps (:func:`step_grid`), unrolled and
    plain; with ``n_times_class`` > 0 also the per-class matrices on that many steps.

    ``y`` are class labels in 0 … K−1 (K = ``n_classes``); the paper's "as many classes as
    examples" is ``y = torch.arange(N)``, ``n_classes = N``. On the CPU it runs single-threaded
    (:func:`single_threaded`).
    """
    device = pick_device(device)
    with single_threaded(device):
        traj = record_sgd(lambda: mlp(x.shape[1:], widths, n_classes), x, y, sgd, n_seeds=n_seeds, seed=seed,
                          device=device)
        times = step_grid(traj.n_steps, n_times)
        x, y = x.to(device), y.to(device)
        acc = torch.stack([(traj.logits(t, x).argmax(-1) == y).float().mean(1) for t in times], 1)
        run = SensitivityRun(torch.tensor(times), torch.tensor(times) * sgd.epochs / traj.n_steps,
                             loss_sensitivity(traj, x, y, times).cpu(),
                             input_gradient_sensitivity(traj, x, y, times).cpu(), acc.cpu())
        if n_times_class:
            class_times = step_grid(traj.n_steps, n_times_class)
            run.class_times = torch.tensor(class_times)
            run.class_matrix, run.class_matrix_plain = (
                class_matrix(per_class_loss_sensitivity(traj, x, y, class_times, n_classes,
                                                        through_training=unrolled)[0], y, n_classes).cpu()
                for unrolled in (True, False))
    return run


@contextmanager
def single_threaded(device: torch.device) -> Iterator[None]:
    """On the CPU, run the block with one intra-op thread and restore the setting afterwards.

    The model is tiny (2×16 units): its operations are too small to gain from several threads, and
    on a busy machine the threads waiting for each other made the reverse sweep up to 10× slower.
    """
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def off_diagonal_structure(matrix: torch.Tensor) -> torch.Tensor:
    """How unevenly the cross-class sensitivity is spread over the class pairs: the Gini coefficient
    of the off-diagonal entries ḡ_{i,j} / ḡ_{i,i} (each relative to its row's diagonal), ``(..., K, K)``
    → ``(...)``. Near 0 when every class moves every other class's loss alike (no shared patterns,
    as for noise); large when some class pairs share far more than others (e.g. 4 and 9)."""
    eye = torch.eye(matrix.shape[-1], dtype=torch.bool, device=matrix.device)
    relative = matrix / matrix.diagonal(dim1=-2, dim2=-1)[..., :, None]
    return gini(relative[..., ~eye])


def plot_gini(ax, runs: dict[data.Kind | str, SensitivityRun], plain: bool = True) -> None:
    """Fig. 3: the Gini coefficient of ḡ over examples as training progresses, one line per kind of
    data (a :class:`memkit.data.Kind` or its label; mean over seeds, band: min–max), against epochs;
    with ``plain`` also the plain input gradient's (dashed, mean over seeds)."""
    for kind, run in runs.items():
        color, ep = figures.kind_color(kind), run.epochs.numpy()
        figures.band(ax, ep, run.gini().numpy(), color, f"{kind}")
        if plain:
            ax.plot(ep, run.gini(plain=True).numpy().mean(0), color=color, lw=1, ls="--",
                    label=f"{kind} (plain gradient)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("Gini coefficient of ḡ over examples")


def plot_class_matrix(ax, matrix: torch.Tensor, norm, title: str = "") -> object:
    """Fig. 4: one per-class matrix ``(K, K)`` as a heatmap with colour scale ``norm`` (e.g.
    ``matplotlib.colors.LogNorm``); zeros are left blank. Returns the image for a colour bar."""
    m = np.ma.masked_less_equal(np.asarray(matrix, dtype=float), 0)
    im = ax.imshow(m, norm=norm, cmap="viridis")
    k = matrix.shape[-1]
    if k <= 10:
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
    ax.set_xlabel("class j of the training examples x")
    ax.set_ylabel("class i of the loss L(y=i)")
    ax.set_title(title, fontsize=9)
    ax.grid(False)
    return im
