"""The small CNN of the MNIST-1D paper (Greydanus 2020)."""

from __future__ import annotations

import torch
from torch import nn

from ..layers.masked_pool import zero_padding
from ._common import FeatureHeadModel
from ._registry import register_model
from ._series import check_positive

__all__ = ["Mnist1dCNN", "mnist1d_cnn"]


class Mnist1dCNN(FeatureHeadModel):
    """Three strided 1-D convolutions (25 channels; kernels 5, 3, 3; stride 2; padding 1) with ReLU, then a
    linear layer on the flattened ``25 x 5`` map: the CNN of Greydanus (2020), Table 1 (94% test accuracy on
    MNIST-1D against 68% for an MLP).

    Args:
        num_classes: outputs (10 digits).
        in_channels: channels (1).
        seq_len: series length (40; the linear layer is sized for it).
        channels: convolution width (25).

    Example:
        >>> mnist1d_cnn()(torch.randn(2, 1, 40)).shape
        torch.Size([2, 10])

    Reference:
        S. Greydanus, "Scaling down deep learning", arXiv:2011.14439, 2020, Table 1 and the accompanying
        code's ``ConvBase``.

    Deviations:
        None in the architecture. NaN padding (a shorter series) is read as zeros.
    """

    def __init__(self, *, num_classes: int = 10, in_channels: int = 1, seq_len: int = 40, channels: int = 25) -> None:
        super().__init__()
        check_positive(num_classes=num_classes, in_channels=in_channels, seq_len=seq_len, channels=channels)
        self.features = nn.Sequential(
            nn.Conv1d(in_channels, channels, 5, stride=2, padding=1), nn.ReLU(),  # (B, 25, 19) for L = 40
            nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),  # (B, 25, 10)
            nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),  # (B, 25, 5)
        )
        n = seq_len
        for k in (5, 3, 3):
            n = (n + 2 - k) // 2 + 1
        if n < 1:
            raise ValueError(f"Expected seq_len >= 4. Received: seq_len={seq_len}")
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels * n, num_classes))
        self.input_shape = (in_channels, seq_len)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(zero_padding(x)[0])


@register_model(
    paper="Greydanus 2020, Scaling down deep learning (MNIST-1D), arXiv:2011.14439, Table 1",
    year=2020,
    input_size=(1, 40),
    num_params=5_210,  # 150 + 1,900 + 1,900 (convs) + 1,260 (linear 125 -> 10)
    task="series",
    gradcam_layer="features.4",
)
def mnist1d_cnn(*, num_classes: int = 10, in_channels: int = 1, seq_len: int = 40, channels: int = 25) -> Mnist1dCNN:
    """The MNIST-1D CNN. See :class:`Mnist1dCNN`."""
    return Mnist1dCNN(num_classes=num_classes, in_channels=in_channels, seq_len=seq_len, channels=channels)
