"""Reinforcement-learning curves: evaluation return against frames, with the random policy's for scale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._figure import new_figure, save_figure

__all__ = ["plot_returns"]


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
