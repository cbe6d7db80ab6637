"""Attribution overlays: the input beside the attribution laid over it, with the prediction in the title."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .._plotting import save_figure
from ..evaluate.plots import to_display

__all__ = ["plot_overlay"]


def plot_overlay(x: torch.Tensor, attribution: torch.Tensor, path: str | Path, *, title: str, signed: bool = False) -> Path:
    """Write ``path``: left the input ``(C, H, W)``, right the map ``(H, W)`` over a gray copy of it.

    Non-negative maps use a sequential colour map scaled to their maximum; signed maps a diverging one,
    symmetric about 0 (red: raises the class score, blue: lowers it).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img = to_display(x)
    gray = img if img.ndim == 2 else img.mean(axis=2)
    a = attribution.detach().float().cpu().numpy()
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.6), dpi=100)
    try:
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
        path = save_figure(fig, path)
    finally:
        plt.close(fig)
    return path
