"""Train many small models as one batched computation.

An :class:`Ensemble` holds S copies of one architecture with their parameters stacked along a
leading axis of size S (``torch.func.stack_module_state``) and runs them with
``torch.vmap(torch.func.functional_call)``: one forward and one backward pass per step for all S
models, with the data kept as tensors on the device. Member ``i`` has its own initialisation and
its own data order, both drawn from ``ensemble.seeds[i]``; :func:`train_single` trains one plain
``nn.Module`` from such a seed with ``torch.optim.SGD`` and gives the same model (to float
tolerance), and :func:`train_loop` is the per-seed Python loop kept as the benchmark baseline.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state
from tqdm.auto import tqdm

from memkit.device import pick_device

Factory = Callable[[], nn.Module]


def member_seeds(seed: int, n: int) -> list[int]:
    """The seeds of the ``n`` members of an ensemble with base seed ``seed``: independent
    streams spawned by ``numpy.random.SeedSequence(seed)``, as Python ints."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]


def init_model(factory: Factory, seed: int) -> nn.Module:
    """``factory()`` initialised from ``torch.manual_seed(seed)``, on the CPU, leaving torch's
    global generator as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def data_orders(n: int, seeds: list[int]) -> Iterator[torch.Tensor]:
    """Endless epochs of data orders: each item is an ``(S, n)`` int64 tensor whose row ``i`` is
    a fresh permutation of ``0..n-1`` from member ``i``'s generator (seeded with ``seeds[i]``)."""
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    while True:
        yield torch.stack([torch.randperm(n, generator=g) for g in gens])


