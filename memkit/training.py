"""The one way to train seeds: :func:`train_seeds` with an :class:`SGD` description.

S seeds of a model train as one batched :class:`~memkit.ensemble.Ensemble` when the model allows
it (:func:`memkit.models.needs_loop` is False: no BatchNorm running statistics; dropout and noise
layers of :mod:`memkit.models` are fine) and it pays (not a convolutional model on a CPU:
:func:`memkit.models.is_convolutional`), else one seed after another with ``torch.optim.SGD``
(:func:`train_single`). Seed ``i`` is ``member_seeds(seed, S)[i]`` either way: its initialisation,
its data order, its augmentation and its noise layers' random numbers, so both paths give the same
models (to float tolerance) and the same result type, :class:`Seeds`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from memkit.device import pick_device
from memkit.ensemble import Ensemble, data_rows, fit, subset_rows
from memkit.models import is_convolutional, needs_loop, set_noise_step
from memkit.sgd import SGD, Factory, Step, augment_batch, data_orders, init_model, member_seeds, steps_per_epoch

__all__ = [
    "SGD",
    "Ensemble",
    "Factory",
    "Seeds",
    "Step",
    "correct",
    "data_orders",
    "eval_mode",
    "fit",
    "init_model",
    "member_seeds",
    "steps_per_epoch",
    "train_seeds",
    "train_single",
]

Callback = Callable[["Seeds", Step], "bool | None"]
Hook = Callable[["Seeds", Step, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


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


def train_single(
    factory: Factory,
    x: torch.Tensor,
    y: torch.Tensor,
    sgd: SGD,
    *,
    seed: int,
    device: str | torch.device | None = None,
    callback: Callable[[nn.Module, Step], bool | None] | None = None,
    hook: Callable[[nn.Module, Step, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> nn.Module:
    """Train one plain ``nn.Module`` with ``torch.optim.SGD``: initialised from ``seed`` and fed
    in the data order of ``seed``, exactly as the ensemble member with that seed.

    ``sgd`` with plain-float ``lr`` and ``weight_decay`` (:meth:`SGD.member` picks a member's).
    ``x``: ``(N, *input_shape)``, ``y``: ``(N,)``. The schedule multiplies the learning rate of
    update t by ``sgd.lr_factor(t, ...)``; ``sgd.augment`` crops and flips each batch with a
    generator seeded with ``seed``; noise layers draw the numbers of update t. ``hook(model, step,
    xb, yb) -> (xb, yb)`` sees each batch ``(B, ...)`` before its update; ``callback(model, step)``
    runs before the first update and after every one; returning ``True`` stops training.
    """
    if isinstance(sgd.lr, tuple) or isinstance(sgd.weight_decay, tuple):
        raise ValueError(
            f"train_single trains one model: lr={sgd.lr}, weight_decay={sgd.weight_decay} give one "
            "per member; pass sgd.member(i)"
        )
    lr = sgd.lr
    device = pick_device(device)
    model = init_model(factory, seed).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=sgd.momentum, weight_decay=sgd.weight_decay)
    x, y = x.to(device), y.to(device)
    per_epoch = steps_per_epoch(len(x), sgd.batch_size)
    total = sgd.epochs * per_epoch
    gen = torch.Generator(device=device).manual_seed(seed) if sgd.augment else None
    state = Step(0, 0, False)
    if callback and callback(model, state):
        return model
    orders = data_orders(len(x), [seed])
    for epoch in range(sgd.epochs):
        for b, idx in enumerate(next(orders)[0].to(device).split(sgd.batch_size)):
            if sgd.schedule != "constant":
                for group in opt.param_groups:
                    group["lr"] = lr * sgd.lr_factor(state.step, total, per_epoch)
            xb, yb = x[idx], y[idx]
            if gen is not None:
                xb = augment_batch(xb, gen)
            if hook:
                xb, yb = hook(model, Step(state.step, state.epoch, False, idx), xb, yb)
            model.train()
            set_noise_step(model, state.step)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=sgd.autocast and device.type == "cuda"):
                loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            last = b == per_epoch - 1
            state = Step(state.step + 1, epoch + last, last, idx)
            if callback and callback(model, state):
                return model
    return model


class Seeds:
    """S trained models (or a view of some of them), batched or not; the same interface either way.

    Attributes:
        members: indices in 0..S−1 of the models in this view (all S in a result).
        seeds: their seeds (:func:`member_seeds`).
        batched: whether they were trained as one :class:`~memkit.ensemble.Ensemble`.
        ensemble: that Ensemble (``None`` when trained one after another).
    """

    def __init__(
        self,
        members: Sequence[int],
        seeds: Sequence[int],
        *,
        ensemble: Ensemble | None = None,
        modules: Sequence[nn.Module] = (),
    ) -> None:
        self.members, self.seeds = list(members), list(seeds)
        self.ensemble, self.modules = ensemble, list(modules)
        self.batched = ensemble is not None

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        return f"Seeds(members={self.members}, batched={self.batched})"

    @property
    def device(self) -> torch.device:
        return self.ensemble.device if self.ensemble is not None else next(self.modules[0].parameters()).device

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        """Logits ``(S', B, K)`` of per-member inputs ``xs`` ``(S', B, *input_shape)``, in eval mode,
        differentiable with respect to the weights and to ``xs`` (e.g. for LASS)."""
        if self.ensemble is not None:
            return self.ensemble.forward(xs)
        outs = []
        for m, xb in zip(self.modules, xs, strict=True):
            with eval_mode(m):
                outs.append(m(xb))
        return torch.stack(outs)

    @torch.no_grad()
    def logits(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Logits ``(S', N, K)`` of every model on the same inputs ``x`` ``(N, *input_shape)``, in eval mode."""
        if self.ensemble is not None:
            return self.ensemble.logits(x, batch_size)
        x = x.to(self.device)
        outs = []
        for m in self.modules:
            with eval_mode(m):
                outs.append(torch.cat([m(xb) for xb in x.split(batch_size)]))
        return torch.stack(outs)

    def predict(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Predicted classes ``(S', N)`` int64."""
        return self.logits(x, batch_size).argmax(-1)

    @torch.no_grad()
    def correct(
        self, x: torch.Tensor, y: torch.Tensor, data_index: torch.Tensor | None = None, batch_size: int = 1024
    ) -> torch.Tensor:
        """``(S', N)`` bool: whether each model classifies each example as ``y`` says. With
        ``data_index`` ``(S,)`` (as in :func:`train_seeds`) member ``s`` is scored on data set
        ``data_index[s]`` of ``x`` ``(D, N, ...)``, ``y`` ``(D, N)``."""
        if self.ensemble is not None:
            return self.ensemble.correct(x, y, batch_size, data_index)
        x, y = x.to(self.device), y.to(self.device)
        if data_index is None:
            return self.predict(x, batch_size) == y
        rows = torch.as_tensor(data_index)[self.members].tolist()
        return torch.stack([correct(m, x[d], y[d], batch_size) for m, d in zip(self.modules, rows, strict=True)])

    def accuracy(
        self, x: torch.Tensor, y: torch.Tensor, data_index: torch.Tensor | None = None, batch_size: int = 1024
    ) -> torch.Tensor:
        """``(S',)`` float accuracy of each model on ``(x, y)``, in [0, 1]."""
        return self.correct(x, y, data_index, batch_size).float().mean(1)

    def member(self, i: int) -> nn.Module:
        """Member ``i`` (an index in :attr:`members`) as a plain ``nn.Module`` (a copy when batched)."""
        if i not in self.members:
            raise IndexError(f"member {i} is not in this view; its members are {self.members}")
        return self.ensemble.member(i) if self.ensemble is not None else self.modules[self.members.index(i)]

    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        """One state dict per member (CPU tensors), loadable into the factory's model."""
        return [{k: v.detach().cpu() for k, v in self.member(i).state_dict().items()} for i in self.members]


def _factories(factory: Factory | Sequence[Factory], n_seeds: int | None) -> list[Factory]:
    if isinstance(factory, Sequence):
        if n_seeds not in (None, len(factory)):
            raise ValueError(
                f"n_seeds={n_seeds} with {len(factory)} factories: pass n_seeds=None "
                "(one member per factory) or a single factory"
            )
        return list(factory)
    if n_seeds is None or n_seeds < 1:
        raise ValueError(f"n_seeds={n_seeds}: train at least one seed (or pass one factory per member)")
    return [factory] * n_seeds


def train_seeds(
    factory: Factory | Sequence[Factory],
    x: torch.Tensor,
    y: torch.Tensor,
    sgd: SGD,
    *,
    n_seeds: int | None,
    seed: int = 0,
    device: str | torch.device | None = None,
    callback: Callback | None = None,
    hook: Hook | None = None,
    data_index: torch.Tensor | None = None,
    subsets: torch.Tensor | None = None,
    progress: bool = False,
    desc: str | None = None,
    batched: bool | None = None,
) -> Seeds:
    """Train S seeds of a model with ``sgd`` on ``(x, y)``; member ``i`` has seed ``member_seeds(seed, S)[i]``.

    Args:
        factory: builds one model, or a sequence of S factories of the same parameter shapes
            (e.g. ``[lambda: models.mlp(shape, [64], 10, dropout=p) for p in rates]``).
        x: ``(N, *input_shape)`` inputs, ``y``: ``(N,)`` int64 labels; with ``data_index``
            ``(S,)`` int64, ``x`` is ``(D, N, ...)`` and ``y`` ``(D, N)``: member ``i`` trains on
            data set ``data_index[i]``.
        subsets: ``(S, M)`` int64: member ``i`` trains on the examples ``subsets[i]`` only (e.g.
            random halves for held-out estimates); ``step.batch`` holds indices into ``x``.
        sgd: the optimiser (per-member ``lr``/``weight_decay`` tuples of length S allowed).
        n_seeds: S (``None`` with a sequence of factories).
        callback: ``callback(models, step)`` before the first update and after every update;
            ``models`` is a :class:`Seeds` view of the members being trained now (all S when
            batched, one when looping; ``models.members`` their indices) and ``step.batch`` their
            ``(S', B)`` training indices. True stops that training.
        hook: ``hook(models, step, xb, yb) -> (xb, yb)`` before each update, with the batch
            ``(S', B, ...)`` and ``(S', B)``; returns the batch to train on (e.g. adversarial
            examples from ``models.forward``, which runs the members in eval mode).
        batched: ``None`` trains batched unless the model needs the per-seed loop
            (:func:`memkit.models.needs_loop`) or is convolutional on a CPU, where the loop is the
            faster (:func:`memkit.models.is_convolutional`); ``False`` forces the per-seed loop (e.g.
            to compare both); ``True`` insists on the batched path.
    """
    factories = _factories(factory, n_seeds)
    s = len(factories)
    if sgd.n_members not in (None, s):
        raise ValueError(
            f"SGD gives per-member lr/weight_decay for {sgd.n_members} members but {s} are trained: "
            "give one value per member, or a float for all"
        )
    loop = any(needs_loop(f) for f in {id(f): f for f in factories}.values())  # BatchNorm, torch's dropout
    if batched and loop:
        raise ValueError(
            "batched=True, but this model needs the per-seed loop (BatchNorm running statistics or "
            "torch's own dropout): pass batched=None"
        )
    if sgd.augment and x.ndim != 4 + (data_index is not None):
        raise ValueError(
            f"augment=True needs images (N, C, H, W); these inputs are {tuple(x.shape)}: set augment=False"
        )
    unique = {id(f): f for f in factories}.values()
    if batched is None and pick_device(device).type == "cpu" and any(is_convolutional(f) for f in unique):
        batched = False
    if batched is False or loop:
        return _loop(
            factories,
            x,
            y,
            sgd,
            seed=seed,
            device=device,
            callback=callback,
            hook=hook,
            data_index=data_index,
            subsets=subsets,
            progress=progress,
            desc=desc,
        )
    ens = Ensemble(factories, seed=seed, device=device)
    view = Seeds(range(s), ens.seeds, ensemble=ens)
    fit(
        ens,
        x,
        y,
        sgd,
        data_index=data_index,
        subsets=subsets,
        progress=progress,
        desc=desc,
        callback=(lambda _, st: callback(view, st)) if callback else None,
        hook=(lambda _, st, xb, yb: hook(view, st, xb, yb)) if hook else None,
    )
    return view


def _one_model_hook(
    hook: Hook, view: Callable[[nn.Module], Seeds], subset: torch.Tensor | None
) -> Callable[[nn.Module, Step, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """``hook`` (which sees a Seeds view and ``(S', B, ...)`` batches) as train_single's hook of one model."""

    def on_batch(m: nn.Module, st: Step, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = hook(view(m), _rows(st, subset), xb[None], yb[None])
        return xs[0], ys[0]

    return on_batch


def _rows(step: Step, subset: torch.Tensor | None = None) -> Step:
    """A one-model step with its batch as a ``(1, B)`` row, as a batched step's ``(S, B)``; with the
    model's ``subset`` of the training set, as indices into the whole training set."""
    if step.batch is None:
        return step
    return replace(step, batch=(step.batch if subset is None else subset.to(step.batch.device)[step.batch])[None])


def _loop(
    factories: list[Factory],
    x: torch.Tensor,
    y: torch.Tensor,
    sgd: SGD,
    *,
    seed: int,
    device: str | torch.device | None,
    callback: Callback | None,
    hook: Hook | None,
    data_index: torch.Tensor | None,
    subsets: torch.Tensor | None,
    progress: bool,
    desc: str | None,
) -> Seeds:
    """One seed after another with :func:`train_single` (each a one-member :class:`Seeds` view)."""
    seeds = member_seeds(seed, len(factories))
    rows = None if data_index is None else data_rows(data_index, len(factories), len(x))[:, 0].tolist()
    n = len(x) if rows is None else x.shape[1]
    if subsets is not None:
        subsets = subset_rows(subsets, len(factories), n)
        n = subsets.shape[1]
    modules = []
    with tqdm(
        total=len(seeds) * sgd.epochs * steps_per_epoch(n, sgd.batch_size), desc=desc, disable=not progress, leave=False
    ) as bar:
        for i, (f, s) in enumerate(zip(factories, seeds, strict=True)):

            def view(m: nn.Module, i: int = i, s: int = s) -> Seeds:
                return Seeds([i], [s], modules=[m])

            subset = None if subsets is None else subsets[i]

            def on_step(m: nn.Module, st: Step, subset: torch.Tensor | None = subset) -> bool | None:
                bar.update(st.step > 0)
                return callback(view(m), _rows(st, subset)) if callback else None

            xi, yi = (x, y) if rows is None else (x[rows[i]], y[rows[i]])
            if subset is not None:
                xi, yi = xi[subset.to(xi.device)], yi[subset.to(yi.device)]
            modules.append(
                train_single(
                    f,
                    xi,
                    yi,
                    sgd.member(i),
                    seed=s,
                    device=device,
                    callback=on_step,
                    hook=None if hook is None else _one_model_hook(hook, view, subset),
                )
            )
    return Seeds(range(len(seeds)), seeds, modules=modules)
