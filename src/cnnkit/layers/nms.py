"""Greedy non-maximum suppression, as used by R-CNN, Fast R-CNN and Faster R-CNN, and its per-class
(batched) form.

torchvision.ops.nms / batched_nms are not available here; these match their definition (keep the highest
scoring box, drop every remaining box whose IoU with it is *greater than* the threshold, repeat) and are
tested against a naive O(n^2) loop and a hand-computed case (tests/layers/test_nms.py).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .boxes import box_iou

__all__ = ["batched_nms", "nms"]


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indices of the ``xyxy`` boxes (N, 4) kept by greedy NMS, by decreasing score (int64).

    Ties in score keep the lower index first (a stable sort), so the result is deterministic.

    Example:
        >>> b = torch.tensor([[0.0, 0, 10, 10], [1.0, 1, 11, 11], [20.0, 20, 30, 30]])
        >>> nms(b, torch.tensor([0.9, 0.8, 0.7]), 0.5)
        tensor([0, 2])
    """
    if boxes.ndim != 2 or boxes.shape[1] != 4 or scores.shape != boxes.shape[:1]:
        raise ValueError(f"Expected boxes (N, 4) and scores (N,). Received: {tuple(boxes.shape)}, {tuple(scores.shape)}")
    n = boxes.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores.detach(), descending=True, stable=True).indices
    # One IoU matrix on the device, then the sequential greedy pass on the host over rows of booleans:
    # n numpy vector ops instead of n small device kernels (the pass is inherently sequential).
    over = (box_iou(boxes.detach()[order].float(), boxes.detach()[order].float()) > iou_threshold).cpu().numpy()
    removed = np.zeros(n, dtype=bool)
    keep = []
    for i in range(n):
        if removed[i]:
            continue
        keep.append(i)
        removed |= over[i]
    return order[torch.as_tensor(keep, dtype=torch.long, device=order.device)]


def batched_nms(boxes: Tensor, scores: Tensor, classes: Tensor, iou_threshold: float) -> Tensor:
    """NMS within each class of ``classes`` (N,): boxes of different classes never suppress each other.

    Each class's boxes are moved by ``class * (max coordinate + 1)`` so no two classes overlap, then one
    NMS runs over all (torchvision's trick); the result equals a per-class loop, sorted by score.
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    b = boxes.detach().float()
    offsets = classes.to(b) * (b.max() - b.min() + 1)
    return nms(b + offsets[:, None], scores, iou_threshold)
