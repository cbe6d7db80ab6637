"""The task seam: how a batch becomes a loss, metrics, plots and predictions.

A :class:`Task` is data, like a model: registered by name in :data:`TASKS` (config key ``task``), it owns

- the targets it reads (:attr:`Task.target`, checked by :meth:`Task.check_target`);
- :meth:`Task.train_step` and :meth:`Task.eval_step`: ``(forward, x, y) -> StepOutput`` (loss, outputs);
- its metrics, accumulated on the device in a flat float64 tensor (:meth:`Task.metric_state`,
  :meth:`Task.update_metrics`) so the training loop never waits on the host, DDP sums them with one
  all-reduce and checkpoints store them as they are; :meth:`Task.compute_metrics` turns sums into numbers;
- which parameters each optimizer trains (:meth:`Task.optimizer_groups`: one by default; a GAN has two)
  and, for tasks that step their optimizers themselves (:attr:`Task.manual_optimization`),
  :meth:`Task.manual_train_step`;
- evaluation over a whole split (:meth:`Task.evaluate`: by default the streamed sums; tasks whose metrics
  need every output at once, such as mAP or ROC-AUC, override it);
- per-epoch artifacts and end-of-run figures (:meth:`Task.on_epoch_end`, :meth:`Task.write_plots`);
- how ``predict`` presents outputs (:meth:`Task.present`) and the closing line (:meth:`Task.headline`);
- figures ``summary.json`` carries under their own names next to the ``test_*`` ones
  (:meth:`Task.summary_fields`: a GAN's ``fid`` with its feature network, floor and ceiling).
- what it tunes on the validation split after training, if anything (:meth:`Task.fits_validation`,
  :meth:`Task.fitting`, :meth:`Task.set_fitted`, :meth:`Task.fitted_kwargs`: multilabel's decision
  thresholds, forecasting's conformal offsets), saved with the task in ``model.json``.

The training loop (:mod:`cnnkit.train.trainer`) knows nothing else about the task, so a new application
is one module here plus its tests. Tasks sit below ``runs``, ``evaluate`` and ``train`` in the package
order: they may use ``plots``, ``layers``, ``data`` and ``models``, never the trainer.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
from torch import Tensor, nn

from ..errors import ConfigError, did_you_mean
from ..registry import Registry

__all__ = ["TASKS", "StepOutput", "Task", "Forward", "Optimizers", "EvalStep", "create_task", "register_task"]

TASKS: Registry[type[Task]] = Registry("task")

Forward = Callable[[Tensor], Any]
"""What a step calls to get outputs: the model, or the model wrapped in test-time augmentation."""


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: register ``cls`` under ``cls.name``."""
    TASKS.add(cls.name, cls, target=cls.target)
    return cls


def create_task(name: str = "classification", defaults: Mapping[str, Any] | None = None, **kwargs: Any) -> Task:
    """Build a registered task by name; unknown names raise with close matches.

    Args:
        name: a name in :data:`TASKS` (``cnnkit tasks`` lists them).
        defaults: settings from elsewhere in the config that the task may take (``train.loss``,
            ``train.label_smoothing``): passed only when the task's constructor has that argument.
        kwargs: the ``task:`` section's keyword arguments; each must be an argument of the constructor.

    Raises:
        ConfigError: an argument the task does not take (with close matches), or a bad value.
    """
    cls = TASKS.get(name)
    params = inspect.signature(cls.__init__).parameters
    names = [p for p in params if p != "self"]
    for key in kwargs:
        if key not in params:
            raise ConfigError(
                f"task {name!r} has no argument {key!r}{did_you_mean(key, names)}; arguments: {', '.join(names) or '(none)'}"
            )
    merged = {k: v for k, v in (defaults or {}).items() if k in params}
    merged.update(kwargs)
    try:
        return cls(**merged)
    except ValueError as exc:
        raise ConfigError(f"task {name!r}: {exc}") from None


class Optimizers(Protocol):
    """What :meth:`Task.manual_train_step` steps: ``step(name, loss)`` runs backward on ``loss`` (scaled for
    fp16), clips, steps the optimizer ``name`` (a key of :meth:`Task.optimizer_groups`) and zeroes its
    gradients, with the run's NaN policy and EMA applied by the trainer; ``module(name)`` is that
    optimizer's module, to call in the step (DDP-wrapped under torchrun)."""

    def step(self, name: str, loss: Tensor) -> None: ...

    def module(self, name: str) -> nn.Module:
        """The module optimizer ``name`` trains, as the step must call it: under torchrun wrapped in its own
        DistributedDataParallel (so the backward of a loss through it averages its gradients over the
        processes, and its ``no_sync()`` skips that), otherwise the plain module."""
        ...


