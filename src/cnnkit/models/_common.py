"""Small helpers shared by the zoo's image models: argument checks and the ``input_shape`` attribute.

Builders validate their arguments before building anything, so a bad config fails at once with a
one-line :class:`~cnnkit.errors.ConfigError` ("Expected ... Received: ...") instead of a shape error deep
inside the first forward pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

import torch
from torch import nn

from ..errors import ConfigError

__all__ = [
    "FeatureHeadModel",
    "check_choice",
    "check_positive_int",
    "check_probability",
    "count_params",
    "set_input_shape",
]

M = TypeVar("M", bound=nn.Module)


def check_positive_int(name: str, value: object, *, minimum: int = 1) -> int:
    """Return ``value`` if it is an int >= ``minimum``; raise :class:`ConfigError` otherwise."""
    # bool is an int subclass; `num_classes=True` is always a mistake.
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"Expected {name} to be an integer >= {minimum}. Received: {name}={value!r}")
    return value


def check_probability(name: str, value: object) -> float:
    """Return ``value`` if it is a number in [0, 1) (a drop probability); raise otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"Expected 0 <= {name} < 1. Received: {name}={value!r}")
    return float(value)


def check_choice(name: str, value: object, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``; raise with the list of valid values otherwise."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"Expected {name} to be one of {', '.join(map(repr, choices))}. Received: {name}={value!r}")
    return str(value)


def set_input_shape(model: M, shape: tuple[int, ...]) -> M:
    """Record the input shape (C, H, W) the model was built for.

    The training engine reads ``model.input_shape`` to bring data to the model's input size (for example
    8x8 digits up to LeNet-5's 32x32).
    """
    model.input_shape = tuple(int(s) for s in shape)
    return model


def count_params(model: nn.Module, *, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; buffers such as fixed RBF centres are not counted."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


class FeatureHeadModel(nn.Module):
    """Base for models split into ``features`` and ``head`` (timm's ``forward_features``/``forward_head``).

    ``forward(x) == forward_head(forward_features(x))`` holds by construction; subclasses assign
    ``self.features`` and ``self.head`` and override a method only where the split is not that plain.
    """

    features: nn.Module
    head: nn.Module

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
