"""Pictures of clips for ``cnnkit explain`` on video models: frames, maps over them, frame importance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ._figure import new_figure, save_figure

__all__ = ["plot_clip_attribution"]


def plot_clip_attribution(
    clip: torch.Tensor, attribution: torch.Tensor, importance: torch.Tensor, path: str | Path, *, title: str,
    signed: bool = False,
) -> Path:
    """Write ``path``: the frames of ``clip`` ``(C, T, H, W)`` in the top row, the map ``(T, H, W)`` over a
    gray copy of each frame below (one colour scale for the whole clip, so frames compare), and each
    frame's importance ``(T,)`` as a bar chart at the bottom."""
    t = clip.shape[1]
    # One contrast for the whole clip (to_display would stretch each frame on its own).
    lo, hi = float(clip.min()), float(clip.max())
    unit = (clip - lo) / (hi - lo) if hi > lo else torch.zeros_like(clip)
    frames = [unit[0, k].numpy() if clip.shape[0] != 3 else unit[:, k].permute(1, 2, 0).numpy() for k in range(t)]
    a = attribution.detach().float().cpu().numpy()
    m = float(np.abs(a).max()) or 1.0
    fig = new_figure(figsize=(1.3 * t + 0.8, 4.6))
    grid = fig.add_gridspec(3, t, height_ratios=[1, 1, 0.8])
    for k in range(t):
        top = fig.add_subplot(grid[0, k])
        top.imshow(frames[k], cmap="gray" if frames[k].ndim == 2 else None, vmin=0, vmax=1)
        top.set_title(f"frame {k}", fontsize=7)
        low = fig.add_subplot(grid[1, k])
        gray = frames[k] if frames[k].ndim == 2 else frames[k].mean(axis=2)
        low.imshow(gray, cmap="gray", vmin=0, vmax=1)
        if signed:
            low.imshow(a[k], cmap="bwr", vmin=-m, vmax=m, alpha=0.6)
        else:
            low.imshow(a[k], cmap="jet", vmin=0, vmax=m, alpha=0.5)
        for ax in (top, low):
            ax.axis("off")
    bars = fig.add_subplot(grid[2, :])
    imp = importance.detach().float().cpu().numpy()
    bars.bar(np.arange(t), imp, color=["tab:red" if v < 0 else "tab:blue" for v in imp])
    bars.set_xticks(np.arange(t))
    bars.set_xlim(-0.5, t - 0.5)
    bars.set_xlabel("frame", fontsize=8)
    bars.set_ylabel("score drop" if signed else "share of the map", fontsize=8)
    bars.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)
