"""Model inputs as pictures: display scaling and titled image grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ._figure import new_figure, save_figure

__all__ = ["plot_image_grid", "to_display"]


def to_display(x: torch.Tensor) -> np.ndarray:
    """A model input ``(C, H, W)`` as an ``(H, W)`` or ``(H, W, 3)`` array in [0, 1] (min-max per image,
    which undoes any per-channel normalization up to contrast). A clip ``(C, T, H, W)`` becomes a filmstrip:
    its frames side by side, ``(C, H, T * W)``."""
    a = x.detach().float().cpu()
    if a.ndim == 4:
        a = a.permute(0, 2, 1, 3).reshape(a.shape[0], a.shape[2], -1)
    if a.ndim == 3 and a.shape[0] not in (1, 3):
        a = a[:1]  # e.g. multi-channel inputs: show the first plane
    lo, hi = float(a.min()), float(a.max())
    a = (a - lo) / (hi - lo) if hi > lo else torch.zeros_like(a)
    arr = a.numpy()
    if arr.ndim == 3:
        arr = arr[0] if arr.shape[0] == 1 else np.transpose(arr, (1, 2, 0))
    return arr


def plot_image_grid(images: list[torch.Tensor], titles: list[str], path: str | Path, *, suptitle: str = "", cols: int = 4) -> Path:
    """A grid of images with one title each."""
    n = max(len(images), 1)
    cols = min(cols, n)
    rows = (n + cols - 1) // cols
    fig = new_figure(figsize=(2.6 * cols, 2.8 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img, title in zip(axes.ravel(), images, titles):
        a = to_display(img)
        ax.imshow(a, cmap="gray" if a.ndim == 2 else None, vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
    if not images:
        axes[0, 0].text(0.5, 0.5, "none", ha="center", va="center")
    if suptitle:
        fig.suptitle(suptitle)
    return save_figure(fig, path)
