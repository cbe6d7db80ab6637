"""Learning curves (loss and accuracy per epoch, train and validation) as a PNG, with matplotlib's Agg."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._plotting import save_figure

__all__ = ["plot_learning_curves"]


def plot_learning_curves(rows: list[dict[str, Any]], path: str | Path) -> Path | None:
    """Write ``path`` (PNG) from metric rows; returns None when there is nothing to plot."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, what in zip(axes, ("loss", "accuracy")):
        for split, style in (("train", "-o"), ("val", "-s")):
            key = f"{split}_{what}"
            ys = [r.get(key) for r in rows]
            if any(y is not None for y in ys):
                ax.plot(epochs, [float("nan") if y is None else y for y in ys], style, label=split, markersize=3)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        ax.legend()
    try:
        return save_figure(fig, path, dpi=100)
    finally:
        plt.close(fig)
