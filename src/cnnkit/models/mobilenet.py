"""MobileNet v1 (Howard et al. 2017): depthwise separable convolutions, width and resolution multipliers.

Reference: A. G. Howard, M. Zhu, B. Chen, D. Kalenichenko, W. Wang, T. Weyand, M. Andreetto, H. Adam,
"MobileNets: Efficient convolutional neural networks for mobile vision applications", arXiv:1704.04861,
Table 1 (the body), Figure 3 (the block), Sec. 3.3 (width multiplier alpha, resolution multiplier rho).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from .._checks import check_int
from ..errors import ConfigError
from ._common import FeatureHeadModel, set_input_shape
from ._registry import register_model

__all__ = ["MobileNetV1", "mobilenet_v1", "MOBILENET_V1_TABLE"]

# Table 1 of Howard et al. after the first full convolution: (stride of the depthwise 3x3, pointwise
# output channels) for the 13 depthwise separable layers. Table 1 prints "Conv dw / s2" for the
# 13th depthwise layer, but its input and output are both 7x7, so the stride is 1 (a known typo).
MOBILENET_V1_TABLE: tuple[tuple[int, int], ...] = (
    (1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
    (1, 512), (1, 512), (1, 512), (1, 512), (1, 512),
    (2, 1024), (1, 1024),
)  # fmt: skip


class _DepthwiseSeparable(nn.Module):
    """Figure 3 (right): 3x3 depthwise conv, BN, ReLU, then 1x1 pointwise conv, BN, ReLU.

    Written with ``nn.Conv2d(groups=in_channels)`` directly; the layer catalogue's
    ``DepthwiseSeparableConv2d`` is the reusable form.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1, groups=in_channels, bias=False)
        self.bn_dw = nn.BatchNorm2d(in_channels)
        self.pw = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn_pw = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn_dw(self.dw(x)))
        return self.relu(self.bn_pw(self.pw(x)))


def _width(channels: int, alpha: float) -> int:
    # Sec. 4.1: "the number of input channels M becomes alpha M"; truncation as in the reference Keras
    # implementation (int(filters * alpha)), at least one channel.
    return max(1, int(channels * alpha))


class MobileNetV1(FeatureHeadModel):
    """MobileNet v1, Table 1 of Howard et al.

    ::

        conv 3x3/2 32a, BN, ReLU             (B, 32a, 112, 112)
        13 depthwise separable layers        (B, 1024a, 7, 7)    strides 1,2,1,2,1,2,1x5,2,1
        global avgpool, FC                   (B, num_classes)

    4,231,976 parameters at alpha = 1 and 1000 classes (every convolution without bias, followed by BN).

    Args:
        num_classes: outputs of the final layer.
        in_channels: input channels.
        width_multiplier: alpha in (0, 1] (the paper uses 1, 0.75, 0.5, 0.25); scales every width.

    Shape:
        Input ``(B, in_channels, R, R)`` with R = 224 rho (the paper uses 224, 192, 160, 128); output
        ``(B, num_classes)``. The resolution multiplier changes only the input size (and the FLOPs by
        rho^2), not the parameters.

    Deviations:
        - Symmetric padding 1 for the stride-2 depthwise layers (TensorFlow pads "same", i.e. 0 before and
          1 after); outputs have the same sizes.
        - The final 7x7 average pool is global, so it is the same at every resolution.

    Example:
        >>> import torch
        >>> model = MobileNetV1(width_multiplier=0.25, num_classes=10)
        >>> model(torch.zeros(1, 3, 128, 128)).shape
        torch.Size([1, 10])
    """

    def __init__(self, *, num_classes: int = 1000, in_channels: int = 3, width_multiplier: float = 1.0) -> None:
        super().__init__()
        check_int(num_classes, "num_classes")
        check_int(in_channels, "in_channels")
        alpha = width_multiplier
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0.0 < float(alpha) <= 1.0:
            raise ConfigError(f"Expected 0 < width_multiplier <= 1. Received: width_multiplier={alpha!r}")
        self.num_classes = num_classes
        self.width_multiplier = float(alpha)
        c = _width(32, alpha)
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            [
                (
                    "0",
                    nn.Sequential(
                        nn.Conv2d(in_channels, c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()
                    ),
                ),
            ]
        )  # (B, 32a, 112, 112)
        for i, (stride, out) in enumerate(MOBILENET_V1_TABLE, start=1):
            layers[str(i)] = _DepthwiseSeparable(c, _width(out, alpha), stride)
            c = _width(out, alpha)
        self.features = nn.Sequential(layers)  # (B, 1024a, 7, 7)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, C, 224, 224) -> (B, 1024a, 7, 7)``."""
        return self.features(x)

    def forward_head(self, x: Tensor) -> Tensor:
        """``(B, 1024a, h, w) -> (B, num_classes)``."""
        return self.fc(self.avgpool(x).flatten(1))


@register_model(
    paper="Howard et al. 2017, MobileNets, arXiv:1704.04861, Table 1",
    year=2017,
    input_size=(3, 224, 224),
    num_params=4_231_976,
    gradcam_layer="features.13",
)
def mobilenet_v1(
    *, num_classes: int = 1000, in_channels: int = 3, width_multiplier: float = 1.0, resolution: int = 224
) -> MobileNetV1:
    """MobileNet v1 (see :class:`MobileNetV1`): 4,231,976 parameters at 1.0/224.

    ``resolution`` is R = 224 rho; it sets ``model.input_shape`` (what the training engine resizes to).
    """
    check_int(resolution, "resolution", 32)
    model = MobileNetV1(num_classes=num_classes, in_channels=in_channels, width_multiplier=width_multiplier)
    return set_input_shape(model, (in_channels, resolution, resolution))
