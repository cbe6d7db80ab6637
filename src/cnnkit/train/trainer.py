"""The training loop: :class:`Trainer`, usable from Python with any ``nn.Module``.

The loop itself is :meth:`Trainer._train_epoch`: per batch, the task's step (forward and loss under the
configured precision), the callbacks' say on the step (NaN policy, DDP stop agreement), backward (scaled
for fp16), optional gradient-norm clipping and the optimizer step. Everything else (max-norm, EMA,
progress, metric rows, best weights and early stopping, checkpoints, the task's per-epoch artifacts) is a
callback with a documented order (:mod:`cnnkit.train.callbacks`). Checkpoints hold everything needed to
continue at the same (epoch, step) exactly (:mod:`cnnkit.train.trainer_state`).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config.loader import validate_config
from ..config.schema import Config
from ..errors import CnnkitError
from ..runs import MetricsLog, atomic_write_text, json_safe, write_error
from ..runtime import autocast_context, resolve_device, runtime_settings
from ..tasks import Task, create_task
from . import checkpoint as ckpt
from .callbacks import Callback, StepGuard, default_callbacks
from .distributed import DistInfo, all_reduce_sum, broadcast_json, run_on_main
from .early_stopping import EarlyStopping
from .ema import ModelEMA
from .evaluation import epoch_batches, tta_logits
from .loop_state import LoopState
from .optim import build_optimizer
from .progress import Progress
from .regularizers import penalty_loss, penalty_params
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
    """Train any ``nn.Module`` with the settings of a :class:`~cnnkit.config.Config`, or with keywords.

    Args:
        model: the network (plain module; the trainer wraps it in DDP / ``torch.compile`` as configured).
        train_loader: batches ``(x, y)``; a cnnkit loader (``epoch_batches``) or any sized iterable.
        val_loader: optional, evaluated after each epoch (``val_*`` metrics, early stopping, best weights).
        test_loader: optional, evaluated once at the end.
        cfg: a Config, a mapping validated into one, or None for the defaults.
        task: a :class:`~cnnkit.tasks.Task`, a task name, or None for ``cfg.task``.
        optimizer: an optimizer name (``"adamw"``), a ready ``torch.optim.Optimizer`` over ``model``'s
            parameters, or None for ``cfg.optim``.
        lr, epochs: shorthands for ``optim.lr`` and ``train.epochs``.
        run_dir: where metrics, checkpoints and the summary go (rank 0); None keeps everything in memory.
        dist: the distributed context (from :func:`cnnkit.train.distributed.init_distributed`).
        quiet: no progress output.
        on_step_end: called as ``on_step_end(trainer)`` after every optimizer step (e.g. to request a stop).
        callbacks: more :class:`~cnnkit.train.callbacks.Callback` objects, run after the built-in ones.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> trainer = Trainer(net, train_loader=[(x, y)], optimizer="adam", lr=1e-2, epochs=3, quiet=True)
        >>> summary = trainer.fit()
        >>> summary["epochs"], summary["steps"]
        (3, 3)
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        train_loader: Any,
        val_loader: Any = None,
        test_loader: Any = None,
        cfg: Config | dict[str, Any] | None = None,
        task: Task | str | None = None,
        optimizer: str | torch.optim.Optimizer | None = None,
        lr: float | None = None,
        epochs: int | None = None,
        run_dir: str | Path | None = None,
        device: str | torch.device | None = None,
        dist: DistInfo | None = None,
        quiet: bool = False,
        progress: Progress | None = None,
        on_step_end: Callable[[Trainer], None] | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.cfg = _with_keywords(cfg, task=task, optimizer=optimizer, lr=lr, epochs=epochs)
        tc = self.cfg.train
        self.dist = dist or DistInfo()
        self.device = torch.device(device) if device is not None else resolve_device(tc.device, self.dist.local_rank)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.train_loader, self.val_loader, self.test_loader = train_loader, val_loader, test_loader
        self.progress = progress or Progress(enabled=self.dist.is_main and not quiet)
        self.stop_flag = StopFlag()
        self.agreed_stop = False  # set by StepGuard: every rank agreed to stop after this step
        self.stop_at_epoch_end = False  # every rank agreed, at the epoch's end, to stop after its checkpoint

        self.raw_model = model.to(self.device)
        if tc.channels_last:
            self.raw_model = self.raw_model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.frozen = freeze(self.raw_model, tc.freeze)
        # The task turns a batch into a loss and metrics (cnnkit.tasks); the loop knows nothing else of it.
        if isinstance(task, Task):
            self.task = task
        else:
            self.task = create_task(
                self.cfg.task.name, defaults={"loss": tc.loss, "label_smoothing": tc.label_smoothing}, **self.cfg.task.kwargs()
            )
        if isinstance(optimizer, torch.optim.Optimizer):
            self.optimizers: dict[str, torch.optim.Optimizer] = {"model": optimizer}
            groups: dict[str, nn.Module] = {"model": self.raw_model}
        else:
            groups = self.task.optimizer_groups(self.raw_model)
            self.optimizers = {name: build_optimizer(module, self.cfg.optim) for name, module in groups.items()}
        # What a manual task's step calls for each optimizer (each wrapped in DDP in _prepare, under torchrun).
        self.group_modules: dict[str, nn.Module] = dict(groups)
        self.steps_per_epoch = len(train_loader)
        if self.steps_per_epoch < 1:
            raise CnnkitError("the training set yields no batches (check data.batch_size and data.limit_train)")
        self.total_steps = tc.epochs * self.steps_per_epoch
        self.schedule = build_schedule(
            self.cfg.schedule, lr=self.cfg.optim.lr, total_steps=self.total_steps, steps_per_epoch=self.steps_per_epoch
        )
        self._penalty_params = (
            penalty_params(self.raw_model, tc.penalty.params) if (tc.penalty.l1 > 0 or tc.penalty.l2 > 0) else []
        )
        # The EMA copy is made once the weights are final (after a data-dependent init, in _prepare).
        self.ema: ModelEMA | None = None
        es = tc.early_stopping
        self.early = EarlyStopping(es.monitor, mode=es.mode, patience=es.patience, min_delta=es.min_delta) if es else None
        self.monitor, self.monitor_mode = self._choose_monitor()
        self.scaler = (
            torch.amp.GradScaler("cuda") if tc.precision == "fp16" and self.device.type == "cuda" else None
        )
        autocast_context(tc.precision, self.device)  # validates precision vs device now, not mid-run
        self.model: nn.Module = self.raw_model  # wrapped (DDP, compile) in _prepare
        self.loop = LoopState(acc=self.task.metric_state(self.device))
        self.callbacks: list[Callback] = default_callbacks(on_step_end) + list(callbacks)
        self._prepared = False
        self.metrics_log = MetricsLog(self.run_dir / "metrics.jsonl") if self.run_dir is not None else None
        self._stepper = _Stepper(self)

    # ------------------------------------------------------------------ public API

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The first (usually the only) optimizer."""
        return next(iter(self.optimizers.values()))

    @property
    def eval_model(self) -> nn.Module:
        """The weights evaluated and saved: the EMA copy when ``ema.evaluate_with_ema``, else the model."""
        if self.ema is not None and self.cfg.train.ema is not None and self.cfg.train.ema.evaluate_with_ema:
            return self.ema.module
        return self.raw_model

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.loop.history

    @property
    def global_step(self) -> int:
        return self.loop.global_step

    def request_stop(self) -> None:
        """Ask the loop to finish the current step, save a checkpoint and raise :class:`TrainingInterrupted`."""
        self.stop_flag.request()

    def stopping(self) -> bool:
        """Whether the loop stops after this step (under DDP: once every rank agreed)."""
        return self.agreed_stop if self.dist.enabled else self.stop_flag.requested

    def log(self, text: str) -> None:
        self.progress.message(text)

    @torch.no_grad()
    def evaluate(self, loader: Any, *, model: nn.Module | None = None, tta: str | None = None) -> dict[str, float]:
        """The task's metrics of ``model`` (default: :attr:`eval_model`) on ``loader``.

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
        tc = self.cfg.train
        with runtime_settings(threads=tc.threads, deterministic=tc.deterministic, device=self.device):
            return self._fit(resume)

    def _fit(self, resume: bool | str | Path) -> dict[str, Any]:
        start = time.perf_counter()
        resumed_from = None
        if resume:
            self._prepare(fresh=False)  # the EMA copy exists before the checkpoint fills it
            resumed_from = self._resume(resume)
        else:
            self._seed_training()
            self._prepare(fresh=True)
        self._call("on_fit_start")
        try:
            with handle_stop_signals(self.stop_flag):
                while self.loop.epoch < self.cfg.train.epochs and not self.loop.stopped_early:
                    self._train_epoch()
        finally:
            self.progress.close()
        self._call("on_fit_end")
        if self.early is not None and self.cfg.train.early_stopping and self.cfg.train.early_stopping.restore_best:
            self._restore_best()
        summary = self._finish(start, resumed_from)
        if self.run_dir is not None:
            run_on_main(lambda: self._write_outputs(summary), self.dist, self.device)
        return summary

    # ------------------------------------------------------------------ the loop

    def _train_epoch(self) -> None:
        """Train ``loop.epoch`` from ``loop.step`` to its end (or to an agreed stop), then close the epoch."""
        loop = self.loop
        if loop.step == 0:
            loop.acc.zero_()
            loop.epoch_seconds = 0.0
        self._call("on_epoch_start")
        loop.start_timer()
        for x, y in epoch_batches(self.train_loader, loop.epoch, loop.step):
            x, y = self._to_device(x, y)
            for opt in self.optimizers.values():
                apply_lr(opt, self.schedule(loop.global_step))
            if self.task.manual_optimization:
                with autocast_context(self.cfg.train.precision, self.device):
                    out = self.task.manual_train_step(self.model, x, y, self._stepper)
                self._update_metrics(out)
            else:
                with autocast_context(self.cfg.train.precision, self.device):
                    out = self.task.train_step(self.model, x, y)
                loss = out.loss + self._penalty()
                if self._call_all("on_before_backward", loss):
                    self._backward_and_step(loss, self.optimizers.values())
                    self._update_metrics(out)
            loop.step += 1
            loop.global_step += 1
            self._call("on_step_end")
            if self.stopping() and loop.step < self.steps_per_epoch:
                loop.stop_timer()
                self.save_checkpoint()
                self._interrupted()
        loop.stop_timer()
        self._guard().check_accumulated(self)
        self._end_epoch()

    def _backward_and_step(self, loss: torch.Tensor, optimizers: Any) -> None:
        """Backward on ``loss`` (scaled for fp16), clip, step ``optimizers``, zero their gradients."""
        clip = self.cfg.train.grad_clip
        optimizers = list(optimizers)
        # One optimizer clips the whole model's gradient norm (as before optimizer groups existed); several
        # clip each their own parameters.
        def clipped(opt: torch.optim.Optimizer) -> Any:
            return _params(opt) if len(optimizers) > 1 else self.raw_model.parameters()

        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            for opt in optimizers:
                if clip:
                    self.scaler.unscale_(opt)
                    torch.nn.utils.clip_grad_norm_(clipped(opt), clip)
                self.scaler.step(opt)
            self.scaler.update()
        else:
            loss.backward()
            for opt in optimizers:
                if clip:
                    torch.nn.utils.clip_grad_norm_(clipped(opt), clip)
                opt.step()
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        self._call("on_optimizer_step")

    def _end_epoch(self) -> None:
        """The epoch's row (train sums, validation, lr, timing), its callbacks, then the next position."""
        loop = self.loop
        stop = self.stop_at_epoch_end = self._agree_stop()
        acc = loop.acc.clone()
        all_reduce_sum(acc, self.dist)
        train = self.task.compute_metrics(acc)
        loop.train_seconds += loop.epoch_seconds
        row: dict[str, Any] = {"epoch": loop.epoch + 1}
        row.update({f"train_{k}": train[k] for k in self.task.metric_names})
        if self.val_loader is not None:
            val = self.evaluate(self.val_loader)
            row.update({f"val_{k}": val[k] for k in self.task.metric_names})
        row["lr"] = self.optimizer.param_groups[0]["lr"]
        row["seconds"] = loop.epoch_seconds
        row["images_per_second"] = train["count"] / loop.epoch_seconds if loop.epoch_seconds > 0 else 0.0
        if loop.skipped_steps:
            row["skipped_steps"] = loop.skipped_steps
        self._call("on_epoch_end", row)
        loop.advance_epoch()
        self._call("on_after_epoch")
        if stop and not (loop.stopped_early or loop.epoch >= self.cfg.train.epochs):
            self._interrupted()

    # ------------------------------------------------------------------ callbacks

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def _call_all(self, hook: str, *args: Any) -> bool:
        """Every callback's answer (each is asked, so each sees the step), all True to go on."""
        ok = True
        for cb in self.callbacks:
            ok = getattr(cb, hook)(self, *args) and ok
        return ok

    def _guard(self) -> StepGuard:
        return next(cb for cb in self.callbacks if isinstance(cb, StepGuard))

    # ------------------------------------------------------------------ setup

    def _choose_monitor(self) -> tuple[str | None, str]:
        """The best-weights record: by the early-stopping monitor, else the task's monitored metric on the
        validation set when there is one, else none."""
        es = self.cfg.train.early_stopping
        has_val = self.val_loader is not None
        if es is not None:
            names = self.task.metric_names
            known = [f"train_{n}" for n in names] + ["lr"] + ([f"val_{n}" for n in names] if has_val else [])
            if es.monitor not in known:
                hint = "; val_* metrics need a validation set (data.val_fraction > 0)" if es.monitor.startswith("val_") else ""
                raise CnnkitError(
                    f"train.early_stopping.monitor: {es.monitor!r} is not a metric of this run "
                    f"(available: {', '.join(known)}){hint}"
                )
            return es.monitor, es.mode
        if has_val:
            name, mode = self.task.monitor
            return f"val_{name}", mode
        return None, "max"

    def _seed_training(self) -> None:
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
        ema_cfg = self.cfg.train.ema
        if ema_cfg is not None:  # once, from the final initial weights (after a data-dependent init)
            self.ema = ModelEMA(
                self.raw_model, decay=ema_cfg.decay, every_steps=ema_cfg.every_steps, ramp=ema_cfg.ramp,
                total_steps=self.total_steps, lookahead=ema_cfg.lookahead,
            )
        model: nn.Module = self.raw_model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            if self.task.manual_optimization:
                # A task that steps several optimizers (a GAN) calls each optimizer's module itself: each is
                # its own DDP (as in the PyTorch DCGAN/StyleGAN recipes), so every backward averages exactly
                # that module's gradients over the processes before its optimizer steps. The whole model
                # stays unwrapped: one DDP around it would expect one backward per forward of everything.
                self.group_modules = {name: DDP(m, device_ids=ids) for name, m in self.group_modules.items()}
            else:
                model = DDP(model, device_ids=ids)
        if self.cfg.train.compile:
            model = torch.compile(model)  # type: ignore[assignment]
        self.model = model

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

    def _penalty(self) -> torch.Tensor | float:
        if not self._penalty_params:
            return 0.0
        p = self.cfg.train.penalty
        return penalty_loss(self._penalty_params, l1=p.l1, l2=p.l2)

    def _update_metrics(self, out: Any) -> None:
        with torch.no_grad():
            self.task.update_metrics(self.loop.acc, out)

    # ------------------------------------------------------------------ stopping

    def raise_nonfinite(self, value: torch.Tensor | float) -> None:
        """Raise :class:`TrainingError` for a non-finite loss (``train.nan_policy: stop``)."""
        v = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
        saved = ""
        if self.run_dir is not None:
            root = self.run_dir / "checkpoints"
            # Claim an intact checkpoint only when there is one (a NaN can come before the first).
            has_one = bool(ckpt.list_checkpoints(root))
            saved = f" and the last good checkpoint in {root} is intact" if has_one else ", before its first checkpoint"
        raise TrainingError(
            f"non-finite loss ({v}) at epoch {self.loop.epoch + 1} step {self.loop.step + 1}; training stopped "
            f"(train.nan_policy: stop){saved}. Try a lower optim.lr, train.grad_clip, or train.nan_policy: skip",
            rank=self.dist.rank,
        )

    def _agree_stop(self) -> bool:
        """Whether any rank was asked to stop (the same answer on every rank)."""
        if self.dist.enabled:
            flag = torch.tensor([float(self.stop_flag.requested)], device=self.device)
            all_reduce_sum(flag, self.dist)
            if flag.item() > 0:
                self.stop_flag.request()
        return self.stop_flag.requested

    def _interrupted(self) -> None:
        self.progress.close()
        rank = self.dist.rank
        if self.run_dir is not None:
            raise TrainingInterrupted(f"interrupted; resume with cnnkit train --resume {self.run_dir}", self.run_dir, rank)
        raise TrainingInterrupted("interrupted (no run folder, so nothing was saved)", rank=rank)

    # ------------------------------------------------------------------ the end

    def _restore_best(self) -> None:
        loop = self.loop
        if loop.best_state is not None:
            self.eval_model.load_state_dict(loop.best_state)
            if self.eval_model is not self.raw_model:
                self.raw_model.load_state_dict(loop.best_state)
            if loop.best_epoch != len(loop.history):
                self.log(f"restored the best weights (epoch {loop.best_epoch}, {self.monitor} {loop.best_value:.4f})")

    def _finish(self, start: float, resumed_from: str | None) -> dict[str, Any]:
        loop = self.loop
        test = self.evaluate(self.test_loader) if self.test_loader is not None else None
        final = loop.history[-1] if loop.history else {}
        total_images = sum(r["images_per_second"] * r["seconds"] for r in loop.history)
        summary: dict[str, Any] = {
            "task": self.task.name,
            "test_accuracy": test.get("accuracy") if test else None,
            "test_loss": test.get("loss") if test else None,
            "test_count": test.get("count") if test else None,
            # every metric the task reports, as test_<name> (test_f1_macro, test_rmse, test_miou, ...)
            **{f"test_{k}": v for k, v in (test or {}).items() if k not in ("accuracy", "loss", "count")},
            **(self.task.summary_fields(test) if test else {}),
            "epochs": len(loop.history),
            "steps": loop.global_step,
            "train_seconds": loop.train_seconds,
            "wall_seconds": time.perf_counter() - start,
            "best_epoch": loop.best_epoch if loop.best_epoch is not None else (len(loop.history) or None),
            "monitor": self.monitor,
            "best_value": loop.best_value,
            "stopped_early": loop.stopped_early,
            "final_train_loss": final.get("train_loss"),
            "final_train_accuracy": final.get("train_accuracy"),
            "final_val_accuracy": final.get("val_accuracy"),
            "images_per_second": total_images / loop.train_seconds if loop.train_seconds > 0 else None,
            "skipped_steps": loop.skipped_steps,
            "num_params": sum(p.numel() for p in self.raw_model.parameters()),
            "device": str(self.device),
            "precision": self.cfg.train.precision,
            "world_size": self.dist.world_size,
            "ema": self.eval_model is not self.raw_model,
            "tta": self.cfg.train.tta,
            "resumed_from": resumed_from,
        }
        return json_safe(summary)

    def _write_outputs(self, summary: dict[str, Any]) -> None:
        from ..plots import plot_learning_curves  # matplotlib: only once a run folder is written

        assert self.run_dir is not None
        self.write_summary(summary)
        path = self.run_dir / "plots" / "learning_curves.png"
        try:
            plot_learning_curves(self.loop.history, path)
        except OSError as exc:
            raise write_error(path, exc) from None
        if self.test_loader is not None:
            self.task.write_plots(
                model=self.eval_model, batches=epoch_batches(self.test_loader, 0), run_dir=self.run_dir, device=self.device
            )

    def write_summary(self, summary: dict[str, Any]) -> None:
        if self.run_dir is not None and self.dist.is_main:
            atomic_write_text(self.run_dir / "summary.json", json.dumps(json_safe(summary), indent=2))

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self, *, best: bool = False, last_k: bool = True) -> None:
        """Everything needed to continue exactly, into ``checkpoints/step-N`` (and ``best/``); a collective."""
        if self.run_dir is None:
            return
        tensors, meta = collect_state(self)  # collective: every rank takes part
        # Rank 0 writes every rank's state; if it cannot, all ranks stop together with its message.
        run_on_main(lambda: self._write_checkpoint(tensors, meta, best=best, last_k=last_k), self.dist, self.device)

    def _write_checkpoint(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], *, best: bool, last_k: bool) -> None:
        assert self.run_dir is not None
        root = self.run_dir / "checkpoints"
        folders = ([root / f"step-{self.loop.global_step:09d}"] if last_k else []) + ([root / "best"] if best else [])
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
            source = Path(str(resume))
            if (source / "checkpoints").is_dir():
                source = source / "checkpoints"
        if (source / "COMPLETE").exists() or (source / "state.json").exists():
            state = ckpt.read_checkpoint(source)
        else:
            state = ckpt.load_latest_checkpoint(source, log=self.log)
        restore_state(self, state)
        self.log(f"resumed from {state.path} (epoch {self.loop.epoch + 1}, step {self.loop.step}/{self.steps_per_epoch})")
        return str(state.path)