EvalStep = Callable[[Tensor, Tensor], "StepOutput"]
"""``step(x, y) -> StepOutput``: one evaluation batch through :meth:`Task.eval_step`, under the run's
precision and test-time augmentation (what :meth:`Task.evaluate` is given)."""


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
    manual_optimization: ClassVar[bool] = False
    """True: the loop calls :meth:`manual_train_step`, which steps the optimizers itself (a GAN's
    alternating updates); False: :meth:`train_step`, then one backward and one step of every optimizer."""

    def optimizer_groups(self, model: nn.Module) -> dict[str, nn.Module]:
        """The modules each optimizer trains, by name; each gets ``optim.*``'s settings. One by default."""
        return {"model": model}

    def manual_train_step(self, forward: Forward, x: Tensor, y: Tensor, optimizers: Optimizers) -> StepOutput:
        """One training batch, stepping ``optimizers`` itself; only with :attr:`manual_optimization`."""
        raise NotImplementedError(f"task {self.name!r} does not step its optimizers itself")

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

    def evaluate(self, step: EvalStep, batches: Iterable[tuple[Tensor, Tensor]], device: torch.device) -> dict[str, float]:
        """Metrics of a whole split: by default the streamed sums of :meth:`update_metrics`.

        Override to gather outputs when a metric needs all of them at once (mAP, ROC-AUC, FID); the result
        must include ``count`` and every name in :attr:`metric_names`. Under DDP it runs on rank 0 only.
        """
        sums = self.metric_state(device)
        for x, y in batches:
            self.update_metrics(sums, step(x, y))
        return self.compute_metrics(sums)

    # ------------------------------------------------------------------ fitted on the validation split
    # One protocol for every rule tuned after training (multilabel's thresholds, forecasting's conformal
    # offsets), so fit.py runs one pass: within ``fitting()`` the task's ``evaluate`` fits on the split it
    # is given and returns ``{"fitted": ..., "count": N}``, which the trainer shares across DDP ranks.
    _fitting: bool = False
    fitted_key: ClassVar[str] = "fitted"
    fitted_note: ClassVar[str] = "fitted on the validation split"
    """``summary.json[fitted_key]``: what the fitted rule is and where it came from, in words."""

    def fits_validation(self) -> bool:
        """True when this task tunes a rule on the validation split after training; False by default."""
        return False

    @contextmanager
    def fitting(self) -> Iterator[None]:
        """Within this block :meth:`evaluate` fits on the split it is given instead of measuring it."""
        self._fitting = True
        try:
            yield
        finally:
            self._fitting = False

    def set_fitted(self, fitted: Any) -> None:
        """Adopt what :meth:`evaluate` returned under :meth:`fitting` (its ``"fitted"`` value)."""

    def fitted_kwargs(self) -> dict[str, Any]:
        """Constructor arguments that rebuild the task as fitted (saved in ``model.json``); none by default."""
        return {}

    def on_epoch_end(self, *, epoch: int, model: nn.Module, run_dir: Path | None, device: torch.device) -> None:
        """After each epoch's checkpoint, on rank 0 (e.g. a GAN's sample grid in ``plots/``); nothing by default."""

    def write_plots(self, *, model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], run_dir: Path, device: torch.device) -> None:
        """Task figures at the end of training, from a few test batches, into ``run_dir/plots``; nothing by default."""

    def headline(self, metrics: Mapping[str, Any]) -> str | None:
        """The closing line of ``cnnkit train`` from the test metrics (``test accuracy: 99.11%``)."""
        key = self.monitor[0]
        value = metrics.get(f"test_{key}")
        return f"test {key}: {value:.4f}" if isinstance(value, (int, float)) else None

    def summary_fields(self, test: Mapping[str, Any]) -> dict[str, Any]:
        """Figures ``summary.json`` names as the task's papers do, from the test metrics (without the
        ``test_`` prefix); added next to every ``test_<name>``. None by default."""
        return {}

    def check_target(self, y: Tensor) -> None:
        """Raise :class:`~cnnkit.errors.DataError` when ``y`` is not what this task reads."""

    def present(self, outputs: Tensor, *, class_names: list[str] | None = None, top_k: int = 3) -> list[dict[str, Any]]:
        """Per-item results of ``predict`` (JSON-ready), from a batch of outputs."""
        raise NotImplementedError(f"task {self.name!r} does not present predictions")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
