"""Every architecture, built by name: ``build(arch, input_shape, n_classes, **options)`` and
``factory(...)`` (the same, as a zero-argument callable for the trainers), for the names in ``ARCHS``:

- ``"mlp"`` (options: widths), ``"cnn"`` (channels, hidden, kernel_size; 1-D or 2-D by the input's shape);
- ``"paper_cnn"`` (channels): the CIFAR-10 CNN of Arpit et al. 2017, with BatchNorm;
- ``"vgg11"``, ``"vgg13"``, ``"resnet32"`` (He et al. 2016's CIFAR ResNet), ``"densenet121"`` and
  ``"resnet101"`` (torchvision's, with a 32×32 stem): images, from :mod:`memkit.archs`.

:func:`build` checks the architecture's name, its options and the input shape, with messages that
say what to use instead. Every model is fresh and initialised from torch's global generator, so a
seed set before the call fixes the initialisation (see :func:`memkit.training.init_model`); it maps
``(B, *input_shape)`` inputs to ``(B, K)`` logits.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from memkit import archs

if TYPE_CHECKING:
    from memkit.training import Factory


def mlp(input_shape: Sequence[int], widths: Sequence[int], n_classes: int) -> nn.Sequential:
    """A ReLU MLP: flatten → [Linear(w) → ReLU] for each width in ``widths`` → Linear(K).

    The paper's MNIST model (Arpit et al. 2017) is ``mlp((1, 14, 14), [4096, 4096], 10)``.
    """
    layers: list[nn.Module] = [nn.Flatten()]
    n_in = int(np.prod(input_shape))
    for w in widths:
        layers += [nn.Linear(n_in, w), nn.ReLU()]
        n_in = w
    layers.append(nn.Linear(n_in, n_classes))
    return nn.Sequential(*layers)


def cnn(input_shape: Sequence[int], n_classes: int, channels: Sequence[int] = (32, 64),
        hidden: int = 128, kernel_size: int = 3) -> nn.Sequential:
    """A small CNN: [Conv(c, k, same padding) → ReLU → MaxPool(2)] per entry of ``channels``,
    then Dense(hidden) → ReLU → Dense(K). Conv1d for ``(C, L)`` inputs, Conv2d for ``(C, H, W)``.

    Without batch norm, so that many copies train as one batched model (:mod:`memkit.training`).
    """
    c_in, *spatial = input_shape
    conv, pool = {1: (nn.Conv1d, nn.MaxPool1d), 2: (nn.Conv2d, nn.MaxPool2d)}[len(spatial)]
    layers: list[nn.Module] = []
    for c in channels:
        layers += [conv(c_in, c, kernel_size, padding=kernel_size // 2), nn.ReLU(), pool(2)]
        c_in = c
        spatial = [s // 2 for s in spatial]
    layers += [nn.Flatten(), nn.Linear(c_in * int(np.prod(spatial)), hidden), nn.ReLU(),
               nn.Linear(hidden, n_classes)]
    return nn.Sequential(*layers)


class Crop(nn.Module):
    """Remove ``pixels`` from every border of ``(N, C, H, W)`` images (the paper CNN's Crop(2,2))."""

    def __init__(self, pixels: int) -> None:
        super().__init__()
        self.pixels = pixels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.pixels
        return x[..., p:x.shape[-2] - p, p:x.shape[-1] - p]


def paper_cnn(input_shape: Sequence[int], n_classes: int, channels: int = 200) -> nn.Sequential:
    """The CNN of Arpit et al. 2017 (CIFAR-10): Crop(2,2) → [Conv(200, 5×5) → BN → ReLU →
    MaxPool(3×3)] ×2 → Dense(384) → BN → ReLU → Dense(192) → BN → ReLU → Dense(K).

    Not published, our reading (Keras defaults, which the layer names follow): the crop removes
    2 pixels at every border, the convolutions are unpadded and the pools have stride 3, so a
    3×32×32 image gives 28 → 24 → 8 → 4 → 1 pixels and 200 features. Takes ``(N, C, H, W)``
    images of at least 29×29 and returns ``(N, K)`` logits (softmax is in the loss). Its BatchNorm
    layers keep running statistics, so its seeds train one after another, not as an Ensemble.
    """
    features = nn.Sequential(
        Crop(2),
        nn.Conv2d(input_shape[0], channels, 5), nn.BatchNorm2d(channels), nn.ReLU(), nn.MaxPool2d(3),
        nn.Conv2d(channels, channels, 5), nn.BatchNorm2d(channels), nn.ReLU(), nn.MaxPool2d(3),
        nn.Flatten())
    side = lambda s: ((s - 4 - 4) // 3 - 4) // 3  # noqa: E731 - crop, conv, pool, conv, pool
    n_features = channels * side(input_shape[1]) * side(input_shape[2])
    return nn.Sequential(
        features,
        nn.Linear(n_features, 384), nn.BatchNorm1d(384), nn.ReLU(),
        nn.Linear(384, 192), nn.BatchNorm1d(192), nn.ReLU(),
        nn.Linear(192, n_classes))


# ---------------------------------------------------------------------------------------------
# Built by name
# ---------------------------------------------------------------------------------------------

#: Each architecture's builder, called as ``builder(input_shape=..., n_classes=..., **options)``; its other
#: keyword parameters are the architecture's options.
_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "mlp": mlp, "cnn": cnn, "paper_cnn": paper_cnn, "vgg11": archs.vgg11, "vgg13": archs.vgg13,
    "resnet32": archs.resnet32, "densenet121": archs.densenet121_32, "resnet101": archs.resnet101_32}

#: The architectures :func:`build` knows.
ARCHS: tuple[str, ...] = tuple(_BUILDERS)

#: Image architectures: the smallest height and width each takes, and why.
_MIN_SIDE: dict[str, tuple[int, str]] = {
    "paper_cnn": (29, "it crops 2 pixels, then convolves 5×5 and max-pools 3×3 twice"),
    "vgg11": (32, "five 2×2 max-pools"), "vgg13": (32, "five 2×2 max-pools"), "resnet32": (1, "any size"),
    "densenet121": (8, "three 2×2 average pools"), "resnet101": (1, "any size")}


def _check_options(arch: str, options: dict[str, Any]) -> None:
    """Raise unless ``options`` are keyword parameters of ``arch``'s builder and include the required ones."""
    params = inspect.signature(_BUILDERS[arch]).parameters
    allowed = [name for name in params if name not in ("input_shape", "n_classes")]
    takes = f"{arch} takes {', '.join(allowed)}" if allowed else f"{arch} takes no options"
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for {arch}: {takes}")
    missing = [name for name in allowed if params[name].default is inspect.Parameter.empty and name not in options]
    if missing:
        raise ValueError(f"{arch} needs {', '.join(name + '=...' for name in missing)} ({takes})")


def _check_input(arch: str, shape: tuple[int, ...], n_classes: int) -> None:
    """Raise unless ``arch`` can map ``(B, *shape)`` inputs to ``(B, n_classes)`` logits."""
    if n_classes < 1:
        raise ValueError(f"n_classes={n_classes} must be at least 1 (the number of logits)")
    if arch == "cnn" and len(shape) not in (2, 3):
        raise ValueError(f"cnn takes sequences (C, L) or images (C, H, W); got input shape {shape}: "
                         "use 'mlp' for other inputs")
    if arch in _MIN_SIDE:
        side, why = _MIN_SIDE[arch]
        if len(shape) != 3:
            raise ValueError(f"{arch} takes images (C, H, W); got input shape {shape}: "
                             "use 'mlp' or 'cnn' for other inputs")
        if min(shape[1:]) < side:
            raise ValueError(f"{arch} needs images of at least {side}×{side} ({why}); got {shape[1]}×{shape[2]}: "
                             "pad them, or use 'cnn' or 'resnet32' for small images")


def factory(arch: str, input_shape: Sequence[int], n_classes: int, **options: Any) -> Factory:
    """A zero-argument callable that builds a fresh ``arch`` (one of :data:`ARCHS`) with ``options``
    for inputs ``(B, *input_shape)`` and K = ``n_classes`` logits, e.g.
    ``factory("mlp", (1, 28, 28), 10, widths=[256])``.

    Checks the name, the options and the input shape now, so that a mistake fails before any
    training, and builds nothing yet: each call initialises a new model from torch's global
    generator (same seed, same weights).
    """
    if arch not in _BUILDERS:
        raise ValueError(f"unknown architecture {arch!r}; use one of {', '.join(ARCHS)}")
    shape = tuple(int(s) for s in input_shape)
    _check_options(arch, options)
    _check_input(arch, shape, n_classes)
    return functools.partial(_BUILDERS[arch], input_shape=shape, n_classes=n_classes, **options)


def build(arch: str, input_shape: Sequence[int], n_classes: int, **options: Any) -> nn.Module:
    """A fresh ``arch`` with ``options``, mapping ``(B, *input_shape)`` to ``(B, n_classes)``
    logits: ``factory(arch, input_shape, n_classes, **options)()``."""
    return factory(arch, input_shape, n_classes, **options)()
