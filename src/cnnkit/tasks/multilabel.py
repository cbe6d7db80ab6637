"""``task: multilabel``: K independent yes/no labels per input (tags, attributes, topics).

Targets are multi-hot ``(N, K)`` tensors (0/1, float). The loss is the article's sigmoid cross-entropy
(:func:`cnnkit.layers.sigmoid_cross_entropy`, Caffe's SigmoidCrossEntropyLoss): one independent Bernoulli
per label. A label is predicted when its probability reaches that label's decision threshold: 0.5 during
training, then, when the run has a validation split, the threshold that maximises the label's F1 on it
(:func:`best_thresholds`, fitted after training and saved in ``model.json`` with the task, so ``predict``
and ``evaluate`` apply it).

Metrics: loss, micro F1 and subset accuracy (streamed, also during training); macro F1 and mAP (the mean
over labels of the average precision, as scikit-learn's ``average_precision_score`` defines it) over whole
splits (:meth:`MultiLabel.evaluate`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..errors import DataError
from ..layers.losses import LOSSES
from .base import EvalStep, Forward, StepOutput, Task, register_task

__all__ = ["MultiLabel", "average_precision", "best_thresholds", "f1_per_label"]


def average_precision(scores: Tensor, targets: Tensor) -> Tensor:
    """Average precision per label: ``AP = sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds
    (scikit-learn's ``average_precision_score``; tied scores form one threshold).

    Args:
        scores: ``(N, K)`` any monotone score (logits or probabilities).
        targets: ``(N, K)`` 0/1.

    Returns:
        ``(K,)`` float64; NaN for a label with no positive item (its AP is undefined).

    Example:
        >>> s = torch.tensor([[0.1], [0.4], [0.35], [0.8]]); t = torch.tensor([[0], [0], [1], [1]])
        >>> round(float(average_precision(s, t)[0]), 4)  # scikit-learn's documented example
        0.8333
    """
    scores = scores.double()
    targets = (targets > 0.5).double()
    n, k = scores.shape
    out = torch.full((k,), float("nan"), dtype=torch.float64, device=scores.device)
    for j in range(k):
        positives = targets[:, j].sum()
        if positives == 0 or n == 0:
            continue
        order = torch.argsort(scores[:, j], descending=True, stable=True)
        s, t = scores[order, j], targets[order, j]
        tp = torch.cumsum(t, 0)
        fp = torch.cumsum(1 - t, 0)
        # The last position of each group of tied scores is one threshold.
        last = torch.ones(n, dtype=torch.bool, device=s.device)
        last[:-1] = s[1:] != s[:-1]
        tp, fp = tp[last], fp[last]
        precision = tp / (tp + fp)
        recall = tp / positives
        prev = torch.cat([recall.new_zeros(1), recall[:-1]])
        out[j] = ((recall - prev) * precision).sum()
    return out


def f1_per_label(pred: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(tp, fp, fn)`` per label, ``(K,)`` float64 each, from 0/1 predictions and targets ``(N, K)``."""
    p, t = pred.double(), (targets > 0.5).double()
    return (p * t).sum(0), (p * (1 - t)).sum(0), ((1 - p) * t).sum(0)


def best_thresholds(probs: Tensor, targets: Tensor, *, default: float = 0.5) -> Tensor:
    """Per-label probability thresholds that maximise each label's F1 on ``(probs, targets)``.

    For label j the items are ranked by probability and every cut between distinct values is tried; the
    threshold is the midpoint of the two probabilities around the best cut (so ``prob >= threshold`` marks
    the items above it). A label without positives, or whose best F1 is 0, keeps ``default``.

    Returns:
        ``(K,)`` float64 thresholds in (0, 1].
    """
    probs, targets = probs.double(), (targets > 0.5).double()
    n, k = probs.shape
    out = torch.full((k,), float(default), dtype=torch.float64)
    for j in range(k):
        positives = float(targets[:, j].sum())
        if positives == 0 or n == 0:
            continue
        order = torch.argsort(probs[:, j], descending=True, stable=True)
        s, t = probs[order, j].cpu(), targets[order, j].cpu()
        tp = torch.cumsum(t, 0)
        predicted = torch.arange(1, n + 1, dtype=torch.float64)
        f1 = 2 * tp / (predicted + positives)
        valid = torch.ones(n, dtype=torch.bool)
        valid[:-1] = s[1:] != s[:-1]  # a cut inside a group of ties is not a threshold
        f1 = torch.where(valid, f1, torch.zeros_like(f1))
        best = int(torch.argmax(f1))
        if f1[best] <= 0:
            continue
        below = float(s[best + 1]) if best + 1 < n else 0.0
        out[j] = (float(s[best]) + below) / 2 if best + 1 < n else float(s[best]) / 2
    return out


def _f1(tp: Tensor, fp: Tensor, fn: Tensor) -> Tensor:
    den = 2 * tp + fp + fn
    return torch.where(den > 0, 2 * tp / den.clamp_min(1e-300), torch.zeros_like(den))


@register_task
class MultiLabel(Task):
    """K independent labels per input, trained with sigmoid cross-entropy.

    Args:
        loss: a name in :data:`~cnnkit.layers.LOSSES` taking ``(logits, multi-hot)``; the article's
            ``sigmoid_cross_entropy`` (default) or ``euclidean``.
        threshold: the decision threshold of every label until thresholds are fitted.
        thresholds: one threshold per label (what a run saves after fitting them; may be set by hand).
        tune_thresholds: fit per-label thresholds on the validation split after training.

    Example:
        >>> task = MultiLabel()
        >>> out = task.eval_step(lambda x: x, torch.tensor([[2.0, -1.0], [2.0, 3.0]]), torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
        >>> state = task.metric_state(torch.device("cpu")); task.update_metrics(state, out)
        >>> task.compute_metrics(state)["subset_accuracy"]
        0.5

    Reference:
        Caffe's SigmoidCrossEntropyLossLayer, the article's loss for "K independent probability values";
        mAP as in scikit-learn's ``average_precision_score`` (the VOC-style area under the step-wise
        precision-recall curve, without interpolation).

    Deviations:
        mAP averages over the labels that have at least one positive item in the split (a label without
        positives has no defined AP); scikit-learn's ``average="macro"`` would count such labels as 0.
    """

    name: ClassVar[str] = "multilabel"
    fitted_key: ClassVar[str] = "thresholds"
    target: ClassVar[str] = "multi-hot labels, float of shape (N, K) with values 0 or 1"
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "f1_micro", "subset_accuracy")
    monitor: ClassVar[tuple[str, str]] = ("loss", "min")

    def __init__(
        self,
        *,
        loss: str = "sigmoid_cross_entropy",
        threshold: float = 0.5,
        thresholds: Sequence[float] | None = None,
        tune_thresholds: bool = True,
    ) -> None:
        if loss == "softmax_cross_entropy":  # the trainer's default loss name, meant for one class per input
            loss = "sigmoid_cross_entropy"
        if not 0 < threshold < 1:
            raise ValueError(f"Expected 0 < threshold < 1. Received: threshold={threshold}")
        if thresholds is not None and not all(0 < float(v) <= 1 for v in thresholds):
            raise ValueError(f"Expected thresholds in (0, 1]. Received: thresholds={list(thresholds)}")
        self.loss_name = loss
        self._loss = LOSSES.get(loss)
        self.threshold = float(threshold)
        self.thresholds = None if thresholds is None else torch.tensor([float(v) for v in thresholds], dtype=torch.float64)
        self.tune_thresholds = bool(tune_thresholds)
        self._fitting = False

    # ------------------------------------------------------------------ steps

    def criterion(self, logits: Tensor, y: Tensor) -> Tensor:
        logits = logits.float().reshape(y.shape)
        if self.loss_name == "euclidean":
            return self._loss(torch.sigmoid(logits), y.float())
        return self._loss(logits, y.float())

    def train_step(self, forward: Forward, x: Tensor, y: Tensor) -> StepOutput:
        out = forward(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return StepOutput(self.criterion(out, y), out, y)

    def _threshold_tensor(self, k: int, device: torch.device) -> Tensor:
        if self.thresholds is not None:
            if len(self.thresholds) != k:
                raise DataError(f"the task has {len(self.thresholds)} label thresholds but the model outputs {k} labels")
            return self.thresholds.to(device=device, dtype=torch.float32)
        return torch.full((k,), self.threshold, device=device)

    def decide(self, logits: Tensor) -> Tensor:
        """0/1 predictions ``(N, K)`` from logits, at the current thresholds."""
        probs = torch.sigmoid(logits.detach().float())
        return (probs >= self._threshold_tensor(probs.shape[1], probs.device)).float()

    # ------------------------------------------------------------------ metrics

    def metric_state(self, device: torch.device) -> Tensor:
        return torch.zeros(6, dtype=torch.float64, device=device)  # loss sum, count, exact, tp, fp, fn

    def update_metrics(self, state: Tensor, step: StepOutput) -> None:
        y = step.target.reshape(step.target.shape[0], -1)
        logits = step.outputs.detach().reshape(y.shape)
        pred = self.decide(logits)
        truth = (y > 0.5).float()
        n = y.shape[0]
        state[0] += step.loss.detach().double() * n
        state[1] += n
        state[2] += (pred == truth).all(dim=1).sum()
        state[3] += (pred * truth).sum()
        state[4] += (pred * (1 - truth)).sum()
        state[5] += ((1 - pred) * truth).sum()

    def compute_metrics(self, state: Tensor) -> dict[str, float]:
        loss_sum, count, exact, tp, fp, fn = state.tolist()
        if count == 0:
            return {"loss": float("nan"), "f1_micro": float("nan"), "subset_accuracy": float("nan"), "count": 0}
        den = 2 * tp + fp + fn
        return {
            "loss": loss_sum / count,
            "f1_micro": 2 * tp / den if den > 0 else 0.0,
            "subset_accuracy": exact / count,
            "count": int(count),
        }

    def gather(self, step: EvalStep, batches: Iterable[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor, float]:
        """``(logits (N, K), targets (N, K), loss sum)`` of a whole split, on the CPU."""
        outs, ys, loss_sum = [], [], 0.0
        for x, y in batches:
            s = step(x, y)
            t = s.target.reshape(s.target.shape[0], -1)
            outs.append(s.outputs.detach().float().reshape(t.shape).cpu())
            ys.append(t.float().cpu())
            loss_sum += float(s.loss.detach()) * t.shape[0]
        if not outs:
            return torch.zeros(0, 0), torch.zeros(0, 0), 0.0
        return torch.cat(outs), torch.cat(ys), loss_sum

    def metrics_of(self, logits: Tensor, targets: Tensor) -> dict[str, Any]:
        """Every metric of a whole split from its logits and targets (at the current thresholds)."""
        n = logits.shape[0]
        if n == 0:
            return {k: float("nan") for k in ("f1_micro", "f1_macro", "map", "subset_accuracy")}
        pred = self.decide(logits)
        truth = (targets > 0.5).float()
        tp, fp, fn = f1_per_label(pred, truth)
        ap = average_precision(logits, truth)
        has_pos = ~torch.isnan(ap)
        return {
            "f1_micro": float(_f1(tp.sum(), fp.sum(), fn.sum())),
            "f1_macro": float(_f1(tp, fp, fn).mean()),
            "map": float(ap[has_pos].mean()) if bool(has_pos.any()) else float("nan"),
            "subset_accuracy": float((pred == truth).all(dim=1).double().mean()),
            "per_label_ap": [None if torch.isnan(v) else float(v) for v in ap],
        }

    def evaluate(self, step: EvalStep, batches: Iterable[tuple[Tensor, Tensor]], device: torch.device) -> dict[str, Any]:
        if self._fitting:
            thresholds = self.fit_thresholds(step, batches)
            return {"fitted": thresholds, "thresholds": thresholds, "count": len(thresholds)}
        logits, targets, loss_sum = self.gather(step, batches)
        n = logits.shape[0]
        result = self.metrics_of(logits, targets)
        result.pop("per_label_ap")
        return {"loss": loss_sum / n if n else float("nan"), **result, "count": n}

    # ------------------------------------------------------------------ thresholds

    def fit_thresholds(self, step: EvalStep, batches: Iterable[tuple[Tensor, Tensor]]) -> list[float]:
        """Choose each label's threshold on a (validation) split; returns and keeps them."""
        logits, targets, _ = self.gather(step, batches)
        self.thresholds = best_thresholds(torch.sigmoid(logits.double()), targets, default=self.threshold)
        return self.thresholds.tolist()

    def fits_validation(self) -> bool:
        return self.tune_thresholds

    @contextmanager
    def fitting_thresholds(self) -> Iterator[None]:
        """Within this block :meth:`evaluate` fits the thresholds on the split it is given and returns
        ``{"thresholds": [...], "count": N}`` instead of metrics (so a trainer's own evaluation, DDP
        broadcast included, runs the pass); :meth:`Task.fitting` under its own name."""
        with self.fitting():
            yield

    def set_thresholds(self, thresholds: Sequence[float] | None) -> None:
        self.thresholds = None if thresholds is None else torch.tensor([float(v) for v in thresholds], dtype=torch.float64)

    def set_fitted(self, fitted: Any) -> None:
        self.set_thresholds(fitted)

    def fitted_kwargs(self) -> dict[str, Any]:
        """What ``model.json``'s task record must add so the task is rebuilt as fitted (the thresholds)."""
        return {} if self.thresholds is None else {"thresholds": [round(float(v), 6) for v in self.thresholds]}

    # ------------------------------------------------------------------ targets and predictions

    def check_target(self, y: Tensor) -> None:
        if y.ndim != 2 or not y.is_floating_point():
            raise DataError(f"task multilabel reads {self.target}; received {y.dtype} of shape {tuple(y.shape)}")

    def present(self, outputs: Tensor, *, class_names: list[str] | None = None, top_k: int = 3) -> list[dict[str, Any]]:
        """Per item: the predicted labels and every label's probability, highest first (``top_k`` of them)."""
        logits = outputs.detach().float().reshape(outputs.shape[0], -1).cpu()
        probs = torch.sigmoid(logits.double())
        pred = self.decide(logits)
        names = class_names or [str(i) for i in range(probs.shape[1])]
        rows = []
        for p, d in zip(probs, pred):
            order = torch.argsort(p, descending=True).tolist()
            rows.append({
                "labels": [names[i] for i in order if d[i] > 0],
                "top": [{"index": i, "name": names[i], "probability": float(p[i])} for i in order[: max(top_k, 1)]],
            })
        return rows

    def headline(self, metrics: Any) -> str | None:
        f1, m = metrics.get("test_f1_macro"), metrics.get("test_map")
        if not isinstance(f1, (int, float)) or not isinstance(m, (int, float)):
            return None
        return f"test macro F1: {f1:.4f}, mAP: {m:.4f}"

    def __repr__(self) -> str:
        return f"MultiLabel(loss={self.loss_name!r}, threshold={self.threshold})"
