"""The article's weight regularizers, wired from config: L1 / L2 / elastic-net penalties and max-norm.

Penalty (``train.penalty``): ``l1 * sum |w| + l2 * sum w^2 / 2`` added to the loss, so its gradient is
``l1 * sign(w) + l2 * w`` (elastic net when both are set; Zou & Hastie 2005). ``params: weights`` (default)
applies it to weight tensors only (``ndim >= 2``, outside normalization layers), ``all`` to every
trainable parameter.

Max-norm (``train.max_norm``; Srebro et al. 2005, Srivastava et al. 2014 sec. 5.1): after every optimizer
step each neuron's incoming weight vector (a row of a Linear weight, one filter of a convolution) is
rescaled to L2 norm <= c.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import apply_max_norm, l1_penalty, l2_penalty
from .optim import is_norm_module

__all__ = ["penalty_params", "penalty_loss", "max_norm_"]


def penalty_params(model: nn.Module, which: str = "weights") -> list[torch.Tensor]:
    """The parameters a penalty applies to: ``weights`` (ndim >= 2, not in norm layers) or ``all``."""
    if which == "all":
        return [p for p in model.parameters() if p.requires_grad]
    norm_ids = {id(p) for m in model.modules() if is_norm_module(m) for p in m.parameters(recurse=False)}
    return [p for p in model.parameters() if p.requires_grad and p.ndim >= 2 and id(p) not in norm_ids]


def penalty_loss(params: list[torch.Tensor], *, l1: float = 0.0, l2: float = 0.0) -> torch.Tensor:
    """``l1 * sum |w| + l2 * sum w^2 / 2`` over ``params`` (a 0-d tensor), via :mod:`cnnkit.layers.penalties`."""

    total = params[0].new_zeros(()) if params else torch.zeros(())
    if l1 > 0:
        total = total + l1 * l1_penalty(params)
    if l2 > 0:
        # The 1/2 makes the gradient l2 * w, the classic weight-decay step (cnnkit.layers' l2 has no 1/2).
        total = total + 0.5 * l2 * l2_penalty(params)
    return total


@torch.no_grad()
def max_norm_(model: nn.Module, max_norm: float) -> None:
    """Project each neuron's incoming weight vector (Linear rows, conv filters, ...) onto ``||w||_2 <= c``.

    Delegates to :func:`cnnkit.layers.apply_max_norm`, which knows each layer type's fan-in axes.
    """

    apply_max_norm(model, max_norm)
