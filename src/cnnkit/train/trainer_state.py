"""A trainer's whole state <-> a checkpoint (tensors for safetensors, the rest for JSON).

Tensors: ``model/*``, ``optim/<index>/<key>`` (a second optimizer, e.g. a GAN's discriminator's:
``optim.<name>/<index>/<key>``), ``ema/*``, ``best/*`` (early stopping's best weights),
``rng/torch/<rank>``, ``rng/cuda/<rank>`` and ``acc/<rank>`` (every rank's partial-epoch sums, so a resumed
epoch reports the same metrics). JSON: epoch, step within the epoch, global step, the metric rows so far,
best-metric, early-stopping, EMA and grad-scaler state, optimizer hyper-parameters, numpy/python RNG.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import CnnkitError
from . import checkpoint as ckpt
from .distributed import all_gather_tensor, barrier

__all__ = ["collect_state", "restore_state"]

# `t` below is a cnnkit.train.Trainer, read and filled through its public attributes (`t.loop`, the
# position and record; `t.raw_model`, `t.optimizers`, `t.ema`, `t.early`, `t.scaler`, `t.dist`); this
# module does not import the trainer, so the two do not form a cycle.


def _optim_prefixes(t: Any) -> dict[str, str]:
    # The first optimizer keeps the prefix checkpoints had before optimizer groups existed.
    return {name: "optim/" if i == 0 else f"optim.{name}/" for i, name in enumerate(t.optimizers)}


def collect_state(t: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Everything needed to continue exactly (a collective under DDP: every rank must call it)."""
    loop = t.loop
    tensors: dict[str, torch.Tensor] = {f"model/{k}": v for k, v in t.raw_model.state_dict().items()}
    opt_meta: dict[str, Any] = {}
    for name, prefix in _optim_prefixes(t).items():
        opt_t, meta_one = ckpt.optimizer_state_to_flat(t.optimizers[name], prefix=prefix)
        tensors.update(opt_t)
        if prefix == "optim/":
            opt_meta.update(meta_one)
        else:
            opt_meta.setdefault("others", {})[name] = meta_one
    if t.ema is not None:
        tensors.update({f"ema/{k}": v for k, v in t.ema.state_dict().items()})
    if loop.best_state is not None:
        tensors.update({f"best/{k}": v for k, v in loop.best_state.items()})
    rng_t, rng_meta = ckpt.rng_state()
    # Every rank's torch RNG stream and partial-epoch sums (gathered: only rank 0 writes).
    for r, x in enumerate(all_gather_tensor(rng_t["rng/torch"].to(t.device), t.dist)):
        tensors[f"rng/torch/{r}"] = x
    if "rng/cuda" in rng_t:
        for r, x in enumerate(all_gather_tensor(rng_t["rng/cuda"].to(t.device), t.dist)):
            tensors[f"rng/cuda/{r}"] = x
    for r, x in enumerate(all_gather_tensor(loop.acc, t.dist)):
        tensors[f"acc/{r}"] = x
    meta = {
        "epoch": loop.epoch,
        "step": loop.step,
        "global_step": loop.global_step,
        "steps_per_epoch": t.steps_per_epoch,
        "world_size": t.dist.world_size,
        "history": loop.history,
        "best": {"monitor": t.monitor, "value": loop.best_value, "epoch": loop.best_epoch},
        "early_stopping": t.early.state_dict() if t.early is not None else None,
        "ema": {"updates": t.ema.updates, "steps": t.ema._steps} if t.ema is not None else None,
        "scaler": t.scaler.state_dict() if t.scaler is not None else None,
        "optimizer": opt_meta,
        "rng": rng_meta,
        "train_seconds": loop.train_seconds,
        "epoch_seconds": loop.epoch_seconds,
        "skipped_steps": loop.skipped_steps,
        "stopped_early": loop.stopped_early,
    }
    return tensors, meta


def restore_state(t: Any, state: ckpt.Checkpoint) -> None:
    """Load a checkpoint into ``t`` (model, optimizer, EMA, early stopping, RNG, loop position, metric rows)."""
    tensors, meta = state.tensors, state.meta
    if meta.get("world_size", 1) != t.dist.world_size:
        raise CnnkitError(
            f"checkpoint {state.path} was written by {meta.get('world_size')} processes; "
            f"resume with the same number (now {t.dist.world_size})"
        )
    if meta.get("steps_per_epoch") != t.steps_per_epoch:
        raise CnnkitError(
            f"checkpoint {state.path} has {meta.get('steps_per_epoch')} steps per epoch, this run "
            f"{t.steps_per_epoch}: the data or batch size changed, so the run cannot resume exactly"
        )

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v.to(t.device) for k, v in tensors.items() if k.startswith(prefix)}

    try:
        t.raw_model.load_state_dict(part("model/"))
    except RuntimeError as exc:
        raise CnnkitError(f"checkpoint {state.path} does not fit this model ({str(exc).splitlines()[0]})") from None
    for name, prefix in _optim_prefixes(t).items():
        opt_meta = meta["optimizer"] if prefix == "optim/" else meta["optimizer"].get("others", {}).get(name)
        if opt_meta is None:
            raise CnnkitError(f"checkpoint {state.path} holds no state for optimizer {name!r}: it was written by another task")
        optim = {k: v.to(t.device) for k, v in tensors.items() if k.startswith(prefix)}
        ckpt.optimizer_state_from_flat(t.optimizers[name], optim, opt_meta, prefix=prefix)
    if t.ema is not None and meta.get("ema"):
        t.ema.load_state_dict(part("ema/"), updates=meta["ema"]["updates"], steps=meta["ema"]["steps"])
    loop = t.loop
    loop.best_state = part("best/") or None
    if t.early is not None and meta.get("early_stopping"):
        t.early.load_state_dict(meta["early_stopping"])
    if t.scaler is not None and meta.get("scaler"):
        t.scaler.load_state_dict(meta["scaler"])
    r = t.dist.rank
    rng = {"rng/torch": tensors[f"rng/torch/{r}"]}
    if f"rng/cuda/{r}" in tensors:
        rng["rng/cuda"] = tensors[f"rng/cuda/{r}"]
    ckpt.set_rng_state(rng, meta["rng"])
    loop.acc = tensors[f"acc/{r}"].to(t.device, torch.float64).clone()
    loop.epoch, loop.step, loop.global_step = meta["epoch"], meta["step"], meta["global_step"]
    loop.history = list(meta["history"])
    loop.best_value, loop.best_epoch = meta["best"]["value"], meta["best"]["epoch"]
    loop.train_seconds = meta["train_seconds"]
    loop.epoch_seconds = meta.get("epoch_seconds", 0.0)
    loop.skipped_steps = meta.get("skipped_steps", 0)
    loop.stopped_early = meta.get("stopped_early", False)
    if t.metrics_log is not None and t.dist.is_main:
        t.metrics_log.rewrite(loop.history)  # drop rows written after this checkpoint
    barrier(t.dist)
