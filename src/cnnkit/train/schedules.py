"""Learning-rate schedules as pure functions of the global step.

A schedule is ``factor(step) -> float`` with ``lr = base_lr * factor(step)`` for every parameter group.
Being a pure function of the step, the schedule's whole state is the step counter, which makes exact
resume trivial (no scheduler object to serialize).

Schedules (``schedule.name``), all optionally preceded by a linear warm-up over ``warmup_epochs``:

- ``none``: constant.
- ``step``: ``gamma ** (epoch // step_size)`` (Krizhevsky et al. 2012 divided the lr by 10 on plateaus).
- ``cosine``: ``m + (1 - m) * (1 + cos(pi * t)) / 2`` with ``m = min_lr / lr`` (Loshchilov & Hutter 2017,
  SGDR without restarts), ``t`` running from 0 (first step after warm-up) to 1 (last step).
- ``onecycle``: Smith & Topin (2019), as ``torch.optim.lr_scheduler.OneCycleLR`` with cosine annealing:
  from ``lr/25`` up to ``lr`` over ``pct_start`` of the steps, then down to ``lr/25/1e4`` (or ``min_lr``).
  Its own rise replaces the warm-up.
- ``linear``: from 1 down to ``final_lr_fraction`` linearly.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..config.schema import ScheduleConfig
from ..registry import Registry

__all__ = ["SCHEDULES", "build_schedule", "apply_lr"]

Factor = Callable[[int], float]
SCHEDULES: Registry[Callable[[ScheduleConfig, float, int, int], Factor]] = Registry("schedule")


def _with_warmup(main: Callable[[float], float], warmup: int, total: int) -> Factor:
    """Linear warm-up ``(step + 1) / warmup`` for the first ``warmup`` steps, then ``main(t)``, t in [0, 1].

    ``t`` reaches 1 at the last step, so the last step trains at the schedule's final value.
    """
    span = max(1, total - warmup - 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return main(min(1.0, (step - warmup) / span))

    return factor


def _warmup_steps(cfg: ScheduleConfig, steps_per_epoch: int, total: int) -> int:
    return min(total, int(round(cfg.warmup_epochs * steps_per_epoch)))


@SCHEDULES.register("none")
def _none(cfg: ScheduleConfig, lr: float, total: int, steps_per_epoch: int) -> Factor:
    return _with_warmup(lambda t: 1.0, _warmup_steps(cfg, steps_per_epoch, total), total)


@SCHEDULES.register("step")
def _step(cfg: ScheduleConfig, lr: float, total: int, steps_per_epoch: int) -> Factor:
    warmup = _warmup_steps(cfg, steps_per_epoch, total)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return cfg.gamma ** ((step // steps_per_epoch) // cfg.step_size)

    return factor


@SCHEDULES.register("cosine")
def _cosine(cfg: ScheduleConfig, lr: float, total: int, steps_per_epoch: int) -> Factor:
    m = cfg.min_lr / lr
    return _with_warmup(
        lambda t: m + (1.0 - m) * (1.0 + math.cos(math.pi * t)) / 2.0, _warmup_steps(cfg, steps_per_epoch, total), total
    )


@SCHEDULES.register("linear")
def _linear(cfg: ScheduleConfig, lr: float, total: int, steps_per_epoch: int) -> Factor:
    f = cfg.final_lr_fraction
    return _with_warmup(lambda t: 1.0 + (f - 1.0) * t, _warmup_steps(cfg, steps_per_epoch, total), total)


@SCHEDULES.register("onecycle")
def _onecycle(cfg: ScheduleConfig, lr: float, total: int, steps_per_epoch: int) -> Factor:
    # Same phase boundaries and cosine annealing as torch.optim.lr_scheduler.OneCycleLR (three_phase=False,
    # div_factor=25, final_div_factor=1e4), so results match torch's reference step for step.
    initial = 1.0 / 25.0
    final = cfg.min_lr / lr if cfg.min_lr > 0 else initial / 1e4
    end_up = float(cfg.pct_start * total) - 1.0
    end_down = float(total - 1)

    def cos_anneal(start: float, end: float, pct: float) -> float:
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)

    def factor(step: int) -> float:
        step = min(step, total - 1)
        if step <= end_up:
            return cos_anneal(initial, 1.0, step / end_up if end_up > 0 else 1.0)
        return cos_anneal(1.0, final, (step - end_up) / (end_down - end_up))

    return factor


def build_schedule(cfg: ScheduleConfig, *, lr: float, total_steps: int, steps_per_epoch: int) -> Factor:
    """``factor(step)`` for the schedule named by ``cfg.name``."""
    return SCHEDULES.get(cfg.name)(cfg, lr, max(1, total_steps), max(1, steps_per_epoch))


def apply_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    """Set every group's ``lr`` to ``base_lr * factor`` (groups without ``base_lr`` keep their first lr)."""
    for group in optimizer.param_groups:
        base = group.setdefault("base_lr", group["lr"])
        group["lr"] = base * factor
