"""Which loop runs a config: ``cnnkit.train.fit`` asks here first, and hands the interactive tasks over."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config.loader import load_config
from ..config.schema import Config
from ..errors import CnnkitError
from ..tasks import RUNNER_TASKS

__all__ = ["interactive_runner"]


def _task_name(cfg: Config | None, resume: str | Path | None) -> str | None:
    if cfg is not None:
        return cfg.task.name
    if resume is None:
        return None
    from ..train.fit import resolve_run_dir  # the run's own config decides

    return load_config(resolve_run_dir(resume) / "config.yaml").task.name


def interactive_runner(cfg: Config | None, resume: str | Path | None, init_from: Any = None) -> Callable[..., dict[str, Any]] | None:
    """The runner of ``cfg``'s task when it has its own loop (``dqn``, ``alphazero``, ...), else None."""
    name = _task_name(cfg, resume)
    if name not in RUNNER_TASKS:
        return None
    if init_from is not None:
        raise CnnkitError(f"task {name!r} does not take --init-from; start a new run, or --resume one")
    if name == "dqn":
        from .loop import run_dqn

        return run_dqn
    from ..games import runner_for

    return runner_for(name)