class _Stepper:
    """What a task with ``manual_optimization`` steps: one optimizer by name, with the run's NaN policy,
    precision, clipping and post-step callbacks (see :class:`cnnkit.tasks.Optimizers`)."""

    def __init__(self, trainer: Trainer) -> None:
        self.t = trainer

    def step(self, name: str, loss: torch.Tensor) -> None:
        t = self.t
        if name not in t.optimizers:
            raise CnnkitError(f"task {t.task.name!r} stepped optimizer {name!r}; it has {', '.join(t.optimizers)}")
        if t._call_all("on_before_backward", loss):
            t._backward_and_step(loss, [t.optimizers[name]])

    def module(self, name: str) -> nn.Module:
        t = self.t
        if name not in t.group_modules:
            raise CnnkitError(f"task {t.task.name!r} asked for module {name!r}; it has {', '.join(t.group_modules)}")
        return t.group_modules[name]


def _params(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for g in opt.param_groups for p in g["params"]]


def _with_keywords(
    cfg: Config | dict[str, Any] | None, *, task: Task | str | None, optimizer: Any, lr: float | None, epochs: int | None
) -> Config:
    """``cfg`` (validated) with the keyword shorthands of :class:`Trainer` applied, each validated too."""
    cfg = cfg.model_copy(deep=True) if isinstance(cfg, Config) else validate_config(dict(cfg or {}))
    if isinstance(task, str):
        cfg.task.name = task
    if isinstance(optimizer, str):
        cfg.optim.name = optimizer
    if lr is not None:
        cfg.optim.lr = lr
    if epochs is not None:
        cfg.train.epochs = epochs
    return cfg
