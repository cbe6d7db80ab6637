"""Faster R-CNN (Ren, He, Girshick & Sun 2015) and its SPP-net head variant, on a small zoo backbone.

Reference: S. Ren, K. He, R. Girshick, J. Sun, "Faster R-CNN: Towards real-time object detection with
region proposal networks", NeurIPS 2015, arXiv:1506.01497; R. Girshick, "Fast R-CNN", ICCV 2015,
arXiv:1504.08083; K. He, X. Zhang, S. Ren, J. Sun, "Spatial pyramid pooling in deep convolutional networks
for visual recognition", ECCV 2014, arXiv:1406.4729.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..._checks import check_int
from .._common import set_input_shape
from .._registry import register_model
from ..resnet import CifarResNet
from .anchors import AnchorGenerator
from .losses import DetectionLosses
from .roi_heads import RoIHeads
from .rpn import RegionProposalNetwork

__all__ = ["FasterRCNN", "faster_rcnn", "faster_rcnn_spp", "split_targets"]


def split_targets(targets: Tensor) -> tuple[list[Tensor], list[Tensor]]:
    """Padded targets (B, M, 5) rows ``(class, x1, y1, x2, y2)``, class -1 for padding -> per-image boxes
    (M_i, 4) and class indices (M_i,)."""
    if targets.ndim != 3 or targets.shape[-1] != 5:
        raise ValueError(f"Expected targets of shape (B, M, 5) = (class, x1, y1, x2, y2). Received: shape={tuple(targets.shape)}")
    boxes, labels = [], []
    for t in targets:
        keep = t[:, 0] >= 0
        boxes.append(t[keep, 1:].float())
        labels.append(t[keep, 0].long())
    return boxes, labels


class _Backbone(nn.Module):
    """A CIFAR ResNet's convolutional body (He et al. 2016, Sec. 4.2) without its pooling and classifier:
    stride 4, 64 channels (a 64 x 64 scene gives a 16 x 16 map)."""

    stride = 4
    out_channels = 64

    def __init__(self, depth: int, in_channels: int) -> None:
        super().__init__()
        net = CifarResNet(depth=depth, num_classes=1, in_channels=in_channels)
        self.conv1, self.bn1, self.relu = net.conv1, net.bn1, net.relu
        self.layer1, self.layer2, self.layer3 = net.layer1, net.layer2, net.layer3

    def forward(self, x: Tensor) -> Tensor:
        return self.layer3(self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x))))))


class FasterRCNN(nn.Module):
    """Backbone -> region proposal network -> RoI pooling -> Fast R-CNN head, trained jointly.

    ::

        backbone (CIFAR ResNet body)       (B, 64, H/4, W/4)
        RPN: 3x3 conv, k logits, 4k deltas -> proposals (NMS 0.7)
        RoI pool (max / align / spp) on the proposals, fc6, fc7
        cls_score (K + 1), bbox_pred (4 (K + 1)) -> per-class NMS -> detections

    Args:
        num_classes: K object classes (the background class is added internally).
        in_channels: image channels.
        backbone_depth: depth 6n + 2 of the CIFAR ResNet body (8: one block per stage).
        anchor_scales, aspect_ratios: the RPN's anchors (pixels; height / width).
        pool, pool_size, spp_levels, representation: the head (see :class:`RoIHeads`).
        detections_per_image: D, the padded length of the eval-mode output.
        input_size: the (H, W) the data is brought to.

    Shape:
        Training mode: ``forward(x, targets=None)``, x (B, C, H, W), targets (B, M, 5) rows
        ``(class, x1, y1, x2, y2)`` with class -1 for padding (None: every image is background) ->
        :class:`DetectionLosses` (sum them to train). Eval mode: ``forward(x)`` -> detections (B, D, 6) rows
        ``(x1, y1, x2, y2, score, class)``, class -1 for padding.

    Deviations:
        A small CIFAR-style ResNet body (stride 4) instead of VGG-16 / ZF (stride 16), sized for 64 x 64
        scenes; approximate joint training of RPN and head (the paper's Sec. 3.2 option (ii), which its
        released code uses), not the 4-step alternating training; see :class:`RegionProposalNetwork` and
        :class:`RoIHeads` for their own deviations.
    """

    def __init__(
        self,
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        backbone_depth: int = 8,
        anchor_scales: Sequence[float] = (12, 24, 40),
        aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
        pool: str = "align",
        pool_size: int = 7,
        spp_levels: Sequence[int] = (1, 2, 4),
        representation: int = 256,
        detections_per_image: int = 50,
        input_size: Sequence[int] = (64, 64),
    ) -> None:
        super().__init__()
        check_int(num_classes, "num_classes")
        check_int(in_channels, "in_channels")
        self.num_classes = num_classes
        self.backbone = _Backbone(backbone_depth, in_channels)
        stride, c = self.backbone.stride, self.backbone.out_channels
        self.rpn = RegionProposalNetwork(c, AnchorGenerator(anchor_scales, aspect_ratios, stride))
        self.roi_heads = RoIHeads(
            c, stride, num_classes, pool=pool, pool_size=pool_size, spp_levels=tuple(spp_levels),
            representation=representation, detections_per_image=detections_per_image,
        )
        h, w = (int(v) for v in input_size)
        set_input_shape(self, (in_channels, h, w))

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) -> (B, 64, H/4, W/4)``: the backbone's feature map."""
        return self.backbone(x)

    def forward_head(self, features: Tensor, image_size: tuple[int, int] | None = None) -> Tensor:
        """Detections (B, D, 6) from a feature map (eval mode); ``image_size`` defaults to the map's size
        times the stride."""
        size = image_size or (features.shape[-2] * self.backbone.stride, features.shape[-1] * self.backbone.stride)
        proposals, _ = self.rpn(features, size)
        return self.roi_heads(features, proposals, size)

    def forward(self, x: Tensor, targets: Tensor | None = None) -> DetectionLosses | Tensor:
        size = (int(x.shape[-2]), int(x.shape[-1]))
        features = self.forward_features(x)
        if not self.training:
            return self.forward_head(features, size)
        if targets is None:
            targets = x.new_full((x.shape[0], 0, 5), -1.0)
        boxes, labels = split_targets(targets)
        proposals, rpn_losses = self.rpn(features, size, boxes)
        assert rpn_losses is not None
        cls, box = self.roi_heads(features, proposals, size, boxes, labels)
        return DetectionLosses(rpn_losses[0], rpn_losses[1], cls, box)


