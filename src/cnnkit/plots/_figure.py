"""Figures that never touch matplotlib's global state.

Every cnnkit figure is a :class:`matplotlib.figure.Figure` with its own Agg canvas, written to a file and
dropped. Nothing here calls ``matplotlib.use`` or ``pyplot``: a library that switched the process-wide
backend would silently turn a notebook's inline/svg backend into Agg and break the user's later plots,
and pyplot's figure manager would keep every figure alive until closed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["new_figure", "save_figure"]


def new_figure(*, figsize: tuple[float, float], dpi: int = 100) -> Figure:
    """A figure with its own Agg canvas (file output only; no display, no pyplot)."""
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path, **savefig_kwargs: Any) -> Path:
    """Lay out ``fig`` and write it to ``path`` (its folder is created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, **savefig_kwargs)
    return path
