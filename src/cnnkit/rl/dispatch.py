"""Which loop runs a config: ``cnnkit.train.fit`` asks here first, and hands the interactive tasks over."""

from __future__ import annotations

import os
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
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Each of these loops is one agent acting and learning in turn (self-play, replay, co-evolution):
        # N ranks would be N copies writing one run folder, not one run N times faster.
        raise CnnkitError(f"task {name!r} runs in one process: start it without torchrun (env.num_envs steps "
                          "several environments as one vector for a DQN agent)")
    if name == "dqn":
        from .loop import run_dqn

        return run_dqn
    from ..games import runner_for

    return runner_for(name)
