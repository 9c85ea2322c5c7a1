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
from memkit.models import set_noise_step
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

    def __init__(self, factory: Factory | Sequence[Factory], n_models: int | None = None, seed: int = 0,
                 device: str | torch.device | None = None) -> None:
        factories = list(factory) if isinstance(factory, Sequence) else None
        if factories is not None and n_models not in (None, len(factories)):
            raise ValueError(f"n_models={n_models} but {len(factories)} factories: pass n_models=None "
                             "(one member per factory) or one factory")
        n_models = len(factories) if factories is not None else n_models
        if n_models is None or n_models < 1:
            raise ValueError(f"n_models={n_models}: an ensemble needs at least one model")
        self.factories = factories or [cast(Factory, factory)] * n_models
        self.device = pick_device(device)
        self.seeds = member_seeds(seed, n_models)
        models = [init_model(f, s) for f, s in zip(self.factories, self.seeds)]
        try:
            params, buffers = stack_module_state(models)
        except RuntimeError as err:
            raise ValueError("the factories build models of different shapes; members of one Ensemble "
                             "differ only in buffers such as dropout rates (build other shapes separately)") from err
        self.params = {k: v.detach().to(self.device).requires_grad_() for k, v in params.items()}
        self.buffers = {k: v.to(self.device) for k, v in buffers.items()}
        self.base = copy.deepcopy(models[0]).to("meta").eval()
        self.active = torch.ones(n_models, dtype=torch.bool, device=self.device)

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
        return torch.vmap(self._call)(self.params, self.buffers, xs)

    @torch.no_grad()
    def logits(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Logits ``(S, N, K)`` of every member on the same inputs ``x`` ``(N, *input_shape)``."""
        call = torch.vmap(self._call, in_dims=(0, 0, None))
        x = x.to(self.device)
        return torch.cat([call(self.params, self.buffers, xb) for xb in x.split(batch_size)], dim=1)

    def predict(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Predicted classes ``(S, N)`` int64."""
        return self.logits(x, batch_size).argmax(-1)

    @torch.no_grad()
    def correct(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024,
                data_index: torch.Tensor | None = None) -> torch.Tensor:
        """``(S, N)`` bool: whether member ``s`` classifies example ``n`` correctly.

        With ``data_index`` (as in :func:`fit`) member ``s`` is scored on data set
        ``data_index[s]`` of ``x`` ``(D, N, *input_shape)``, ``y`` ``(D, N)``.
        """
        x, y = x.to(self.device), y.to(self.device)
        if data_index is None:
            return self.predict(x, batch_size) == y
        rows = data_rows(data_index, len(self), len(x)).to(self.device)[:, 0]  # (S,): one data set each
        return torch.cat([self.forward(x[rows, i:i + batch_size]).argmax(-1) == y[rows, i:i + batch_size]
                          for i in range(0, x.shape[1], batch_size)], dim=1)

    def accuracy(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024,
                 data_index: torch.Tensor | None = None) -> torch.Tensor:
        """``(S,)`` float accuracy of each member on ``(x, y)``, in [0, 1] (``data_index``: see
        :meth:`correct`)."""
        return self.correct(x, y, batch_size, data_index).float().mean(1)

    def member(self, i: int) -> nn.Module:
        """Member ``i`` as a standalone ``nn.Module`` (a copy, on the ensemble's device)."""
        model = init_model(self.factories[i], self.seeds[i]).to(self.device)  # leaves torch's generator alone
        model.load_state_dict({k: v[i].detach() for k, v in (self.params | self.buffers).items()})
        return model

    def sgd_step(self, xs: torch.Tensor, ys: torch.Tensor, lr: float | torch.Tensor, *, momentum: float = 0.0,
                 weight_decay: float | torch.Tensor = 0.0, velocity: dict[str, torch.Tensor] | None = None,
                 step: int = 0, autocast: bool = False) -> torch.Tensor:
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
            raise ValueError("momentum > 0 needs velocity: pass a dict (empty at the start of a run) that "
                             "keeps the momentum between the updates of that run")
        with self.training_mode(step), torch.autocast(self.device.type, dtype=torch.bfloat16,
                                                       enabled=autocast and self.device.type == "cuda"):
            logits = self.forward(xs)
            losses = F.cross_entropy(logits.flatten(0, 1), ys.flatten(), reduction="none").view(ys.shape).mean(1)
        grads = torch.autograd.grad(losses.sum(), list(self.params.values()))
        frozen = not bool(self.active.all())
        with torch.no_grad():
            for (name, p), g in zip(self.params.items(), grads):
                shape = (-1, *[1] * (p.ndim - 1))
                if isinstance(weight_decay, torch.Tensor):
                    g = g + weight_decay.view(shape) * p
                elif weight_decay:
                    g = g.add(p, alpha=weight_decay)
                if momentum and velocity is not None:  # velocity is required with momentum (checked above)
                    buf = velocity.get(name)
                    g = velocity[name] = g.clone() if buf is None else buf.mul_(momentum).add_(g)
                if frozen:
                    g = g * self.active.view(shape)
                if isinstance(lr, torch.Tensor):
                    p.sub_(lr.view(shape) * g)
                else:
                    p.add_(g, alpha=-lr)
        return losses.detach()


def subset_rows(subsets: torch.Tensor, n_models: int, n: int) -> torch.Tensor:
    """``subsets`` checked: ``(S, M)`` int64 indices into ``n`` examples, one row per member."""
    subsets = torch.as_tensor(subsets, dtype=torch.int64)
    if subsets.ndim != 2 or len(subsets) != n_models or subsets.shape[1] < 1:
        raise ValueError(f"subsets has shape {tuple(subsets.shape)}; it needs one row of example indices per "
                         f"member, shape ({n_models}, M) with M >= 1")
    if not 0 <= int(subsets.min()) <= int(subsets.max()) < n:
        raise ValueError(f"subsets must index the {n} training examples: every entry in 0..{n - 1}")
    return subsets


def data_rows(data_index: torch.Tensor, n_models: int, n_sets: int) -> torch.Tensor:
    """``data_index`` checked and shaped ``(S, 1)`` for indexing ``(D, N, ...)`` data."""
    data_index = torch.as_tensor(data_index, dtype=torch.int64)
    if data_index.shape != (n_models,):
        raise ValueError(f"data_index has shape {tuple(data_index.shape)}; it needs one data-set index per "
                         f"member, shape ({n_models},)")
    if len(data_index) and not 0 <= int(data_index.min()) <= int(data_index.max()) < n_sets:
        raise ValueError(f"data_index must lie in 0..{n_sets - 1}: x holds {n_sets} data sets along its first axis")
    return data_index[:, None]


def _per_member(value: float | tuple[float, ...], factor: float, device: torch.device) -> float | torch.Tensor:
    """``value · factor``: a float, or for a per-member tuple an ``(S,)`` tensor (products taken in
    float64 and rounded once, as ``torch.optim.SGD`` rounds its learning rate)."""
    if not isinstance(value, tuple):
        return value * factor if factor != 1.0 else value
    return torch.tensor([v * factor for v in value], dtype=torch.float32, device=device)


def fit(ens: Ensemble, x: torch.Tensor, y: torch.Tensor, sgd: SGD, *,
        callback: Callable[[Ensemble, Step], bool | None] | None = None,
        hook: Callable[[Ensemble, Step, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
        progress: bool = False, desc: str | None = None, data_index: torch.Tensor | None = None,
        subsets: torch.Tensor | None = None) -> Step:
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
        raise ValueError(f"SGD gives per-member lr/weight_decay for {sgd.n_members} members but the ensemble has "
                         f"{len(ens)}: give one value per member, or a float for all")
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
                    xb = torch.stack([augment_batch(xi, g) for xi, g in zip(xb, gens)])
                if hook:
                    xb, yb = hook(ens, Step(state.step, state.epoch, False, idx), xb, yb)
                lr = _per_member(sgd.lr, sgd.lr_factor(state.step, total, per_epoch), ens.device)
                ens.sgd_step(xb, yb, lr, momentum=sgd.momentum, weight_decay=decay, velocity=velocity,
                             step=state.step, autocast=sgd.autocast)
                bar.update()
                last = b == per_epoch - 1
                state = Step(state.step + 1, epoch + last, last, idx)
                if callback and callback(ens, state):
                    return state
    finally:
        bar.close()
    return state
