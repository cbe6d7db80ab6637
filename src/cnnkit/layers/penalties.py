"""Weight penalties over chosen parameters: L1, L2 and elastic net (added to the loss).

Each takes an iterable of tensors (e.g. ``model.parameters()`` or only the weights) and returns a
scalar tensor; an empty iterable gives 0.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from .._checks import check_real

__all__ = ["elastic_net_penalty", "l1_penalty", "l2_penalty"]


def _total(parameters: Iterable[Tensor], fn) -> Tensor:  # noqa: ANN001
    total: Tensor | None = None
    for p in parameters:  # a running sum, so tensors may differ in dtype (type promotion)
        total = fn(p) if total is None else total + fn(p)
    return total if total is not None else torch.zeros(())


def l1_penalty(parameters: Iterable[Tensor]) -> Tensor:
    """``sum_i |w_i|`` over all given tensors: drives weights to exactly zero (sparse vectors).

    Example:
        >>> l1_penalty([torch.tensor([1.0, -2.0])])
        tensor(3.)
    """
    return _total(parameters, lambda p: p.abs().sum())


def l2_penalty(parameters: Iterable[Tensor]) -> Tensor:
    """``sum_i w_i^2`` (no 1/2 factor; put it in the coefficient if wanted): weight decay.

    Example:
        >>> l2_penalty([torch.tensor([1.0, -2.0])])
        tensor(5.)
    """
    return _total(parameters, lambda p: p.square().sum())


def elastic_net_penalty(parameters: Iterable[Tensor], l1: float, l2: float) -> Tensor:
    """``l1 * sum |w| + l2 * sum w^2``: the elastic net (Zou & Hastie, JRSS-B 2005, Eq. 3).

    Example:
        >>> elastic_net_penalty([torch.tensor([1.0, -2.0])], l1=0.1, l2=0.01)
        tensor(0.3500)
    """
    a = check_real(l1, "l1", low=0.0)
    b = check_real(l2, "l2", low=0.0)
    params = list(parameters)  # iterated twice
    return a * l1_penalty(params) + b * l2_penalty(params)
