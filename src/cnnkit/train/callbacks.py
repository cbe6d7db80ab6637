"""Callbacks: everything the training loop does besides forward, loss, backward and step.

The loop (:meth:`cnnkit.train.Trainer.fit`) calls each hook on every callback, in list order:

==========================  ===========================================================================
hook                        when
==========================  ===========================================================================
``on_fit_start(t)``         once, after the model is wrapped (DDP, compile) and before the first step
``on_epoch_start(t)``       before the first step of an epoch (or of its resumed remainder)
``on_before_backward(t,     after the forward and loss, before backward; any callback returning False
loss) -> bool``             skips the step (no backward, no optimizer step, no metric update)
``on_optimizer_step(t)``    after every optimizer step
``on_step_end(t)``          after every step, skipped or not (``t.loop.step`` counts it already)
``on_epoch_end(t, row)``    after the epoch's metric row is made (train sums, validation, lr, timing)
``on_after_epoch(t)``       after the position moved to the next epoch (what a checkpoint records)
``on_fit_end(t)``           once, after the last epoch, before the test evaluation
==========================  ===========================================================================

The default callbacks, in their order (:func:`default_callbacks`), and why that order:

1. :class:`StepGuard`: the NaN policy and, under DDP, the agreement on a stop request, decided with one
   all-reduce before each backward (first: nothing else may see a step that will be skipped).
2. :class:`MaxNorm`: the max-norm projection right after the step (before EMA averages the weights).
3. :class:`EMAUpdate`: the exponential moving average of the projected weights.
4. :class:`StepHook`: the user's ``on_step_end(trainer)`` (e.g. to request a stop at a given step).
5. :class:`ProgressBar`: the live line and the per-epoch line.
6. :class:`MetricsLogger`: the row into the history, ``metrics.jsonl`` and TensorBoard.
7. :class:`BestWeights`: best epoch by the monitored metric, early stopping (needs the row).
8. :class:`Checkpointer`: periodic checkpoints within an epoch, and the epoch-end checkpoint (after
   early stopping, so the checkpoint records whether the run has finished).
9. :class:`TaskHooks`: the task's per-epoch artifacts (a GAN's sample grid), after the checkpoint.

User callbacks (``Trainer(callbacks=[...])``) run after these. ``t`` is the :class:`~cnnkit.train.Trainer`;
callbacks read its public attributes (``t.loop``, ``t.cfg``, ``t.task``, ``t.dist``, ...).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..errors import CnnkitError
from ..runs import json_safe
from .distributed import all_reduce_sum, run_on_main
from .regularizers import max_norm_

__all__ = [
    "Callback", "StepGuard", "MaxNorm", "EMAUpdate", "StepHook", "ProgressBar", "MetricsLogger", "BestWeights",
    "Checkpointer", "TaskHooks", "default_callbacks",
]


class Callback:
    """Base class: every hook does nothing. See the module docstring for when each runs."""

    def on_fit_start(self, t: Any) -> None: ...

    def on_epoch_start(self, t: Any) -> None: ...

    def on_before_backward(self, t: Any, loss: torch.Tensor) -> bool:
        return True

    def on_optimizer_step(self, t: Any) -> None: ...

    def on_step_end(self, t: Any) -> None: ...

    def on_epoch_end(self, t: Any, row: dict[str, Any]) -> None: ...

    def on_after_epoch(self, t: Any) -> None: ...

    def on_fit_end(self, t: Any) -> None: ...


class StepGuard(Callback):
    """``train.nan_policy`` (stop: raise at the bad step; skip: skip it) and the DDP stop agreement.

    Under DDP a stop request (SIGTERM reaches ranks at different steps) must be acted on by every rank at
    the same step: it is all-reduced with the finite flag, in one collective, before each backward and
    honoured after that step. On CUDA with ``nan_policy: stop`` and one process the check is deferred to
    the progress and epoch sync points instead (a NaN poisons the epoch's loss sum, so none is missed),
    which spares a host sync per step.
    """

    def on_fit_start(self, t: Any) -> None:
        tc = t.cfg.train
        self.every_step = t.device.type != "cuda" or tc.nan_policy == "skip" or t.dist.enabled
        self.flags = torch.zeros(2, device=t.device)

    def on_epoch_start(self, t: Any) -> None:
        t.agreed_stop = False

    def on_before_backward(self, t: Any, loss: torch.Tensor) -> bool:
        if not self.every_step:
            return True
        self.flags[0] = (~torch.isfinite(loss.detach())).float()
        self.flags[1] = float(t.stop_flag.requested)
        all_reduce_sum(self.flags, t.dist)
        bad, stop = self.flags.tolist()
        if stop:
            t.agreed_stop = True
            t.stop_flag.request()
        if bad:
            if t.cfg.train.nan_policy == "stop":
                t.raise_nonfinite(loss)
            t.loop.skipped_steps += 1
            for opt in t.optimizers.values():
                opt.zero_grad(set_to_none=True)
            t.log(
                f"non-finite loss at epoch {t.loop.epoch + 1} step {t.loop.step + 1}: step skipped (train.nan_policy: skip)"
            )
            return False
        return True

    def on_step_end(self, t: Any) -> None:
        if not self.every_step and t.loop.step % t.cfg.train.log_every == 0:
            self.check_accumulated(t)

    def on_epoch_end(self, t: Any, row: dict[str, Any]) -> None:
        pass  # the epoch's deferred check runs in check_accumulated, called by the loop before the row

    def check_accumulated(self, t: Any) -> None:
        """The deferred check: every task's metric state holds the loss sum first."""
        if not self.every_step and not math.isfinite(t.loop.acc[0].item()):
            t.raise_nonfinite(t.loop.acc[0].item())


class MaxNorm(Callback):
    """The max-norm constraint (``train.max_norm``), projected after every optimizer step."""

    def on_optimizer_step(self, t: Any) -> None:
        if t.cfg.train.max_norm:
            max_norm_(t.raw_model, t.cfg.train.max_norm)


class EMAUpdate(Callback):
    """The exponential moving average of the weights (``train.ema``), after every optimizer step."""

    def on_optimizer_step(self, t: Any) -> None:
        if t.ema is not None:
            t.ema.update(t.raw_model)


class StepHook(Callback):
    """Calls ``fn(trainer)`` after every step (``Trainer(on_step_end=fn)``)."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def on_step_end(self, t: Any) -> None:
        if self.fn is not None:
            self.fn(t)


class ProgressBar(Callback):
    """The live progress line (loss, accuracy when the task has one, items/s) and the epoch lines."""

    def on_epoch_start(self, t: Any) -> None:
        t.progress.start_epoch(t.loop.epoch + 1, t.cfg.train.epochs, t.steps_per_epoch, t.loop.step)

    def on_step_end(self, t: Any) -> None:
        if t.progress.want_update():
            m = t.task.compute_metrics(t.loop.acc)
            ips = max(1, m["count"]) * t.dist.world_size / max(t.loop.elapsed(), 1e-9)
            t.progress.update(t.loop.step, loss=m["loss"], acc=m.get("accuracy", float("nan")), ips=ips)

    def on_epoch_end(self, t: Any, row: dict[str, Any]) -> None:
        t.progress.end_epoch(row, t.cfg.train.epochs)


class MetricsLogger(Callback):
    """The row into the history, ``metrics.jsonl`` (rank 0) and, with ``train.tensorboard``, TensorBoard."""

    def on_fit_start(self, t: Any) -> None:
        self.tb: Any = None
        if t.cfg.train.tensorboard and t.dist.is_main and t.run_dir is not None:
            try:  # optional dependency
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(t.run_dir / "tensorboard"))
            except ImportError:
                t.log("train.tensorboard: the tensorboard package is not installed; skipping TensorBoard logs")

    def on_epoch_end(self, t: Any, row: dict[str, Any]) -> None:
        t.loop.history.append(json_safe(row))
        if t.metrics_log is not None:
            log = t.metrics_log
            run_on_main(lambda: log.append(row), t.dist, t.device)
        if self.tb is not None:
            for k, v in row.items():
                if k != "epoch" and isinstance(v, (int, float)):
                    self.tb.add_scalar(k, v, t.loop.epoch + 1)

    def on_fit_end(self, t: Any) -> None:
        if self.tb is not None:
            self.tb.close()


class BestWeights(Callback):
    """The best epoch by ``t.monitor`` and, with ``train.early_stopping``, the stop and the best weights."""

    def on_epoch_end(self, t: Any, row: dict[str, Any]) -> None:
        loop = t.loop
        loop.improved = False
        if t.monitor is None:
            return
        value = row.get(t.monitor)
        if value is None:

            raise CnnkitError(
                f"train.early_stopping.monitor: {t.monitor!r} is not a metric of this run "
                f"(available: {', '.join(k for k in row if k not in ('epoch', 'seconds'))}); "
                "val_* metrics need data.val_fraction > 0"
            )
        if t.early is not None:
            loop.improved = t.early.update(float(value), epoch=loop.epoch + 1)
        else:
            loop.improved = loop.best_value is None or (
                value > loop.best_value if t.monitor_mode == "max" else value < loop.best_value
            )
        if loop.improved:
            loop.best_value, loop.best_epoch = float(value), loop.epoch + 1
            if t.early is not None:
                loop.best_state = {k: v.detach().clone() for k, v in t.eval_model.state_dict().items()}
        if t.early is not None and t.early.should_stop:
            loop.stopped_early = True
            t.log(
                f"early stopping: {t.monitor} did not improve for {t.early.patience} epochs "
                f"(best {loop.best_value:.4f} at epoch {loop.best_epoch})"
            )


class Checkpointer(Callback):
    """Checkpoints: every ``train.checkpoint.every_steps`` within an epoch, and at epoch ends every
    ``every_epochs``, at the last epoch, on a stop, and into ``best/`` when the epoch improved."""

    def on_step_end(self, t: Any) -> None:
        every = t.cfg.train.checkpoint.every_steps
        if every and t.loop.global_step % every == 0 and t.loop.step < t.steps_per_epoch and not t.stopping():
            t.loop.stop_timer()  # checkpoints are not training time
            t.save_checkpoint()

    def on_after_epoch(self, t: Any) -> None:
        ck = t.cfg.train.checkpoint
        loop = t.loop
        last = loop.stopped_early or loop.epoch >= t.cfg.train.epochs
        best = loop.improved and ck.keep_best
        if last or (ck.every_epochs and loop.epoch % ck.every_epochs == 0) or t.stop_at_epoch_end:
            t.save_checkpoint(best=best)
        elif best:
            t.save_checkpoint(best=True, last_k=False)


class TaskHooks(Callback):
    """The task's per-epoch artifacts (:meth:`cnnkit.tasks.Task.on_epoch_end`), on rank 0."""

    def on_after_epoch(self, t: Any) -> None:
        task, model = t.task, t.eval_model
        run_on_main(
            lambda: task.on_epoch_end(epoch=t.loop.epoch, model=model, run_dir=t.run_dir, device=t.device),
            t.dist, t.device,
        )


def default_callbacks(on_step_end: Any = None) -> list[Callback]:
    """The built-in callbacks in their documented order (see the module docstring)."""
    return [
        StepGuard(), MaxNorm(), EMAUpdate(), StepHook(on_step_end), ProgressBar(), MetricsLogger(), BestWeights(),
        Checkpointer(), TaskHooks(),
    ]
