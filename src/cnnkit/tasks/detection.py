"""``task: detection``: find objects, each a class and a box.

Targets are padded boxes ``(N, M, 5)`` rows ``(class, x1, y1, x2, y2)`` (float32, input pixels), class -1
for padding (:mod:`cnnkit.data.detection`). The model (``faster_rcnn``, ``faster_rcnn_spp``) computes its
own losses when called with targets in training mode (a :class:`~cnnkit.models.detection.DetectionLosses`,
the sum of the RPN's and Fast R-CNN's multi-task losses is minimized) and returns detections ``(N, D, 6)``
rows ``(x1, y1, x2, y2, score, class)`` in eval mode. Evaluation gathers every detection of the split and
computes COCO mAP@[.5:.95] (``map``) and mAP@0.5 (``map50``) with pycocotools.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..errors import DataError
from .base import EvalStep, Forward, StepOutput, Task, register_task
from .coco_eval import coco_map

__all__ = ["Detection"]


@register_task
class Detection(Task):
    """Object detection with a model that returns its losses in training mode and detections in eval mode.

    Metrics: ``loss`` (training batches: the sum of the four loss terms), ``map`` and ``map50`` (whole
    evaluation splits; not computed on training batches).

    Example:
        >>> task = Detection()
        >>> task.compute_metrics(torch.tensor([3.0, 2.0], dtype=torch.float64))["loss"]
        1.5
    """

    name: ClassVar[str] = "detection"
    target: ClassVar[str] = "padded boxes, float32 of shape (N, M, 5): (class, x1, y1, x2, y2), class -1 = padding"
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "map", "map50")
    monitor: ClassVar[tuple[str, str]] = ("map", "max")

    def train_step(self, forward: Forward, x: Tensor, y: Tensor) -> StepOutput:
        losses = forward(x, y)  # type: ignore[call-arg]  # detectors take their targets in training mode
        parts = torch.stack([v.float() for v in losses])
        return StepOutput(parts.sum(), parts.detach(), y)

    def eval_step(self, forward: Forward, x: Tensor, y: Tensor) -> StepOutput:
        # Eval mode returns detections only: the losses need training-mode sampling (no evaluation loss).
        return StepOutput(torch.full((), math.nan, device=x.device), forward(x), y)

    def metric_state(self, device: torch.device) -> Tensor:
        return torch.zeros(2, dtype=torch.float64, device=device)  # loss sum, count

    def update_metrics(self, state: Tensor, step: StepOutput) -> None:
        n = step.target.shape[0]
        state[0] += step.loss.detach().double() * n
        state[1] += n

    def compute_metrics(self, state: Tensor) -> dict[str, float]:
        loss_sum, count = state.tolist()
        loss = loss_sum / count if count else math.nan
        return {"loss": loss, "map": math.nan, "map50": math.nan, "count": int(count)}

    def evaluate(self, step: EvalStep, batches: Iterable[tuple[Tensor, Tensor]], device: torch.device) -> dict[str, float]:
        """COCO mAP over the whole split (every image's detections against its boxes)."""
        dets: list[Tensor] = []
        targets: list[Tensor] = []
        size: tuple[int, int] = (0, 0)
        num_classes = 1
        for x, y in batches:
            out = step(x, y)
            size = (int(x.shape[-2]), int(x.shape[-1]))
            dets.extend(out.outputs.detach().float().cpu())
            targets.extend(y.detach().float().cpu())
            num_classes = max(num_classes, int(y[..., 0].max().item()) + 1, int(out.outputs[..., 5].max().item()) + 1)
        if not dets:
            return {"loss": math.nan, "map": math.nan, "map50": math.nan, "count": 0}
        metrics = coco_map(dets, targets, num_classes=num_classes, image_size=size)
        return {"loss": math.nan, **metrics, "count": len(dets)}

    def check_target(self, y: Tensor) -> None:
        if y.ndim != 3 or y.shape[-1] != 5 or not y.dtype.is_floating_point:
            raise DataError(f"task detection reads {self.target}; received {y.dtype} of shape {tuple(y.shape)}")

    def headline(self, metrics: Any) -> str | None:
        m, m50 = metrics.get("test_map"), metrics.get("test_map50")
        if not isinstance(m, (int, float)):
            return None
        return f"test mAP@[.5:.95]: {m:.4f}, mAP@0.5: {m50:.4f}" if isinstance(m50, (int, float)) else f"test mAP: {m:.4f}"

    def present(self, outputs: Tensor, *, class_names: list[str] | None = None, top_k: int = 100) -> list[dict[str, Any]]:
        """Per image: up to ``top_k`` detections ``{box: [x1, y1, x2, y2], score, class, name}``, best first."""
        results = []
        for d in outputs.detach().float().cpu():
            rows = []
            for x1, y1, x2, y2, s, c in d[d[:, 5] >= 0].tolist()[:top_k]:
                k = int(c)
                name = class_names[k] if class_names and k < len(class_names) else str(k)
                rows.append({"box": [x1, y1, x2, y2], "score": s, "class": k, "name": name})
            results.append({"detections": rows})
        return results

    def write_plots(self, *, model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], run_dir: Path, device: torch.device) -> None:
        """A grid of test images with their detections (``plots/detections.png``)."""
        from ..plots.detection import plot_detections

        was = model.training
        model.eval()
        for x, y in batches:
            with torch.no_grad():
                dets = model(x.to(device))
            plot_detections(x[:8].cpu(), dets[:8].cpu(), y[:8].cpu(), run_dir / "plots" / "detections.png")
            break
        model.train(was)

    def __repr__(self) -> str:
        return "Detection()"
