"""The region proposal network (Ren et al. 2015, Sec. 3.1): a small network slid over the feature map
predicting, for each of k anchors per position, an objectness score and a box refinement."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...layers.boxes import BoxCoder, box_iou, clip_boxes, remove_small_boxes
from ...layers.nms import nms
from .anchors import AnchorGenerator
from .losses import smooth_l1
from .matching import BalancedSampler, Matcher

__all__ = ["RegionProposalNetwork"]


class RegionProposalNetwork(nn.Module):
    """3x3 conv + ReLU, then sibling 1x1 convs: k objectness logits and 4k box deltas per position.

    Args:
        in_channels: feature-map channels.
        anchors: the anchor generator (k anchors per position, its stride = the feature stride).
        pre_nms_top_n, post_nms_top_n: proposals kept per image before / after NMS, as ``(train, test)``
            (the paper: ~6000 before NMS, 2000 after for training, 300 at test time, on 1000x600 images).
        nms_threshold: IoU of the NMS on proposals (0.7 in the paper).
        fg_iou, bg_iou: anchor labelling thresholds (0.7 / 0.3).
        batch_size_per_image, positive_fraction: the anchor minibatch (256, half positive).

    Shape:
        ``forward(features, image_size, gt_boxes=None)``: features (B, C, h, w); ``gt_boxes`` a list of
        (M_i, 4) ``xyxy`` tensors (training) -> ``(proposals, losses)``: B tensors (P_i, 4) and
        ``(objectness, box)`` losses (None without ground truth).

    Deviations:
        One sigmoid logit per anchor (torchvision, Detectron) instead of the paper's two-way softmax (the
        same model: a softmax over two logits is a sigmoid of their difference); anchors crossing the image
        boundary are kept in training (the paper ignores them; with small images most anchors cross it);
        the box term uses smooth L1 with beta = 1/9 and both terms are normalized by the sampled anchor
        count (the paper's lambda = 10 with N_reg ~ 2400 locations gives about the same balance).
    """

    def __init__(
        self,
        in_channels: int,
        anchors: AnchorGenerator,
        *,
        pre_nms_top_n: tuple[int, int] = (600, 300),
        post_nms_top_n: tuple[int, int] = (300, 100),
        nms_threshold: float = 0.7,
        fg_iou: float = 0.7,
        bg_iou: float = 0.3,
        batch_size_per_image: int = 256,
        positive_fraction: float = 0.5,
        min_size: float = 1e-3,
    ) -> None:
        super().__init__()
        self.anchors = anchors
        k = anchors.num_anchors
        self.conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1)
        self.cls_logits = nn.Conv2d(in_channels, k, kernel_size=1)
        self.bbox_pred = nn.Conv2d(in_channels, 4 * k, kernel_size=1)
        for layer in (self.conv, self.cls_logits, self.bbox_pred):
            nn.init.normal_(layer.weight, std=0.01)  # Sec. 3.1.3: zero-mean Gaussian, std 0.01
            nn.init.zeros_(layer.bias)  # type: ignore[arg-type]  # the convs have biases
        self.coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        self.matcher = Matcher(fg_iou, bg_iou, allow_low_quality_matches=True)
        self.sampler = BalancedSampler(batch_size_per_image, positive_fraction)
        self.pre_nms_top_n, self.post_nms_top_n = tuple(pre_nms_top_n), tuple(post_nms_top_n)
        self.nms_threshold, self.min_size = float(nms_threshold), float(min_size)

    def head(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Per-anchor objectness (B, h w k) and deltas (B, h w k, 4), in the anchor generator's order."""
        t = F.relu(self.conv(features))
        b = t.shape[0]
        logits = self.cls_logits(t).permute(0, 2, 3, 1).reshape(b, -1)
        deltas = self.bbox_pred(t).permute(0, 2, 3, 1).reshape(b, -1, 4)
        return logits.float(), deltas.float()

    def forward(
        self, features: Tensor, image_size: tuple[int, int], gt_boxes: list[Tensor] | None = None
    ) -> tuple[list[Tensor], tuple[Tensor, Tensor] | None]:
        logits, deltas = self.head(features)
        anchors = self.anchors((int(features.shape[-2]), int(features.shape[-1])), device=features.device)
        proposals = self.propose(logits, deltas, anchors, image_size)
        losses = None if gt_boxes is None else self.loss(logits, deltas, anchors, gt_boxes)
        return proposals, losses

    def propose(self, logits: Tensor, deltas: Tensor, anchors: Tensor, image_size: tuple[int, int]) -> list[Tensor]:
        """Per image, the proposals (P_i, 4) from the head's objectness (B, A) and deltas (B, A, 4) on
        ``anchors`` (A, 4): decode, top-k, clip, drop tiny boxes, NMS (the training or test counts by
        ``self.training``). Data-dependent, so an ONNX export stops before it (:mod:`cnnkit.export.detection`)."""
        mode = 0 if self.training else 1
        with torch.no_grad():
            return [self._select(self.coder.decode(d, anchors), s, image_size, mode) for d, s in zip(deltas.detach(), logits.detach())]

    def _select(self, boxes: Tensor, scores: Tensor, image_size: tuple[int, int], mode: int) -> Tensor:
        """Top-scoring, clipped, non-tiny, non-overlapping proposals of one image."""
        top = scores.topk(min(self.pre_nms_top_n[mode], scores.numel())).indices
        boxes, scores = clip_boxes(boxes[top], image_size), scores[top]
        keep = remove_small_boxes(boxes, self.min_size)
        boxes, scores = boxes[keep], scores[keep]
        keep = nms(boxes, scores, self.nms_threshold)[: self.post_nms_top_n[mode]]
        return boxes[keep]

    def loss(self, logits: Tensor, deltas: Tensor, anchors: Tensor, gt_boxes: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Eq. 1 of Ren et al. over each image's sampled anchors: binary cross-entropy on objectness and
        smooth L1 on positives' box deltas, both divided by the number of sampled anchors."""
        obj_terms, box_terms, count = [], [], 0
        for logit, delta, gt in zip(logits, deltas, gt_boxes):
            matches = self.matcher(box_iou(gt, anchors))
            labels = (matches >= 0).long()
            labels[matches == -2] = -1
            pos, neg = self.sampler(labels)
            chosen = pos | neg
            obj_terms.append(F.binary_cross_entropy_with_logits(logit[chosen], pos[chosen].float(), reduction="sum"))
            if pos.any():
                target = self.coder.encode(gt[matches[pos]], anchors[pos])
                box_terms.append(smooth_l1(delta[pos] - target, beta=1.0 / 9).sum())
            else:
                box_terms.append(delta.sum() * 0.0)  # keeps the graph (and a zero gradient) without positives
            count += int(chosen.sum())
        n = max(count, 1)
        return torch.stack(obj_terms).sum() / n, torch.stack(box_terms).sum() / n
