"""Figures: one look for every notebook, saved atomically to ``figures/<profile>/``."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

from memkit.results import atomic_write, project_root

#: One colour per kind of data, the same in every notebook.
PALETTE = {"real": "#1f77b4", "randX": "#d62728", "randY": "#2ca02c"}


def style() -> None:
    """Seaborn's paper style, used by every notebook."""
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)


def save_figure(fig: plt.Figure, name: str, profile: str, formats: tuple[str, ...] = ("png",),
                dpi: int = 150) -> list[Path]:
    """Save ``fig`` as ``figures/<profile>/<name>.<fmt>`` for each format, atomically (a
    temporary file renamed into place), and return the paths."""
    out = project_root() / "figures" / profile
    return [atomic_write(out / f"{name}.{fmt}",
                         lambda tmp, fmt=fmt: fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight"))
            for fmt in formats]


def sorted_error_curves(ax: plt.Axes, rates: dict[str, np.ndarray], n_models: int) -> None:
    """Arpit et al. Fig. 1: per-example misclassification rates sorted in ascending order, one
    curve per kind of data (``rates[kind]``: ``(N,)`` in [0, 1]), each with the sorted curve that
    Binomial(S, p̄) noise would give (dashed), S = ``n_models``."""
    from memkit.metrics import binomial_quantiles

    for kind, r in rates.items():
        r = np.sort(np.asarray(r))
        x = np.linspace(0, 1, len(r))
        color = PALETTE.get(kind)
        ax.plot(x, r, color=color, lw=2, label=f"{kind} (p̄ = {r.mean():.2f})")
        ax.plot(x, binomial_quantiles(len(r), n_models, float(r.mean())), color=color, lw=1, ls="--")
    ax.set_xlabel("examples, sorted by error rate (fraction)")
    ax.set_ylabel(f"misclassified by fraction of the {n_models} models")
    ax.legend(title="solid: measured; dashed: binomial", loc="center right", fontsize=8, title_fontsize=8)


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
    for i, (ax, xi, t) in enumerate(zip(axes.flat, x, titles)):
        show_example(ax, xi.cpu(), t)
    for ax, label in zip(axes[:, 0], rows):
        ax.set_ylabel(label, fontsize=9)
    fig.tight_layout()
    return fig
