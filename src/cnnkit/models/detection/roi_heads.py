"""The Fast R-CNN detection head: RoI pooling (max, align, or a spatial pyramid) over proposals, two
fully connected layers, and sibling outputs for K + 1 class scores and per-class box regression."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...layers.boxes import BoxCoder, box_iou, clip_boxes, remove_small_boxes
from ...layers.nms import batched_nms
from ...layers.roi_align import RoIAlign
from ...layers.roi_pool import RoIPool
from ...layers.spp import SpatialPyramidPool2d
from .losses import fast_rcnn_loss
from .matching import BalancedSampler, Matcher

__all__ = ["POOLS", "RoIHeads", "SpatialPyramidRoIPool", "rois_of"]

POOLS = ("max", "align", "spp")
_CANDIDATES = 300


def rois_of(proposals: list[Tensor], like: Tensor) -> Tensor:
    """Per-image boxes (P_i, 4) -> one (sum P_i, 5) tensor of rows ``(batch_index, x1, y1, x2, y2)``."""
    if not proposals:
        return like.new_zeros(0, 5)
    return torch.cat([torch.cat([torch.full_like(p[:, :1], i), p], dim=1) for i, p in enumerate(proposals)])


class SpatialPyramidRoIPool(nn.Module):
    """SPP-net's pooling of a window on the feature map (He et al. 2014, Sec. 3.1, "Mapping a window to
    feature maps"): each RoI's window is pooled into an n x n grid for every pyramid level n.

    Done as RoI max pooling to an L x L grid, L = lcm(levels), then the catalog's
    :class:`~cnnkit.layers.SpatialPyramidPool2d` on that grid: with RoIPool's bins
    ``[floor(i a / L), ceil((i + 1) a / L))`` the union of the L/n fine bins of a coarse bin is exactly the
    coarse bin ``[floor(j a / n), ceil((j + 1) a / n))``, so the maxima equal pooling each level directly
    (tested against per-level RoI pooling).

    Shape: ``forward(features, rois)`` -> (K, C * sum(n^2)).
    """

    def __init__(self, levels: tuple[int, ...] = (1, 2, 4), spatial_scale: float = 1.0) -> None:
        super().__init__()
        self.levels = tuple(int(n) for n in levels)
        self.grid = math.lcm(*self.levels)
        self.roi_pool = RoIPool(self.grid, spatial_scale)
        self.spp = SpatialPyramidPool2d(self.levels, "max")

    def forward(self, features: Tensor, rois: Tensor) -> Tensor:
        return self.spp(self.roi_pool(features, rois))

    def extra_repr(self) -> str:
        return f"levels={self.levels}, grid={self.grid}"


class RoIHeads(nn.Module):
    """Fast R-CNN's head on proposals (Girshick 2015, Sec. 2): pool, ``fc -> ReLU -> fc -> ReLU``, then a
    (K + 1)-way softmax classifier and 4 box-regression outputs per class (class 0 is background).

    Args:
        in_channels: feature channels; ``stride``: the feature map's stride (``spatial_scale = 1/stride``).
        num_classes: K foreground classes.
        pool: ``"max"`` (RoIPool, Fast R-CNN), ``"align"`` (RoIAlign), ``"spp"`` (SPP-net's pyramid).
        pool_size: bins per side for ``max``/``align`` (7 on VGG-16 in the paper); ``spp_levels`` for ``spp``.
        representation: width of the two fully connected layers (4096 on VGG-16).
        batch_size_per_image, positive_fraction: the RoI minibatch (64 per image, 25% foreground; Sec. 2.3).
        fg_iou: IoU at or above which a proposal is foreground (0.5).
        score_threshold, nms_threshold, detections_per_image: test-time post-processing (per-class NMS at
            0.3 in the paper's Caffe test code; 0.5 in torchvision).

    Deviations:
        Background RoIs are those with IoU < 0.5 (Fast R-CNN takes [0.1, 0.5), a heuristic it calls
        hard-example mining); at test time at most the 300 best-scoring (box, class) candidates per image
        go to the NMS; ground-truth boxes are added to the proposals in training (Detectron,
        torchvision), so positives exist from the first step.
    """

    def __init__(
        self,
        in_channels: int,
        stride: int,
        num_classes: int,
        *,
        pool: str = "align",
        pool_size: int = 7,
        spp_levels: tuple[int, ...] = (1, 2, 4),
        representation: int = 256,
        batch_size_per_image: int = 64,
        positive_fraction: float = 0.25,
        fg_iou: float = 0.5,
        score_threshold: float = 0.05,
        nms_threshold: float = 0.5,
        detections_per_image: int = 50,
    ) -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"Expected pool one of {', '.join(map(repr, POOLS))}. Received: pool={pool!r}")
        self.pool_kind = pool
        scale = 1.0 / stride
        if pool == "max":
            self.pool: nn.Module = RoIPool(pool_size, scale)
            flat = in_channels * pool_size * pool_size
        elif pool == "align":
            self.pool = RoIAlign(pool_size, scale, sampling_ratio=2, aligned=True)
            flat = in_channels * pool_size * pool_size
        else:
            self.pool = SpatialPyramidRoIPool(tuple(spp_levels), scale)
            flat = in_channels * sum(n * n for n in spp_levels)
        self.num_classes = num_classes
        self.fc6 = nn.Linear(flat, representation)
        self.fc7 = nn.Linear(representation, representation)
        self.cls_score = nn.Linear(representation, num_classes + 1)
        self.bbox_pred = nn.Linear(representation, 4 * (num_classes + 1))
        # Sec. 2.3 of Fast R-CNN: the new layers from zero-mean Gaussians with std 0.01 (classifier) and
        # 0.001 (box regression), biases 0.
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.cls_score.bias)
        nn.init.zeros_(self.bbox_pred.bias)
        self.coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
        self.matcher = Matcher(fg_iou, fg_iou, allow_low_quality_matches=False)
        self.sampler = BalancedSampler(batch_size_per_image, positive_fraction)
        self.score_threshold, self.nms_threshold = float(score_threshold), float(nms_threshold)
        self.detections_per_image = int(detections_per_image)

    def predict(self, features: Tensor, proposals: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Class logits (R, K + 1) and box deltas (R, 4 (K + 1)) for all images' proposals, concatenated."""
        return self.predict_rois(features, rois_of(proposals, features))

    def predict_rois(self, features: Tensor, rois: Tensor) -> tuple[Tensor, Tensor]:
        """Class logits (R, K + 1) and box deltas (R, 4 (K + 1)) for ``rois`` (R, 5) rows
        ``(batch_index, x1, y1, x2, y2)``: pool, fc6, fc7, the two sibling layers (what ONNX export keeps)."""
        x = self.pool(features, rois.to(features.dtype)).flatten(1)
        x = F.relu(self.fc7(F.relu(self.fc6(x))))
        return self.cls_score(x), self.bbox_pred(x)

    def sample(self, proposals: list[Tensor], gt_boxes: list[Tensor], gt_labels: list[Tensor]) -> tuple[list[Tensor], Tensor, Tensor]:
        """Training RoIs per image with their labels (0 = background) and regression targets."""
        rois, labels, targets = [], [], []
        for p, boxes, cls in zip(proposals, gt_boxes, gt_labels):
            p = torch.cat([p, boxes]) if boxes.numel() else p
            matches = self.matcher(box_iou(boxes, p))
            lab = torch.zeros_like(matches)
            matched = matches >= 0
            lab[matched] = cls[matches[matched]].long() + 1
            pos, neg = self.sampler(lab)
            keep = (pos | neg).nonzero().flatten()
            p, lab, m = p[keep], lab[keep], matches[keep]
            t = torch.zeros_like(p)
            if boxes.numel():
                fg = lab > 0
                t[fg] = self.coder.encode(boxes[m[fg]], p[fg])
            rois.append(p)
            labels.append(lab)
            targets.append(t)
        return rois, torch.cat(labels), torch.cat(targets)

    def forward(
        self,
        features: Tensor,
        proposals: list[Tensor],
        image_size: tuple[int, int],
        gt_boxes: list[Tensor] | None = None,
        gt_labels: list[Tensor] | None = None,
    ) -> tuple[Tensor, Tensor] | Tensor:
        """Training (with ground truth): ``(L_cls, L_loc)``; otherwise the detections (B, D, 6)."""
        if gt_boxes is not None and gt_labels is not None:
            rois, labels, targets = self.sample(proposals, gt_boxes, gt_labels)
            logits, deltas = self.predict(features, rois)
            return fast_rcnn_loss(logits, deltas, labels, targets)
        logits, deltas = self.predict(features, proposals)
        return self.postprocess(logits, deltas, proposals, image_size)

    def postprocess(self, logits: Tensor, deltas: Tensor, proposals: list[Tensor], image_size: tuple[int, int]) -> Tensor:
        """Per image: softmax scores, per-class decoded and clipped boxes, score threshold, per-class NMS,
        the top ``detections_per_image``; padded to (B, D, 6) rows ``(x1, y1, x2, y2, score, class)`` with
        class -1 (and score 0) after each image's detections, class in 0..K-1."""
        d = self.detections_per_image
        k = self.num_classes
        out = logits.new_zeros(len(proposals), d, 6, dtype=torch.float32)
        out[..., 5] = -1
        scores_all = torch.softmax(logits.float(), dim=-1)
        start = 0
        for i, p in enumerate(proposals):
            n = p.shape[0]
            scores = scores_all[start : start + n, 1:]
            boxes = self.coder.decode(deltas[start : start + n].float().view(n, k + 1, 4)[:, 1:].reshape(-1, 4),
                                      p.float().repeat_interleave(k, dim=0))
            start += n
            boxes = clip_boxes(boxes, image_size)
            scores = scores.reshape(-1)
            classes = torch.arange(k, device=p.device).repeat(n)
            keep = (scores > self.score_threshold).nonzero().flatten()
            # At most _CANDIDATES per image reach the NMS (its IoU matrix is quadratic in them).
            keep = keep[scores[keep].topk(min(_CANDIDATES, keep.numel())).indices]
            boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
            keep = remove_small_boxes(boxes, 1e-2)
            boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
            keep = batched_nms(boxes, scores, classes, self.nms_threshold)[:d]
            m = keep.numel()
            out[i, :m, :4] = boxes[keep]
            out[i, :m, 4] = scores[keep]
            out[i, :m, 5] = classes[keep].float()
        return out
