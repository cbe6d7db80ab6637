"""The training loop: :class:`Trainer`, usable from Python with any ``nn.Module``.

One optimizer step per batch: forward under the configured precision, loss (+ weight penalty), a
non-finite check decided identically on all ranks, backward (scaled for fp16), optional gradient-norm
clipping, the step, the max-norm projection, the EMA update. At each epoch end: validation, a metric row,
early stopping, the best weights, a checkpoint. Checkpoints hold everything needed to continue at the same
(epoch, step) exactly; see :mod:`cnnkit.train.checkpoint`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config.loader import validate_config
from ..config.schema import Config
from ..errors import CnnkitError
from ..runs import MetricsLog, atomic_write_text, json_safe, write_error
from ..runtime import autocast_context, resolve_device, setup_runtime
from ..tasks import Task, create_task
from . import checkpoint as ckpt
from .distributed import DistInfo, all_reduce_sum, broadcast_json, run_on_main
from .early_stopping import EarlyStopping
from .ema import ModelEMA
from .evaluation import epoch_batches, tta_logits
from .optim import build_optimizer
from .progress import Progress
from .regularizers import max_norm_, penalty_loss, penalty_params
from .schedules import apply_lr, build_schedule
from .signals import RESUMABLE_EXIT_CODE, StopFlag, handle_stop_signals
from .trainer_state import collect_state, restore_state
from .transfer import freeze

__all__ = ["Trainer", "TrainingError", "TrainingInterrupted"]


class TrainingError(CnnkitError):
    """Training cannot go on (a non-finite loss under ``train.nan_policy: stop``).

    Every rank raises it at the same step; ``rank`` lets the command line print it from rank 0 only.
    """

    def __init__(self, message: str, rank: int = 0) -> None:
        super().__init__(message)
        self.rank = rank


class TrainingInterrupted(CnnkitError):
    """SIGTERM/SIGINT (or :meth:`Trainer.request_stop`): the step was finished and a checkpoint saved.

    Under DDP every rank raises it after the same step; ``rank`` lets the command line print it once.
    """

    exit_code = RESUMABLE_EXIT_CODE

    def __init__(self, message: str, run_dir: Path | None = None, rank: int = 0) -> None:
        super().__init__(message)
        self.run_dir = run_dir
        self.rank = rank


class Trainer:
    """Train any ``nn.Module`` with the settings of a :class:`~cnnkit.config.Config`.

    Args:
        model: the network (plain module; the trainer wraps it in DDP / ``torch.compile`` as configured).
        train_loader: batches ``(x, y)``; a cnnkit loader (``epoch_batches``) or any sized iterable.
        val_loader: optional, evaluated after each epoch (``val_*`` metrics, early stopping, best weights).
        test_loader: optional, evaluated once at the end.
        cfg: a Config, a mapping validated into one, or None for the defaults.
        run_dir: where metrics, checkpoints and the summary go (rank 0); None keeps everything in memory.
        dist: the distributed context (from :func:`cnnkit.train.distributed.init_distributed`).
        quiet: no progress output.
        on_step_end: called as ``on_step_end(trainer)`` after every optimizer step (e.g. to request a stop).

    Example:
        >>> trainer = Trainer(net, train_loader=loader, cfg={"train": {"epochs": 2}})  # doctest: +SKIP
        >>> summary = trainer.fit()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        train_loader: Any,
        val_loader: Any = None,
        test_loader: Any = None,
        cfg: Config | dict[str, Any] | None = None,
        run_dir: str | Path | None = None,
        device: str | torch.device | None = None,
        dist: DistInfo | None = None,
        quiet: bool = False,
        progress: Progress | None = None,
        on_step_end: Callable[[Trainer], None] | None = None,
        task: Task | None = None,
    ) -> None:
        self.cfg = cfg if isinstance(cfg, Config) else validate_config(dict(cfg or {}))
        tc = self.cfg.train
        self.dist = dist or DistInfo()
        self.device = torch.device(device) if device is not None else resolve_device(tc.device, self.dist.local_rank)
        setup_runtime(threads=tc.threads, deterministic=tc.deterministic, device=self.device)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.train_loader, self.val_loader, self.test_loader = train_loader, val_loader, test_loader
        self.progress = progress or Progress(enabled=self.dist.is_main and not quiet)
        self.on_step_end = on_step_end
        self.stop_flag = StopFlag()

        self.raw_model = model.to(self.device)
        if tc.channels_last:
            self.raw_model = self.raw_model.to(memory_format=torch.channels_last)
        self.frozen = freeze(self.raw_model, tc.freeze)
        self.optimizer = build_optimizer(self.raw_model, self.cfg.optim)
        self.steps_per_epoch = len(train_loader)
        if self.steps_per_epoch < 1:
            raise CnnkitError("the training set yields no batches (check data.batch_size and data.limit_train)")
        self.total_steps = tc.epochs * self.steps_per_epoch
        self.schedule = build_schedule(
            self.cfg.schedule, lr=self.cfg.optim.lr, total_steps=self.total_steps, steps_per_epoch=self.steps_per_epoch
        )
        # The task turns a batch into a loss and metrics (cnnkit.tasks); the loop knows nothing else of it.
        self.task = task if task is not None else create_task(
            self.cfg.task.name, defaults={"loss": tc.loss, "label_smoothing": tc.label_smoothing}, **self.cfg.task.kwargs()
        )
        self._penalty_params = (
            penalty_params(self.raw_model, tc.penalty.params) if (tc.penalty.l1 > 0 or tc.penalty.l2 > 0) else []
        )
        self.ema = ModelEMA(self.raw_model, decay=tc.ema.decay, every_steps=tc.ema.every_steps) if tc.ema else None
        es = tc.early_stopping
        self.early = EarlyStopping(es.monitor, mode=es.mode, patience=es.patience, min_delta=es.min_delta) if es else None
        # The best-weights record: by the early-stopping monitor, else validation accuracy when there is a
        # validation set, else none.
        if es is not None:
            names = self.task.metric_names
            known = [f"train_{n}" for n in names] + ["lr"] + ([f"val_{n}" for n in names] if val_loader is not None else [])
            if es.monitor not in known:
                hint = "; val_* metrics need a validation set (data.val_fraction > 0)" if es.monitor.startswith("val_") else ""
                raise CnnkitError(
                    f"train.early_stopping.monitor: {es.monitor!r} is not a metric of this run "
                    f"(available: {', '.join(known)}){hint}"
                )
            self.monitor, self.monitor_mode = es.monitor, es.mode
        elif val_loader is not None:
            self.monitor, self.monitor_mode = f"val_{self.task.monitor[0]}", self.task.monitor[1]
        else:
            self.monitor, self.monitor_mode = None, "max"
        self.scaler = (
            torch.amp.GradScaler("cuda") if tc.precision == "fp16" and self.device.type == "cuda" else None
        )
        autocast_context(tc.precision, self.device)  # validates precision vs device now, not mid-run
        self.model: nn.Module = self.raw_model  # wrapped (DDP, compile) in _prepare

        # Loop state (all of it goes into checkpoints).
        self.epoch = 0  # 0-based epoch being trained
        self.step = 0  # optimizer steps done within self.epoch
        self.global_step = 0
        self.history: list[dict[str, Any]] = []
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.train_seconds = 0.0
        self.skipped_steps = 0
        self.stopped_early = False
        self._acc = self.task.metric_state(self.device)  # the task's running sums for this epoch
        self._epoch_seconds = 0.0
        self._prepared = False
        self._tb: Any = None
        self.metrics_log = MetricsLog(self.run_dir / "metrics.jsonl") if self.run_dir is not None else None

    # ------------------------------------------------------------------ public API

    @property
    def eval_model(self) -> nn.Module:
        """The weights evaluated and saved: the EMA copy when ``ema.evaluate_with_ema``, else the model."""
        if self.ema is not None and self.cfg.train.ema is not None and self.cfg.train.ema.evaluate_with_ema:
            return self.ema.module
        return self.raw_model

    def request_stop(self) -> None:
        """Ask the loop to finish the current step, save a checkpoint and raise :class:`TrainingInterrupted`."""
        self.stop_flag.request()

    def log(self, text: str) -> None:
        self.progress.message(text)

    @torch.no_grad()
    def evaluate(self, loader: Any, *, model: nn.Module | None = None, tta: str | None = None) -> dict[str, float]:
        """Loss and accuracy of ``model`` (default: :attr:`eval_model`) on ``loader``.

        Under DDP rank 0 evaluates and shares the result: evaluation loaders are not sharded, and rank 0's
        weights (EMA included; other ranks' BatchNorm statistics drift between DDP's buffer broadcasts) are
        the ones checkpointed and saved, so metrics stay reproducible across a resume.
        """
        model = model if model is not None else self.eval_model
        tta = tta if tta is not None else self.cfg.train.tta
        was_training = model.training
        model.eval()

        def forward(v: torch.Tensor) -> Any:
            return tta_logits(model, v, tta)

        def step(x: torch.Tensor, y: torch.Tensor) -> Any:
            x, y = self._to_device(x, y)
            with autocast_context(self.cfg.train.precision, self.device):
                return self.task.eval_step(forward, x, y)

        metrics = self.task.evaluate(step, epoch_batches(loader, 0), self.device) if self.dist.is_main else None
        model.train(was_training)
        return broadcast_json(metrics, self.dist, self.device)

    def fit(self, *, resume: bool | str | Path = False) -> dict[str, Any]:
        """Train for ``train.epochs`` (or until early stopping); returns the summary.

        Args:
            resume: True to continue from the newest usable checkpoint in ``run_dir/checkpoints``, or a
                checkpoint folder / run folder.
        """
        start = time.perf_counter()
        resumed_from = None
        if resume:
            resumed_from = self._resume(resume)
        else:
            self._seed_training()
        self._prepare(fresh=not resume)
        tc = self.cfg.train
        try:
            with handle_stop_signals(self.stop_flag):
                while self.epoch < tc.epochs and not self.stopped_early:
                    if self._train_epoch():
                        break
        finally:
            self.progress.close()
        if self.early is not None and self.cfg.train.early_stopping and self.cfg.train.early_stopping.restore_best:
            self._restore_best()
        summary = self._finish(start, resumed_from)
        if self.run_dir is not None:
            run_on_main(lambda: self._write_outputs(summary), self.dist, self.device)
        return summary

    def _write_outputs(self, summary: dict[str, Any]) -> None:
        from ..plots import plot_learning_curves

        assert self.run_dir is not None
        self.write_summary(summary)
        path = self.run_dir / "plots" / "learning_curves.png"
        try:
            plot_learning_curves(self.history, path)
        except OSError as exc:
            raise write_error(path, exc) from None

    # ------------------------------------------------------------------ setup

    def _seed_training(self) -> None:
        import random

        import numpy as np

        seed = self.cfg.seed + 1_000_003 * self.dist.rank  # dropout masks differ between ranks
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)

    def _prepare(self, *, fresh: bool) -> None:
        if self._prepared:
            return
        self._prepared = True
        if fresh and hasattr(self.raw_model, "init_from_data"):
            self._init_from_data()
            if self.ema is not None:  # the average starts from the data-initialized weights
                ema_cfg = self.cfg.train.ema
                self.ema = ModelEMA(self.raw_model, decay=ema_cfg.decay, every_steps=ema_cfg.every_steps)
        model: nn.Module = self.raw_model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            model = DDP(model, device_ids=ids)
        if self.cfg.train.compile:
            model = torch.compile(model)  # type: ignore[assignment]
        self.model = model
        if self.cfg.train.tensorboard and self.dist.is_main and self.run_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.run_dir / "tensorboard"))
            except ImportError:
                self.log("train.tensorboard: the tensorboard package is not installed; skipping TensorBoard logs")

    @torch.no_grad()
    def _init_from_data(self, max_images: int = 5000) -> None:
        """Give the model's ``init_from_data`` hook (e.g. a frozen whitening conv) up to 5,000 training images."""
        chunks, n = [], 0
        for x, _ in epoch_batches(self.train_loader, 0):
            chunks.append(x.to(self.device))
            n += x.shape[0]
            if n >= max_images:
                break
        images = torch.cat(chunks)[:max_images]
        if self.cfg.train.channels_last and images.ndim == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        self.raw_model.init_from_data(images)  # type: ignore[operator]

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True)
        if self.cfg.train.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    # ------------------------------------------------------------------ the loop

    def _train_epoch(self) -> bool:
        """Train ``self.epoch`` from ``self.step``; returns True when training should end (early stopping)."""
        tc = self.cfg.train
        spe = self.steps_per_epoch
        # On CUDA with nan_policy stop and one process, the finite check is deferred to the progress/epoch
        # sync points (a NaN poisons the epoch's loss sum, so nothing is missed); elsewhere it is per step.
        check_every_step = self.device.type != "cuda" or tc.nan_policy == "skip" or self.dist.enabled
        if self.step == 0:
            self._acc.zero_()
            self._epoch_seconds = 0.0
        self.progress.start_epoch(self.epoch + 1, tc.epochs, spe, self.step)
        t0 = time.perf_counter()
        flags = torch.zeros(2, device=self.device)
        batches = epoch_batches(self.train_loader, self.epoch, self.step)
        stop_mid_epoch = False
        # Under DDP a stop request must be acted on by every rank at the same step: it is all-reduced with
        # the finite flag before each backward and honoured after that step (one step later than alone).
        agreed_stop = False
        for x, y in batches:
            x, y = self._to_device(x, y)
            apply_lr(self.optimizer, self.schedule(self.global_step))
            with autocast_context(tc.precision, self.device):
                step = self.task.train_step(self.model, x, y)
            total = step.loss
            if self._penalty_params:
                total = total + penalty_loss(self._penalty_params, l1=tc.penalty.l1, l2=tc.penalty.l2)
            skip = False
            if check_every_step:
                flags[0] = (~torch.isfinite(total.detach())).float()
                flags[1] = float(self.stop_flag.requested)
                all_reduce_sum(flags, self.dist)
                bad, stop = flags.tolist()
                if stop:
                    agreed_stop = True
                    self.stop_flag.request()
                if bad:
                    if tc.nan_policy == "stop":
                        self._raise_nonfinite(total)
                    skip = True
            if skip:
                self.skipped_steps += 1
                self.optimizer.zero_grad(set_to_none=True)
                self.log(f"non-finite loss at epoch {self.epoch + 1} step {self.step + 1}: step skipped (train.nan_policy: skip)")
            else:
                self._backward_and_step(total)
                with torch.no_grad():
                    self.task.update_metrics(self._acc, step)
            self.step += 1
            self.global_step += 1
            if self.on_step_end is not None:
                self.on_step_end(self)
            if self.progress.want_update():
                m = self.task.compute_metrics(self._acc)
                dt = self._epoch_seconds + time.perf_counter() - t0
                self.progress.update(
                    self.step, loss=m["loss"], acc=m.get("accuracy", float("nan")),
                    ips=max(1, m["count"]) * self.dist.world_size / max(dt, 1e-9),
                )
            if not check_every_step and self.step % tc.log_every == 0:
                self._check_accumulated_finite()
            stop_now = agreed_stop if self.dist.enabled else self.stop_flag.requested
            if stop_now and self.step < spe:
                stop_mid_epoch = True
                break
            every = tc.checkpoint.every_steps
            if every and self.global_step % every == 0 and self.step < spe:
                self._epoch_seconds += time.perf_counter() - t0
                t0 = time.perf_counter()
                self._save_checkpoint()
        self._epoch_seconds += time.perf_counter() - t0
        if stop_mid_epoch:
            self._save_checkpoint()
            self._interrupted()
        if not check_every_step:
            self._check_accumulated_finite()
        return self._end_epoch()

    def _backward_and_step(self, total: torch.Tensor) -> None:
        tc = self.cfg.train
        if self.scaler is not None:
            self.scaler.scale(total).backward()
            if tc.grad_clip:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), tc.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            total.backward()
            if tc.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), tc.grad_clip)
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if tc.max_norm:
            max_norm_(self.raw_model, tc.max_norm)
        if self.ema is not None:
            self.ema.update(self.raw_model)

    def _raise_nonfinite(self, value: torch.Tensor | float) -> None:
        v = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
        saved = ""
        if self.run_dir is not None:
            root = self.run_dir / "checkpoints"
            # Claim an intact checkpoint only when there is one (a NaN can come before the first).
            has_one = bool(ckpt.list_checkpoints(root))
            saved = f" and the last good checkpoint in {root} is intact" if has_one else ", before its first checkpoint"
        raise TrainingError(
            f"non-finite loss ({v}) at epoch {self.epoch + 1} step {self.step + 1}; training stopped "
            f"(train.nan_policy: stop){saved}. Try a lower optim.lr, train.grad_clip, or train.nan_policy: skip",
            rank=self.dist.rank,
        )

    def _check_accumulated_finite(self) -> None:
        # Every task's state holds the loss sum first; a NaN anywhere in the epoch poisons it.
        if not math.isfinite(self._acc[0].item()):
            self._raise_nonfinite(self._acc[0].item())

    def _agree_stop(self) -> bool:
        """Whether any rank was asked to stop (the same answer on every rank)."""
        if self.dist.enabled:
            flag = torch.tensor([float(self.stop_flag.requested)], device=self.device)
            all_reduce_sum(flag, self.dist)
            if flag.item() > 0:
                self.stop_flag.request()
        return self.stop_flag.requested

    def _end_epoch(self) -> bool:
        tc = self.cfg.train
        stop = self._agree_stop()
        acc = self._acc.clone()
        all_reduce_sum(acc, self.dist)
        train = self.task.compute_metrics(acc)
        count = train["count"]
        self.train_seconds += self._epoch_seconds
        row: dict[str, Any] = {"epoch": self.epoch + 1}
        row.update({f"train_{k}": train[k] for k in self.task.metric_names})
        if self.val_loader is not None:
            val = self.evaluate(self.val_loader)
            row.update({f"val_{k}": val[k] for k in self.task.metric_names})
        row["lr"] = self.optimizer.param_groups[0]["lr"]
        row["seconds"] = self._epoch_seconds
        row["images_per_second"] = count / self._epoch_seconds if self._epoch_seconds > 0 else 0.0
        if self.skipped_steps:
            row["skipped_steps"] = self.skipped_steps
        self.history.append(json_safe(row))
        if self.metrics_log is not None:
            log = self.metrics_log
            run_on_main(lambda: log.append(row), self.dist, self.device)
        if self._tb is not None:
            for k, v in row.items():
                if k != "epoch" and isinstance(v, (int, float)):
                    self._tb.add_scalar(k, v, self.epoch + 1)
        self.progress.end_epoch(row, tc.epochs)

        improved = False
        if self.monitor is not None:
            value = row.get(self.monitor)
            if value is None:
                raise CnnkitError(
                    f"train.early_stopping.monitor: {self.monitor!r} is not a metric of this run "
                    f"(available: {', '.join(k for k in row if k not in ('epoch', 'seconds'))}); "
                    "val_* metrics need data.val_fraction > 0"
                )
            if self.early is not None:
                improved = self.early.update(float(value), epoch=self.epoch + 1)
            else:
                improved = self.best_value is None or (
                    value > self.best_value if self.monitor_mode == "max" else value < self.best_value
                )
            if improved:
                self.best_value, self.best_epoch = float(value), self.epoch + 1
                if self.early is not None:
                    self.best_state = {k: v.detach().clone() for k, v in self.eval_model.state_dict().items()}
        finished = self.early is not None and self.early.should_stop
        if finished:
            self.stopped_early = True
            self.log(
                f"early stopping: {self.monitor} did not improve for {self.early.patience} epochs "  # type: ignore[union-attr]
                f"(best {self.best_value:.4f} at epoch {self.best_epoch})"
            )
        self.epoch += 1
        self.step = 0
        self._acc.zero_()
        ck = tc.checkpoint
        last = finished or self.epoch >= tc.epochs
        if last or (ck.every_epochs and self.epoch % ck.every_epochs == 0) or stop:
            self._save_checkpoint(best=improved and ck.keep_best)
        elif improved and ck.keep_best:
            self._save_checkpoint(best=True, last_k=False)
        if stop and not last:
            self._interrupted()
        return finished

    def _interrupted(self) -> None:
        self.progress.close()
        rank = self.dist.rank
        if self.run_dir is not None:
            raise TrainingInterrupted(f"interrupted; resume with cnnkit train --resume {self.run_dir}", self.run_dir, rank)
        raise TrainingInterrupted("interrupted (no run folder, so nothing was saved)", rank=rank)

    def _restore_best(self) -> None:
        if self.best_state is not None:
            self.eval_model.load_state_dict(self.best_state)
            if self.eval_model is not self.raw_model:
                self.raw_model.load_state_dict(self.best_state)
            if self.best_epoch != len(self.history):
                self.log(f"restored the best weights (epoch {self.best_epoch}, {self.monitor} {self.best_value:.4f})")

    def _finish(self, start: float, resumed_from: str | None) -> dict[str, Any]:
        test = self.evaluate(self.test_loader) if self.test_loader is not None else None
        final = self.history[-1] if self.history else {}
        total_images = sum(r["images_per_second"] * r["seconds"] for r in self.history)
        summary: dict[str, Any] = {
            "task": self.task.name,
            "test_accuracy": test.get("accuracy") if test else None,
            "test_loss": test.get("loss") if test else None,
            "test_count": test.get("count") if test else None,
            # every metric the task reports, as test_<name> (test_f1_macro, test_rmse, test_miou, ...)
            **{f"test_{k}": v for k, v in (test or {}).items() if k not in ("accuracy", "loss", "count")},
            "epochs": len(self.history),
            "steps": self.global_step,
            "train_seconds": self.train_seconds,
            "wall_seconds": time.perf_counter() - start,
            "best_epoch": self.best_epoch if self.best_epoch is not None else (len(self.history) or None),
            "monitor": self.monitor,
            "best_value": self.best_value,
            "stopped_early": self.stopped_early,
            "final_train_loss": final.get("train_loss"),
            "final_train_accuracy": final.get("train_accuracy"),
            "final_val_accuracy": final.get("val_accuracy"),
            "images_per_second": total_images / self.train_seconds if self.train_seconds > 0 else None,
            "skipped_steps": self.skipped_steps,
            "num_params": sum(p.numel() for p in self.raw_model.parameters()),
            "device": str(self.device),
            "precision": self.cfg.train.precision,
            "world_size": self.dist.world_size,
            "ema": self.eval_model is not self.raw_model,
            "tta": self.cfg.train.tta,
            "resumed_from": resumed_from,
        }
        if self._tb is not None:
            self._tb.close()
        return json_safe(summary)

    # ------------------------------------------------------------------ checkpoints

    def _checkpoint_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return collect_state(self)

    def _save_checkpoint(self, *, best: bool = False, last_k: bool = True) -> None:
        if self.run_dir is None:
            return
        tensors, meta = self._checkpoint_state()  # collective: every rank takes part
        # Rank 0 writes every rank's state; if it cannot, all ranks stop together with its message.
        run_on_main(lambda: self._write_checkpoint(tensors, meta, best=best, last_k=last_k), self.dist, self.device)

    def _write_checkpoint(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], *, best: bool, last_k: bool) -> None:
        assert self.run_dir is not None
        root = self.run_dir / "checkpoints"
        folders = ([root / f"step-{self.global_step:09d}"] if last_k else []) + ([root / "best"] if best else [])
        for folder in folders:
            had_one = bool(ckpt.list_checkpoints(root))
            try:
                ckpt.write_checkpoint(folder, tensors, meta)
            except OSError as exc:
                kept = "the previous checkpoint is intact" if had_one else "no checkpoint was written yet"
                raise ckpt.CheckpointError(
                    str(write_error(folder, exc, then=f", then cnnkit train --resume {self.run_dir} ({kept})"))
                ) from None
            if folder.name != "best":
                ckpt.prune_checkpoints(root, self.cfg.train.checkpoint.keep_last)

    def _resume(self, resume: bool | str | Path) -> str:
        if resume is True:
            if self.run_dir is None:
                raise CnnkitError("resume needs a run folder")
            source = self.run_dir / "checkpoints"
        else:
            source = Path(resume)
            if (source / "checkpoints").is_dir():
                source = source / "checkpoints"
        if (source / "COMPLETE").exists() or (source / "state.json").exists():
            state = ckpt.read_checkpoint(source)
        else:
            state = ckpt.load_latest_checkpoint(source, log=self.log)
        self._load_state(state)
        self.log(f"resumed from {state.path} (epoch {self.epoch + 1}, step {self.step}/{self.steps_per_epoch})")
        return str(state.path)

    def _load_state(self, state: ckpt.Checkpoint) -> None:
        restore_state(self, state)

    def write_summary(self, summary: dict[str, Any]) -> None:
        if self.run_dir is not None and self.dist.is_main:
            atomic_write_text(self.run_dir / "summary.json", json.dumps(json_safe(summary), indent=2))

