"""Detections drawn on images: a figure grid for run folders, and a PIL drawing for ``predict``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.patches import Rectangle
from PIL import Image, ImageDraw

from ._figure import new_figure, save_figure

__all__ = ["draw_detections", "plot_detections"]

_COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def _display(x: torch.Tensor) -> np.ndarray:
    """A normalized (C, H, W) image rescaled to [0, 1] for display: (H, W) or (H, W, 3)."""
    x = x.float()
    x = (x - x.min()) / (x.max() - x.min()).clamp_min(1e-8)
    return x[0].numpy() if x.shape[0] == 1 else x[:3].permute(1, 2, 0).numpy()


def plot_detections(
    images: torch.Tensor, detections: torch.Tensor, targets: torch.Tensor | None, path: str | Path,
    *, score_threshold: float = 0.3,
) -> Path:
    """Images (B, C, H, W) with detections (B, D, 6) above ``score_threshold`` (red, labelled) and ground
    truth (B, M, 5) (green, dashed), one panel each."""
    n = len(images)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig = new_figure(figsize=(3 * cols, 3 * rows))
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(_display(images[i]), cmap="gray")
        ax.set_axis_off()
        if targets is not None:
            for _c, x1, y1, x2, y2 in targets[i][targets[i][:, 0] >= 0].tolist():
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="lime", linestyle="--", linewidth=1))
        for x1, y1, x2, y2, s, c in detections[i][(detections[i][:, 5] >= 0) & (detections[i][:, 4] >= score_threshold)].tolist():
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="red", linewidth=1))
            ax.text(x1, y1, f"{int(c)} {s:.2f}", color="red", fontsize=6, va="bottom")
    return save_figure(fig, path)


def draw_detections(
    image: Image.Image, detections: list[dict], *, score_threshold: float = 0.0
) -> Image.Image:
    """A copy of ``image`` (RGB) with each detection ``{box, score, class, name}`` drawn and labelled."""
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    for d in detections:
        if d["score"] < score_threshold:
            continue
        colour = _COLOURS[d["class"] % len(_COLOURS)]
        x1, y1, x2, y2 = d["box"]
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=max(1, round(min(out.size) / 150)))
        draw.text((x1 + 1, max(y1 - 10, 0)), f"{d['name']} {d['score']:.2f}", fill=colour)
    return out
