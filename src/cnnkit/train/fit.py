"""``cnnkit.train.fit(config)``: what ``cnnkit train`` runs.

Builds the model (registry name or spec) and the data (sized to the model's input), trains with
:class:`~cnnkit.train.Trainer`, and writes the run folder: ``config.yaml`` (resolved), ``env.json``,
``metrics.jsonl``, ``summary.json``, ``model.safetensors`` + ``model.json``, ``plots/learning_curves.png``
and ``checkpoints/``. Under torchrun every rank calls it; only rank 0 writes and prints.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from ..config.loader import config_to_yaml, load_config
from ..config.schema import Config
from ..data import build_data
from ..errors import CnnkitError, DataError
from ..models import build_model, model_config_for_json, model_info
from ..models.build import accepted_data_kwargs
from ..runs import (
    RUN_MARKER,
    atomic_write_text,
    check_run_dir,
    environment_info,
    is_run_dir,
    make_run_dir,
    read_json,
    save_model,
)
from ..runtime import resolve_device, runtime_settings
from . import checkpoint as ckpt
from .distributed import DistInfo, broadcast_str, init_distributed, run_on_main, shutdown_distributed
from .progress import Progress, throughput_unit
from .trainer import Trainer, TrainingInterrupted
from .transfer import format_init_report, load_matching_weights

__all__ = ["fit", "resolve_run_dir"]

# Keys that may differ between a run's saved config and the one given with --resume: none of them changes
# what a training step computes (train.epochs lengthens or shortens the run).
_RESUME_FREE = {
    "name", "train.epochs", "train.threads", "train.device", "train.tensorboard", "train.log_every",
    "train.checkpoint.every_epochs", "train.checkpoint.every_steps", "train.checkpoint.keep_last",
}


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
    """The run folder for ``--resume``: the folder itself, or the parent of its checkpoints.

    A folder cnnkit created (``.cnnkit-run`` marker) whose run stopped before its first checkpoint qualifies
    too: :func:`fit` then starts it again from the beginning.
    """
    path = Path(resume)
    for cand in (path, path.parent, path.parent.parent):
        if (cand / "config.yaml").is_file() and ((cand / "checkpoints").is_dir() or is_run_dir(cand)):
            return cand
    raise CnnkitError(
        f"--resume {resume}: not a run folder (expected config.yaml with checkpoints/ or cnnkit's {RUN_MARKER} marker)"
    )


def _resume_config(run_dir: Path, cfg: Config | None) -> tuple[Config, dict[str, list[Any]]]:
    """The config to resume with, and the keys it changes (``{key: [saved, new]}``); refuses fixed keys by name."""
    saved = load_config(run_dir / "config.yaml")
    if cfg is None:
        return saved, {}
    a, b = _flatten(saved.model_dump(mode="json")), _flatten(cfg.model_dump(mode="json"))
    changed = {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
    fixed = [k for k in changed if k not in _RESUME_FREE]
    if fixed:
        k = fixed[0]
        raise CnnkitError(
            f"--resume {run_dir}: {', '.join(fixed)} cannot change on resume ({k}: {a.get(k)!r} in the run, "
            f"{b.get(k)!r} here); only train.epochs and settings that leave each step unchanged (device, threads, "
            f"logging, checkpoint frequency) can: start a new run instead, with --init-from {run_dir} to reuse its weights"
        )
    return cfg, changed


def _check_resume_arguments(run_dir: Path, *, out: str | Path | None, overwrite: bool, init_from: Any) -> None:
    """--resume takes no --init-from, --overwrite or other --out: refused rather than silently ignored."""
    if init_from is not None:
        raise CnnkitError(
            "--resume continues a run from its own checkpoint and --init-from starts a new run from another "
            "run's weights; give one of them"
        )
    if overwrite or (out is not None and Path(out).resolve() != run_dir.resolve()):
        raise CnnkitError(f"--resume {run_dir} continues the run in its own folder; drop --out and --overwrite")


def _recorded(run_dir: Path) -> bool:
    """Whether training has recorded anything in ``run_dir`` yet (a metric row or a checkpoint)."""
    return (run_dir / "metrics.jsonl").exists() or bool(ckpt.list_checkpoints(run_dir / "checkpoints"))


@contextmanager
def _discard_if_unstarted(run_dir: Path | None, existed_empty: bool) -> Iterator[None]:
    """On failure before training recorded anything, remove what this start created in ``run_dir``.

    So a failed start (a bad ``--init-from``, an unusable config, a full disk) leaves nothing that blocks a
    plain retry. A folder that existed (empty) before is emptied again, never removed.
    """
    try:
        yield
    except BaseException:
        if run_dir is not None and run_dir.is_dir() and not _recorded(run_dir):
            if not existed_empty:
                shutil.rmtree(run_dir, ignore_errors=True)
            for child in list(run_dir.iterdir()) if existed_empty else []:
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise


def _record_start(run_dir: Path, cfg: Config, device: torch.device, dist: DistInfo) -> None:
    """A new run's ``config.yaml`` and ``env.json`` (command, versions, start time)."""
    new_run = " or choose another --out"  # the folder is removed again if this fails
    atomic_write_text(run_dir / "config.yaml", config_to_yaml(cfg), then=new_run)
    env = environment_info(device)
    env["world_size"] = dist.world_size
    atomic_write_text(run_dir / "env.json", json.dumps(env, indent=2), then=new_run)


