"""Shared matplotlib plumbing: a headless backend and one way to write a figure to disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["save_figure"]


def save_figure(fig: Any, path: str | Path, **savefig_kwargs: Any) -> Path:
    """Lay out ``fig`` and write it to ``path``, creating the folder; the caller closes the figure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, **savefig_kwargs)
    return path
