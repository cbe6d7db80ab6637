"""ONNX export of a Faster R-CNN run as two graphs, with the data-dependent steps left in Python.

Faster R-CNN's proposal selection (top-k, non-maximum suppression) and its final per-class NMS keep a
number of boxes that depends on the data, and cnnkit writes them as Python loops (torchvision's ops are not
available here), which ``torch.export`` cannot trace. Everything else is exported:

- ``model.onnx`` (the *proposer*): ``input`` images (B, C, H, W), normalized as in training ->
  ``features`` (B, 64, H/4, W/4), ``rpn_logits`` (B, A) (objectness, one sigmoid logit per anchor),
  ``rpn_deltas`` (B, A, 4) (R-CNN box coding ``(t_x, t_y, t_w, t_h)``, weights 1) and ``anchors`` (A, 4)
  ``xyxy`` in input pixels (a constant of the input size, in the generator's order).
- ``model-head.onnx`` (the *box head*): ``features`` and ``rois`` (R, 5) rows ``(batch_index, x1, y1,
  x2, y2)`` -> ``cls_logits`` (R, K + 1) (column 0 = background) and ``box_deltas`` (R, 4 (K + 1)) (box
  coding weights 10, 10, 5, 5), with the RoI pooling (RoIAlign, RoIPool or the SPP pyramid) inside the
  graph.

Between and after them, outside ONNX: decode ``rpn_deltas`` on the anchors, keep the top 300 by
objectness, clip to the image, drop boxes under 1e-3 px, NMS at IoU 0.7 and keep 100 per image
(:meth:`~cnnkit.models.detection.RegionProposalNetwork.propose`); after the head, softmax, per-class
decoding and clipping, score > 0.05, per-class NMS at 0.5, the top 50
(:meth:`~cnnkit.models.detection.RoIHeads.postprocess`). :func:`detect_with_onnx` does exactly that
with two onnxruntime sessions, and the export check compares its detections with the PyTorch model's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..models.detection import FasterRCNN, rois_of

__all__ = ["BoxHeadGraph", "ProposerGraph", "detect_with_onnx", "head_path"]


class ProposerGraph(nn.Module):
    """Backbone + RPN head of a :class:`FasterRCNN`: images -> features, objectness, deltas, anchors."""

    def __init__(self, model: FasterRCNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        features = self.model.backbone(x)
        logits, deltas = self.model.rpn.head(features)
        anchors = self.model.rpn.anchors((int(features.shape[-2]), int(features.shape[-1])), device=x.device)
        return features, logits, deltas, anchors


class BoxHeadGraph(nn.Module):
    """The Fast R-CNN head of a :class:`FasterRCNN` on given RoIs: pool, fc6, fc7, class and box outputs."""

    def __init__(self, model: FasterRCNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: Tensor, rois: Tensor) -> tuple[Tensor, Tensor]:
        return self.model.roi_heads.predict_rois(features, rois)


def head_path(path: Path) -> Path:
    """Where the box head goes beside the proposer's ``path``: ``model.onnx`` -> ``model-head.onnx``."""
    return path.with_name(f"{path.stem}-head{path.suffix}")


def detect_with_onnx(proposer: Any, head: Any, model: FasterRCNN, x: np.ndarray) -> tuple[Tensor, dict[str, np.ndarray]]:
    """Detections (B, D, 6) rows ``(x1, y1, x2, y2, score, class)`` of images ``x`` from two onnxruntime
    sessions, with the model's own Python steps between them (see the module docstring); also the
    proposer's raw outputs, by name."""
    features, logits, deltas, anchors = proposer.run(None, {"input": x})
    size = (int(x.shape[-2]), int(x.shape[-1]))
    model.eval()
    proposals = model.rpn.propose(torch.from_numpy(logits), torch.from_numpy(deltas), torch.from_numpy(anchors), size)
    rois = rois_of(proposals, torch.from_numpy(features))
    cls, box = head.run(None, {"features": features, "rois": rois.numpy().astype(np.float32)})
    dets = model.roi_heads.postprocess(torch.from_numpy(cls), torch.from_numpy(box), proposals, size)
    return dets, {"features": features, "rpn_logits": logits, "rpn_deltas": deltas, "anchors": anchors}


def export_detector(model: FasterRCNN, example: Tensor, path: Path, opset: int | None) -> list[Path]:
    """Write the proposer to ``path`` and the box head beside it (:func:`head_path`); dynamic batch and
    RoI count. Raises whatever the exporter raises (the caller words it)."""
    model = model.eval()
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    torch.onnx.export(
        ProposerGraph(model), (example,), str(path), input_names=["input"],
        output_names=["features", "rpn_logits", "rpn_deltas", "anchors"], dynamic_shapes=({0: batch},),
        opset_version=opset, dynamo=True,
    )
    with torch.no_grad():
        features = model.backbone(example)
    # A few RoIs over both images; the count is dynamic (>= 2 at export so it is not specialised to 1).
    rois = torch.tensor([[0, 2.0, 3.0, 30.0, 40.0], [1, 10.0, 8.0, 50.0, 33.0], [0, 0.0, 0.0, 12.0, 12.0]])
    n = torch.export.Dim("rois", min=1, max=1 << 20)
    torch.onnx.export(
        BoxHeadGraph(model), (features, rois), str(head_path(path)), input_names=["features", "rois"],
        output_names=["cls_logits", "box_deltas"], dynamic_shapes=({0: batch}, {0: n}),
        opset_version=opset, dynamo=True,
    )
    return [path, head_path(path)]