def _record_resume(
    run_dir: Path, cfg: Config, device: torch.device, dist: DistInfo, changed: dict[str, list[Any]], restart: bool
) -> None:
    """Append this resume (time, command, versions, changed keys) to ``env.json``, keeping the original start.

    ``config.yaml`` is rewritten only when a key changed (``--set train.epochs=30``), so that it always
    holds the config the run follows now.
    """
    try:
        env = read_json(run_dir / "env.json", what="environment record")
    except CnnkitError:  # missing or torn: the resumes are still worth recording
        env = {}
    if not isinstance(env, dict):
        env = {}
    entry = {**environment_info(device), "world_size": dist.world_size}
    if changed:
        entry["changed"] = changed
        atomic_write_text(run_dir / "config.yaml", config_to_yaml(cfg))
    if restart:
        entry["from_start"] = True
        # Rows of an attempt that never reached a checkpoint would be appended to, and repeated.
        (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    env.setdefault("resumes", []).append(entry)
    atomic_write_text(run_dir / "env.json", json.dumps(env, indent=2))


def _new_run_dir(cfg: Config, out: str | Path | None, overwrite: bool, dist: DistInfo, comm: torch.device) -> Path:
    """Rank 0 creates the folder (its name carries a timestamp) and tells the others."""
    name = run_on_main(lambda: str(make_run_dir(cfg.name or "default", out=out, overwrite=overwrite)), dist, comm)
    return Path(broadcast_str(name, dist, comm))


def _build_model_and_data(
    cfg: Config, device: torch.device, dist: DistInfo, *, spec_root: Path | None = None
) -> tuple[torch.nn.Module, Any, dict[str, Any]]:
    # spec_root: on --resume the config comes from the run folder, which may have been received: a spec path
    # in it may only name a file inside that folder.

    spec = cfg.model.as_dict()
    torch.manual_seed(cfg.seed)
    # The probe only tells the input shape the data must be brought to: built on the meta device it costs
    # no storage (VGG-16 took 2.3 s to build for real), and fork_rng leaves the random state alone.
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        probe = build_model(dict(spec), spec_root=spec_root)
    input_shape = tuple(getattr(probe, "input_shape", ()) or ())
    if not input_shape:
        raise CnnkitError(f"model {spec.get('name') or 'spec'} does not declare its input_shape")
    bundle = build_data(
        cfg.data, input_shape=input_shape, device=device, seed=cfg.seed, rank=dist.rank, world_size=dist.world_size
    )
    data_kwargs = dict(bundle.model_kwargs or {})
    extra: dict[str, Any] = {"num_classes": int(data_kwargs.pop("num_classes", bundle.num_classes))}
    data_shape = tuple(getattr(bundle, "input_shape", input_shape) or input_shape)
    if "in_channels" in data_kwargs:
        extra["in_channels"] = int(data_kwargs.pop("in_channels"))
    elif len(data_shape) > 1 and data_shape[0] != input_shape[0]:  # (L,) token ids have no channel axis
        extra["in_channels"] = int(data_shape[0])
    del probe
    torch.manual_seed(cfg.seed)  # same initial weights on every rank and on every rebuild
    model = build_model(dict(spec), spec_root=spec_root, data_kwargs=data_kwargs, **extra)
    if spec_root is not None and isinstance(spec.get("spec"), str):
        spec["spec"] = str(Path(spec_root) / spec["spec"])
    build = dict(model_config_for_json(dict(spec)))
    build.update(extra)
    build.update(accepted_data_kwargs(spec, data_kwargs))
    if build.get("name"):
        # Arguments only training reads (a pretrained-vectors file, the vocabulary to look up in it): the
        # weights file holds their effect, and a received model.json must not name files to read.
        for key in model_info(str(build["name"])).get("train_only", ()):
            build.pop(key, None)
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
            run's own saved config. With ``resume`` it may change only the keys that do not alter a training
            step (``train.epochs`` extends a finished or interrupted run).
        out: the run folder (default ``runs/<name>-<timestamp>``); with ``resume``, at most the run's own folder.
        overwrite: replace an existing ``out``, if cnnkit created it as a run folder.
        resume: a run folder to continue exactly where its newest usable checkpoint left off (a run stopped
            before its first checkpoint starts again from the beginning, in the same folder).
        init_from: a run folder whose matching weights initialize the model (transfer learning); not with
            ``resume``.
        quiet: print nothing but the final lines.

    Raises:
        TrainingInterrupted: on SIGTERM/SIGINT after saving (exit code 75; resume with ``--resume``).
        TrainingError: on a non-finite loss with ``train.nan_policy: stop``.

    Example:
        >>> summary = fit(load_config(None, ["train.epochs=1"]), out="runs/demo")  # doctest: +SKIP
    """
    from ..rl.dispatch import interactive_runner  # here, not at the top: cnnkit.rl imports cnnkit.train

    runner = interactive_runner(cfg, resume, init_from)  # dqn, alphazero, ...: loops of their own
    if runner is not None:
        return runner(cfg, out=out, overwrite=overwrite, resume=resume, quiet=quiet)
    start = time.perf_counter()
    run_dir: Path | None = None
    changed: dict[str, list[Any]] = {}
    restart = False
    if resume is not None:
        run_dir = resolve_run_dir(resume)
        _check_resume_arguments(run_dir, out=out, overwrite=overwrite, init_from=init_from)
        cfg, changed = _resume_config(run_dir, cfg)
        restart = not ckpt.list_checkpoints(run_dir / "checkpoints")
    elif cfg is None:
        cfg = load_config(None)
    if run_dir is None and isinstance(cfg.model.spec, str):
        # The run folder's config.yaml carries the spec itself, not a path: the run resumes (and can be
        # sent to someone) without the file, and --resume never follows a path found in a run folder.
        cfg = cfg.model_copy(deep=True)
        cfg.model.spec = model_config_for_json(cfg.model.as_dict())["spec"]
    tc = cfg.train
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(tc.device, local_rank)
    dist = init_distributed(device.type)
    comm = device if device.type == "cuda" else torch.device("cpu")  # gloo collectives take CPU tensors
    # The caller's torch settings (threads, determinism) come back when fit returns or raises.
    runtime = contextlib.ExitStack()
    try:
        runtime.enter_context(runtime_settings(threads=tc.threads, deterministic=tc.deterministic, device=device))
        progress = Progress(enabled=dist.is_main and not quiet)
        if run_dir is None:
            check_run_dir(out, overwrite=overwrite)
        # Model, data and --init-from weights first: a bad config, data file or source run must not leave
        # a half-made run folder behind.
        model, bundle, build = _build_model_and_data(cfg, device, dist, spec_root=run_dir)
        progress.unit = throughput_unit(bundle.kind)
        if init_from is not None:
            progress.message(format_init_report(load_matching_weights(model, init_from), init_from))
        new = run_dir is None
        existed_empty = out is not None and Path(out).is_dir() and not any(Path(out).iterdir())
        if run_dir is None:
            run_dir = _new_run_dir(cfg, out, overwrite, dist, comm)
        with _discard_if_unstarted(run_dir if new and dist.is_main else None, existed_empty):
            progress.message(f"run folder: {run_dir}")
            if restart:
                progress.message(f"{run_dir} stopped before its first checkpoint: starting it again from the beginning")
            if new:
                run_on_main(lambda: _record_start(run_dir, cfg, device, dist), dist, comm)
            else:
                run_on_main(lambda: _record_resume(run_dir, cfg, device, dist, changed, restart), dist, comm)
            trainer = _trainer(cfg, model, bundle, run_dir, device, dist, progress)
            summary = trainer.fit(resume=resume is not None and not restart)
            _fit_decision_rules(trainer, bundle, summary)
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
        run_on_main(lambda: _write_results(trainer, summary, build, bundle), dist, comm)
    except TrainingInterrupted:  # every rank stopped at the same agreed step
        shutdown_distributed(dist, together=True)
        raise
    except BaseException:
        shutdown_distributed(dist, together=False)
        raise
    finally:
        runtime.close()
    shutdown_distributed(dist, together=True)
    return summary


def _trainer(
    cfg: Config, model: torch.nn.Module, bundle: Any, run_dir: Path, device: torch.device, dist: DistInfo, progress: Progress
) -> Trainer:
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
    labels = getattr(bundle.train, "labels", None)
    if isinstance(labels, torch.Tensor):  # the data's targets are what the task reads, before any step
        try:
            trainer.task.check_target(labels)
        except DataError as exc:
            raise DataError(f"{exc} from {cfg.data.name}; choose the task that fits the data (task: ...), or how "
                            "its labels are read (data.targets: classes, labels or values)") from None
    return trainer


def _fit_decision_rules(trainer: Trainer, bundle: Any, summary: dict[str, Any]) -> None:
    """Tasks that tune a rule on the validation split (multilabel's per-label thresholds, forecasting's
    conformal offsets) tune it on the final weights, on every rank (rank 0 computes, the trainer shares
    it); the test metrics are then measured again with it."""
    task = trainer.task
    val = getattr(bundle, "val", None)
    if val is None or not task.fits_validation():
        return
    with task.fitting():
        fitted = trainer.evaluate(val)
    task.set_fitted(fitted["fitted"])
    if getattr(bundle, "test", None) is not None:
        test = trainer.evaluate(bundle.test)
        summary.update({("test_count" if k == "count" else f"test_{k}"): v for k, v in test.items()})
    summary[type(task).fitted_key] = task.fitted_note


def _task_record(cfg: Config, bundle: Any, task: Any = None) -> dict[str, Any]:
    kind = getattr(bundle, "kind", "image")
    meta = dict(getattr(bundle, "meta", None) or {})
    fitted = task.fitted_kwargs() if task is not None else {}
    if cfg.task.name == "classification" and not cfg.task.kwargs() and kind == "image" and not meta and not fitted:
        return {}
    return {"task": {"name": cfg.task.name, **cfg.task.kwargs(), **fitted}, "kind": kind, "data_meta": meta}


def _write_results(trainer: Trainer, summary: dict[str, Any], build: dict[str, Any], bundle: Any) -> None:
    """Rank 0: the model files and the summary, then the closing lines (printed even when quiet)."""
    run_dir = trainer.run_dir
    assert run_dir is not None
    cfg = trainer.cfg
    save_model(
        run_dir,
        trainer.eval_model,
        build=build,
        preprocessing=dict(getattr(bundle, "preprocessing", {}) or {}),
        class_names=list(getattr(bundle, "class_names", None) or []) or None,
        # What predict/serve need beyond the image path: the task and its settings, what x holds, and the
        # data's own facts (a vocabulary, a horizon). Only written when they differ from image classification,
        # so image run folders stay as they were.
        extra=_task_record(cfg, bundle, trainer.task),
    )
    trainer.write_summary(summary)
    line = trainer.task.headline(summary)
    if line is not None:
        print(line, flush=True)
    print(f"run folder: {run_dir}", flush=True)
