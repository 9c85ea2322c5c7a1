"""Train many small models as one batched computation.

An :class:`Ensemble` holds S copies of one architecture with their parameters (and buffers, e.g.
the rates of noise layers) stacked along a leading axis of size S (``torch.func.stack_module_state``)
and runs them with ``torch.vmap(torch.func.functional_call)``: one forward and one backward pass
per step for all S models, with the data kept as tensors on the device. Member ``i`` has its own
initialisation and its own data order, both drawn from ``ensemble.seeds[i]``;
:func:`memkit.training.train_single` trains one plain ``nn.Module`` from such a seed with
``torch.optim.SGD`` and gives the same model (to float tolerance). Most code calls
:func:`memkit.training.train_seeds`, which picks this path when the model allows it.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state
from tqdm.auto import tqdm

from memkit.device import pick_device
from memkit.models import _GOLDEN, Dropout, GaussianNoise, _mix, normal, set_noise_step, uniform
from memkit.sgd import SGD, Factory, Step, augment_batch, data_orders, init_model, member_seeds, steps_per_epoch


class Ensemble:
    """S models of one architecture with stacked weights, trained and evaluated as one.

    Args:
        factory: builds one model (e.g. ``lambda: memkit.models.mlp((1, 8, 8), [128], 10)``), or a
            sequence of S factories building the same parameter shapes (one per member, e.g. each
            with its own dropout rate: rates are buffers, so they stack).
        n_models: S, the number of members (``None`` with a sequence of factories: its length).
        seed: base seed; member ``i`` uses ``member_seeds(seed, S)[i]`` for its initialisation
            and its data order.
        device: ``None`` picks CUDA, then MPS, then CPU.

    Attributes: ``params`` and ``buffers`` (name → ``(S, ...)`` stacked tensors), ``seeds``,
    ``active`` (``(S,)`` bool: members that SGD updates), ``base`` (a weightless "meta" copy of
    the architecture, for ``torch.func.functional_call`` with other weights; in eval mode except
    during an update, so noise layers are off when the ensemble is evaluated).
    """

    def __init__(
        self,
        factory: Factory | Sequence[Factory],
        n_models: int | None = None,
        seed: int = 0,
        device: str | torch.device | None = None,
    ) -> None:
        factories = list(factory) if isinstance(factory, Sequence) else None
        if factories is not None and n_models not in (None, len(factories)):
            raise ValueError(
                f"n_models={n_models} but {len(factories)} factories: pass n_models=None "
                "(one member per factory) or one factory"
            )
        n_models = len(factories) if factories is not None else n_models
        if n_models is None or n_models < 1:
            raise ValueError(f"n_models={n_models}: an ensemble needs at least one model")
        self.factories = factories or [cast(Factory, factory)] * n_models
        self.device = pick_device(device)
        self.seeds = member_seeds(seed, n_models)
        models = [init_model(f, s) for f, s in zip(self.factories, self.seeds, strict=True)]
        try:
            params, buffers = stack_module_state(models)
        except RuntimeError as err:
            raise ValueError(
                "the factories build models of different shapes; members of one Ensemble "
                "differ only in buffers such as dropout rates (build other shapes separately)"
            ) from err
        self.params = {k: v.detach().to(self.device).requires_grad_() for k, v in params.items()}
        self.buffers = {k: v.to(self.device) for k, v in buffers.items()}
        self.base = copy.deepcopy(models[0]).to("meta").eval()
        self.active = torch.ones(n_models, dtype=torch.bool, device=self.device)
        plan = mlp_plan(self.base)
        self._fast = None if plan is None else _FastMLP(plan, self.base)
        #: Whether this ensemble runs the batched-linear fast path (plain MLPs: ``baddbmm`` forward,
        #: explicit backward, ``torch._foreach`` update); set it False to use the generic vmap path.
        self.fast_path = self._fast is not None

    def __len__(self) -> int:
        return len(self.seeds)

    def _call(self, params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.base, (params, buffers), (x,))

    @contextlib.contextmanager
    def training_mode(self, step: int) -> Iterator[None]:
        """Run the members in training mode (noise layers on, drawing the numbers of update ``step``)."""
        set_noise_step(self.base, step)
        self.base.train()
        try:
            yield
        finally:
            self.base.eval()

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        """Logits ``(S, B, K)`` for per-member inputs ``xs`` of shape ``(S, B, *input_shape)``,
        differentiable with respect to the parameters and to ``xs`` (eval mode outside an update)."""
        if self.fast_path and self._fast is not None:
            return self._fast.forward(self.params, self.buffers, xs, train=self.base.training)
        return torch.vmap(self._call)(self.params, self.buffers, xs)

    @torch.no_grad()
    def logits(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Logits ``(S, N, K)`` of every member on the same inputs ``x`` ``(N, *input_shape)``."""
        x = x.to(self.device)
        if self.fast_path and self._fast is not None:  # chunks whose activations stay in the cache
            widest = max(p.shape[1] for n, p in self.params.items() if n.endswith("weight"))
            rows = max(1, min(batch_size, _CACHE_FLOATS // (len(self) * widest)))
            return torch.cat([self._fast.shared(self.params, xb) for xb in x.split(rows)], dim=1)
        call = torch.vmap(self._call, in_dims=(0, 0, None))
        return torch.cat([call(self.params, self.buffers, xb) for xb in x.split(batch_size)], dim=1)

    def predict(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Predicted classes ``(S, N)`` int64."""
        return self.logits(x, batch_size).argmax(-1)

    @torch.no_grad()
    def correct(
        self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024, data_index: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(S, N)`` bool: whether member ``s`` classifies example ``n`` correctly.

        With ``data_index`` (as in :func:`fit`) member ``s`` is scored on data set
        ``data_index[s]`` of ``x`` ``(D, N, *input_shape)``, ``y`` ``(D, N)``.
        """
        x, y = x.to(self.device), y.to(self.device)
        if data_index is None:
            return self.predict(x, batch_size) == y
        rows = data_rows(data_index, len(self), len(x)).to(self.device)[:, 0]  # (S,): one data set each
        return torch.cat(
            [
                self.forward(x[rows, i : i + batch_size]).argmax(-1) == y[rows, i : i + batch_size]
                for i in range(0, x.shape[1], batch_size)
            ],
            dim=1,
        )

    def accuracy(
        self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024, data_index: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(S,)`` float accuracy of each member on ``(x, y)``, in [0, 1] (``data_index``: see
        :meth:`correct`)."""
        return self.correct(x, y, batch_size, data_index).float().mean(1)

    def member(self, i: int) -> nn.Module:
        """Member ``i`` as a standalone ``nn.Module`` (a copy, on the ensemble's device)."""
        model = init_model(self.factories[i], self.seeds[i]).to(self.device)  # leaves torch's generator alone
        model.load_state_dict({k: v[i].detach() for k, v in (self.params | self.buffers).items()})
        return model

    @torch.no_grad()
    def _update(
        self,
        grads: list[torch.Tensor],
        lr: float | torch.Tensor,
        momentum: float,
        weight_decay: float | torch.Tensor,
        velocity: dict[str, torch.Tensor] | None,
    ) -> None:
        """torch.optim.SGD's update of every active member with ``torch._foreach`` ops (one kernel
        launch per op for all parameters); per-member values as ``(S, 1, ...)`` views."""
        names, params = list(self.params), list(self.params.values())

        def per_member(v: torch.Tensor) -> list[torch.Tensor]:
            return [v.view(-1, *[1] * (p.ndim - 1)) for p in params]

        if isinstance(weight_decay, torch.Tensor):
            torch._foreach_add_(grads, torch._foreach_mul(params, per_member(weight_decay)))
        elif weight_decay:
            torch._foreach_add_(grads, params, alpha=weight_decay)
        if momentum and velocity is not None:
            if all(n in velocity for n in names):
                bufs = [velocity[n] for n in names]
                torch._foreach_mul_(bufs, momentum)
                torch._foreach_add_(bufs, grads)
            else:
                bufs = [g.clone() for g in grads]
                velocity.update(zip(names, bufs, strict=True))
            grads = bufs
        if not bool(self.active.all()):
            grads = list(torch._foreach_mul(grads, per_member(self.active.to(params[0].dtype))))
        if isinstance(lr, torch.Tensor):
            torch._foreach_sub_(params, torch._foreach_mul(grads, per_member(lr)))
        else:
            torch._foreach_add_(params, grads, alpha=-lr)

    def sgd_step(
        self,
        xs: torch.Tensor,
        ys: torch.Tensor,
        lr: float | torch.Tensor,
        *,
        momentum: float = 0.0,
        weight_decay: float | torch.Tensor = 0.0,
        velocity: dict[str, torch.Tensor] | None = None,
        step: int = 0,
        autocast: bool = False,
    ) -> torch.Tensor:
        """One SGD update of every active member on its own mini-batch, in training mode.

        ``xs``: ``(S, B, *input_shape)``, ``ys``: ``(S, B)``; ``lr`` η and ``weight_decay`` λ: floats
        or ``(S,)`` tensors (one per member). The update is torch.optim.SGD's (dampening 0, no
        Nesterov): g ← ∇ℓ + λθ, v ← μv + g, θ ← θ − ηv, with ℓ the mean cross-entropy of the
        member's batch; ``velocity`` holds v between the updates of one training run (pass ``{}``
        at its start; required when ``momentum`` > 0). ``step`` numbers the update for the noise
        layers; ``autocast``: bfloat16 forward pass on CUDA. Inactive members (``self.active``
        False) keep their weights. Returns the ``(S,)`` batch losses before the update.
        """
        if momentum and velocity is None:
            raise ValueError(
                "momentum > 0 needs velocity: pass a dict (empty at the start of a run) that "
                "keeps the momentum between the updates of that run"
            )
        if self.fast_path and self._fast is not None and not (autocast and self.device.type == "cuda"):
            with self.training_mode(step), torch.no_grad():
                keep: list[torch.Tensor] = []
                logits = self._fast.forward(self.params, self.buffers, xs, train=True, keep=keep)
                losses, g = cross_entropy_and_grad(logits, ys)
                grads = list(self._fast.backward(self.params, keep, g).values())
        else:
            with (
                self.training_mode(step),
                torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=autocast and self.device.type == "cuda"),
            ):
                logits = self.forward(xs)
                losses = F.cross_entropy(logits.flatten(0, 1), ys.flatten(), reduction="none").view(ys.shape).mean(1)
            grads = list(torch.autograd.grad(losses.sum(), list(self.params.values())))
        self._update(grads, lr, momentum, weight_decay, velocity)
        return losses.detach()


def subset_rows(subsets: torch.Tensor, n_models: int, n: int) -> torch.Tensor:
    """``subsets`` checked: ``(S, M)`` int64 indices into ``n`` examples, one row per member."""
    subsets = torch.as_tensor(subsets, dtype=torch.int64)
    if subsets.ndim != 2 or len(subsets) != n_models or subsets.shape[1] < 1:
        raise ValueError(
            f"subsets has shape {tuple(subsets.shape)}; it needs one row of example indices per "
            f"member, shape ({n_models}, M) with M >= 1"
        )
    if not 0 <= int(subsets.min()) <= int(subsets.max()) < n:
        raise ValueError(f"subsets must index the {n} training examples: every entry in 0..{n - 1}")
    return subsets


def data_rows(data_index: torch.Tensor, n_models: int, n_sets: int) -> torch.Tensor:
    """``data_index`` checked and shaped ``(S, 1)`` for indexing ``(D, N, ...)`` data."""
    data_index = torch.as_tensor(data_index, dtype=torch.int64)
    if data_index.shape != (n_models,):
        raise ValueError(
            f"data_index has shape {tuple(data_index.shape)}; it needs one data-set index per "
            f"member, shape ({n_models},)"
        )
    if len(data_index) and not 0 <= int(data_index.min()) <= int(data_index.max()) < n_sets:
        raise ValueError(f"data_index must lie in 0..{n_sets - 1}: x holds {n_sets} data sets along its first axis")
    return data_index[:, None]


def _per_member(value: float | tuple[float, ...], factor: float, device: torch.device) -> float | torch.Tensor:
    """``value · factor``: a float, or for a per-member tuple an ``(S,)`` tensor (products taken in
    float64 and rounded once, as ``torch.optim.SGD`` rounds its learning rate)."""
    if not isinstance(value, tuple):
        return value * factor if factor != 1.0 else value
    return torch.tensor([v * factor for v in value], dtype=torch.float32, device=device)


def fit(
    ens: Ensemble,
    x: torch.Tensor,
    y: torch.Tensor,
    sgd: SGD,
    *,
    callback: Callable[[Ensemble, Step], bool | None] | None = None,
    hook: Callable[[Ensemble, Step, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
    progress: bool = False,
    desc: str | None = None,
    data_index: torch.Tensor | None = None,
    subsets: torch.Tensor | None = None,
) -> Step:
    """Train every member of ``ens`` with ``sgd`` on ``(x, y)`` for up to ``sgd.epochs`` epochs.

    Each member visits the ``N`` training examples in its own order every epoch, in mini-batches
    of ``sgd.batch_size`` (the last one smaller when it does not divide ``N``), with its own
    learning rate and weight decay when ``sgd`` gives one per member, the schedule's factor of
    the learning rate, and (``sgd.augment``) crops and flips from a generator seeded with the
    member's seed, as :func:`memkit.training.train_single` does. ``x``: ``(N, *input_shape)``;
    ``y``: ``(N,)`` int64; both are moved to the ensemble's device once. Momentum starts at 0
    (it belongs to this call). ``hook(ens, step, xb, yb) -> (xb, yb)`` sees each batch
    ``(S, B, ...)`` before its update and returns the batch to train on. ``callback(ens, step)``
    runs before the first update (``step.step == 0``) and after every update; returning ``True``
    stops training. Returns the last :class:`Step`.

    ``data_index`` (``(S,)`` int64) lets the members train on different data sets of the same
    size, e.g. one per noise level: ``x`` is then ``(D, N, *input_shape)``, ``y`` is ``(D, N)``,
    and member ``i`` trains on data set ``data_index[i]``.

    ``subsets`` (``(S, M)`` int64) lets member ``i`` train on the examples ``subsets[i]`` of
    ``(x, y)`` only (e.g. a random half, for held-out estimates): each epoch visits its M examples
    in the member's own order; ``step.batch`` holds indices into ``x``.
    """
    x, y = x.to(ens.device), y.to(ens.device)
    rows = None if data_index is None else data_rows(data_index, len(ens), len(x)).to(ens.device)
    n = len(x) if rows is None else x.shape[1]
    if subsets is not None:
        subsets = subset_rows(subsets, len(ens), n).to(ens.device)
        n = subsets.shape[1]
    per_epoch = steps_per_epoch(n, sgd.batch_size)
    total = sgd.epochs * per_epoch
    if sgd.n_members not in (None, len(ens)):
        raise ValueError(
            f"SGD gives per-member lr/weight_decay for {sgd.n_members} members but the ensemble has "
            f"{len(ens)}: give one value per member, or a float for all"
        )
    decay = _per_member(sgd.weight_decay, 1.0, ens.device)
    gens = [torch.Generator(device=ens.device).manual_seed(s) for s in ens.seeds] if sgd.augment else []
    velocity: dict[str, torch.Tensor] = {}
    state = Step(0, 0, False)
    if callback and callback(ens, state):
        return state
    orders = data_orders(n, ens.seeds)
    bar = tqdm(total=total, desc=desc, disable=not progress, leave=False)
    try:
        for epoch in range(sgd.epochs):
            order = next(orders).to(ens.device)
            if subsets is not None:
                order = subsets.gather(1, order)
            for b, idx in enumerate(order.split(sgd.batch_size, dim=1)):
                xb, yb = (x[idx], y[idx]) if rows is None else (x[rows, idx], y[rows, idx])
                if gens:
                    xb = torch.stack([augment_batch(xi, g) for xi, g in zip(xb, gens, strict=True)])
                if hook:
                    xb, yb = hook(ens, Step(state.step, state.epoch, False, idx), xb, yb)
                lr = _per_member(sgd.lr, sgd.lr_factor(state.step, total, per_epoch), ens.device)
                ens.sgd_step(
                    xb,
                    yb,
                    lr,
                    momentum=sgd.momentum,
                    weight_decay=decay,
                    velocity=velocity,
                    step=state.step,
                    autocast=sgd.autocast,
                )
                bar.update()
                last = b == per_epoch - 1
                state = Step(state.step + 1, epoch + last, last, idx)
                if callback and callback(ens, state):
                    return state
    finally:
        bar.close()
    return state


# ---------------------------------------------------------------------------------------------
# The batched-linear fast path for plain MLPs
# ---------------------------------------------------------------------------------------------

#: Floats of one layer's activations for all members that :meth:`Ensemble.logits` aims at per chunk
#: (4 MB): on a 2-core CPU, chunks of 1024 inputs (50 MB per layer) took twice as long.
_CACHE_FLOATS = 1 << 20

#: Modules the fast path runs itself; any other module sends the ensemble to the vmap path.
_FAST_MODULES = (nn.Flatten, nn.Linear, nn.ReLU, Dropout, GaussianNoise)


def mlp_plan(base: nn.Module) -> list[tuple[str, str]] | None:
    """The layers of a plain MLP as ``(kind, name)`` pairs (``kind`` in flatten, linear, relu,
    dropout, noise; ``name`` the module's name in the state dict), or ``None`` when ``base`` is not
    an ``nn.Sequential`` of Flatten (default dims), Linear, ReLU and memkit's noise layers only."""
    if type(base) is not nn.Sequential or not len(base):
        return None
    plan: list[tuple[str, str]] = []
    for name, m in base.named_children():
        if type(m) not in _FAST_MODULES or (type(m) is nn.Flatten and (m.start_dim, m.end_dim) != (1, -1)):
            return None
        if type(m) is nn.Flatten and any(kind == "linear" for kind, _ in plan):
            return None  # a flatten between linear layers: leave it to vmap
        plan.append(
            (
                {
                    nn.Flatten: "flatten",
                    nn.Linear: "linear",
                    nn.ReLU: "relu",
                    Dropout: "dropout",
                    GaussianNoise: "noise",
                }[type(m)],
                name,
            )
        )
    return plan if any(kind == "linear" for kind, _ in plan) else None


def _noise_bits(key: torch.Tensor, step: int, x: torch.Tensor) -> torch.Tensor:
    """:func:`memkit.models.counter_bits` for every member at once: ``key`` ``(S,)``, ``x`` ``(S, B, ...)``;
    member ``s`` gets exactly the bits its own layer draws for its ``(B, ...)`` input."""
    wrapped = (step * _GOLDEN + 2**63) % 2**64 - 2**63
    state = _mix(key + wrapped).view(-1, *[1] * (x.ndim - 1))
    per_member = x.shape[1:]
    index = torch.arange(1, per_member.numel() + 1, device=x.device, dtype=torch.int64).view(per_member)
    return _mix(state + index * _GOLDEN)


def cross_entropy_and_grad(logits: torch.Tensor, ys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each member's mean cross-entropy ℓ = mean_b [log Σ_k e^{z_bk} − z_{b,y_b}], ``(S,)``, and
    ∂ℓ/∂z = (softmax(z) − onehot(y)) / B, ``(S, B, K)``, from logits ``z`` ``(S, B, K)`` and labels
    ``(S, B)``: one max, one exp and one sum for both (torch's softmax over a last dimension of
    K = 10 took eight times as long on a CPU)."""
    z = logits - logits.amax(-1, keepdim=True)
    z_true = z.gather(-1, ys[..., None]).squeeze(-1)
    e = z.exp_()
    total = e.sum(-1, keepdim=True)
    losses = (total.squeeze(-1).log() - z_true).mean(1)
    g = e.div_(total)
    g.scatter_add_(-1, ys[..., None], torch.full_like(g[..., :1], -1.0)).div_(ys.shape[1])
    return losses, g


class _FastMLP:
    """Forward, backward and update of S stacked MLPs with batched matrix products (``baddbmm``).

    The training step writes its activations and gradients into tensors kept between steps
    (:meth:`_reused`): a fresh multi-megabyte tensor every step cost as much in page faults as the
    matrix product that filled it."""

    def __init__(self, plan: list[tuple[str, str]], base: nn.Module) -> None:
        self.plan, self.base = plan, base
        self.noise = {n: m for n, m in base.named_children() if isinstance(m, (Dropout, GaussianNoise))}
        self._kept: dict[tuple[str, tuple[int, ...]], torch.Tensor] = {}

    def _reused(self, name: str, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        """The tensor kept for ``name`` at ``shape`` (on ``like``'s device, in its dtype): made once."""
        key = (name, tuple(shape))
        t = self._kept.get(key)
        if t is None or t.device != like.device or t.dtype != like.dtype:
            t = self._kept[key] = torch.empty(key[1], device=like.device, dtype=like.dtype)
        return t

    def forward(
        self, params: dict, buffers: dict, xs: torch.Tensor, *, train: bool, keep: list | None = None
    ) -> torch.Tensor:
        """Logits ``(S, B, K)``; differentiable by autograd. With ``keep`` (a list), appends what
        :meth:`backward` needs (then call it under ``torch.no_grad``)."""
        h, owned = xs, False  # owned: h is this step's own tensor, free to change in place
        for kind, name in self.plan:
            if kind == "flatten":
                h = h.flatten(2)
            elif kind == "linear":
                w, b = params[f"{name}.weight"], params.get(f"{name}.bias")
                wt = w.transpose(1, 2)
                if keep is None:
                    h = torch.bmm(h, wt) if b is None else torch.baddbmm(b.unsqueeze(1), h, wt)
                else:
                    keep.append(h)
                    out = self._reused(f"{name}.out", (*h.shape[:2], w.shape[1]), h)
                    h = torch.bmm(h, wt, out=out)
                    if b is not None:  # added in place: baddbmm first copies the broadcast bias into out
                        h.add_(b.unsqueeze(1))
                    owned = True
            elif kind == "relu":
                h = h.relu_() if owned else torch.relu(h)
                if keep is not None:
                    keep.append(h)
            elif train:
                rate = buffers[f"{name}.rate"].view(-1, *[1] * (h.ndim - 1))
                bits = _noise_bits(buffers[f"{name}.key"], self.noise[name].step, h)
                if kind == "dropout":
                    kept = uniform(bits) >= rate
                    if keep is not None:
                        keep.append(kept / (1 - rate))
                    h = h * kept / (1 - rate)  # as Dropout.forward computes it
                else:
                    h = h + rate * normal(bits).to(h.dtype)
                owned = keep is not None
        return h

    def shared(self, params: dict, x: torch.Tensor) -> torch.Tensor:
        """Eval-mode logits ``(S, N, K)`` of every member on the same inputs ``x`` ``(N, *input_shape)``
        (noise layers are the identity): the first layer as one matrix product for all S members,
        ``(N, D) @ (D, S·H)``, rather than S products of an input copied S times."""
        h, first = x.flatten(1), True
        for kind, name in self.plan:
            if kind not in ("linear", "relu"):
                continue  # flatten: done; dropout and noise: off in eval mode
            if kind == "relu":
                h = torch.relu(h) if first else h.relu_()  # in place on this call's own activations only
                continue
            w, b = params[f"{name}.weight"], params.get(f"{name}.bias")
            if first:
                s, out, d = w.shape
                h = (h @ w.reshape(s * out, d).T).view(len(h), s, out).transpose(0, 1).contiguous()
                first = False
            else:
                h = torch.bmm(h, w.transpose(1, 2))
            if b is not None:
                h.add_(b.unsqueeze(1))
        return h

    def backward(self, params: dict, keep: list, g: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gradients of the loss for every parameter, from ``g`` = ∂loss/∂logits ``(S, B, K)``."""
        grads: dict[str, torch.Tensor] = {}
        first = next(i for i, (kind, _) in enumerate(self.plan) if kind == "linear")
        for i in range(len(self.plan) - 1, -1, -1):
            kind, name = self.plan[i]
            if kind == "linear":
                a, w = keep.pop(), params[f"{name}.weight"]
                grads[f"{name}.weight"] = torch.bmm(g.transpose(1, 2), a, out=self._reused(f"{name}.dw", w.shape, w))
                if f"{name}.bias" in params:
                    grads[f"{name}.bias"] = torch.sum(g, 1, out=self._reused(f"{name}.db", w.shape[:2], w))
                if i == first:
                    break
                g = torch.bmm(g, w, out=self._reused(f"{name}.dx", (*g.shape[:2], w.shape[2]), g))
            elif kind == "relu":  # in place: g is this step's own tensor
                g = torch.ops.aten.threshold_backward.grad_input(g, keep.pop(), 0, grad_input=g)
            elif kind == "dropout":
                g = g * keep.pop()
        return {k: grads[k] for k in params}
