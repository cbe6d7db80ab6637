"""The task seam: how a batch becomes a loss, metrics, plots and predictions.

A :class:`Task` is data, like a model: registered by name in :data:`TASKS` (config key ``task``), it owns

- the targets it reads (:attr:`Task.target`, checked by :meth:`Task.check_target`);
- :meth:`Task.train_step` and :meth:`Task.eval_step`: ``(forward, x, y) -> StepOutput`` (loss, outputs);
- its metrics, accumulated on the device in a flat float64 tensor (:meth:`Task.metric_state`,
  :meth:`Task.update_metrics`) so the training loop never waits on the host, DDP sums them with one
  all-reduce and checkpoints store them as they are; :meth:`Task.compute_metrics` turns sums into numbers;
- how ``predict`` presents outputs (:meth:`Task.present`).

The training loop (:mod:`cnnkit.train.loop`) knows nothing else about the task, so a new application is
one module here plus its tests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..registry import Registry

__all__ = ["TASKS", "StepOutput", "Task", "Forward", "create_task", "register_task"]

TASKS: Registry[type[Task]] = Registry("task")

Forward = Callable[[Tensor], Any]
"""What a step calls to get outputs: the model, or the model wrapped in test-time augmentation."""


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: register ``cls`` under ``cls.name``."""
    TASKS.add(cls.name, cls, target=cls.target)
    return cls


def create_task(name: str = "classification", **kwargs: Any) -> Task:
    """Build a registered task by name; unknown names raise with close matches."""
    return TASKS.get(name)(**kwargs)


@dataclass
class StepOutput:
    """One step's result: ``loss`` (a scalar, what backward sees before weight penalties), the main
    ``outputs`` (for metrics) and the ``target`` they are measured against."""

    loss: Tensor
    outputs: Tensor
    target: Tensor


class Task(ABC):
    """Base class of tasks; subclasses set :attr:`name`, :attr:`target`, :attr:`metric_names` and
    implement the steps and metrics."""

    name: ClassVar[str]
    target: ClassVar[str]
    """What ``y`` holds, in words (shown in errors and ``cnnkit tasks``)."""
    metric_names: ClassVar[tuple[str, ...]]
    """The names :meth:`compute_metrics` returns; training reports them as ``train_<name>`` and
    ``val_<name>``, testing as ``test_<name>``."""
    monitor: ClassVar[tuple[str, str]] = ("loss", "min")
    """The metric (and ``"max"``/``"min"``) that picks the best weights when a validation split exists."""

    @abstractmethod
    def train_step(self, forward: Forward, x: Tensor, y: Tensor) -> StepOutput:
        """Forward + loss for one training batch (the loop runs it under autocast, then backward)."""

    def eval_step(self, forward: Forward, x: Tensor, y: Tensor) -> StepOutput:
        """Forward + loss for one evaluation batch; by default the training step."""
        return self.train_step(forward, x, y)

    @abstractmethod
    def metric_state(self, device: torch.device) -> Tensor:
        """A zeroed float64 tensor of metric sums (its layout is the task's own)."""

    @abstractmethod
    def update_metrics(self, state: Tensor, step: StepOutput) -> None:
        """Add one batch to ``state``, in place, on the device, without a host sync."""

    @abstractmethod
    def compute_metrics(self, state: Tensor) -> dict[str, float]:
        """Metric values from summed ``state`` (already reduced over processes); includes ``count``."""

    def check_target(self, y: Tensor) -> None:
        """Raise :class:`~cnnkit.errors.DataError` when ``y`` is not what this task reads."""

    def present(self, outputs: Tensor, *, class_names: list[str] | None = None, top_k: int = 3) -> list[dict[str, Any]]:
        """Per-item results of ``predict`` (JSON-ready), from a batch of outputs."""
        raise NotImplementedError(f"task {self.name!r} does not present predictions")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
