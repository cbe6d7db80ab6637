"""Box operations for detection: format conversions, areas, the IoU matrix, clipping, and the box coding
of R-CNN / Faster R-CNN.

Boxes are float tensors ``(..., 4)``. ``xyxy`` is ``(x1, y1, x2, y2)`` in continuous pixel coordinates
(the top-left corner of the image is (0, 0), its bottom-right corner (W, H)), so a box's width is
``x2 - x1`` (torchvision's convention; the original Caffe code's ``x2 - x1 + 1`` counted pixel indices).
``xywh`` is COCO's ``(x, y, width, height)``; ``cxcywh`` is ``(centre x, centre y, width, height)``.

torchvision.ops provides these; it is not available here, so they are written out and each is tested
against a naive loop (tests/layers/test_boxes.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "BoxCoder", "box_area", "box_convert", "box_iou", "clip_boxes", "remove_small_boxes",
]

_FORMATS = ("xyxy", "xywh", "cxcywh")


def box_convert(boxes: Tensor, in_fmt: str, out_fmt: str) -> Tensor:
    """Convert ``boxes`` (..., 4) between ``"xyxy"``, ``"xywh"`` and ``"cxcywh"``.

    Example:
        >>> box_convert(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), "xywh", "xyxy")
        tensor([[1., 2., 4., 6.]])
    """
    for fmt, name in ((in_fmt, "in_fmt"), (out_fmt, "out_fmt")):
        if fmt not in _FORMATS:
            raise ValueError(f"Expected {name} one of {', '.join(map(repr, _FORMATS))}. Received: {name}={fmt!r}")
    if boxes.shape[-1] != 4:
        raise ValueError(f"Expected boxes of shape (..., 4). Received: shape={tuple(boxes.shape)}")
    if in_fmt == out_fmt:
        return boxes.clone()
    a, b, c, d = boxes.unbind(-1)
    if in_fmt == "xywh":
        x1, y1, x2, y2 = a, b, a + c, b + d
    elif in_fmt == "cxcywh":
        x1, y1, x2, y2 = a - c / 2, b - d / 2, a + c / 2, b + d / 2
    else:
        x1, y1, x2, y2 = a, b, c, d
    if out_fmt == "xyxy":
        return torch.stack([x1, y1, x2, y2], -1)
    if out_fmt == "xywh":
        return torch.stack([x1, y1, x2 - x1, y2 - y1], -1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], -1)


def box_area(boxes: Tensor) -> Tensor:
    """Areas of ``xyxy`` boxes (..., 4) -> (...); a box with x2 < x1 or y2 < y1 has area 0."""
    return (boxes[..., 2] - boxes[..., 0]).clamp_min(0) * (boxes[..., 3] - boxes[..., 1]).clamp_min(0)


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """The IoU matrix ``|A ∩ B| / |A ∪ B|`` of ``xyxy`` boxes (N, 4) x (M, 4) -> (N, M).

    Two empty boxes (zero union) have IoU 0, not NaN.

    Example:
        >>> box_iou(torch.tensor([[0.0, 0, 2, 2]]), torch.tensor([[1.0, 1, 3, 3], [0.0, 0, 2, 2]]))
        tensor([[0.1429, 1.0000]])
    """
    area1, area2 = box_area(boxes1), box_area(boxes2)
    lt = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp_min(0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - inter
    return torch.where(union > 0, inter / union.clamp_min(torch.finfo(union.dtype).tiny), torch.zeros_like(inter))


def clip_boxes(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Clip ``xyxy`` boxes to an image of ``size = (H, W)``."""
    h, w = size
    x = boxes[..., 0::2].clamp(0, w)
    y = boxes[..., 1::2].clamp(0, h)
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], -1)


def remove_small_boxes(boxes: Tensor, min_size: float) -> Tensor:
    """Indices of the boxes whose width and height are both at least ``min_size``."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return torch.nonzero((w >= min_size) & (h >= min_size)).flatten()


class BoxCoder:
    """Box regression targets ``t = (t_x, t_y, t_w, t_h)`` of a box relative to a reference box (an anchor
    or a proposal), and back.

    Girshick et al., "Rich feature hierarchies ..." (R-CNN), CVPR 2014, Appendix C, and Ren et al.,
    "Faster R-CNN", NeurIPS 2015, Eq. 2::

        t_x = (x - x_a) / w_a,   t_y = (y - y_a) / h_a,   t_w = log(w / w_a),   t_h = log(h / h_a)

    with centres (x, y) and sizes (w, h); each is multiplied by ``weights`` (Fast R-CNN's box head uses
    (10, 10, 5, 5), the inverse of the targets' standard deviations (0.1, 0.1, 0.2, 0.2) in its Caffe
    code; the RPN uses (1, 1, 1, 1)).

    Args:
        weights: ``(w_x, w_y, w_w, w_h)``.
        clip: upper bound of decoded ``t_w`` and ``t_h`` (before the exponential), so a wild prediction
            cannot overflow: ``log(1000 / 16)`` as in torchvision and Detectron.

    Example:
        >>> coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        >>> ref = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
        >>> coder.encode(torch.tensor([[5.0, 0.0, 15.0, 20.0]]), ref)
        tensor([[0.5000, 0.5000, 0.0000, 0.6931]])

    Deviations:
        Widths are ``x2 - x1`` (continuous coordinates), not Caffe's ``x2 - x1 + 1``.
    """

    def __init__(self, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0), clip: float = math.log(1000.0 / 16)) -> None:
        weights = tuple(float(v) for v in weights)
        if len(weights) != 4 or not all(v > 0 for v in weights):
            raise ValueError(f"Expected 4 positive weights. Received: weights={weights}")
        self.weights = weights
        self.clip = float(clip)

    def encode(self, boxes: Tensor, reference: Tensor) -> Tensor:
        """Targets of ``boxes`` (N, 4) relative to ``reference`` (N, 4), both ``xyxy`` -> (N, 4)."""
        wx, wy, ww, wh = self.weights
        bx, by, bw, bh = box_convert(boxes, "xyxy", "cxcywh").unbind(-1)
        rx, ry, rw, rh = box_convert(reference, "xyxy", "cxcywh").unbind(-1)
        return torch.stack([wx * (bx - rx) / rw, wy * (by - ry) / rh, ww * torch.log(bw / rw), wh * torch.log(bh / rh)], -1)

    def decode(self, deltas: Tensor, reference: Tensor) -> Tensor:
        """Boxes ``xyxy`` from ``deltas`` (N, 4) relative to ``reference`` (N, 4) (the inverse of encode)."""
        wx, wy, ww, wh = self.weights
        rx, ry, rw, rh = box_convert(reference.to(deltas.dtype), "xyxy", "cxcywh").unbind(-1)
        dx, dy = deltas[..., 0] / wx, deltas[..., 1] / wy
        dw = (deltas[..., 2] / ww).clamp(max=self.clip)
        dh = (deltas[..., 3] / wh).clamp(max=self.clip)
        cx, cy = rx + dx * rw, ry + dy * rh
        w, h = rw * torch.exp(dw), rh * torch.exp(dh)
        return box_convert(torch.stack([cx, cy, w, h], -1), "cxcywh", "xyxy")

    def __repr__(self) -> str:
        return f"BoxCoder(weights={self.weights})"
