"""Every architecture, built by name: ``build(arch, input_shape, n_classes, **options)`` and
``factory(...)`` (the same, as a zero-argument callable for the trainers), for the names in ``ARCHS``:

- ``"mlp"`` (options: widths, and the noise options below), ``"cnn"`` (channels, hidden, kernel_size; 1-D or
  2-D by the input's shape; the noise options below);
- ``"paper_cnn"`` (channels): the CIFAR-10 CNN of Arpit et al. 2017, with BatchNorm;
- ``"vgg11"``, ``"vgg13"``, ``"resnet32"`` (He et al. 2016's CIFAR ResNet), ``"densenet121"`` and
  ``"resnet101"`` (torchvision's, with a 32×32 stem): images, from :mod:`memkit.archs`.

:func:`build` checks the architecture's name, its options and the input shape, with messages that
say what to use instead. Every model is fresh and initialised from torch's global generator, so a
seed set before the call fixes the initialisation (see :func:`memkit.training.init_model`); it maps
``(B, *input_shape)`` inputs to ``(B, K)`` logits.

**Noise layers** (:class:`Dropout`, :class:`GaussianNoise`; options ``dropout``, ``input_dropout``,
``input_noise``, ``hidden_noise`` of ``"mlp"`` and ``"cnn"``) draw *counter-based* random numbers:
every number is a pure function (an integer hash, then Box–Muller for normals) of the layer's
``key`` (an int64 buffer drawn from torch's generator when the layer is built, so fixed by the
model's initialisation seed), the training step the trainer sets with :func:`set_noise_step`, and
the element's index in the layer's ``(B, ...)`` input. So a model sees the same random numbers
trained alone or as a member of a batched :class:`memkit.ensemble.Ensemble` (under ``torch.vmap``),
and the rate is a buffer, so members may each have their own. In eval mode they are the identity.
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


_GOLDEN = -7046029254386353131  # 0x9E3779B97F4A7C15 as a signed int64
_MIX1 = -4658895280553007687  # 0xBF58476D1CE4E5B9
_MIX2 = -7723592293110705685  # 0x94D049BB133111EB


def _shr(z: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 ``z`` (torch's ``>>`` is arithmetic on negative numbers)."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def _mix(z: torch.Tensor) -> torch.Tensor:
    """SplitMix64's finaliser on int64 tensors (multiplication wraps modulo 2⁶⁴)."""
    z = (z ^ _shr(z, 30)) * _MIX1
    z = (z ^ _shr(z, 27)) * _MIX2
    return z ^ _shr(z, 31)


def counter_bits(key: torch.Tensor, step: int, like: torch.Tensor) -> torch.Tensor:
    """64 random bits (int64) per element of ``like``: SplitMix64 of (key, step, element index).

    ``key``: a 0-d int64 tensor; ``step``: the training step; ``like``: ``(B, ...)``, the layer's
    input. The same numbers in a plain module and per member under ``torch.vmap``.
    """
    state = _mix(key + ((step * _GOLDEN + 2**63) % 2**64 - 2**63))  # step·golden, wrapped to int64
    index = torch.arange(1, like.numel() + 1, device=like.device, dtype=torch.int64).view(like.shape)
    return _mix(state + index * _GOLDEN)


def uniform(bits: torch.Tensor, shift: int = 40) -> torch.Tensor:
    """Uniform numbers in (0, 1) (float32, 24 bits) from bits ``shift``..``shift + 23`` of ``bits``."""
    return ((_shr(bits, shift) & 0xFFFFFF).float() + 0.5) * 2.0**-24


def normal(bits: torch.Tensor) -> torch.Tensor:
    """Standard normal numbers (Box–Muller) from two 24-bit uniforms of each element of ``bits``."""
    u1, u2 = uniform(bits, 40), uniform(bits, 16)
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2 * torch.pi * u2)


class _Noise(nn.Module):
    """A layer that draws random numbers in training mode: buffers ``rate`` (0-d float) and ``key``
    (0-d int64, drawn from torch's generator); ``step`` is set by the trainer (:func:`set_noise_step`)."""

    rate: torch.Tensor
    key: torch.Tensor

    def __init__(self, rate: float, name: str, high: float) -> None:
        super().__init__()
        if not 0.0 <= rate < high:
            raise ValueError(f"{name}={rate} must lie in [0, {high:g}); 0 disables the layer")
        self.register_buffer("rate", torch.tensor(float(rate)))
        self.register_buffer("key", torch.randint(-(2**63), 2**63 - 1, (), dtype=torch.int64))
        self.step: int = 0

    def extra_repr(self) -> str:
        return "rate=?" if self.rate.device.type == "meta" else f"rate={float(self.rate):g}"


