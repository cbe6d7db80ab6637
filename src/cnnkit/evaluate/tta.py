"""Test-time augmentation: average the softmax probabilities over transformed copies of each input.

- ``"flip"``: the input and its horizontal mirror (Krizhevsky et al. 2012, Sec. 4.1, averaged the
  predictions on ten patches including reflections; this keeps the reflection only).
- ``"shift"``: the input and its four one-pixel shifts (up, down, left, right); the pixels shifted in are
  copies of the border row/column (replicate padding), which is independent of how the input was
  normalized, unlike zero filling.

The result is returned as log-probabilities, so it plugs into the same metrics as logits
(``softmax(log p) = p``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import CnnkitError, did_you_mean

__all__ = ["TTA_MODES", "shift_image", "tta_views", "tta_log_probs"]

TTA_MODES = ("none", "flip", "shift")


def shift_image(x: torch.Tensor, dy: int, dx: int, *, mode: str = "replicate") -> torch.Tensor:
    """Shift ``(N, C, H, W)`` images by ``dy`` rows down and ``dx`` columns right.

    ``mode``: ``"circular"`` (``torch.roll``: what leaves one side re-enters on the other), ``"replicate"``
    (border pixels repeated) or ``"zeros"`` (zeros shifted in).
    """
    if mode == "circular":
        return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
    if mode not in ("replicate", "zeros"):
        raise ValueError(f"Expected mode in ('circular', 'replicate', 'zeros'). Received: mode={mode!r}")
    h, w = x.shape[-2:]
    if abs(dy) >= h or abs(dx) >= w:
        raise ValueError(f"Expected |shift| smaller than the image ({h}x{w}). Received: dy={dy}, dx={dx}")
    pad = (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0))  # left, right, top, bottom
    if mode == "zeros":
        padded = torch.nn.functional.pad(x, pad)
    else:
        padded = torch.nn.functional.pad(x, pad, mode="replicate")
    top, left = max(-dy, 0), max(-dx, 0)
    return padded[..., top : top + h, left : left + w]


def tta_views(x: torch.Tensor, mode: str) -> list[torch.Tensor]:
    """The transformed copies of ``x`` that ``mode`` averages over (the first is ``x`` itself)."""
    if mode not in TTA_MODES:
        raise CnnkitError(f"Unknown test-time augmentation {mode!r}{did_you_mean(str(mode), TTA_MODES)}; choose one of {', '.join(TTA_MODES)}")
    if mode == "none":
        return [x]
    if mode == "flip":
        return [x, torch.flip(x, dims=(-1,))]
    return [x] + [shift_image(x, dy, dx) for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))]


@torch.no_grad()
def tta_log_probs(model: nn.Module, x: torch.Tensor, mode: str = "none") -> torch.Tensor:
    """``log(mean_v softmax(model(v)))`` over the views of ``x`` (just ``log_softmax(model(x))`` for ``"none"``)."""
    views = tta_views(x, mode)
    # float64 so the metrics computed from these match a float64 reference to ~1e-12
    if len(views) == 1:
        return torch.log_softmax(model(x).double(), dim=1)
    logp = torch.stack([torch.log_softmax(model(v).double(), dim=1) for v in views])
    return torch.logsumexp(logp, dim=0) - torch.log(torch.tensor(float(len(views)), dtype=torch.float64))
