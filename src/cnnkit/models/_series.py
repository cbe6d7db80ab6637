"""Pieces shared by the series classifiers (FCN, ResNet, InceptionTime): NaN padding in, masked global
average pooling out (see :mod:`cnnkit.layers.masked_pool`)."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from ..layers.masked_pool import masked_global_avg_pool1d, nan_padding, zero_padding
from ._common import FeatureHeadModel

__all__ = ["ConvBNReLU1d", "SeriesClassifier", "check_positive", "same_conv1d"]


def same_conv1d(in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = True) -> nn.Sequential:
    """Keras' 'same' convolution: ``k - 1`` zeros, ``(k - 1) // 2`` on the left and the rest on the right
    (torch's ``padding="same"`` pads alike, but warns and copies the input for even ``k``)."""
    total = kernel_size - 1
    return nn.Sequential(
        nn.ConstantPad1d((total // 2, total - total // 2), 0.0), nn.Conv1d(in_channels, out_channels, kernel_size, bias=bias)
    )


def check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ConfigError(f"Expected {name} >= 1. Received: {name}={value}")


class ConvBNReLU1d(nn.Module):
    """Conv1d ('same' padding) -> BatchNorm1d -> ReLU (optional), padding steps zeroed after it."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, relu: bool = True, bias: bool = True) -> None:
        super().__init__()
        self.conv = same_conv1d(in_channels, out_channels, kernel_size, bias=bias)
        self.bn = nn.BatchNorm1d(out_channels)
        self.relu = nn.ReLU() if relu else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x))) * mask


class SeriesClassifier(FeatureHeadModel):
    """``blocks`` (a ModuleList of length-preserving blocks, each called as ``block(x, mask)``) -> masked
    GAP -> ``head`` (linear).

    Padding steps (NaN) are zero before every block, and each block zeroes them after every layer
    (``mask`` is ``(B, 1, L)``, 1 at real steps), so they act as a convolution's zero padding and a padded
    series gives what it gives alone;
    ``forward_features`` returns the last block's map with padding marked NaN again, and ``forward_head``
    averages over the real steps only.
    """

    blocks: nn.ModuleList

    def run_blocks(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, mask)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x, mask = zero_padding(x)
        return nan_padding(self.run_blocks(x, mask), mask)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(masked_global_avg_pool1d(x))
