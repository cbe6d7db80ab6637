"""The training criterion from ``train.loss``, using :mod:`cnnkit.losses` when present.

Models that return a tuple in training mode (GoogLeNet's auxiliary classifiers) are trained on
``loss(main) + 0.3 * sum(loss(aux))``, the weight of Szegedy et al. (2015), sec. 5.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["AUX_WEIGHT", "make_criterion"]

AUX_WEIGHT = 0.3

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _onehot(target: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    return F.one_hot(target, num_classes).to(dtype)


def make_criterion(name: str, *, label_smoothing: float = 0.0) -> Criterion:
    """``criterion(logits, target) -> mean loss`` for ``cross_entropy``, ``euclidean`` or ``sigmoid_cross_entropy``."""
    try:
        from ..layers import losses as _losses
    except ImportError:
        _losses = None
    if name == "cross_entropy":
        fn = getattr(_losses, "softmax_cross_entropy", None)
        if fn is not None:
            return lambda logits, y: fn(logits.float(), y, label_smoothing=label_smoothing)
        return lambda logits, y: F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
    if name == "euclidean":
        fn = getattr(_losses, "euclidean", None)
        if fn is not None:
            return lambda logits, y: fn(logits.float(), _onehot(y, logits.shape[1], torch.float32))
        # Caffe's EuclideanLoss: 1/(2N) sum ||x - t||^2
        return lambda logits, y: 0.5 * (logits.float() - _onehot(y, logits.shape[1], torch.float32)).pow(2).sum() / y.shape[0]
    if name == "sigmoid_cross_entropy":
        fn = getattr(_losses, "sigmoid_cross_entropy", None)
        if fn is not None:
            return lambda logits, y: fn(logits.float(), _onehot(y, logits.shape[1], torch.float32))
        # Caffe's SigmoidCrossEntropyLoss: summed over classes, averaged over the batch.
        return lambda logits, y: F.binary_cross_entropy_with_logits(
            logits.float(), _onehot(y, logits.shape[1], torch.float32), reduction="sum"
        ) / y.shape[0]
    from ..errors import ConfigError

    raise ConfigError(f"config key train.loss: unknown loss {name!r}")
