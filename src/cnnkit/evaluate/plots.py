"""Pictures of an evaluation: the confusion matrix (PNG and aligned text) and a grid of the most
confidently wrong images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .._plotting import save_figure

__all__ = ["confusion_matrix_text", "plot_confusion_matrix", "plot_image_grid", "to_display"]


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def confusion_matrix_text(cm: np.ndarray, class_names: list[str]) -> str:
    """The matrix as aligned text: rows are true classes, columns predicted classes."""
    cm = np.asarray(cm)
    names = [str(n) for n in class_names]
    width = max([len(str(int(cm.max()))) if cm.size else 1] + [min(len(n), 12) for n in names]) + 1
    label_w = max(len("true\\pred"), *(len(n) for n in names)) + 1
    lines = ["true\\pred".ljust(label_w) + "".join(n[:12].rjust(width) for n in names)]
    for name, row in zip(names, cm):
        lines.append(name.ljust(label_w) + "".join(str(int(v)).rjust(width) for v in row))
    return "\n".join(lines) + "\n"


def plot_confusion_matrix(cm: np.ndarray, class_names: list[str], path: str | Path, *, title: str = "Confusion matrix") -> Path:
    """Counts as a heat map, rows normalized for the colour (so rare classes stay visible), counts written
    in the cells when there are at most 30 classes."""
    plt = _plt()
    cm = np.asarray(cm)
    k = len(cm)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, np.maximum(rows, 1), dtype=np.float64)
    size = min(max(4.0, 0.45 * k + 2), 20.0)
    fig, ax = plt.subplots(figsize=(size, size), dpi=100)
    try:
        ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
        ticks = np.arange(k)
        ax.set_xticks(ticks, [str(n) for n in class_names], rotation=90 if k > 10 else 0)
        ax.set_yticks(ticks, [str(n) for n in class_names])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
        if k <= 30:
            for i in range(k):
                for j in range(k):
                    ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=7,
                            color="white" if frac[i, j] > 0.5 else "black")
        path = save_figure(fig, path)
    finally:
        plt.close(fig)
    return path


def to_display(x: torch.Tensor) -> np.ndarray:
    """A model input ``(C, H, W)`` as an ``(H, W)`` or ``(H, W, 3)`` array in [0, 1] (min-max per image,
    which undoes any per-channel normalization up to contrast)."""
    a = x.detach().float().cpu()
    if a.ndim == 3 and a.shape[0] not in (1, 3):
        a = a[:1]  # e.g. multi-channel inputs: show the first plane
    lo, hi = float(a.min()), float(a.max())
    a = (a - lo) / (hi - lo) if hi > lo else torch.zeros_like(a)
    a = a.numpy()
    if a.ndim == 3:
        a = a[0] if a.shape[0] == 1 else np.transpose(a, (1, 2, 0))
    return a


def plot_image_grid(images: list[torch.Tensor], titles: list[str], path: str | Path, *, suptitle: str = "", cols: int = 4) -> Path:
    """A grid of images with one title each."""
    plt = _plt()
    n = max(len(images), 1)
    cols = min(cols, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.8 * rows), dpi=100, squeeze=False)
    try:
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
        path = save_figure(fig, path)
    finally:
        plt.close(fig)
    return path
