"""``task: segmentation``: a class for every pixel.

Targets are class-index masks ``(N, H, W)`` (int64; ``ignore_index``, 255 by default as in Pascal VOC,
marks pixels that count for nothing); outputs are per-pixel class scores ``(N, K, H', W')``. A model
whose output is smaller than its input (the paper's unpadded U-Net: 572 -> 388) is scored on the
centre of the mask, as Ronneberger et al. (2015) train on the valid part of each tile.

Losses: per-pixel softmax cross-entropy with optional class weights (``class_weights``; Long et al. 2015
and Ronneberger et al. 2015 both train on it), the Dice loss of Milletari et al. (2016,
:func:`~cnnkit.layers.dice.dice_loss`), or their sum (``softmax_cross_entropy+dice``, the Dice term weighted by
``dice_weight``). Metrics come from a pixel confusion matrix summed on the device
(:mod:`cnnkit.tasks.segmentation_metrics`): loss, pixel accuracy, mean IoU, mean Dice, and per-class IoU
(``summary.json``: ``test_miou``, ``test_per_class_iou``, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DataError
from ..layers.dice import dice_loss
from .base import Forward, StepOutput, Task, register_task
from .segmentation_metrics import scores_from_confusion

__all__ = ["MAX_CLASSES", "Segmentation", "align_target"]

MAX_CLASSES = 256
"""Masks are uint8: at most 255 classes plus the ignore index. The metric state holds a confusion matrix of
this size unless the task is told ``num_classes`` (it is created before the data is read)."""
_LOSSES = ("softmax_cross_entropy", "dice", "softmax_cross_entropy+dice")


def align_target(outputs: Tensor, target: Tensor) -> Tensor:
    """``target`` ``(B, H, W)`` centre-cropped to the outputs' ``(H', W')`` (valid-convolution models).

    Raises:
        DataError: the outputs are larger than the masks, or shapes disagree otherwise.
    """
    h, w = outputs.shape[-2:]
    th, tw = target.shape[-2:]
    if (h, w) == (th, tw):
        return target
    if outputs.ndim != 4 or h > th or w > tw or outputs.shape[0] != target.shape[0]:
        raise DataError(
            f"segmentation outputs {tuple(outputs.shape)} do not fit masks {tuple(target.shape)}: expected "
            "(B, K, H, W) outputs no larger than the (B, H, W) masks"
        )
    dh, dw = (th - h) // 2, (tw - w) // 2
    return target[:, dh : dh + h, dw : dw + w]


@register_task
class Segmentation(Task):
    """Per-pixel classification.

    Args:
        loss: ``softmax_cross_entropy`` (the default, as in ``train.loss``), ``dice`` or
            ``softmax_cross_entropy+dice``.
        class_weights: one weight per class for the cross-entropy (None: all 1).
        ignore_index: mask value that counts for no class (None: every value is a class).
        dice_weight: weight of the Dice term in ``softmax_cross_entropy+dice``.
        dice_smooth: the Dice loss's smoothing term.
        num_classes: size of the confusion matrix (default: up to :data:`MAX_CLASSES`, trimmed to the
            classes seen when metrics are computed).
        aux_weight: weight of auxiliary outputs' losses (models returning a tuple in training).

    Example:
        >>> task = Segmentation()
        >>> logits = torch.tensor([[[[4.0, -4.0]], [[-4.0, 4.0]]]])  # (1, 2, 1, 2): predicts [0, 1]
        >>> out = task.eval_step(lambda x: x, logits, torch.tensor([[[0, 0]]]))
        >>> state = task.metric_state(torch.device("cpu")); task.update_metrics(state, out)
        >>> m = task.compute_metrics(state); m["accuracy"], m["miou"]
        (0.5, 0.25)
    """

    name: ClassVar[str] = "segmentation"
    target: ClassVar[str] = "class-index masks, int64 of shape (N, H, W) (ignore_index marks unlabelled pixels)"
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "accuracy", "miou", "dice")
    monitor: ClassVar[tuple[str, str]] = ("miou", "max")

    def __init__(
        self,
        *,
        loss: str = "softmax_cross_entropy",
        class_weights: list[float] | None = None,
        ignore_index: int | None = 255,
        dice_weight: float = 1.0,
        dice_smooth: float = 1.0,
        num_classes: int | None = None,
        aux_weight: float = 0.4,
    ) -> None:
        if loss not in _LOSSES:
            raise ValueError(f"Expected loss in {_LOSSES}. Received: loss={loss!r}")
        if class_weights is not None and (not class_weights or any(not np.isfinite(w) or w < 0 for w in class_weights)):
            raise ValueError(f"Expected class_weights to be non-negative numbers. Received: class_weights={class_weights}")
        if num_classes is not None and not 1 <= num_classes <= MAX_CLASSES:
            raise ValueError(f"Expected 1 <= num_classes <= {MAX_CLASSES}. Received: num_classes={num_classes}")
        if dice_weight < 0 or dice_smooth < 0:
            raise ValueError(f"Expected dice_weight >= 0 and dice_smooth >= 0. Received: {dice_weight}, {dice_smooth}")
        self.loss_name = loss
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        self.ignore_index = ignore_index
        self.dice_weight = float(dice_weight)
        self.dice_smooth = float(dice_smooth)
        self.num_classes = num_classes
        self.aux_weight = float(aux_weight)
        self._k = num_classes or MAX_CLASSES

    # ------------------------------------------------------------------ loss

    def criterion(self, logits: Tensor, y: Tensor) -> Tensor:
        """The configured loss of ``logits`` ``(B, K, H, W)`` against masks ``y`` (cropped to fit), float32."""
        logits = logits.float()
        y = align_target(logits, y)
        k = logits.shape[1]
        ignore = self.ignore_index if self.ignore_index is not None else -100
        loss = logits.new_zeros(())
        if self.loss_name != "dice":
            weight = None
            if self.class_weights is not None:
                if len(self.class_weights) != k:
                    raise DataError(f"task.class_weights has {len(self.class_weights)} weights but the model predicts {k} classes")
                weight = torch.tensor(self.class_weights, device=logits.device)
            # Summed, then divided by the (weighted) count of labelled pixels: PyTorch's mean, except that
            # a batch whose pixels are all ignored gives 0 instead of 0/0.
            total = F.cross_entropy(logits, y, weight=weight, ignore_index=ignore, reduction="sum")
            valid = y != ignore
            denom = valid.sum() if weight is None else weight[torch.where(valid, y, 0)][valid].sum()
            loss = loss + total / denom.clamp_min(1e-12)
        if self.loss_name != "softmax_cross_entropy":
            d = dice_loss(logits, y, ignore_index=self.ignore_index, smooth=self.dice_smooth)
            loss = loss + (self.dice_weight if self.loss_name == "softmax_cross_entropy+dice" else 1.0) * d
        return loss

    def train_step(self, forward: Forward, x: Tensor, y: Tensor) -> StepOutput:
        out = forward(x)
        if isinstance(out, (tuple, list)):
            main, aux = out[0], out[1:]
        else:
            main, aux = out, ()
        loss = self.criterion(main, y)
        for a in aux:
            loss = loss + self.aux_weight * self.criterion(a, y)
        return StepOutput(loss, main, align_target(main, y))

    def eval_step(self, forward: Forward, x: Tensor, y: Tensor) -> StepOutput:
        out = forward(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return StepOutput(self.criterion(out, y), out, align_target(out, y))

    # ------------------------------------------------------------------ metrics

    def metric_state(self, device: torch.device) -> Tensor:
        # loss sum (per image), images, then the K x K pixel confusion matrix
        return torch.zeros(2 + self._k * self._k, dtype=torch.float64, device=device)

    def update_metrics(self, state: Tensor, step: StepOutput) -> None:
        k = self._k
        n = step.target.shape[0]
        state[0] += step.loss.detach().double() * n
        state[1] += n
        pred = step.outputs.detach().argmax(1)
        target = step.target
        valid = target != self.ignore_index if self.ignore_index is not None else torch.ones_like(target, dtype=torch.bool)
        # Out-of-range targets would land in another cell: the data sources refuse them when reading masks.
        idx = target[valid].long().clamp(0, k - 1) * k + pred[valid].clamp(0, k - 1)
        state[2:] += torch.bincount(idx, minlength=k * k).to(torch.float64)

    def confusion(self, state: Tensor) -> np.ndarray:
        """The pixel confusion matrix in ``state``, trimmed to the classes seen unless ``num_classes`` is set."""
        cm = state[2:].view(self._k, self._k).cpu().numpy()
        if self.num_classes is None:
            seen = np.flatnonzero(cm.sum(0) + cm.sum(1))
            k = int(seen.max()) + 1 if seen.size else 1
            cm = cm[:k, :k]
        return cm

    def compute_metrics(self, state: Tensor) -> dict[str, Any]:
        loss_sum, count = float(state[0]), int(state[1])
        if count == 0:
            return {"loss": float("nan"), "accuracy": float("nan"), "miou": float("nan"), "dice": float("nan"), "count": 0}
        s = scores_from_confusion(self.confusion(state))
        return {"loss": loss_sum / count, "accuracy": s["accuracy"], "miou": s["miou"], "dice": s["dice"],
                "per_class_iou": s["per_class_iou"], "count": count}

    def check_target(self, y: Tensor) -> None:
        if y.ndim != 3 or y.dtype not in (torch.int64, torch.int32, torch.uint8):
            raise DataError(f"task segmentation reads {self.target}; received {y.dtype} of shape {tuple(y.shape)}")

    # ------------------------------------------------------------------ outputs

    def present(self, outputs: Tensor, *, class_names: list[str] | None = None, top_k: int = 3) -> list[dict[str, Any]]:
        """Per item: the predicted mask's class fractions (the masks themselves are written as PNGs by
        :func:`cnnkit.evaluate.segmentation.predict_masks`)."""
        pred = outputs.detach().argmax(1).cpu()
        k = outputs.shape[1]
        names = class_names or [str(i) for i in range(k)]
        out = []
        for m in pred:
            frac = torch.bincount(m.flatten(), minlength=k).double() / m.numel()
            out.append({"classes": {names[i]: float(f) for i, f in enumerate(frac.tolist()) if f > 0}})
        return out

    def write_plots(self, *, model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], run_dir: Path, device: torch.device) -> None:
        """``plots/segmentation_samples.png``: image, truth and prediction for the first test images."""
        from ..plots.segmentation import plot_segmentation_samples

        for x, y in batches:
            x, y = x[:6].to(device), y[:6].to(device)
            was = model.training
            model.eval()
            with torch.no_grad():
                out = model(x)
            model.train(was)
            out = out[0] if isinstance(out, (tuple, list)) else out
            plot_segmentation_samples(x.cpu(), align_target(out, y).cpu(), out.argmax(1).cpu(), run_dir / "plots" / "segmentation_samples.png")
            return

    def headline(self, metrics: Mapping[str, Any]) -> str | None:
        miou, acc = metrics.get("test_miou"), metrics.get("test_accuracy")
        if not isinstance(miou, (int, float)):
            return None
        return f"test mIoU: {100 * miou:.2f}%" + (f" (pixel accuracy {100 * acc:.2f}%)" if isinstance(acc, (int, float)) else "")

    def __repr__(self) -> str:
        return f"Segmentation(loss={self.loss_name!r}, ignore_index={self.ignore_index})"
