"""Pictures for ``cnnkit explain``: attribution overlays, filter grids and feature-map grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from ._figure import new_figure, save_figure
from .images import to_display

__all__ = ["plot_feature_maps", "plot_filters", "plot_overlay"]


def _tiles(fig_cell: float, n: int) -> tuple[Figure, np.ndarray]:
    """A figure with a near-square grid of ``n`` axes (cells ``fig_cell`` inches), all axes hidden."""
    cols = int(np.ceil(np.sqrt(max(n, 1))))
    rows = int(np.ceil(max(n, 1) / cols))
    fig = new_figure(figsize=(fig_cell * cols + 0.5, fig_cell * rows + 0.7))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes:
        ax.axis("off")
    return fig, axes


def plot_overlay(x: torch.Tensor, attribution: torch.Tensor, path: str | Path, *, title: str, signed: bool = False) -> Path:
    """Write ``path``: left the input ``(C, H, W)``, right the map ``(H, W)`` over a gray copy of it.

    Non-negative maps use a sequential colour map scaled to their maximum; signed maps a diverging one,
    symmetric about 0 (red: raises the class score, blue: lowers it).
    """
    img = to_display(x)
    gray = img if img.ndim == 2 else img.mean(axis=2)
    a = attribution.detach().float().cpu().numpy()
    fig = new_figure(figsize=(6.4, 3.6))
    axes = fig.subplots(1, 2)
    axes[0].imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    axes[0].set_title("input", fontsize=9)
    axes[1].imshow(gray, cmap="gray", vmin=0, vmax=1)
    if signed:
        m = float(np.abs(a).max()) or 1.0
        im = axes[1].imshow(a, cmap="bwr", vmin=-m, vmax=m, alpha=0.6)
    else:
        m = float(a.max()) or 1.0
        im = axes[1].imshow(a, cmap="jet", vmin=0, vmax=m, alpha=0.5)
    axes[1].set_title("attribution", fontsize=9)
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def plot_filters(images: list[torch.Tensor] | torch.Tensor, path: str | Path, *, title: str = "") -> Path:
    """Kernels, each ``(C, k, k)`` in [0, 1] (C = 1 or 3), as a grid of small images."""
    fig, axes = _tiles(1.1, len(images))
    for ax, im in zip(axes, images):
        a = im[0].numpy() if im.shape[0] == 1 else im.permute(1, 2, 0).numpy()
        ax.imshow(a, cmap="gray" if a.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_feature_maps(maps: torch.Tensor, path: str | Path, *, title: str = "", max_maps: int = 64) -> Path:
    """The channels of one ``(C, h, w)`` activation as a grid, each with its own colour scale."""
    maps = maps[:max_maps]
    fig, axes = _tiles(1.3, len(maps))
    for ax, m in zip(axes, maps):
        ax.imshow(m.numpy(), cmap="viridis", interpolation="nearest")
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)
