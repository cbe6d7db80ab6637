"""``task: classification``: one of K mutually exclusive classes per input.

Targets are class indices ``(N,)`` (int64). The criterion comes from :data:`cnnkit.layers.LOSSES` by
name: softmax cross-entropy (the default, with optional label smoothing), or, as the article allows, the
sigmoid cross-entropy or Euclidean loss against one-hot targets. Metrics: loss and top-1 accuracy. Models
that return a tuple in training mode (GoogLeNet's auxiliary classifiers) are trained on
``loss(main) + 0.3 * sum(loss(aux))``, the weight of Szegedy et al. (2015), Sec. 5.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DataError
from ..layers.losses import LOSSES
from .base import Forward, StepOutput, Task, register_task

__all__ = ["AUX_WEIGHT", "Classification"]

AUX_WEIGHT = 0.3


@register_task
class Classification(Task):
    """One class per input; softmax cross-entropy by default.

    Args:
        loss: a name in :data:`~cnnkit.layers.LOSSES`: ``softmax_cross_entropy``, ``sigmoid_cross_entropy``
            or ``euclidean`` (the last two see one-hot targets).
        label_smoothing: ``eps`` of Szegedy et al. (2016), Sec. 7; training only (evaluation reports the
            plain loss), softmax cross-entropy only.
        aux_weight: weight of auxiliary outputs' losses.

    Example:
        >>> import torch
        >>> task = Classification()
        >>> out = task.eval_step(lambda x: x, torch.tensor([[0.0, 2.0], [3.0, 0.0]]), torch.tensor([1, 1]))
        >>> state = task.metric_state(torch.device("cpu")); task.update_metrics(state, out)
        >>> task.compute_metrics(state)["accuracy"]
        0.5
    """

    name: ClassVar[str] = "classification"
    target: ClassVar[str] = "class indices, int64 of shape (N,)"
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "accuracy")
    monitor: ClassVar[tuple[str, str]] = ("accuracy", "max")

    def __init__(self, *, loss: str = "softmax_cross_entropy", label_smoothing: float = 0.0, aux_weight: float = AUX_WEIGHT) -> None:
        if label_smoothing and loss != "softmax_cross_entropy":
            raise ValueError(f"Expected label_smoothing=0 with loss={loss!r}. Received: label_smoothing={label_smoothing}")
        self.loss_name = loss
        self._loss = LOSSES.get(loss)
        self.label_smoothing = float(label_smoothing)
        self.aux_weight = float(aux_weight)

    def criterion(self, logits: Tensor, y: Tensor, *, label_smoothing: float = 0.0) -> Tensor:
        """The configured loss of ``logits`` (N, K) against class indices ``y``, in float32."""
        if logits.ndim != 2:
            # A dense model (U-Net, FCN) under this task used to die in cross_entropy with a raw RuntimeError.
            hint = "; a per-pixel model needs task: segmentation (configs/segmentation-unet.yaml)" if logits.ndim == 4 else ""
            raise DataError(f"task classification expects (N, K) model outputs; the model returns {tuple(logits.shape)}{hint}")
        logits = logits.float()
        if self.loss_name == "softmax_cross_entropy":
            return self._loss(logits, y, label_smoothing=label_smoothing)
        return self._loss(logits, F.one_hot(y, logits.shape[1]).float())

    def train_step(self, forward: Forward, x: Tensor, y: Tensor) -> StepOutput:
        out = forward(x)
        if isinstance(out, (tuple, list)):
            main = out[0]
            loss = self.criterion(main, y, label_smoothing=self.label_smoothing)
            for aux in out[1:]:
                loss = loss + self.aux_weight * self.criterion(aux, y, label_smoothing=self.label_smoothing)
            return StepOutput(loss, main, y)
        return StepOutput(self.criterion(out, y, label_smoothing=self.label_smoothing), out, y)

    def eval_step(self, forward: Forward, x: Tensor, y: Tensor) -> StepOutput:
        out = forward(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return StepOutput(self.criterion(out, y), out, y)

    def metric_state(self, device: torch.device) -> Tensor:
        return torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, count

    def update_metrics(self, state: Tensor, step: StepOutput) -> None:
        n = step.target.shape[0]
        state[0] += step.loss.detach().double() * n
        state[1] += (step.outputs.detach().argmax(1) == step.target).sum()
        state[2] += n

    def compute_metrics(self, state: Tensor) -> dict[str, float]:
        loss_sum, correct, count = state.tolist()
        if count == 0:
            return {"loss": float("nan"), "accuracy": float("nan"), "count": 0}
        return {"loss": loss_sum / count, "accuracy": correct / count, "count": int(count)}

    def check_target(self, y: Tensor) -> None:
        if y.ndim != 1 or y.dtype not in (torch.int64, torch.int32, torch.uint8):
            raise DataError(f"task classification reads {self.target}; received {y.dtype} of shape {tuple(y.shape)}")

    def present(self, outputs: Tensor, *, class_names: list[str] | None = None, top_k: int = 3) -> list[dict[str, Any]]:
        """Top-``k`` classes with their softmax probabilities, per item."""
        probs = torch.softmax(outputs.detach().double(), dim=1).cpu()
        k = min(top_k, probs.shape[1])
        values, indices = probs.topk(k, dim=1)
        names = class_names or [str(i) for i in range(probs.shape[1])]
        return [
            {"top": [{"index": int(i), "name": names[int(i)], "probability": float(p)} for p, i in zip(vs, ix)]}
            for vs, ix in zip(values.tolist(), indices.tolist())
        ]

    def headline(self, metrics: Any) -> str | None:
        acc = metrics.get("test_accuracy")
        return f"test accuracy: {100 * acc:.2f}%" if isinstance(acc, (int, float)) else None

    def __repr__(self) -> str:
        return f"Classification(loss={self.loss_name!r}, label_smoothing={self.label_smoothing})"
