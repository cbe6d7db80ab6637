"""Small helpers shared by the zoo's models: the features/head split and the ``input_shape`` attribute.

Argument checks have one home, :mod:`cnnkit._checks`.
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["FeatureHeadModel", "clip_size", "count_params", "frame_cnn", "set_input_shape"]

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


def clip_size(input_size: tuple[int, ...] | None, default: tuple[int, int, int]) -> tuple[int, int, int]:
    """A video model's ``(T, H, W)``: ``input_size`` checked, or ``default``."""
    size = tuple(int(v) for v in input_size) if input_size is not None else default
    if len(size) != 3 or min(size) < 1:
        raise ConfigError(f"Expected input_size as (T, H, W) of positive ints. Received: input_size={input_size}")
    return size  # type: ignore[return-value]


def frame_cnn(in_channels: int, widths: tuple[int, ...], *, p: float | None = None) -> tuple[nn.Sequential, int]:
    """The small per-frame 2-D CNN of the video baselines: per width a 3x3 conv - BN - ReLU, 2x2 max-pooling
    between stages, then global average pooling (and dropout ``p``). Returns the net and its feature width."""
    if not widths or any(int(w) < 1 for w in widths):
        raise ConfigError(f"Expected widths to be positive ints. Received: widths={widths}")
    layers: list[nn.Module] = []
    c = in_channels
    for i, w in enumerate(widths):
        layers += [nn.Conv2d(c, int(w), 3, padding=1, bias=False), nn.BatchNorm2d(int(w)), nn.ReLU(inplace=True)]
        if i < len(widths) - 1:
            layers.append(nn.MaxPool2d(2))
        c = int(w)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()] + ([nn.Dropout(p)] if p is not None else [])
    return nn.Sequential(*layers), c
