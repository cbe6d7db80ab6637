"""``task: anomaly``: an anomaly score for every time step, against labelled anomalies.

Inputs are windows ``x`` ``(B, 1, w)`` ending at the scored step; targets ``y`` ``(B, w)`` the 0/1 labels of
the window's steps. The model gives one logit per step of the window (SR-CNN, Ren et al. 2019, Sec. 3.3);
training fits all of them with the sigmoid cross-entropy, as the paper does on windows with injected
anomalies; evaluation scores each step by its window's last logit (the online setting: a step is scored
when it arrives). Metrics: precision, recall and F1 of ``score >= threshold`` and ROC-AUC, by
scikit-learn over every scored step.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DataError
from .base import EvalStep, Forward, StepOutput, Task, register_task

__all__ = ["Anomaly", "point_metrics"]


def point_metrics(scores: Any, labels: Any, threshold: float) -> dict[str, float]:
    """Precision, recall, F1 (of the anomaly class) and ROC-AUC by scikit-learn; ROC-AUC is NaN when only
    one class occurs."""
    import numpy as np
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(int)
    p, r, f, _ = precision_recall_fscore_support(y, (s >= threshold).astype(int), average="binary", zero_division=0)
    auc = float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")
    return {"precision": float(p), "recall": float(r), "f1": float(f), "roc_auc": auc}


@register_task
class Anomaly(Task):
    """Per-step anomaly scores (sigmoid of the last logit of each window).

    Args:
        threshold: score at or above which a step is called an anomaly.

    Example:
        >>> task = Anomaly()
        >>> out = task.eval_step(lambda x: x[:, 0], torch.tensor([[[0.0, 5.0]], [[0.0, -5.0]]]), torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
        >>> out.outputs.tolist() > [0.99, 0.0]
        True
    """

    name: ClassVar[str] = "anomaly"
    target: ClassVar[str] = "0/1 labels of each window's steps, float of shape (N, w)"
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "precision", "recall", "f1", "roc_auc")
    monitor: ClassVar[tuple[str, str]] = ("f1", "max")

    def __init__(self, *, threshold: float = 0.5) -> None:
        if not 0 < threshold < 1:
            raise ValueError(f"Expected 0 < threshold < 1. Received: threshold={threshold}")
        self.threshold = float(threshold)

    def _logits(self, forward: Forward, x: Tensor, y: Tensor) -> Tensor:
        self.check_target(y)
        out = forward(x).float()
        if out.shape != y.shape:
            raise DataError(f"task anomaly needs one logit per window step {tuple(y.shape[1:])}; the model gives {tuple(out.shape[1:])}")
        return out

    def train_step(self, forward: Forward, x: Tensor, y: Tensor) -> StepOutput:
        out = self._logits(forward, x, y)
        return StepOutput(F.binary_cross_entropy_with_logits(out, y.float()), torch.sigmoid(out[:, -1]), y[:, -1])

    def metric_state(self, device: torch.device) -> Tensor:
        return torch.zeros(5, dtype=torch.float64, device=device)  # loss sum, count, tp, fp, fn

    def update_metrics(self, state: Tensor, step: StepOutput) -> None:
        n = step.target.shape[0]
        pred = step.outputs.detach() >= self.threshold
        true = step.target.detach() > 0.5
        state[0] += step.loss.detach().double() * n
        state[1] += n
        state[2] += (pred & true).sum()
        state[3] += (pred & ~true).sum()
        state[4] += (~pred & true).sum()

    def compute_metrics(self, state: Tensor) -> dict[str, float]:
        loss, n, tp, fp, fn = state.tolist()
        if n == 0:
            return {**{k: float("nan") for k in self.metric_names}, "count": 0}
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return {"loss": loss / n, "precision": p, "recall": r, "f1": f, "roc_auc": float("nan"), "count": int(n)}

    def evaluate(self, step: EvalStep, batches: Iterable[tuple[Tensor, Tensor]], device: torch.device) -> dict[str, float]:
        """Every step's score at once: precision/recall/F1 and ROC-AUC by scikit-learn."""
        losses, scores, labels, n = 0.0, [], [], 0
        for x, y in batches:
            out = step(x, y)
            losses += float(out.loss) * len(y)
            n += len(y)
            scores.append(out.outputs.detach().float().cpu())
            labels.append(out.target.detach().cpu())
        if n == 0:
            return {**{k: float("nan") for k in self.metric_names}, "count": 0}
        m = point_metrics(torch.cat(scores).numpy(), (torch.cat(labels) > 0.5).numpy(), self.threshold)
        return {"loss": losses / n, **m, "count": n}

    def check_target(self, y: Tensor) -> None:
        if y.ndim != 2 or not y.is_floating_point():
            raise DataError(f"task anomaly reads {self.target}; received {y.dtype} of shape {tuple(y.shape)}")

    def present(self, outputs: Tensor, *, class_names: list[str] | None = None, top_k: int = 3) -> list[dict[str, Any]]:
        """Per window: the score of its last step and whether it passes the threshold."""
        s = torch.sigmoid(outputs.detach().double()[:, -1]).cpu()
        return [{"score": float(v), "anomaly": bool(v >= self.threshold)} for v in s]

    def headline(self, metrics: Any) -> str | None:
        f, a = metrics.get("test_f1"), metrics.get("test_roc_auc")
        if not isinstance(f, (int, float)):
            return None
        return f"test F1: {f:.3f}" + (f", ROC-AUC: {a:.3f}" if isinstance(a, (int, float)) else "")

    def __repr__(self) -> str:
        return f"Anomaly(threshold={self.threshold})"
