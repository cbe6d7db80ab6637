"""Reinforcement-learning curves: evaluation return against frames, with the random policy's for scale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._figure import new_figure, save_figure

__all__ = ["plot_returns", "plot_series"]


def plot_returns(rows: list[dict[str, Any]], path: str | Path, *, baseline: float | None = None, title: str = "") -> Path | None:
    """Write ``path`` (PNG) from DQN ``metrics.jsonl`` rows: mean and median evaluation return and the mean
    training-episode return against frames; ``baseline`` (the random policy's mean) as a dashed line."""
    rows = [r for r in rows if r.get("eval_return_mean") is not None]
    if not rows:
        return None
    frames = [r["frames"] for r in rows]
    fig = new_figure(figsize=(6.0, 4.0))
    ax = fig.subplots()
    ax.plot(frames, [r["eval_return_mean"] for r in rows], "-o", markersize=3, label="evaluation (mean)")
    ax.plot(frames, [r["eval_return_median"] for r in rows], ":", label="evaluation (median)")
    train = [r.get("train_return_mean") for r in rows]
    if any(t is not None for t in train):
        ax.plot(frames, [float("nan") if t is None else t for t in train], "-", alpha=0.6, label="training episodes")
    if baseline is not None:
        ax.axhline(baseline, linestyle="--", color="grey", label="random policy")
    ax.set_xlabel("frames")
    ax.set_ylabel("return")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path, dpi=100)


def plot_series(rows: list[dict[str, Any]], path: str | Path, *, x: str, panels: dict[str, list[str]], title: str = "") -> Path | None:
    """One panel per entry of ``panels`` (``{"win rate": ["win_rate_vs_random"], ...}``), each metric a line
    against ``x`` (self-play iterations, generations); None when there are no rows."""
    if not rows:
        return None
    fig = new_figure(figsize=(5.0 * len(panels), 4.0))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    xs = [r[x] for r in rows]
    for ax, (label, keys) in zip(axes, panels.items()):
        for key in keys:
            ys = [r.get(key) for r in rows]
            if any(y is not None for y in ys):
                ax.plot(xs, [float("nan") if y is None else y for y in ys], "-o", markersize=3, label=key)
        ax.set_xlabel(x)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, dpi=100)
