"""Where a training run stands: everything the loop advances, and what a checkpoint must restore.

One public dataclass, so the loop, its callbacks and :mod:`cnnkit.train.trainer_state` (checkpoints)
share the position of a run without reaching into each other's private fields.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["LoopState"]


@dataclass
class LoopState:
    """The position and record of a run.

    Attributes:
        epoch: the 0-based epoch being trained (``epochs`` once training is over).
        step: optimizer steps done within ``epoch``.
        global_step: optimizer steps done in all.
        acc: the task's running metric sums for this epoch (see :meth:`cnnkit.tasks.Task.metric_state`).
        history: one metric row per finished epoch (what ``metrics.jsonl`` holds).
        best_value, best_epoch: the monitored metric's best value and its epoch.
        best_state: the weights of the best epoch (early stopping with ``restore_best``), or None.
        improved: whether the epoch that just ended improved on the best.
        train_seconds: seconds spent in finished epochs; epoch_seconds: in this one so far.
        skipped_steps: steps skipped by ``train.nan_policy: skip``.
        stopped_early: early stopping ended the run.
    """

    acc: torch.Tensor
    epoch: int = 0
    step: int = 0
    global_step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_value: float | None = None
    best_epoch: int | None = None
    best_state: dict[str, torch.Tensor] | None = None
    improved: bool = False
    train_seconds: float = 0.0
    epoch_seconds: float = 0.0
    skipped_steps: int = 0
    stopped_early: bool = False
    _segment_start: float = field(default=0.0, repr=False)

    def start_timer(self) -> None:
        """Start timing a stretch of training steps."""
        self._segment_start = time.perf_counter()

    def stop_timer(self) -> None:
        """Add the stretch since :meth:`start_timer` to ``epoch_seconds`` (checkpoints are not timed)."""
        self.epoch_seconds += time.perf_counter() - self._segment_start
        self._segment_start = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds of training in this epoch so far, the running stretch included."""
        return self.epoch_seconds + time.perf_counter() - self._segment_start

    def advance_epoch(self) -> None:
        """Move to the start of the next epoch."""
        self.epoch += 1
        self.step = 0
        self.acc.zero_()