def steps_per_epoch(n: int, batch_size: int) -> int:
    """SGD updates in one epoch over ``n`` examples: ⌈n / batch_size⌉ (the last batch smaller)."""
    return -(-n // batch_size)


@dataclass
class Step:
    """What a training callback sees: ``step`` SGD updates done so far (0 before the first),
    ``epoch`` completed epochs, ``end_of_epoch`` whether this step closed an epoch, and
    ``batch`` the training indices of the update just made (``(S, B)`` in :func:`fit`, ``(B,)``
    in :func:`train_single`; ``None`` before the first)."""

    step: int
    epoch: int
    end_of_epoch: bool
    batch: torch.Tensor | None = None


class Ensemble:
    """S models of one architecture with stacked weights, trained and evaluated as one.

    Args:
        factory: builds one model (e.g. ``lambda: memkit.models.mlp((1, 8, 8), [128], 10)``).
        n_models: S, the number of members.
        seed: base seed; member ``i`` uses ``member_seeds(seed, S)[i]`` for its initialisation
            and its data order.
        device: ``None`` picks CUDA, then MPS, then CPU.

    Attributes: ``params`` and ``buffers`` (name → ``(S, ...)`` stacked tensors), ``seeds``,
    ``active`` (``(S,)`` bool: members that SGD updates), ``base`` (a weightless "meta" copy of
    the architecture, for ``torch.func.functional_call`` with other weights).
    """

    def __init__(self, factory: Factory, n_models: int, seed: int = 0,
                 device: str | torch.device | None = None) -> None:
        if n_models < 1:
            raise ValueError(f"n_models={n_models}: an ensemble needs at least one model")
        self.factory, self.device = factory, pick_device(device)
        self.seeds = member_seeds(seed, n_models)
        models = [init_model(factory, s) for s in self.seeds]
        params, buffers = stack_module_state(models)
        self.params = {k: v.detach().to(self.device).requires_grad_() for k, v in params.items()}
        self.buffers = {k: v.to(self.device) for k, v in buffers.items()}
        self.base = copy.deepcopy(models[0]).to("meta")
        self.active = torch.ones(n_models, dtype=torch.bool, device=self.device)
        self._momentum: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.seeds)

    def _call(self, params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.base, (params, buffers), (x,))

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        """Logits ``(S, B, K)`` for per-member inputs ``xs`` of shape ``(S, B, *input_shape)``,
        differentiable with respect to the parameters and to ``xs``."""
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
        rows = _data_rows(data_index, len(self), len(x)).to(self.device)[:, 0]  # (S,): one data set each
        return torch.cat([self.forward(x[rows, i:i + batch_size]).argmax(-1) == y[rows, i:i + batch_size]
                          for i in range(0, x.shape[1], batch_size)], dim=1)

    def accuracy(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024,
                 data_index: torch.Tensor | None = None) -> torch.Tensor:
        """``(S,)`` float accuracy of each member on ``(x, y)``, in [0, 1] (``data_index``: see
        :meth:`correct`)."""
        return self.correct(x, y, batch_size, data_index).float().mean(1)

    def member(self, i: int) -> nn.Module:
        """Member ``i`` as a standalone ``nn.Module`` (a copy, on the ensemble's device)."""
        model = init_model(self.factory, self.seeds[i]).to(self.device)  # leaves torch's generator alone
        state = {k: v[i].detach() for k, v in (self.params | self.buffers).items()}
        model.load_state_dict(state)
        return model

    def sgd_step(self, xs: torch.Tensor, ys: torch.Tensor, lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> torch.Tensor:
        """One SGD update of every active member on its own mini-batch.

        ``xs``: ``(S, B, *input_shape)``, ``ys``: ``(S, B)``. The update is torch.optim.SGD's
        (dampening 0, no Nesterov): g ← ∇ℓ + λθ, v ← μv + g, θ ← θ − ηv, with ℓ the mean
        cross-entropy of the member's batch. Inactive members (``self.active`` False) keep
        their weights. Returns the ``(S,)`` batch losses before the update.
        """
        logits = self.forward(xs)
        losses = F.cross_entropy(logits.flatten(0, 1), ys.flatten(), reduction="none").view(ys.shape).mean(1)
        grads = torch.autograd.grad(losses.sum(), list(self.params.values()))
        frozen = not bool(self.active.all())
        with torch.no_grad():
            for (name, p), g in zip(self.params.items(), grads):
                if weight_decay:
                    g = g.add(p, alpha=weight_decay)
                if momentum:
                    buf = self._momentum.get(name)
                    g = self._momentum[name] = g.clone() if buf is None else buf.mul_(momentum).add_(g)
                if frozen:
                    g = g * self.active.view(-1, *[1] * (p.ndim - 1))
                p.add_(g, alpha=-lr)
        return losses.detach()


def _data_rows(data_index: torch.Tensor, n_models: int, n_sets: int) -> torch.Tensor:
    """``data_index`` checked and shaped ``(S, 1)`` for indexing ``(D, N, ...)`` data."""
    data_index = torch.as_tensor(data_index, dtype=torch.int64)
    if data_index.shape != (n_models,):
        raise ValueError(f"data_index has shape {tuple(data_index.shape)}; it needs one data-set index per "
                         f"member, shape ({n_models},)")
    if len(data_index) and not 0 <= int(data_index.min()) <= int(data_index.max()) < n_sets:
        raise ValueError(f"data_index must lie in 0..{n_sets - 1}: x holds {n_sets} data sets along its first axis")
    return data_index[:, None]


def fit(ens: Ensemble, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int,
        lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
        callback: Callable[[Ensemble, Step], bool | None] | None = None,
        progress: bool = False, desc: str | None = None,
        data_index: torch.Tensor | None = None) -> Step:
    """Train every member of ``ens`` with SGD on ``(x, y)`` for up to ``epochs`` epochs.

    Each member visits the ``N`` training examples in its own order every epoch, in mini-batches
    of ``batch_size`` (the last one smaller when ``batch_size`` does not divide ``N``).
    ``x``: ``(N, *input_shape)``; ``y``: ``(N,)`` int64; both are moved to the ensemble's device
    once. ``callback(ens, step)`` runs before the first update (``step.step == 0``) and after
    every update; returning ``True`` stops training. Returns the last :class:`Step`.

    ``data_index`` (``(S,)`` int64) lets the members train on different data sets of the same
    size, e.g. one per noise level: ``x`` is then ``(D, N, *input_shape)``, ``y`` is ``(D, N)``,
    and member ``i`` trains on data set ``data_index[i]``.
    """
    x, y = x.to(ens.device), y.to(ens.device)
    rows = None if data_index is None else _data_rows(data_index, len(ens), len(x)).to(ens.device)
    n = len(x) if rows is None else x.shape[1]
    per_epoch = steps_per_epoch(n, batch_size)
    state = Step(0, 0, False)
    if callback and callback(ens, state):
        return state
    orders = data_orders(n, ens.seeds)
    bar = tqdm(total=epochs * per_epoch, desc=desc, disable=not progress, leave=False)
    try:
        for epoch in range(epochs):
            order = next(orders).to(ens.device)
            for b, idx in enumerate(order.split(batch_size, dim=1)):
                xb, yb = (x[idx], y[idx]) if rows is None else (x[rows, idx], y[rows, idx])
                ens.sgd_step(xb, yb, lr, momentum, weight_decay)
                bar.update()
                last = b == per_epoch - 1
                state = Step(state.step + 1, epoch + last, last, idx)
                if callback and callback(ens, state):
                    return state
    finally:
        bar.close()
    return state


def has_buffers(factory: Factory) -> bool:
    """Whether ``factory()`` holds buffers (batch-norm running statistics), which ``torch.vmap``
    cannot update in training mode: such models train one seed at a time with
    :func:`train_single` instead of as an :class:`Ensemble`."""
    with torch.device("meta"):  # the architecture only: no memory, no initialisation
        return any(True for _ in factory().buffers())


@contextlib.contextmanager
def eval_mode(model: object) -> Iterator[None]:
    """Put an ``nn.Module`` in eval mode (batch-norm running statistics, no dropout) and restore
    every submodule's own mode afterwards; other callables are left alone."""
    if not isinstance(model, nn.Module):
        yield
        return
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


@torch.no_grad()
def correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """``(N,)`` bool: whether ``model``, in eval mode, classifies each example of ``x`` as ``y``
    says (every submodule's train/eval mode is restored afterwards)."""
    with eval_mode(model):
        return torch.cat([model(xb).argmax(-1) for xb in x.split(batch_size)]) == y


def train_single(factory: Factory, x: torch.Tensor, y: torch.Tensor, *, seed: int, epochs: int,
                 batch_size: int, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 device: str | torch.device | None = None,
                 lr_factor: Callable[[int], float] | None = None,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 autocast: bool = False,
                 callback: Callable[[nn.Module, Step], bool | None] | None = None) -> nn.Module:
    """Train one plain ``nn.Module`` with ``torch.optim.SGD``: initialised from ``seed`` and fed
    in the data order of ``seed``, exactly as the ensemble member with that seed.

    This is also the path for what an :class:`Ensemble` cannot do: batch norm
    (:func:`has_buffers`), a learning-rate schedule (``lr_factor(t)`` multiplies ``lr`` for
    update ``t`` = 0, 1, ...), data augmentation (``transform`` of each mini-batch of inputs) and
    bfloat16 autocast on CUDA (``autocast``). ``callback(model, step)`` runs as in :func:`fit`:
    before the first update and after every one; returning ``True`` stops training.
    """
    device = pick_device(device)
    model = init_model(factory, seed).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    x, y = x.to(device), y.to(device)
    per_epoch = steps_per_epoch(len(x), batch_size)
    state = Step(0, 0, False)
    if callback and callback(model, state):
        return model
    orders = data_orders(len(x), [seed])
    for epoch in range(epochs):
        for b, idx in enumerate(next(orders)[0].to(device).split(batch_size)):
            if lr_factor is not None:
                for group in opt.param_groups:
                    group["lr"] = lr * lr_factor(state.step)
            model.train()
            xb = x[idx] if transform is None else transform(x[idx])
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast and device.type == "cuda"):
                loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            last = b == per_epoch - 1
            state = Step(state.step + 1, epoch + last, last, idx)
            if callback and callback(model, state):
                return model
    return model


def train_loop(factory: Factory, x: torch.Tensor, y: torch.Tensor, x_eval: torch.Tensor, *,
               n_models: int, seed: int = 0, device: str | torch.device | None = None,
               **sgd) -> torch.Tensor:
    """The per-seed Python loop: train ``n_models`` models one after another with
    :func:`train_single` and return their predictions ``(S, N_eval)`` on ``x_eval``.

    The same work and the same result as an :class:`Ensemble` with ``fit`` and ``predict``;
    it exists as the baseline of ``benchmarks/ensemble_vs_loop.py``.
    """
    preds = []
    for s in member_seeds(seed, n_models):
        model = train_single(factory, x, y, seed=s, device=device, **sgd)
        with torch.no_grad():
            preds.append(model.eval()(x_eval.to(next(model.parameters()).device)).argmax(-1))
    return torch.stack(preds)
