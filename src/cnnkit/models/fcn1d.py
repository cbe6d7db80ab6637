"""Fully convolutional network and residual network for time-series classification (Wang, Yan & Oates 2017)."""

from __future__ import annotations

import torch
from torch import nn

from ._registry import register_model
from ._series import ConvBNReLU1d, SeriesClassifier, check_positive

__all__ = ["FCN1d", "ResNet1d", "fcn1d", "resnet1d"]

# Wang et al. (2017), Sec. 2 and Fig. 1: (filters, kernel size) of the three convolution blocks.
_FCN = ((128, 8), (256, 5), (128, 3))
# The three residual blocks of their ResNet: filters per block, each block convolving with k = 8, 5, 3.
_RESNET = (64, 128, 128)
_RESNET_KERNELS = (8, 5, 3)


class FCN1d(SeriesClassifier):
    """FCN of Wang, Yan & Oates (2017), Fig. 1(b): three blocks of convolution (128, 256, 128 filters of
    length 8, 5, 3), batch norm and ReLU, then global average pooling and a softmax layer.

    Args:
        num_classes: outputs of the last layer.
        in_channels: channels of the series (1 for the univariate UCR problems).
        seq_len: the length recorded in ``input_shape`` (any length works: the head pools over time).

    Shape:
        Input ``(B, in_channels, L)`` (NaN-padded series allowed); output ``(B, num_classes)``.

    Example:
        >>> fcn1d(num_classes=3)(torch.randn(2, 1, 40)).shape
        torch.Size([2, 3])

    Reference:
        Z. Wang, W. Yan, T. Oates, "Time series classification from scratch with deep neural networks: a
        strong baseline", IJCNN 2017, Sec. 2, Fig. 1.

    Deviations:
        'Same' zero padding (as the authors' Keras code); padded steps of unequal-length batches are reset
        to zero after each block and left out of the pooling, but batch-norm statistics include them.
    """

    def __init__(self, *, num_classes: int = 2, in_channels: int = 1, seq_len: int = 150) -> None:
        super().__init__()
        check_positive(num_classes=num_classes, in_channels=in_channels, seq_len=seq_len)
        blocks, c = [], in_channels
        for filters, k in _FCN:
            blocks.append(ConvBNReLU1d(c, filters, k))  # (B, filters, L)
            c = filters
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(c, num_classes)
        self.input_shape = (in_channels, seq_len)
        self.num_classes = num_classes


class _ResidualBlock(nn.Module):
    """Three conv-BN(-ReLU) layers (k = 8, 5, 3) with a shortcut: 1x1 conv + BN when the width changes, BN
    otherwise (the authors' code), added before the last ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        k1, k2, k3 = _RESNET_KERNELS
        self.body = nn.ModuleList([
            ConvBNReLU1d(in_channels, out_channels, k1),
            ConvBNReLU1d(out_channels, out_channels, k2),
            ConvBNReLU1d(out_channels, out_channels, k3, relu=False),
        ])
        if in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(nn.Conv1d(in_channels, out_channels, 1), nn.BatchNorm1d(out_channels))
        else:
            self.shortcut = nn.BatchNorm1d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = x
        for layer in self.body:
            y = layer(y, mask)
        return self.relu(y + self.shortcut(x)) * mask


class ResNet1d(SeriesClassifier):
    """ResNet of Wang, Yan & Oates (2017), Fig. 1(c): three residual blocks of 64, 128, 128 filters, each
    three convolutions of length 8, 5, 3 with batch norm, then global average pooling and softmax.

    Args:
        num_classes, in_channels, seq_len: as for :class:`FCN1d`.

    Example:
        >>> resnet1d(num_classes=3)(torch.randn(2, 1, 40)).shape
        torch.Size([2, 3])

    Reference:
        Wang, Yan & Oates (2017), Sec. 2, Fig. 1(c).

    Deviations:
        As :class:`FCN1d`. The third block's identity shortcut goes through batch norm, as in the authors'
        code (Fawaz et al. 2019's reimplementation); the paper's figure shows a plain shortcut.
    """

    def __init__(self, *, num_classes: int = 2, in_channels: int = 1, seq_len: int = 150) -> None:
        super().__init__()
        check_positive(num_classes=num_classes, in_channels=in_channels, seq_len=seq_len)
        blocks, c = [], in_channels
        for filters in _RESNET:
            blocks.append(_ResidualBlock(c, filters))
            c = filters
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(c, num_classes)
        self.input_shape = (in_channels, seq_len)
        self.num_classes = num_classes


@register_model(
    paper="Wang, Yan & Oates 2017, Time series classification from scratch with deep neural networks, Fig. 1(b)",
    year=2017,
    input_size=(1, 150),
    # Hand count: convs 1152 + 164,096 + 98,432, batch norms 2 x (128 + 256 + 128), linear 128 x 2 + 2.
    num_params=264_962,
    task="series",
    gradcam_layer="blocks.2",
)
def fcn1d(*, num_classes: int = 2, in_channels: int = 1, seq_len: int = 150) -> FCN1d:
    """FCN for time series (GunPoint-sized defaults: 1 channel, 150 steps, 2 classes). See :class:`FCN1d`."""
    return FCN1d(num_classes=num_classes, in_channels=in_channels, seq_len=seq_len)


@register_model(
    paper="Wang, Yan & Oates 2017, Time series classification from scratch with deep neural networks, Fig. 1(c)",
    year=2017,
    input_size=(1, 150),
    num_params=504_258,  # hand count in tests/models/test_fcn1d.py
    task="series",
    gradcam_layer="blocks.2",
)
def resnet1d(*, num_classes: int = 2, in_channels: int = 1, seq_len: int = 150) -> ResNet1d:
    """ResNet for time series (GunPoint-sized defaults). See :class:`ResNet1d`."""
    return ResNet1d(num_classes=num_classes, in_channels=in_channels, seq_len=seq_len)
