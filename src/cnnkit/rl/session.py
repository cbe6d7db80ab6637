"""The run folder of a loop that is not the supervised trainer's (DQN, self-play, co-evolution).

The same contract as ``cnnkit train``'s (:mod:`cnnkit.runs`): ``config.yaml``, ``env.json`` (resumes
appended), ``metrics.jsonl`` (rewritten from the checkpoint on resume, so no row repeats),
``summary.json``, ``model.safetensors`` + ``model.json``, ``plots/`` and ``checkpoints/`` (safetensors +
JSON, atomic, the newest two kept), and SIGTERM/SIGINT -> checkpoint -> exit 75.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config.loader import config_to_yaml, load_config
from ..config.schema import Config
from ..errors import CnnkitError
from ..runs import MetricsLog, atomic_write_text, check_run_dir, environment_info, json_safe, make_run_dir, read_json
from ..train import checkpoint as ckpt
from ..train.fit import resolve_run_dir
from ..train.progress import Progress
from ..train.signals import StopFlag

__all__ = ["RunSession", "open_session"]

# Keys that may change on --resume: they leave every step as it was (the budget only lengthens the run).
_BUDGET_KEYS = {"frames", "iterations", "generations", "epochs"}
_FREE = {"name", "train.threads", "train.device", "train.log_every", "train.checkpoint.keep_last", "task.checkpoint_every"}


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@dataclass
class RunSession:
    """An open run folder: where to write, what to resume from, how to report."""

    cfg: Config
    run_dir: Path
    progress: Progress
    resumed: ckpt.Checkpoint | None = None
    stop: StopFlag = field(default_factory=StopFlag)
    started: float = field(default_factory=time.perf_counter)

    @property
    def metrics(self) -> MetricsLog:
        return MetricsLog(self.run_dir / "metrics.jsonl")

    def checkpoint(self, step: int, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
        """Write ``checkpoints/step-<step>`` atomically and keep the newest ``train.checkpoint.keep_last``."""
        root = self.run_dir / "checkpoints"
        path = ckpt.write_checkpoint(root / f"step-{step}", tensors, {"global_step": int(step), **meta})
        ckpt.prune_checkpoints(root, self.cfg.train.checkpoint.keep_last)
        return path

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_text(self.run_dir / "summary.json", json.dumps(json_safe(summary), indent=2))


def _resume_config(run_dir: Path, cfg: Config | None) -> tuple[Config, dict[str, list[Any]]]:
    saved = load_config(run_dir / "config.yaml")
    if cfg is None:
        return saved, {}
    a, b = _flatten(saved.model_dump(mode="json")), _flatten(cfg.model_dump(mode="json"))
    changed = {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
    fixed = [k for k in changed if k not in _FREE and not (k.startswith("task.") and k[5:] in _BUDGET_KEYS)]
    if fixed:
        k = fixed[0]
        raise CnnkitError(
            f"--resume {run_dir}: {', '.join(fixed)} cannot change on resume ({k}: {a.get(k)!r} in the run, {b.get(k)!r} "
            f"here); only the budget (task.frames, task.iterations, task.generations) and settings that leave each step "
            f"unchanged can: start a new run instead"
        )
    return cfg, changed


def open_session(
    cfg: Config | None, *, out: str | Path | None, overwrite: bool, resume: str | Path | None, quiet: bool,
) -> RunSession:
    """Create (or, with ``resume``, reopen) the run folder and record the start or the resume."""
    progress = Progress(enabled=not quiet)
    if resume is not None:
        run_dir = resolve_run_dir(resume)
        if overwrite or (out is not None and Path(out).resolve() != run_dir.resolve()):
            raise CnnkitError(f"--resume {run_dir} continues the run in its own folder; drop --out and --overwrite")
        cfg, changed = _resume_config(run_dir, cfg)
        found = ckpt.list_checkpoints(run_dir / "checkpoints")
        resumed = ckpt.load_latest_checkpoint(run_dir / "checkpoints", log=progress.message) if found else None
        env: Any
        try:
            env = read_json(run_dir / "env.json", what="environment record")
        except CnnkitError:
            env = {}
        env = env if isinstance(env, dict) else {}
        entry: dict[str, Any] = dict(environment_info(torch.device("cpu")))
        if changed:
            entry["changed"] = changed
            atomic_write_text(run_dir / "config.yaml", config_to_yaml(cfg))
        if resumed is None:
            entry["from_start"] = True
            (run_dir / "metrics.jsonl").unlink(missing_ok=True)
            progress.message(f"{run_dir} stopped before its first checkpoint: starting it again from the beginning")
        env.setdefault("resumes", []).append(entry)
        atomic_write_text(run_dir / "env.json", json.dumps(env, indent=2))
        progress.message(f"run folder: {run_dir}")
        return RunSession(cfg=cfg, run_dir=run_dir, progress=progress, resumed=resumed)
    cfg = cfg or load_config(None)
    check_run_dir(out, overwrite=overwrite)
    run_dir = make_run_dir(cfg.name or cfg.task.name, out=out, overwrite=overwrite)
    try:
        atomic_write_text(run_dir / "config.yaml", config_to_yaml(cfg))
        atomic_write_text(run_dir / "env.json", json.dumps(environment_info(torch.device("cpu")), indent=2))
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    progress.message(f"run folder: {run_dir}")
    return RunSession(cfg=cfg, run_dir=run_dir, progress=progress)
