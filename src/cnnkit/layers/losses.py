"""The article's three loss layers, as functions, registered by name in ``LOSSES``.

- :func:`softmax_cross_entropy`: one of K mutually exclusive classes (Caffe's SoftmaxWithLoss).
- :func:`sigmoid_cross_entropy`: K independent probabilities, multi-label (SigmoidCrossEntropyLoss).
- :func:`euclidean`: regression to real values, ``sum ||pred - target||^2 / (2N)`` (EuclideanLoss).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from ..registry import Registry

__all__ = ["LOSSES", "euclidean", "sigmoid_cross_entropy", "softmax_cross_entropy"]

LOSSES: Registry = Registry("loss")

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ConfigError(f"Expected reduction to be one of {', '.join(map(repr, _REDUCTIONS))}. "
                          f"Received: reduction={reduction!r}")


@LOSSES.register()
def softmax_cross_entropy(logits: Tensor, target: Tensor, label_smoothing: float = 0.0,
                          reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy ``-sum_k q_k log softmax(z)_k`` for K mutually exclusive classes.

    Args:
        logits: (N, K) or (N, K, *spatial) unnormalized scores.
        target: class indices (N,) / (N, *spatial), or class probabilities shaped like ``logits``.
        label_smoothing: ``eps`` in [0, 1]; the target becomes ``(1 - eps) q + eps / K``
            (Szegedy et al., "Rethinking the Inception Architecture", CVPR 2016, Sec. 7).
        reduction: "mean" over examples (Caffe's default normalization), "sum" or "none".

    Example:
        >>> import torch
        >>> round(float(softmax_cross_entropy(torch.zeros(1, 4), torch.tensor([2]))), 4)  # log 4
        1.3863
    """
    if not isinstance(label_smoothing, (int, float)) or not 0.0 <= label_smoothing <= 1.0:
        raise ConfigError(f"Expected 0 <= label_smoothing <= 1. Received: label_smoothing={label_smoothing!r}")
    _check_reduction(reduction)
    return F.cross_entropy(logits, target, label_smoothing=float(label_smoothing), reduction=reduction)


@LOSSES.register()
def sigmoid_cross_entropy(logits: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Sigmoid cross-entropy for K independent probabilities (multi-label), computed stably from logits.

    ``-[t log s(z) + (1 - t) log(1 - s(z))]`` per element, averaged over all N * K elements ("mean",
    Caffe's VALID normalization), summed, or returned per element.

    Example:
        >>> import torch
        >>> round(float(sigmoid_cross_entropy(torch.zeros(2, 3), torch.ones(2, 3))), 4)  # log 2
        0.6931
    """
    _check_reduction(reduction)
    if logits.shape != target.shape:
        raise ValueError(f"Expected logits and target of the same shape. Received: {tuple(logits.shape)} "
                         f"and {tuple(target.shape)}")
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype), reduction=reduction)


@LOSSES.register()
def euclidean(pred: Tensor, target: Tensor) -> Tensor:
    """Caffe's Euclidean loss ``1/(2N) sum_n ||pred_n - target_n||_2^2`` over a batch of N.

    Example:
        >>> import torch
        >>> euclidean(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]]))  # (1 + 4) / 2
        tensor(2.5000)

    Reference:
        Caffe, ``EuclideanLossLayer`` (euclidean_loss_layer.hpp): E = 1/(2N) sum ||y_hat - y||^2.
    """
    if pred.shape != target.shape:
        raise ValueError(f"Expected pred and target of the same shape. Received: {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    if pred.dim() == 0:
        raise ValueError("Expected a batch: pred of shape (N, ...). Received: a scalar")
    return (pred - target).square().sum() / (2 * pred.shape[0])