class Dropout(_Noise):
    """Inverted dropout: in training mode each element of ``(B, ...)`` is zeroed with probability
    ``p`` (the buffer ``rate``) and the others scaled by 1/(1 − p); the identity in eval mode."""

    def __init__(self, p: float) -> None:
        super().__init__(p, "dropout rate p", 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        keep = uniform(counter_bits(self.key, self.step, x)) >= self.rate
        return x * keep / (1 - self.rate)


class GaussianNoise(_Noise):
    """Additive Gaussian noise: in training mode x + σ·ε, ε ~ N(0, 1) per element, σ the buffer
    ``rate`` (in the units of x); the identity in eval mode."""

    def __init__(self, sigma: float) -> None:
        super().__init__(sigma, "noise sigma", float("inf"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        return x + self.rate * normal(counter_bits(self.key, self.step, x)).to(x.dtype)


def set_noise_step(model: nn.Module, step: int) -> None:
    """Set the training step of every noise layer of ``model`` (the counter of its random numbers)."""
    for m in model.modules():
        if isinstance(m, _Noise):
            m.step = step


def needs_loop(model: nn.Module | Callable[[], nn.Module]) -> bool:
    """Whether seeds of this model must train one after another rather than as one batched
    Ensemble: it keeps buffers other than the noise layers' (BatchNorm running statistics, which
    ``torch.vmap`` cannot update in training mode) or has torch's own dropout layers (which draw
    from torch's generator; use :class:`Dropout`). ``model``: a module or a zero-argument factory
    (built on the "meta" device: no memory, no initialisation)."""
    if not isinstance(model, nn.Module):
        with torch.device("meta"):
            model = model()
    return any(
        isinstance(m, nn.modules.dropout._DropoutNd)
        or (not isinstance(m, _Noise) and any(True for _ in m.buffers(recurse=False)))
        for m in model.modules()
    )


def is_convolutional(model: nn.Module | Callable[[], nn.Module]) -> bool:
    """Whether the model has a convolution (``model``: a module or a zero-argument factory, built on
    the "meta" device). On a CPU, S seeds of it train faster one after another than batched: torch
    batches a convolution over members as one grouped convolution, which ran at half the speed of S
    plain ones (``benchmarks/cnn.py``), so :func:`memkit.training.train_seeds` loops there."""
    if not isinstance(model, nn.Module):
        with torch.device("meta"):
            model = model()
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())


def _noise(sigma: float, p: float) -> list[nn.Module]:
    """The optional noise layers at one place of a network: GaussianNoise(σ) then Dropout(p)."""
    return ([GaussianNoise(sigma)] if sigma else []) + ([Dropout(p)] if p else [])


def mlp(
    input_shape: Sequence[int],
    widths: Sequence[int],
    n_classes: int,
    *,
    dropout: float = 0.0,
    input_dropout: float = 0.0,
    input_noise: float = 0.0,
    hidden_noise: float = 0.0,
) -> nn.Sequential:
    """A ReLU MLP: flatten → [Linear(w) → ReLU] for each width in ``widths`` → Linear(K).

    Options (0: no layer, so the model and its initialisation are those without the option):
    ``input_noise`` σ and ``input_dropout`` p on the flattened input, ``hidden_noise`` σ and
    ``dropout`` p after every hidden ReLU (noise first, then dropout; see :class:`GaussianNoise`,
    :class:`Dropout`). The paper's MNIST model (Arpit et al. 2017) is ``mlp((1, 14, 14), [4096, 4096], 10)``.
    """
    layers: list[nn.Module] = [nn.Flatten(), *_noise(input_noise, input_dropout)]
    n_in = int(np.prod(input_shape))
    for w in widths:
        layers += [nn.Linear(n_in, w), nn.ReLU(), *_noise(hidden_noise, dropout)]
        n_in = w
    layers.append(nn.Linear(n_in, n_classes))
    return nn.Sequential(*layers)


def cnn(
    input_shape: Sequence[int],
    n_classes: int,
    channels: Sequence[int] = (32, 64),
    hidden: int = 128,
    kernel_size: int = 3,
    *,
    dropout: float = 0.0,
    input_dropout: float = 0.0,
    input_noise: float = 0.0,
    hidden_noise: float = 0.0,
) -> nn.Sequential:
    """A small CNN: [Conv(c, k, same padding) → ReLU → MaxPool(2)] per entry of ``channels``,
    then Dense(hidden) → ReLU → Dense(K). Conv1d for ``(C, L)`` inputs, Conv2d for ``(C, H, W)``.

    Without batch norm, so that many copies train as one batched model (:mod:`memkit.training`).
    Options as in :func:`mlp`: ``input_noise``/``input_dropout`` on the input image,
    ``hidden_noise``/``dropout`` after the dense hidden layer's ReLU (0: no layer).
    """
    c_in, *spatial = input_shape
    conv, pool = {1: (nn.Conv1d, nn.MaxPool1d), 2: (nn.Conv2d, nn.MaxPool2d)}[len(spatial)]
    layers: list[nn.Module] = _noise(input_noise, input_dropout)
    for c in channels:
        layers += [conv(c_in, c, kernel_size, padding=kernel_size // 2), nn.ReLU(), pool(2)]
        c_in = c
        spatial = [s // 2 for s in spatial]
    layers += [
        nn.Flatten(),
        nn.Linear(c_in * int(np.prod(spatial)), hidden),
        nn.ReLU(),
        *_noise(hidden_noise, dropout),
        nn.Linear(hidden, n_classes),
    ]
    return nn.Sequential(*layers)


class Crop(nn.Module):
    """Remove ``pixels`` from every border of ``(N, C, H, W)`` images (the paper CNN's Crop(2,2))."""

    def __init__(self, pixels: int) -> None:
        super().__init__()
        self.pixels = pixels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.pixels
        return x[..., p : x.shape[-2] - p, p : x.shape[-1] - p]


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
        nn.Conv2d(input_shape[0], channels, 5),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.MaxPool2d(3),
        nn.Conv2d(channels, channels, 5),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.MaxPool2d(3),
        nn.Flatten(),
    )

    def side(s: int) -> int:  # crop, conv, pool, conv, pool
        return ((s - 4 - 4) // 3 - 4) // 3

    n_features = channels * side(input_shape[1]) * side(input_shape[2])
    return nn.Sequential(
        features,
        nn.Linear(n_features, 384),
        nn.BatchNorm1d(384),
        nn.ReLU(),
        nn.Linear(384, 192),
        nn.BatchNorm1d(192),
        nn.ReLU(),
        nn.Linear(192, n_classes),
    )


# ---------------------------------------------------------------------------------------------
# Built by name
# ---------------------------------------------------------------------------------------------

#: Each architecture's builder, called as ``builder(input_shape=..., n_classes=..., **options)``; its other
#: keyword parameters are the architecture's options.
_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "mlp": mlp,
    "cnn": cnn,
    "paper_cnn": paper_cnn,
    "vgg11": archs.vgg11,
    "vgg13": archs.vgg13,
    "resnet32": archs.resnet32,
    "densenet121": archs.densenet121_32,
    "resnet101": archs.resnet101_32,
}

#: The architectures :func:`build` knows.
ARCHS: tuple[str, ...] = tuple(_BUILDERS)

#: Image architectures: the smallest height and width each takes, and why.
_MIN_SIDE: dict[str, tuple[int, str]] = {
    "paper_cnn": (29, "it crops 2 pixels, then convolves 5×5 and max-pools 3×3 twice"),
    "vgg11": (32, "five 2×2 max-pools"),
    "vgg13": (32, "five 2×2 max-pools"),
    "resnet32": (1, "any size"),
    "densenet121": (8, "three 2×2 average pools"),
    "resnet101": (1, "any size"),
}


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
        raise ValueError(
            f"cnn takes sequences (C, L) or images (C, H, W); got input shape {shape}: use 'mlp' for other inputs"
        )
    if arch in _MIN_SIDE:
        side, why = _MIN_SIDE[arch]
        if len(shape) != 3:
            raise ValueError(
                f"{arch} takes images (C, H, W); got input shape {shape}: use 'mlp' or 'cnn' for other inputs"
            )
        if min(shape[1:]) < side:
            raise ValueError(
                f"{arch} needs images of at least {side}×{side} ({why}); got {shape[1]}×{shape[2]}: "
                "pad them, or use 'cnn' or 'resnet32' for small images"
            )


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