_PAPER = "Ren, He, Girshick & Sun 2015, Faster R-CNN, arXiv:1506.01497"


@register_model(paper=_PAPER, year=2015, input_size=(3, 64, 64), num_params=997_492, task="detection",
                gradcam_layer="backbone.layer3")
def faster_rcnn(
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    backbone_depth: int = 8,
    anchor_scales: Sequence[float] = (12, 24, 40),
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    pool: str = "align",
    pool_size: int = 7,
    representation: int = 256,
    detections_per_image: int = 50,
    input_size: Sequence[int] = (64, 64),
) -> FasterRCNN:
    """Faster R-CNN with a RoIAlign (``pool="align"``) or RoIPool (``pool="max"``) head."""
    return FasterRCNN(
        num_classes=num_classes, in_channels=in_channels, backbone_depth=backbone_depth, anchor_scales=anchor_scales,
        aspect_ratios=aspect_ratios, pool=pool, pool_size=pool_size, representation=representation,
        detections_per_image=detections_per_image, input_size=input_size,
    )


@register_model(paper=_PAPER + "; He et al. 2014, SPP-net, arXiv:1406.4729", year=2015, input_size=(3, 64, 64),
                num_params=538_740, task="detection", gradcam_layer="backbone.layer3")
def faster_rcnn_spp(
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    backbone_depth: int = 8,
    anchor_scales: Sequence[float] = (12, 24, 40),
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    spp_levels: Sequence[int] = (1, 2, 4),
    representation: int = 256,
    detections_per_image: int = 50,
    input_size: Sequence[int] = (64, 64),
) -> FasterRCNN:
    """Faster R-CNN whose head pools each proposal with SPP-net's spatial pyramid (levels 1, 2, 4)."""
    return FasterRCNN(
        num_classes=num_classes, in_channels=in_channels, backbone_depth=backbone_depth, anchor_scales=anchor_scales,
        aspect_ratios=aspect_ratios, pool="spp", spp_levels=spp_levels, representation=representation,
        detections_per_image=detections_per_image, input_size=input_size,
    )
