"""Model factories: MLPs of any widths and a small CNN (1-D or 2-D by the input's shape).

Each factory returns a fresh ``nn.Module`` initialised from torch's global generator, so a
seed set before the call fixes the initialisation (see :func:`memkit.training.init_model`).
Models map ``(B, C, *spatial)`` inputs to ``(B, K)`` logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import nn


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
