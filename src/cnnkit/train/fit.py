"""``cnnkit.train.fit(config)``: what ``cnnkit train`` runs.

Builds the model (registry name or spec) and the data (sized to the model's input), trains with
:class:`~cnnkit.train.Trainer`, and writes the run folder: ``config.yaml`` (resolved), ``env.json``,
``metrics.jsonl``, ``summary.json``, ``model.safetensors`` + ``model.json``, ``plots/learning_curves.png``
and ``checkpoints/``. Under torchrun every rank calls it; only rank 0 writes and prints.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from ..config.loader import config_to_yaml, load_config
from ..config.schema import Config
from ..errors import CnnkitError
from ..runs import atomic_write_text, check_run_dir, environment_info, make_run_dir
from .distributed import DistInfo, barrier, broadcast_str, init_distributed, shutdown_distributed
from .progress import Progress
from .runtime import resolve_device, setup_runtime
from .trainer import Trainer
from .transfer import format_init_report, load_matching_weights

__all__ = ["fit", "resolve_run_dir"]

# Keys that may differ between a run's saved config and the one given with --resume.
_RESUME_FREE = {"name", "train.epochs", "train.threads", "train.device", "train.tensorboard", "train.log_every"}


def _process_seconds() -> float | None:
    """Seconds since this process started (Linux), so summaries can report end-to-end time."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        start = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]) / ticks
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start
    except (OSError, ValueError, IndexError):
        return None


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def resolve_run_dir(resume: str | Path) -> Path:
    """The run folder for ``--resume``: the folder itself, or the parent of its checkpoints."""
    path = Path(resume)
    for cand in (path, path.parent, path.parent.parent):
        if (cand / "config.yaml").is_file() and (cand / "checkpoints").is_dir():
            return cand
    raise CnnkitError(f"--resume {resume}: not a run folder with checkpoints (expected config.yaml and checkpoints/)")


def _resume_config(run_dir: Path, cfg: Config | None) -> Config:
    saved = load_config(run_dir / "config.yaml")
    if cfg is None:
        return saved
    a, b = _flatten(saved.model_dump(mode="json")), _flatten(cfg.model_dump(mode="json"))
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in _RESUME_FREE)
    if diff:
        k = diff[0]
        raise CnnkitError(
            f"--resume {run_dir}: config key {k} differs from the run's ({a.get(k)!r} there, {b.get(k)!r} here); "
            "resume with the run's own config (give no CONFIG), changing at most train.epochs"
        )
    return cfg


def _build_model_and_data(cfg: Config, device: torch.device, dist: DistInfo) -> tuple[torch.nn.Module, Any, dict[str, Any]]:
    from ..data import build_data
    from ..models import build_model, model_config_for_json

    spec = cfg.model.as_dict()
    torch.manual_seed(cfg.seed)
    probe = build_model(dict(spec))
    input_shape = tuple(getattr(probe, "input_shape", ()) or ())
    if not input_shape:
        raise CnnkitError(f"model {spec.get('name') or 'spec'} does not declare its input_shape")
    bundle = build_data(
        cfg.data, input_shape=input_shape, device=device, seed=cfg.seed, rank=dist.rank, world_size=dist.world_size
    )
    extra: dict[str, Any] = {"num_classes": int(bundle.num_classes)}
    data_shape = tuple(getattr(bundle, "input_shape", input_shape) or input_shape)
    if data_shape and data_shape[0] != input_shape[0]:
        extra["in_channels"] = int(data_shape[0])
    del probe
    torch.manual_seed(cfg.seed)  # same initial weights on every rank and on every rebuild
    model = build_model(dict(spec), **extra)
    build = dict(model_config_for_json(dict(spec)))
    build.update(extra)
    return model, bundle, build


def fit(
    cfg: Config | None = None,
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
    resume: str | Path | None = None,
    init_from: str | Path | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train a model as configured and write its run folder; returns the summary (also in ``summary.json``).

    Args:
        cfg: the run config; None means the built-in defaults (LeNet-5 on digits), or with ``resume`` the
            run's own saved config.
        out: the run folder (default ``runs/<name>-<timestamp>``).
        overwrite: replace an existing ``out``.
        resume: a run folder to continue exactly where its newest usable checkpoint left off.
        init_from: a run folder whose matching weights initialize the model (transfer learning).
        quiet: print nothing but the final lines.

    Raises:
        TrainingInterrupted: on SIGTERM/SIGINT after saving (exit code 75; resume with ``--resume``).
        TrainingError: on a non-finite loss with ``train.nan_policy: stop``.

    Example:
        >>> summary = fit(load_config(None, ["train.epochs=1"]), out="runs/demo")  # doctest: +SKIP
    """
    start = time.perf_counter()
    run_dir: Path | None = None
    if resume is not None:
        run_dir = resolve_run_dir(resume)
        cfg = _resume_config(run_dir, cfg)
    elif cfg is None:
        cfg = load_config(None)
    tc = cfg.train
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(tc.device, local_rank)
    dist = init_distributed(device.type)
    try:
        setup_runtime(threads=tc.threads, deterministic=tc.deterministic, device=device)
        progress = Progress(enabled=dist.is_main and not quiet)
        if run_dir is None:
            check_run_dir(out, overwrite=overwrite)
        # Model and data first: a bad config or data file must not leave a half-made run folder behind.
        model, bundle, build = _build_model_and_data(cfg, device, dist)
        if run_dir is None:
            name = None
            if dist.is_main:
                name = str(make_run_dir(cfg.name or "default", out=out, overwrite=overwrite))
            run_dir = Path(broadcast_str(name, dist, device if device.type == "cuda" else torch.device("cpu")))
            if dist.is_main:
                atomic_write_text(run_dir / "config.yaml", config_to_yaml(cfg))
        if dist.is_main:
            env = environment_info(device)
            env["world_size"] = dist.world_size
            atomic_write_text(run_dir / "env.json", json.dumps(env, indent=2))
        if init_from is not None and resume is None:
            report = load_matching_weights(model, init_from)
            progress.message(format_init_report(report, init_from))
        trainer = Trainer(
            model,
            train_loader=bundle.train,
            val_loader=getattr(bundle, "val", None),
            test_loader=bundle.test,
            cfg=cfg,
            run_dir=run_dir,
            device=device,
            dist=dist,
            progress=progress,
        )
        if trainer.frozen:
            progress.message(f"frozen: {len(trainer.frozen)} parameter tensors ({trainer.frozen[0]}, ...)")
        summary = trainer.fit(resume=resume is not None)
        summary.update(
            {
                "run_dir": str(run_dir),
                "name": cfg.name,
                "model": build.get("name") or "spec",
                "dataset": cfg.data.name,
                "seed": cfg.seed,
                "wall_seconds": time.perf_counter() - start,
                "process_seconds": _process_seconds(),
            }
        )
        if dist.is_main:
            from ..runs import save_model

            save_model(
                run_dir,
                trainer.eval_model,
                build=build,
                preprocessing=dict(getattr(bundle, "preprocessing", {}) or {}),
                class_names=list(getattr(bundle, "class_names", None) or []) or None,
            )
            trainer.write_summary(summary)
            acc = summary.get("test_accuracy")
            if acc is not None:
                print(f"test accuracy: {100 * acc:.2f}%", flush=True)
            print(f"run folder: {run_dir}", flush=True)
        barrier(dist)
        return summary
    finally:
        shutdown_distributed(dist)
