"""Early stopping on a monitored metric with patience (Prechelt 1998; the article: "stop the training before
overfitting has had a chance to occur"). The trainer restores the best weights however training ends."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["EarlyStopping"]


class EarlyStopping:
    """Track a metric; ``should_stop`` after ``patience`` epochs without an improvement larger than ``min_delta``.

    Args:
        monitor: key of the metric row, e.g. ``val_accuracy`` or ``val_loss``.
        mode: ``max`` (accuracy) or ``min`` (loss).
        patience: epochs without improvement before stopping (>= 1).
        min_delta: an improvement must exceed this.

    Example:
        >>> es = EarlyStopping("val_loss", mode="min", patience=1)
        >>> es.update(1.0, epoch=1), es.update(1.1, epoch=2), es.should_stop
        (True, False, True)
    """

    def __init__(self, monitor: str = "val_accuracy", *, mode: str = "max", patience: int = 5, min_delta: float = 0.0) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"Expected mode in ('max', 'min'). Received: mode={mode!r}")
        if patience < 1:
            raise ValueError(f"Expected patience >= 1. Received: patience={patience}")
        if min_delta < 0:
            raise ValueError(f"Expected min_delta >= 0. Received: min_delta={min_delta}")
        self.monitor = monitor
        self.mode = mode
        self.patience = patience
        self.min_delta = min_delta
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0

    def is_better(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def update(self, value: float, *, epoch: int) -> bool:
        """Record an epoch's metric; return whether it is the new best."""
        if self.is_better(value):
            self.best, self.best_epoch, self.bad_epochs = float(value), epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state.get("best")
        self.best_epoch = state.get("best_epoch")
        self.bad_epochs = int(state.get("bad_epochs", 0))
