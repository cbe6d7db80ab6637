"""Batches from any loader, and test-time augmentation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

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
        sampler.set_epoch(epoch)
    for i, batch in enumerate(loader):
        if i >= start_step:
            yield batch[0], batch[1]


def tta_logits(model: nn.Module, x: torch.Tensor, mode: str) -> torch.Tensor:
    """Test-time augmentation: average logits over flips (``flip``) and also 1-pixel shifts (``shift``).

    As in airbench: the horizontal mirror, and for ``shift`` the two diagonal 1-pixel translations (reflect
    padding) of the image and of its mirror, weighted half as much as the unshifted pair.
    """
    logits = model(x)
    if mode == "none" or x.ndim != 4:
        return logits
    flipped = x.flip(-1)
    out = 0.5 * (logits + model(flipped))
    if mode == "flip":
        return out
    pad = F.pad(torch.cat([x, flipped]), (1, 1, 1, 1), mode="reflect")
    h, w = x.shape[-2:]
    up_left = model(pad[..., :h, :w])
    down_right = model(pad[..., 2 : 2 + h, 2 : 2 + w])
    b = x.shape[0]
    shifted = (up_left[:b] + up_left[b:] + down_right[:b] + down_right[b:]) / 4
    return 0.5 * out + 0.5 * shifted

