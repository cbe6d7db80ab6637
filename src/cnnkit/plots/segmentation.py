"""Segmentation figures: image, truth and prediction side by side; masks coloured with Pascal VOC's palette."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ._figure import new_figure, save_figure
from .images import to_display

__all__ = ["colourize", "overlay", "plot_segmentation_samples"]


def _palette() -> np.ndarray:
    # Pascal VOC's colour map (the VOC devkit's labelcolormap), as (256, 3) uint8.
    from ..data.sources.scenes import voc_palette

    return np.asarray(voc_palette(), dtype=np.uint8).reshape(256, 3)


def colourize(mask: np.ndarray | torch.Tensor) -> np.ndarray:
    """``(H, W)`` class indices -> ``(H, W, 3)`` uint8 colours (VOC palette; 255 = ignore is cream)."""
    m = np.asarray(mask.cpu() if isinstance(mask, torch.Tensor) else mask).astype(np.int64).clip(0, 255)
    return _palette()[m]


def overlay(image: np.ndarray, mask: np.ndarray | torch.Tensor, *, alpha: float = 0.5) -> np.ndarray:
    """``image`` (``(H, W)`` gray or ``(H, W, 3)``, uint8) blended with the coloured mask; background
    (class 0) pixels stay as they are."""
    img = np.asarray(image)
    img = np.repeat(img[..., None], 3, axis=-1) if img.ndim == 2 else img
    col = colourize(mask).astype(np.float64)
    m = np.asarray(mask.cpu() if isinstance(mask, torch.Tensor) else mask) > 0
    out = img.astype(np.float64)
    out[m] = (1 - alpha) * out[m] + alpha * col[m]
    return out.round().clip(0, 255).astype(np.uint8)


def plot_segmentation_samples(images: torch.Tensor, truths: torch.Tensor, preds: torch.Tensor, path: str | Path) -> Path:
    """One row per image: the (normalized) image, its true mask and the predicted mask (the masks may be
    smaller than the image, for valid-convolution models)."""
    n = len(images)
    fig = new_figure(figsize=(6.6, 2.2 * max(n, 1)))
    axes = fig.subplots(max(n, 1), 3, squeeze=False)
    for i in range(n):
        panels = [(to_display(images[i]), "image"), (colourize(truths[i]), "truth"), (colourize(preds[i]), "prediction")]
        for ax, (img, title) in zip(axes[i], panels):
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    return save_figure(fig, path)
