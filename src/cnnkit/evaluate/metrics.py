"""Classification metrics computed from logits: accuracy, top-k accuracy, negative log-likelihood,
confusion matrix and per-class precision / recall / F1.

All functions take numpy arrays (or tensors) and return plain Python numbers or numpy arrays, so the
report they feed is JSON-able.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = [
    "softmax",
    "accuracy",
    "top_k_accuracy",
    "negative_log_likelihood",
    "confusion_matrix",
    "per_class_metrics",
]


def _np(a: np.ndarray | torch.Tensor) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def softmax(logits: np.ndarray | torch.Tensor) -> np.ndarray:
    """Row-wise softmax in float64 (max-subtracted, so large logits do not overflow)."""
    z = _np(logits).astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def accuracy(logits: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor) -> float:
    """Fraction of rows whose arg-max equals the label."""
    z, y = _np(logits), _np(labels)
    if len(y) == 0:
        return float("nan")
    return float((z.argmax(axis=1) == y).mean())


def top_k_accuracy(logits: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, k: int) -> float:
    """Fraction of rows whose label is among the ``k`` largest logits (``k`` is capped at the class count).

    Ties are broken by a stable sort, so with ``k=1`` this equals :func:`accuracy` up to ties.
    """
    if k < 1:
        raise ValueError(f"Expected k >= 1. Received: k={k}")
    z, y = _np(logits), _np(labels)
    if len(y) == 0:
        return float("nan")
    k = min(k, z.shape[1])
    top = np.argsort(-z, axis=1, kind="stable")[:, :k]
    return float((top == y[:, None]).any(axis=1).mean())


def negative_log_likelihood(logits: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor) -> float:
    """Mean of ``-log softmax(z)_y`` (natural log), computed with log-sum-exp in float64."""
    z, y = _np(logits).astype(np.float64), _np(labels).astype(np.int64)
    if len(y) == 0:
        return float("nan")
    m = z.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
    return float((lse - z[np.arange(len(y)), y]).mean())


def confusion_matrix(
    labels: np.ndarray | torch.Tensor, predictions: np.ndarray | torch.Tensor, num_classes: int
) -> np.ndarray:
    """``C[i, j]`` = number of items of true class ``i`` predicted as class ``j`` (int64)."""
    y, p = _np(labels).astype(np.int64), _np(predictions).astype(np.int64)
    return np.bincount(y * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_metrics(cm: np.ndarray, class_names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Precision, recall, F1 and support per class from a confusion matrix.

    A class never predicted has precision 0 (scikit-learn's ``zero_division=0``); a class absent from the
    labels has recall 0 and support 0.
    """
    cm = np.asarray(cm)
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    support = cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
        denom = precision + recall
        f1 = np.where(denom > 0, 2 * precision * recall / np.where(denom > 0, denom, 1), 0.0)
    names = class_names if class_names is not None else [str(i) for i in range(len(cm))]
    return {
        str(names[i]): {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i in range(len(cm))
    }
