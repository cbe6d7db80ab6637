"""Segmentation metrics from a pixel confusion matrix: IoU (Jaccard) per class and its mean, Dice (F1)
per class and its mean, pixel accuracy.

``cm[i, j]`` counts pixels of true class ``i`` predicted as ``j`` (ignored pixels excluded), the layout
of scikit-learn's ``confusion_matrix``. For class ``c``: ``IoU_c = TP / (TP + FP + FN)`` and
``Dice_c = 2 TP / (2 TP + FP + FN)``, with ``TP = cm[c, c]``, ``FP`` the rest of column ``c``, ``FN`` the
rest of row ``c``. A class absent from both truth and prediction has no IoU (NaN) and is left out of the
means, as in the Pascal VOC evaluation (which includes background in the mean).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["pixel_confusion", "scores_from_confusion"]


def pixel_confusion(pred: torch.Tensor, target: torch.Tensor, num_classes: int, *, ignore_index: int | None = 255) -> torch.Tensor:
    """``(K, K)`` int64 pixel confusion matrix of predicted and true class indices (any equal shapes), on
    their device, in one ``bincount`` (no host sync).

    Target values outside ``0 .. K-1`` other than ``ignore_index`` are an error of the caller (the data
    sources check masks when reading them).
    """
    valid = target != ignore_index if ignore_index is not None else torch.ones_like(target, dtype=torch.bool)
    idx = target[valid].long() * num_classes + pred[valid].long()
    return torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes)


def scores_from_confusion(cm: np.ndarray | torch.Tensor) -> dict[str, object]:
    """``{"miou", "dice", "accuracy", "per_class_iou", "per_class_dice"}`` from ``cm`` (NaN entries for
    classes absent from truth and prediction; the means skip them).

    Example:
        >>> s = scores_from_confusion(np.array([[3, 1], [0, 4]]))
        >>> round(s["miou"], 4), s["accuracy"]
        (0.775, 0.875)
    """
    cm = np.asarray(cm.cpu() if isinstance(cm, torch.Tensor) else cm, dtype=np.float64)
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(tp + fp + fn > 0, tp / (tp + fp + fn), np.nan)
        dice = np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    total = cm.sum()
    present = ~np.isnan(iou)
    return {
        "miou": float(iou[present].mean()) if present.any() else float("nan"),
        "dice": float(dice[present].mean()) if present.any() else float("nan"),
        "accuracy": float(tp.sum() / total) if total else float("nan"),
        "per_class_iou": [None if np.isnan(v) else float(v) for v in iou],
        "per_class_dice": [None if np.isnan(v) else float(v) for v in dice],
    }
