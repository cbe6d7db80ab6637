"""Test-time augmentation (TTA): the one implementation, used by training (``train.tta``) and by
``cnnkit evaluate --tta``, so ``summary.json`` and ``evaluate`` always agree on the same run.

Logits are averaged over weighted views of each image, as airbench does (Jordan 2024, ``infer``):

- ``"none"``: the image itself.
- ``"flip"``: the image and its horizontal mirror, weight 1/2 each (Krizhevsky et al. 2012, Sec. 4.1,
  averaged predictions over ten patches including reflections; this keeps the reflection only).
- ``"shift"``: the flip pair (total weight 1/2) plus the two diagonal one-pixel translations, up-left and
  down-right, of the image and of its mirror (total weight 1/2). Pixels shifted in come from reflect
  padding, which does not depend on how the input was normalized (zero filling would).

Views apply to images, ``(N, C, H, W)``; other inputs (series, clips) get ``"none"``.
Averaging logits rather than probabilities is airbench's choice; the two differ only in how a confident
view outweighs an unsure one, and one choice, used everywhere, is what matters here.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..errors import CnnkitError, did_you_mean

__all__ = ["TTA_MODES", "check_tta", "shift_image", "tta_views", "tta_logits", "tta_log_probs"]

TTA_MODES = ("none", "flip", "shift")


def check_tta(mode: str) -> str:
    """``mode`` if it is a known TTA mode, else a :class:`CnnkitError` with close matches."""
    if mode not in TTA_MODES:
        raise CnnkitError(
            f"Unknown test-time augmentation {mode!r}{did_you_mean(str(mode), TTA_MODES)}; "
            f"choose one of {', '.join(TTA_MODES)}"
        )
    return mode


def shift_image(x: torch.Tensor, dy: int, dx: int, *, mode: str = "reflect") -> torch.Tensor:
    """Shift ``(N, C, H, W)`` images by ``dy`` rows down and ``dx`` columns right.

    ``mode``: ``"reflect"`` (mirror the border, the TTA default), ``"replicate"`` (border pixels repeated),
    ``"zeros"`` (zeros shifted in) or ``"circular"`` (``torch.roll``: what leaves one side re-enters on the
    other).
    """
    if mode == "circular":
        return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
    if mode not in ("reflect", "replicate", "zeros"):
        raise ValueError(
            f"Expected mode in ('reflect', 'replicate', 'zeros', 'circular'). Received: mode={mode!r}"
        )
    h, w = x.shape[-2:]
    if abs(dy) >= h or abs(dx) >= w:
        raise ValueError(f"Expected |shift| smaller than the image ({h}x{w}). Received: dy={dy}, dx={dx}")
    pad = (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0))  # left, right, top, bottom
    padded = F.pad(x, pad) if mode == "zeros" else F.pad(x, pad, mode=mode)
    top, left = max(-dy, 0), max(-dx, 0)
    return padded[..., top : top + h, left : left + w]


def tta_views(x: torch.Tensor, mode: str) -> list[tuple[torch.Tensor, float]]:
    """``(view, weight)`` pairs that ``mode`` averages over; the weights sum to 1, the first view is ``x``."""
    check_tta(mode)
    if mode == "none" or x.ndim != 4:
        return [(x, 1.0)]
    flipped = x.flip(-1)
    if mode == "flip":
        return [(x, 0.5), (flipped, 0.5)]
    shifted = [shift_image(v, d, d) for d in (-1, 1) for v in (x, flipped)]  # up-left, then down-right
    return [(x, 0.25), (flipped, 0.25)] + [(v, 0.125) for v in shifted]


def tta_logits(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, mode: str = "none") -> torch.Tensor:
    """The weighted mean of ``model``'s logits over the views of ``x`` (``model(x)`` for ``"none"``).

    One forward pass per view, so memory stays that of one batch (airbench batches the views; with the
    model in eval mode the result is the same).
    """
    views = tta_views(x, mode)
    out = model(views[0][0])
    if len(views) == 1:
        return out
    out = views[0][1] * out
    for v, w in views[1:]:
        out = out + w * model(v)
    return out


@torch.no_grad()
def tta_log_probs(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, mode: str = "none") -> torch.Tensor:
    """``log_softmax`` of :func:`tta_logits`, in float64 so metrics match a float64 reference to ~1e-12."""
    return torch.log_softmax(tta_logits(model, x, mode).double(), dim=1)
