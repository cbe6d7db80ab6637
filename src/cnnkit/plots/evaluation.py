"""Pictures of an evaluation: the confusion matrix (PNG and aligned text) and the reliability diagram."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._figure import new_figure, save_figure

__all__ = ["confusion_matrix_text", "plot_confusion_matrix", "plot_reliability"]


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
    cm = np.asarray(cm)
    k = len(cm)
    frac = np.divide(cm, np.maximum(cm.sum(axis=1, keepdims=True), 1), dtype=np.float64)
    size = min(max(4.0, 0.45 * k + 2), 20.0)
    fig = new_figure(figsize=(size, size))
    ax = fig.subplots()
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
    return save_figure(fig, path)


def plot_reliability(bins: dict[str, Any], path: str | Path, *, title: str = "Reliability diagram", ece: float | None = None) -> Path:
    """The reliability diagram (accuracy per confidence bin against the diagonal; Guo et al. 2017, Fig. 1)."""
    edges = np.asarray(bins["edges"])
    width = edges[1:] - edges[:-1]
    acc = np.array([a if a is not None else 0.0 for a in bins["accuracy"]])
    conf = np.array([c if c is not None else 0.0 for c in bins["confidence"]])
    fig = new_figure(figsize=(4.5, 4.5))
    ax = fig.subplots()
    ax.bar(edges[:-1], acc, width=width, align="edge", edgecolor="black", label="accuracy")
    ax.bar(edges[:-1], conf - acc, bottom=acc, width=width, align="edge", color="red", alpha=0.3, label="gap")
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(title + (f" (ECE {ece:.3f})" if ece is not None else ""))
    ax.legend(loc="upper left")
    return save_figure(fig, path)
