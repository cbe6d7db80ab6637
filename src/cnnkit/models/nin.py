"""Network in Network (Lin, Chen & Yan 2014), the CIFAR-10 model with global average pooling.

Reference: M. Lin, Q. Chen, S. Yan, "Network in network", ICLR 2014, arXiv:1312.4400, Sec. 3.2 (mlpconv),
Sec. 3.3 (global average pooling), Sec. 4.2 (CIFAR-10). The paper gives no layer table; the widths and
pools are those of the authors' released CIFAR-10 Caffe model (Caffe Model Zoo, "NIN CIFAR10").
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from .._checks import check_int, check_prob
from ._common import FeatureHeadModel, set_input_shape
from ._registry import register_model

__all__ = ["NiN", "nin"]


def _mlpconv(in_channels: int, widths: tuple[int, int, int], kernel_size: int, padding: int) -> nn.Sequential:
    """One mlpconv layer (Sec. 3.2): a k x k convolution, then two 1x1 convolutions (the "micro MLP"
    shared across positions, Eq. 2), each followed by ReLU."""
    c1, c2, c3 = widths
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(in_channels, c1, kernel_size=kernel_size, padding=padding),
            relu=nn.ReLU(),
            cccp1=nn.Conv2d(c1, c2, kernel_size=1),
            relu1=nn.ReLU(),
            cccp2=nn.Conv2d(c2, c3, kernel_size=1),
            relu2=nn.ReLU(),
        )
    )


class NiN(FeatureHeadModel):
    """Network in Network for CIFAR-10: three mlpconv layers and a global-average-pooling head.

    ::

        mlpconv1 5x5 192, 1x1 160, 1x1 96    (B, 96, 32, 32)
        maxpool 3x3/2 (ceil), dropout 0.5     (B, 96, 16, 16)
        mlpconv2 5x5 192, 1x1 192, 1x1 192   (B, 192, 16, 16)
        avgpool 3x3/2 (ceil), dropout 0.5     (B, 192, 8, 8)
        mlpconv3 3x3 192, 1x1 192, 1x1 K     (B, K, 8, 8)   one confidence map per class
        global average pooling               (B, K)

    966,986 parameters for K = 10.

    Args:
        num_classes: K, the channels of the last 1x1 convolution (no fully connected layer).
        in_channels: input channels.
        dropout: drop probability after the first two mlpconv layers (Sec. 4.2).

    Shape:
        Input ``(B, in_channels, H, W)`` (32x32 in the paper); output ``(B, num_classes)``.

    Deviations:
        - The paper's text says the mlpconv layers are "followed by spatial max pooling"; the released
          model, followed here, uses max pooling after the first and average pooling after the second,
          both with Caffe's ceil rounding (``ceil_mode=True``: 32 -> 16 -> 8).
        - As in the released model the last 1x1 convolution is followed by ReLU, so the class scores
          are non-negative.
        - Global average pooling is adaptive (the released model averages a fixed 8x8 window), so other
          input sizes run; identical at 32x32.
        - Kaiming initialisation instead of the released model's N(0, 0.05) / N(0, 0.01).

    Example:
        >>> import torch
        >>> model = NiN(num_classes=10)
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(self, *, num_classes: int = 10, in_channels: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        check_int(num_classes, "num_classes")
        check_int(in_channels, "in_channels")
        check_prob(dropout, "dropout")
        self.num_classes = num_classes
        self.features = nn.Sequential(
            OrderedDict(
                mlpconv1=_mlpconv(in_channels, (192, 160, 96), kernel_size=5, padding=2),  # (B, 96, 32, 32)
                pool1=nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),  # (B, 96, 16, 16)
                drop1=nn.Dropout(dropout),
                mlpconv2=_mlpconv(96, (192, 192, 192), kernel_size=5, padding=2),  # (B, 192, 16, 16)
                pool2=nn.AvgPool2d(kernel_size=3, stride=2, ceil_mode=True),  # (B, 192, 8, 8)
                drop2=nn.Dropout(dropout),
                mlpconv3=_mlpconv(192, (192, 192, num_classes), kernel_size=3, padding=1),  # (B, K, 8, 8)
            )
        )
        # Sec. 3.3: "take the average of each feature map, and the resulting vector is fed directly into the
        # softmax layer" -- no fully connected layer, hence nothing to overfit there.
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)  # type: ignore[arg-type]

    def forward_features(self, x: Tensor) -> Tensor:
        """The three mlpconv layers: ``(B, C, 32, 32) -> (B, num_classes, 8, 8)`` class confidence maps."""
        return self.features(x)

    def forward_head(self, x: Tensor) -> Tensor:
        """Global average pooling: ``(B, K, h, w) -> (B, K)``."""
        return self.global_pool(x).flatten(1)


@register_model(
    paper="Lin, Chen & Yan 2014, Network in Network, arXiv:1312.4400, Sec. 3-4 (CIFAR-10 model)",
    year=2014,
    input_size=(3, 32, 32),
    num_params=966_986,
    gradcam_layer="features.mlpconv3",
)
def nin(*, num_classes: int = 10, in_channels: int = 3, dropout: float = 0.5) -> NiN:
    """Network in Network for CIFAR-10 (see :class:`NiN`): 966,986 parameters for 10 classes."""
    model = NiN(num_classes=num_classes, in_channels=in_channels, dropout=dropout)
    return set_input_shape(model, (in_channels, 32, 32))
