"""Learning curves: loss and accuracy (or any task metric) per epoch, train and validation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.ticker import MaxNLocator

from ._figure import new_figure, save_figure

__all__ = ["plot_learning_curves"]


def plot_learning_curves(
    rows: list[dict[str, Any]], path: str | Path, *, metrics: Sequence[str] = ("loss", "accuracy")
) -> Path | None:
    """Write ``path`` (PNG) from ``metrics.jsonl`` rows, one panel per metric; None when there are no rows."""
    if not rows:
        return None
    epochs = [r["epoch"] for r in rows]
    fig = new_figure(figsize=(5.0 * len(metrics), 4.0))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, what in zip(axes, metrics):
        for split, style in (("train", "-o"), ("val", "-s")):
            ys = [r.get(f"{split}_{what}") for r in rows]
            if any(y is not None for y in ys):
                ax.plot(epochs, [float("nan") if y is None else y for y in ys], style, label=split, markersize=3)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return save_figure(fig, path, dpi=100)
