"""``task: regression``: real-valued targets of any shape (one value, K values, a map).

The loss is the article's Euclidean loss (:func:`cnnkit.layers.euclidean`, Caffe's EuclideanLoss,
``1/(2N) sum_n ||pred_n - target_n||^2``); the model's output is reshaped to the target's shape, so a
classifier head with ``num_classes = K`` regresses K values. Metrics: MAE, RMSE and R^2 over all values
(streamed); over a whole split (:meth:`Regression.evaluate`) R^2 is scikit-learn's ``r2_score``: the
mean over output positions of each position's coefficient of determination.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..errors import DataError
from ..layers.losses import LOSSES
from .base import EvalStep, Forward, StepOutput, Task, register_task

__all__ = ["Regression", "r2_score"]


def r2_score(pred: Tensor, target: Tensor) -> float:
    """scikit-learn's ``r2_score`` (``multioutput="uniform_average"``): per output column
    ``1 - SS_res / SS_tot``, averaged; a constant column scores 1 when predicted exactly, else 0.

    Args:
        pred, target: ``(N,)`` or ``(N, ...)``; trailing axes are flattened into output columns.

    Example:
        >>> round(r2_score(torch.tensor([2.5, 0.0, 2.0, 8.0]), torch.tensor([3.0, -0.5, 2.0, 7.0])), 4)
        0.9486
    """
    p = pred.double().reshape(pred.shape[0], -1)
    t = target.double().reshape(target.shape[0], -1)
    ss_res = ((t - p) ** 2).sum(0)
    ss_tot = ((t - t.mean(0)) ** 2).sum(0)
    safe = ss_tot > 0
    r2 = torch.where(safe, 1 - ss_res / ss_tot.clamp_min(1e-300), torch.where(ss_res == 0, 1.0, 0.0).double())
    return float(r2.mean())


@register_task
class Regression(Task):
    """Real-valued targets, the article's Euclidean loss.

    Args:
        loss: a name in :data:`~cnnkit.layers.LOSSES` taking ``(pred, target)`` of one shape; ``euclidean``.

    Example:
        >>> task = Regression()
        >>> out = task.eval_step(lambda x: x, torch.tensor([[1.0], [3.0]]), torch.tensor([2.0, 3.0]))
        >>> state = task.metric_state(torch.device("cpu")); task.update_metrics(state, out)
        >>> task.compute_metrics(state)["mae"]
        0.5

    Reference:
        Caffe's EuclideanLossLayer, the article's loss for "real-valued regression targets".
    """

    name: ClassVar[str] = "regression"
    target: ClassVar[str] = "real values, float of shape (N,) or (N, ...)"
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "mae", "rmse", "r2")
    monitor: ClassVar[tuple[str, str]] = ("rmse", "min")

    def __init__(self, *, loss: str = "euclidean") -> None:
        if loss == "softmax_cross_entropy":  # the trainer's default loss name, meant for classification
            loss = "euclidean"
        self.loss_name = loss
        self._loss = LOSSES.get(loss)

    def _pred(self, out: Any, y: Tensor) -> Tensor:
        if isinstance(out, (tuple, list)):
            out = out[0]
        if out.numel() != y.numel():
            raise DataError(
                f"task regression: the model outputs {tuple(out.shape[1:])} per item but the targets are "
                f"{tuple(y.shape[1:]) or 'one value'}; set the model's outputs to match"
            )
        return out.float().reshape(y.shape)

    def train_step(self, forward: Forward, x: Tensor, y: Tensor) -> StepOutput:
        pred = self._pred(forward(x), y)
        yf = y.float()
        flat = (pred.reshape(len(yf), -1), yf.reshape(len(yf), -1))
        return StepOutput(self._loss(*flat), pred, yf)

    def metric_state(self, device: torch.device) -> Tensor:
        # loss sum, items, values, sum |e|, sum e^2, sum y, sum y^2
        return torch.zeros(7, dtype=torch.float64, device=device)

    def update_metrics(self, state: Tensor, step: StepOutput) -> None:
        p, t = step.outputs.detach().double(), step.target.detach().double()
        e = p - t
        n = t.shape[0]
        state[0] += step.loss.detach().double() * n
        state[1] += n
        state[2] += t.numel()
        state[3] += e.abs().sum()
        state[4] += (e * e).sum()
        state[5] += t.sum()
        state[6] += (t * t).sum()

    def compute_metrics(self, state: Tensor) -> dict[str, float]:
        loss_sum, items, values, abs_sum, sq_sum, y_sum, y2_sum = state.tolist()
        if items == 0:
            return {"loss": float("nan"), "mae": float("nan"), "rmse": float("nan"), "r2": float("nan"), "count": 0}
        ss_tot = y2_sum - y_sum * y_sum / values
        return {
            "loss": loss_sum / items,
            "mae": abs_sum / values,
            "rmse": (sq_sum / values) ** 0.5,
            "r2": 1 - sq_sum / ss_tot if ss_tot > 0 else float("nan"),
            "count": int(items),
        }

    def evaluate(self, step: EvalStep, batches: Iterable[tuple[Tensor, Tensor]], device: torch.device) -> dict[str, Any]:
        preds, targets, loss_sum = [], [], 0.0
        for x, y in batches:
            s = step(x, y)
            preds.append(s.outputs.detach().double().cpu())
            targets.append(s.target.detach().double().cpu())
            loss_sum += float(s.loss.detach()) * s.target.shape[0]
        if not preds:
            return {"loss": float("nan"), "mae": float("nan"), "rmse": float("nan"), "r2": float("nan"), "count": 0}
        p, t = torch.cat(preds), torch.cat(targets)
        e = p - t
        return {
            "loss": loss_sum / len(t),
            "mae": float(e.abs().mean()),
            "rmse": float((e * e).mean().sqrt()),
            "r2": r2_score(p, t) if len(t) > 1 else float("nan"),
            "count": len(t),
        }

    def check_target(self, y: Tensor) -> None:
        if not y.is_floating_point() or y.ndim < 1:
            raise DataError(f"task regression reads {self.target}; received {y.dtype} of shape {tuple(y.shape)}")

    def present(self, outputs: Tensor, *, class_names: list[str] | None = None, top_k: int = 3) -> list[dict[str, Any]]:
        """Per item: the predicted values (a list; named by ``class_names`` when they are the targets' names)."""
        values = outputs.detach().double().reshape(outputs.shape[0], -1).cpu().tolist()
        rows = []
        for v in values:
            row: dict[str, Any] = {"values": v}
            if class_names and len(class_names) == len(v):
                row["named"] = dict(zip(class_names, v))
            rows.append(row)
        return rows

    def headline(self, metrics: Any) -> str | None:
        rmse, r2 = metrics.get("test_rmse"), metrics.get("test_r2")
        if not isinstance(rmse, (int, float)):
            return None
        return f"test RMSE: {rmse:.4g}" + (f", R^2: {r2:.4f}" if isinstance(r2, (int, float)) else "")

    def __repr__(self) -> str:
        return f"Regression(loss={self.loss_name!r})"
