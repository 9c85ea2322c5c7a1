"""The optimiser description and the randomness of a seed, shared by both training paths.

:class:`SGD` describes how every seed is trained (the one optimiser description of memkit);
:func:`member_seeds`, :func:`init_model` and :func:`data_orders` fix what a seed means (its
initialisation and its data order), so a member of a batched :class:`memkit.ensemble.Ensemble`
and a model trained alone by :func:`memkit.training.train_single` are the same model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Factory = Callable[[], nn.Module]
Schedule = Literal["constant", "cosine", "step"]


def _positive(name: str, value: float | tuple[float, ...], zero_ok: bool) -> None:
    for v in value if isinstance(value, tuple) else (value,):
        if not (v >= 0 if zero_ok else v > 0) or not math.isfinite(v):
            raise ValueError(
                f"SGD {name}={value}: every value must be {'>= 0' if zero_ok else '> 0'} and finite "
                f"(a float, or a tuple of floats with one per member)"
            )


@dataclass(frozen=True)
class SGD:
    """Mini-batch SGD with ``torch.optim.SGD`` semantics (dampening 0, no Nesterov):
    g ← ∇ℓ + λθ, v ← μv + g, θ ← θ − η·f(t)·v, ℓ the mean cross-entropy of the batch.

    Attributes:
        lr: η, the learning rate; a tuple gives one per member (length S).
        batch_size: examples per update (the last batch of an epoch is smaller when it does not divide N).
        epochs: passes over the training set.
        momentum: μ (0: plain SGD). Momentum belongs to one training call, never carried over.
        weight_decay: λ (L2 penalty λ/2‖θ‖²); a tuple gives one per member.
        schedule: the factor f(t) of update t: ``"constant"`` 1; ``"cosine"`` ½(1 + cos(π t / T)) over
            the T updates of the run; ``"step"`` ½^⌊t / (step_epochs · updates per epoch)⌋.
        step_epochs: with ``"step"``, epochs between two halvings of the learning rate.
        augment: random crops (4-pixel zero padding) and horizontal flips of each image batch.
        autocast: bfloat16 autocast of the forward pass on CUDA (ignored elsewhere).
    """

    lr: float | tuple[float, ...]
    batch_size: int
    epochs: int = 1
    momentum: float = 0.0
    weight_decay: float | tuple[float, ...] = 0.0
    schedule: Schedule = "constant"
    step_epochs: int | None = None
    augment: bool = False
    autocast: bool = False

    def __post_init__(self) -> None:
        for name in ("lr", "weight_decay"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        _positive("lr", self.lr, zero_ok=False)
        _positive("weight_decay", self.weight_decay, zero_ok=True)
        _positive("momentum", self.momentum, zero_ok=True)
        if int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise ValueError(f"SGD batch_size={self.batch_size}: give a whole number of examples >= 1")
        if int(self.epochs) != self.epochs or self.epochs < 1:
            raise ValueError(f"SGD epochs={self.epochs}: give a whole number of epochs >= 1")
        if self.schedule not in ("constant", "cosine", "step"):
            raise ValueError(
                f"SGD schedule={self.schedule!r}: use 'constant', 'cosine' or 'step' "
                "(with step_epochs, the epochs between halvings)"
            )
        if (self.schedule == "step") != (self.step_epochs is not None):
            raise ValueError(
                f"SGD schedule={self.schedule!r} with step_epochs={self.step_epochs}: give step_epochs "
                "(epochs between halvings of lr) exactly when schedule='step'"
            )
        if self.step_epochs is not None and (int(self.step_epochs) != self.step_epochs or self.step_epochs < 1):
            raise ValueError(f"SGD step_epochs={self.step_epochs}: give a whole number of epochs >= 1")
        sizes = {len(v) for v in (self.lr, self.weight_decay) if isinstance(v, tuple)}
        if len(sizes) > 1 or 0 in sizes:
            raise ValueError(
                f"SGD lr={self.lr} and weight_decay={self.weight_decay}: per-member tuples must "
                "be non-empty and of one length, the number of members S"
            )

    @property
    def n_members(self) -> int | None:
        """S when ``lr`` or ``weight_decay`` is per member, else ``None`` (any number of members)."""
        sizes = [len(v) for v in (self.lr, self.weight_decay) if isinstance(v, tuple)]
        return sizes[0] if sizes else None

    def member(self, i: int) -> SGD:
        """The settings of member ``i``: per-member ``lr`` and ``weight_decay`` as plain floats."""

        def pick(v: float | tuple[float, ...]) -> float:
            return v[i] if isinstance(v, tuple) else v

        return replace(self, lr=pick(self.lr), weight_decay=pick(self.weight_decay))

    def lr_factor(self, step: int, total_steps: int, steps_per_epoch: int) -> float:
        """f(t), the schedule's factor of the learning rate for update ``step`` = t (0, 1, ...) of a
        run of ``total_steps`` updates with ``steps_per_epoch`` updates per epoch."""
        if self.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * step / total_steps))
        if self.schedule == "step" and self.step_epochs is not None:  # validated: given with "step"
            return 0.5 ** (step // (self.step_epochs * steps_per_epoch))
        return 1.0


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
    """Where training stands: ``step`` SGD updates done so far (0 before the first), ``epoch``
    completed epochs, ``end_of_epoch`` whether this step closed an epoch, and ``batch`` the
    training indices of the update just made (for a hook: of the update about to be made),
    ``(S, B)`` for an ensemble and ``(B,)`` for one model; ``None`` before the first."""

    step: int
    epoch: int
    end_of_epoch: bool
    batch: torch.Tensor | None = None


def augment_batch(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crops and horizontal flips of a batch of images ``(B, C, H, W)``: each image is
    flipped with probability ½, zero-padded by ``pad`` pixels and cropped back to H×W at a
    uniformly random offset. ``generator`` lives on ``x``'s device (one per seed, seeded with it)."""
    b, c, h, w = x.shape
    flip = torch.rand(b, generator=generator, device=x.device) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    padded = F.pad(x, (pad, pad, pad, pad))
    di, dj = (torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=x.device) for _ in range(2))
    rows = (di[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dj[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    return padded[batch, torch.arange(c, device=x.device)[None, :, None, None], rows, cols]
