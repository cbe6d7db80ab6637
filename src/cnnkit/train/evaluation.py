"""Batches from any loader (test-time augmentation has one home: :mod:`cnnkit.evaluate.tta`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from ..evaluate.tta import tta_logits

__all__ = ["epoch_batches", "tta_logits"]


def epoch_batches(loader: Any, epoch: int, start_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of ``epoch`` from ``start_step`` on.

    cnnkit loaders expose ``epoch_batches(epoch, start_step)``, a pure function of (seed, epoch, step), which
    is what makes resume exact. Other iterables (a torch DataLoader) are iterated and the first
    ``start_step`` batches skipped; they resume exactly only if their order depends on the epoch alone.
    """
    if hasattr(loader, "epoch_batches"):
        yield from loader.epoch_batches(epoch, start_step=start_step)
        return
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)  # type: ignore[union-attr]
    for i, batch in enumerate(loader):
        if i >= start_step:
            yield batch[0], batch[1]
