"""Small helpers shared by the zoo's models: the features/head split and the ``input_shape`` attribute.

Argument checks have one home, :mod:`cnnkit._checks`.
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn

__all__ = ["FeatureHeadModel", "count_params", "set_input_shape"]

M = TypeVar("M", bound=nn.Module)


def set_input_shape(model: M, shape: tuple[int, ...]) -> M:
    """Record the input shape (C, H, W) the model was built for.

    The training engine reads ``model.input_shape`` to bring data to the model's input size (for example
    8x8 digits up to LeNet-5's 32x32).
    """
    model.input_shape = tuple(int(s) for s in shape)  # type: ignore[assignment]
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
