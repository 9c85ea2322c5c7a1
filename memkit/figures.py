"""Figures: one look for every notebook, saved atomically to ``figures/<profile>/``."""

from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

from memkit.data import Kind
from memkit.results import atomic_write, project_root

#: One colour per family of data (real, randX, randY), the same in every notebook; :func:`kind_color`
#: shades it by the noise level.
PALETTE = {"real": "#1f77b4", "randX": "#d62728", "randY": "#2ca02c"}


def style() -> None:
    """Seaborn's paper style, used by every notebook."""
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)


def kind_color(kind: Kind | str) -> tuple[float, float, float]:
    """The colour of a kind of data (a :class:`memkit.data.Kind`, or its label or key, e.g.
    ``"randX 50%"``): its family's :data:`PALETTE` colour, mixed with white the more the lower its
    noise level p (full colour at p = 1 and for real data). RGB in [0, 1]."""
    from matplotlib.colors import to_rgb

    kind = Kind.parse(kind) if isinstance(kind, str) else kind
    base = np.array(to_rgb(PALETTE[kind.family]))
    mix = 1.0 if kind.corruption is None else 0.35 + 0.65 * kind.p
    r, g, b = (float(c) for c in 1 - mix * (1 - base))
    return r, g, b


def band(ax: plt.Axes, x: Any, values: Any, color: Any, label: str | None = None, ls: str = "-", **line: Any) -> None:
    """Mean over seeds as a line and the band from the lowest to the highest seed.

    ``x``: ``(T,)``; ``values``: ``(S, T)``, seed s at point t (numpy or torch); non-finite values
    (±inf, NaN) are left out of the mean and the band. One seed: the line only. ``line``: more
    options of the line (``marker``, ``lw``, ...). A point with no finite value is left blank."""
    x, v = np.asarray(x), np.asarray(values, dtype=float)
    if v.ndim != 2 or v.shape[1] != len(x):
        raise ValueError(f"values of shape {v.shape} do not match x of length {len(x)}: give (seeds, len(x))")
    v = np.where(np.isfinite(v), v, np.nan)
    with warnings.catch_warnings():  # all-NaN points: NaN, a gap in the line and the band
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, lo, hi = np.nanmean(v, 0), np.nanmin(v, 0), np.nanmax(v, 0)
    ax.plot(x, mean, color=color, ls=ls, label=label, **{"lw": 2, **line})
    if len(v) > 1:
        ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)


def epoch_axis(ax: plt.Axes, last: float) -> None:
    """An x axis of epochs from 0 to ``last``: linear up to 1 and logarithmic beyond (symlog), with
    round ticks (0, 1, 2, 5, 10, 20, 50, ...)."""
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(0, last * 1.08)
    ticks = [0] + [m * 10**e for e in range(int(np.log10(max(last, 1))) + 1) for m in (1, 2, 5)]
    ax.set_xticks([t for t in ticks if t <= last])
    ax.xaxis.set_major_formatter(plt.ScalarFormatter())
    ax.set_xlabel("epoch")


def save_figure(
    fig: plt.Figure, name: str, profile: str, formats: tuple[str, ...] = ("png",), dpi: int = 150
) -> list[Path]:
    """Save ``fig`` as ``figures/<profile>/<name>.<fmt>`` for each format, atomically (a
    temporary file renamed into place), and return the paths."""
    out = project_root() / "figures" / profile
    return [
        atomic_write(out / f"{name}.{fmt}", partial(fig.savefig, format=fmt, dpi=dpi, bbox_inches="tight"))
        for fmt in formats
    ]


def show_example(ax: plt.Axes, x: torch.Tensor | np.ndarray, title: str = "") -> None:
    """Draw one input ``(C, *spatial)``: a line for 1-D signals, an image for 2-D (grey for one
    channel, RGB for three, contrast-stretched since inputs are standardised)."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 2:  # (C, L)
        ax.plot(x[0], color="k", lw=1)
        ax.set_yticks([])
    else:
        img = x.transpose(1, 2, 0) if x.shape[0] == 3 else x[0]
        img = (img - img.min()) / max(np.ptp(img), 1e-8)
        ax.imshow(img, cmap="gray_r" if img.ndim == 2 else None)
        ax.grid(False)
        ax.set_yticks([])
    ax.set_xticks([])
    ax.set_title(title, fontsize=8)


def gallery(x: torch.Tensor, titles: list[str], rows: list[str], ncols: int) -> plt.Figure:
    """A grid of examples: ``len(rows)`` rows of ``ncols`` inputs from ``x`` (row-major), each
    titled, each row labelled with ``rows[i]``."""
    fig, axes = plt.subplots(len(rows), ncols, figsize=(1.3 * ncols, 1.6 * len(rows)), squeeze=False)
    for ax, xi, t in zip(axes.flat, x, titles, strict=False):  # the last row may be short
        show_example(ax, xi.cpu(), t)
    for ax, label in zip(axes[:, 0], rows, strict=True):
        ax.set_ylabel(label, fontsize=9)
    fig.tight_layout()
    return fig
