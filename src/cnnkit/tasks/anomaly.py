"""``task: anomaly``: an anomaly score for every time step, against labelled anomalies.

Inputs are windows ``x`` ``(B, 1, w)`` ending at the scored step; targets ``y`` ``(B, w)`` the 0/1 labels of
the window's steps. The model gives one logit per step of the window (SR-CNN, Ren et al. 2019, Sec. 3.3);
training fits all of them with the sigmoid cross-entropy, as the paper does on windows with injected
anomalies; evaluation scores each step by its window's last logit (the online setting: a step is scored
when it arrives). Metrics, over every scored step of the split in time order:

- precision, recall and F1 of ``score >= threshold`` per step, and ROC-AUC, by scikit-learn;
- the same after Ren et al.'s (2019, Sec. 4.2) delay-tolerant point adjustment (:func:`point_adjust`,
  from Xu et al. 2018): a labelled anomaly segment counts as found, every step of it, when an alarm is
  raised within ``delay`` steps of its start, and as missed, every step of it, otherwise
  (``precision_adjusted``, ``recall_adjusted``, ``f1_adjusted``; the paper's k = 7 by default);
Threshold: ``threshold`` until fitted; when the run has a (clean) validation split, the score that a
fraction ``false_alarm_rate`` of its normal steps exceed, the split-conformal quantile of inductive
conformal anomaly detection (Laxhammar & Falkman 2015; Bates et al. 2023, conformal p-values): the
``ceil((n + 1)(1 - rate))``-th smallest of the ``n`` normal validation scores, so a normal test step is
flagged with probability at most ``rate`` when scores are exchangeable. SR-CNN trains with half its windows
anomalous at the last step, so its probabilities are far from calibrated to real anomaly rates and 0.5 raises
an alarm at several percent of normal steps; the fitted threshold is saved in ``model.json``.

- ``best_f1_adjusted``: the adjusted F1 at the best threshold on this split, with that threshold
  (``best_threshold``). The authors' evaluation script picks its threshold so (microsoft/anomalydetector,
  ``srcnn/evalue.py``); it is an oracle, comparable between detectors evaluated alike, not a deployable
  result.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DataError
from .base import EvalStep, Forward, StepOutput, Task, register_task

__all__ = ["Anomaly", "best_adjusted_f1", "point_adjust", "point_metrics"]


def point_adjust(pred: Any, labels: Any, delay: int = 7) -> Any:
    """Delay-tolerant point adjustment (Ren et al. 2019, Sec. 4.2): each run of consecutive labelled
    anomalies becomes all 1 when ``pred`` has a 1 within its first ``delay + 1`` steps, all 0 otherwise;
    steps outside anomalies keep their prediction. Returns a new 0/1 array.

    Follows the evaluation the authors ship (``get_range_proba`` in microsoft/anomalydetector,
    ``srcnn/competition_metric.py``, itself from the AIOps challenge's evaluation), written with numpy.

    Example:
        >>> # the first segment is hit one step after it starts; the second only 2 steps after: missed
        >>> point_adjust([1, 0, 1, 0, 0, 0, 0, 1], [0, 1, 1, 1, 0, 1, 1, 1], delay=1).tolist()
        [1, 1, 1, 1, 0, 0, 0, 0]
    """
    import numpy as np

    p, y = np.asarray(pred).astype(np.int64), np.asarray(labels).astype(np.int64)
    out = p.copy()
    edges = np.flatnonzero(np.diff(np.concatenate([[0], y, [0]])))  # starts and ends of runs of 1s
    for start, end in zip(edges[::2], edges[1::2]):
        out[start:end] = 1 if p[start : min(start + delay + 1, end)].any() else 0
    return out


def _prf(pred: Any, y: Any) -> tuple[float, float, float]:
    tp = float((pred & y).sum())
    p = tp / float(pred.sum()) if pred.sum() else 0.0
    r = tp / float(y.sum()) if y.sum() else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def best_adjusted_f1(scores: Any, labels: Any, delay: int = 7) -> tuple[float, float]:
    """``(best F1 after point adjustment, its threshold)`` over every distinct score as the threshold;
    ``(0.0, nan)`` without anomalies.

    Exact and ``O(N log N)``: after :func:`point_adjust` a segment is found at threshold ``t`` iff the
    largest score of its first ``delay + 1`` steps is ``>= t``, so the true positives at ``t`` are the
    lengths of those segments and the false positives the normal steps scoring ``>= t``.
    """
    import numpy as np

    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(np.int64)
    if not y.any():
        return 0.0, float("nan")
    edges = np.flatnonzero(np.diff(np.concatenate([[0], y, [0]])))
    starts, ends = edges[::2], edges[1::2]
    seg_max = np.array([s[a : min(a + delay + 1, b)].max() for a, b in zip(starts, ends)])
    seg_len = (ends - starts).astype(np.float64)
    order = np.argsort(seg_max)
    seg_max, cum_len = seg_max[order], np.concatenate([[0.0], np.cumsum(seg_len[order])])
    normal = np.sort(s[y == 0])
    t = np.unique(s)
    tp = cum_len[-1] - cum_len[np.searchsorted(seg_max, t, side="left")]  # segments with max >= t
    fp = len(normal) - np.searchsorted(normal, t, side="left")  # normal steps with score >= t
    f1 = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + (cum_len[-1] - tp), 1e-12), 0.0)
    i = int(np.argmax(f1))
    return float(f1[i]), float(t[i]) if f1[i] > 0 else float("nan")


def point_metrics(scores: Any, labels: Any, threshold: float, delay: int = 7) -> dict[str, float]:
    """Precision, recall, F1 (of the anomaly class) and ROC-AUC by scikit-learn, the same three after
    :func:`point_adjust`, and :func:`best_adjusted_f1`, of ``scores`` in time order; ROC-AUC is NaN when
    only one class occurs."""
    import numpy as np
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(int)
    pred = (s >= threshold).astype(int)
    p, r, f, _ = precision_recall_fscore_support(y, pred, average="binary", zero_division=0)
    auc = float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")
    pa, ra, fa = _prf(point_adjust(pred, y, delay).astype(bool), y.astype(bool))
    best, best_t = best_adjusted_f1(s, y, delay)
    return {"precision": float(p), "recall": float(r), "f1": float(f), "roc_auc": auc, "precision_adjusted": pa,
            "recall_adjusted": ra, "f1_adjusted": fa, "best_f1_adjusted": best, "best_threshold": best_t}


@register_task
class Anomaly(Task):
    """Per-step anomaly scores (sigmoid of the last logit of each window).

    Args:
        threshold: score at or above which a step is called an anomaly.
        delay: ``k`` of the point adjustment (:func:`point_adjust`; Ren et al. 2019 use 7 on KPI, 3 on
            Yahoo).
        false_alarm_rate: fit the threshold on the validation split's normal steps at this rate (see the
            module docstring); None: keep ``threshold``.

    Example:
        >>> task = Anomaly()
        >>> out = task.eval_step(lambda x: x[:, 0], torch.tensor([[[0.0, 5.0]], [[0.0, -5.0]]]), torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
        >>> out.outputs.tolist() > [0.99, 0.0]
        True
    """

    name: ClassVar[str] = "anomaly"
    target: ClassVar[str] = "0/1 labels of each window's steps, float of shape (N, w)"
    metric_names: ClassVar[tuple[str, ...]] = (
        "loss", "precision", "recall", "f1", "roc_auc", "precision_adjusted", "recall_adjusted", "f1_adjusted",
        "best_f1_adjusted", "best_threshold",
    )
    monitor: ClassVar[tuple[str, str]] = ("f1", "max")

    fitted_key: ClassVar[str] = "threshold_fit"
    fitted_note: ClassVar[str] = "threshold at the false-alarm rate on the normal steps of the validation split"

    def __init__(self, *, threshold: float = 0.5, delay: int = 7, false_alarm_rate: float | None = 0.001) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"Expected 0 < threshold <= 1. Received: threshold={threshold}")
        if delay < 0:
            raise ValueError(f"Expected delay >= 0. Received: delay={delay}")
        if false_alarm_rate is not None and not 0 < false_alarm_rate < 1:
            raise ValueError(f"Expected 0 < false_alarm_rate < 1. Received: false_alarm_rate={false_alarm_rate}")
        self.threshold, self.delay = float(threshold), int(delay)
        self.false_alarm_rate = None if false_alarm_rate is None else float(false_alarm_rate)
        self._fitted = False

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
        # Streamed sums (training epochs) cannot see segments across batches: the adjusted metrics need the
        # whole split in order, which evaluate() has.
        nan = float("nan")
        return {"loss": loss / n, "precision": p, "recall": r, "f1": f, "roc_auc": nan, "precision_adjusted": nan,
                "recall_adjusted": nan, "f1_adjusted": nan, "best_f1_adjusted": nan, "best_threshold": nan, "count": int(n)}

    def fits_validation(self) -> bool:
        return self.false_alarm_rate is not None

    def set_fitted(self, fitted: Any) -> None:
        self.threshold, self._fitted = float(fitted), True

    def fitted_kwargs(self) -> dict[str, Any]:
        return {"threshold": self.threshold} if self._fitted else {}

    def evaluate(self, step: EvalStep, batches: Iterable[tuple[Tensor, Tensor]], device: torch.device) -> dict[str, Any]:
        """Every step's score at once: precision/recall/F1 and ROC-AUC by scikit-learn (under
        :meth:`fitting`: the threshold from the normal steps' scores instead)."""
        import math

        import numpy as np

        losses, scores, labels, n = 0.0, [], [], 0
        for x, y in batches:
            out = step(x, y)
            losses += float(out.loss) * len(y)
            n += len(y)
            scores.append(out.outputs.detach().float().cpu())
            labels.append(out.target.detach().cpu())
        if self._fitting:
            assert self.false_alarm_rate is not None
            normal = np.sort(torch.cat(scores).double().numpy()[~(torch.cat(labels) > 0.5).numpy()]) if n else np.zeros(0)
            if not len(normal):
                raise DataError("task anomaly: the validation split has no normal steps to fit the threshold on")
            k = min(math.ceil((len(normal) + 1) * (1 - self.false_alarm_rate)), len(normal))
            # Just above the k-th smallest normal score: `score >= threshold` then flags only higher ones.
            # (in float32, the scores' own precision, so the comparison on the device agrees).
            above = np.nextafter(np.float32(normal[k - 1]), np.float32(np.inf))
            return {"fitted": float(min(above, 1.0)), "count": len(normal)}
        if n == 0:
            return {**{k: float("nan") for k in self.metric_names}, "count": 0}
        m = point_metrics(torch.cat(scores).numpy(), (torch.cat(labels) > 0.5).numpy(), self.threshold, self.delay)
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
        fa = metrics.get("test_f1_adjusted")
        return (f"test F1: {f:.3f}" + (f", adjusted (delay {self.delay}): {fa:.3f}" if isinstance(fa, (int, float)) else "")
                + (f", ROC-AUC: {a:.3f}" if isinstance(a, (int, float)) else ""))

    def __repr__(self) -> str:
        return f"Anomaly(threshold={self.threshold:.6g}, delay={self.delay}, false_alarm_rate={self.false_alarm_rate})"
