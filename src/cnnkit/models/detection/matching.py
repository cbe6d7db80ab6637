"""Assigning ground-truth boxes to anchors or proposals, and sampling a balanced minibatch of them.

Ren et al., "Faster R-CNN", NeurIPS 2015, Sec. 3.1.2: an anchor is positive if its IoU with some
ground-truth box is > 0.7, or if it has the highest IoU with a ground-truth box (so every box gets an
anchor); negative if its IoU is < 0.3 with every box; the rest do not contribute. Each image contributes
256 anchors, up to half of them positive. Girshick, "Fast R-CNN", ICCV 2015, Sec. 2.3: RoIs with IoU >= 0.5
are foreground, 25% of a 64-RoI-per-image minibatch.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["BACKGROUND", "IGNORE", "BalancedSampler", "Matcher"]

BACKGROUND = -1
"""Matcher label: below the low threshold (a negative)."""
IGNORE = -2
"""Matcher label: between the thresholds (neither positive nor negative)."""


class Matcher:
    """For each of N predictions, the index of its ground-truth box, or :data:`BACKGROUND` / :data:`IGNORE`.

    Args:
        high_threshold: IoU at or above which a prediction is matched (0.7 for the RPN, 0.5 for the head).
        low_threshold: IoU below which it is background (0.3 for the RPN; equal to ``high_threshold`` for
            the head, which has no ignored band).
        allow_low_quality_matches: also match, for each ground-truth box, the predictions with its highest
            IoU (ties included), even below ``high_threshold`` (the RPN's second positive rule).

    Example:
        >>> m = Matcher(0.7, 0.3, allow_low_quality_matches=True)
        >>> m(torch.tensor([[0.9, 0.5, 0.1], [0.2, 0.6, 0.35]]))  # (M ground truths, N predictions)
        tensor([ 0,  1, -2])
    """

    def __init__(self, high_threshold: float, low_threshold: float, *, allow_low_quality_matches: bool = False) -> None:
        if not 0.0 <= low_threshold <= high_threshold <= 1.0:
            raise ValueError(
                f"Expected 0 <= low_threshold <= high_threshold <= 1. Received: low_threshold={low_threshold}, "
                f"high_threshold={high_threshold}"
            )
        self.high, self.low = float(high_threshold), float(low_threshold)
        self.allow_low_quality_matches = bool(allow_low_quality_matches)

    def __call__(self, iou: Tensor) -> Tensor:
        """``iou`` (M ground truths, N predictions) -> (N,) int64 labels."""
        n = iou.shape[1]
        if iou.shape[0] == 0:
            return torch.full((n,), BACKGROUND, dtype=torch.long, device=iou.device)
        best, idx = iou.max(dim=0)
        matches = idx.clone()
        matches[best < self.high] = IGNORE
        matches[best < self.low] = BACKGROUND
        if self.allow_low_quality_matches:
            best_per_gt = iou.max(dim=1, keepdim=True).values
            # Ties count: every prediction reaching a box's best IoU is matched (to its own best box).
            gt_i, pred_i = torch.nonzero((iou == best_per_gt) & (best_per_gt > 0), as_tuple=True)
            matches[pred_i] = idx[pred_i]
        return matches

    def __repr__(self) -> str:
        return f"Matcher(high={self.high}, low={self.low}, allow_low_quality_matches={self.allow_low_quality_matches})"


class BalancedSampler:
    """Chooses up to ``batch_size_per_image`` labelled items per image, ``positive_fraction`` of them
    positive (fewer if there are fewer positives: negatives fill the rest), uniformly at random.

    Args:
        batch_size_per_image: 256 for the RPN, 64 or 128 RoIs for the box head.
        positive_fraction: 0.5 for the RPN, 0.25 for the head.

    ``labels`` are > 0 for positives, 0 for negatives and < 0 for ignored items.
    """

    def __init__(self, batch_size_per_image: int, positive_fraction: float) -> None:
        if batch_size_per_image < 1:
            raise ValueError(f"Expected batch_size_per_image >= 1. Received: batch_size_per_image={batch_size_per_image}")
        if not 0.0 < positive_fraction <= 1.0:
            raise ValueError(f"Expected 0 < positive_fraction <= 1. Received: positive_fraction={positive_fraction}")
        self.batch_size_per_image = int(batch_size_per_image)
        self.positive_fraction = float(positive_fraction)

    def __call__(self, labels: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Boolean masks ``(positive, negative)`` over ``labels`` (N,) of the sampled items."""
        pos = torch.nonzero(labels > 0).flatten()
        neg = torch.nonzero(labels == 0).flatten()
        n_pos = min(int(self.batch_size_per_image * self.positive_fraction), pos.numel())
        n_neg = min(self.batch_size_per_image - n_pos, neg.numel())
        dev = labels.device
        pick_pos = pos[torch.randperm(pos.numel(), generator=generator, device="cpu").to(dev)[:n_pos]]
        pick_neg = neg[torch.randperm(neg.numel(), generator=generator, device="cpu").to(dev)[:n_neg]]
        pos_mask = torch.zeros_like(labels, dtype=torch.bool)
        neg_mask = torch.zeros_like(labels, dtype=torch.bool)
        pos_mask[pick_pos] = True
        neg_mask[pick_neg] = True
        return pos_mask, neg_mask

    def __repr__(self) -> str:
        return f"BalancedSampler(batch_size_per_image={self.batch_size_per_image}, positive_fraction={self.positive_fraction})"
