"""Residual networks (He, Zhang, Ren & Sun 2016): ImageNet ResNet-18/34/50 and CIFAR ResNet-20/56.

Reference: K. He, X. Zhang, S. Ren, J. Sun, "Deep residual learning for image recognition", CVPR 2016,
arXiv:1512.03385. Table 1 (ImageNet architectures), Sec. 3.3 (shortcut options A/B, BN after each
convolution and before the activation), Sec. 4.2 (the 6n+2-layer CIFAR-10 networks, option A).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_choice, check_int
from ..errors import ConfigError
from ._common import FeatureHeadModel, set_input_shape
from ._registry import register_model

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "CifarResNet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet20",
    "resnet56",
]


class _PadShortcut(nn.Module):
    """Option A shortcut (Sec. 3.3): identity, subsampled by the stride, with zero channels appended.

    Parameter-free, so a CIFAR ResNet has only its convolutions, BN and final layer as parameters.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.out_channels - self.in_channels))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}, zero-padded"


def _projection(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """Option B shortcut (Sec. 3.3, Eq. 2): 1x1 convolution with stride, then BN."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
    )


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BN; ``out = relu(F(x) + shortcut(x))`` (Figure 2, Figure 5 left)."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1, shortcut: Literal["A", "B"] = "B") -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = (
                _PadShortcut(in_channels, out_channels, stride)
                if shortcut == "A"
                else _projection(in_channels, out_channels, stride)
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4), each with BN (Figure 5 right).

    ``stride_in_1x1=True`` downsamples in the first 1x1 convolution, as in the paper's released models;
    ``False`` moves the stride to the 3x3 convolution ("ResNet v1.5", torchvision). The parameter count is
    the same.
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        shortcut: Literal["A", "B"] = "B",
        stride_in_1x1: bool = True,
    ) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(in_channels, channels, kernel_size=1, stride=s1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, stride=s3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = (
                _PadShortcut(in_channels, out_channels, stride)
                if shortcut == "A"
                else _projection(in_channels, out_channels, stride)
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _init_resnet(model: nn.Module) -> None:
    # He et al. (2015) initialisation, the one the paper uses (Sec. 3.4, ref. [13]).
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ResNet(FeatureHeadModel):
    """ImageNet ResNet, Table 1 of He et al. (2016).

    ::

        conv1 7x7/2 64, BN, ReLU   (B, 64, 112, 112)
        maxpool 3x3/2              (B, 64, 56, 56)
        layer1 (conv2_x)           (B, 64 e, 56, 56)
        layer2 (conv3_x), /2       (B, 128 e, 28, 28)
        layer3 (conv4_x), /2       (B, 256 e, 14, 14)
        layer4 (conv5_x), /2       (B, 512 e, 7, 7)
        global avgpool, fc         (B, num_classes)

    with e = 1 (basic blocks) or 4 (bottlenecks) and projection shortcuts (option B) where the shape
    changes. Module names follow torchvision, so its state dicts load.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
        num_classes: outputs of the final layer.
        in_channels: input channels.
        stride_in_1x1: bottlenecks only, see :class:`Bottleneck`.

    Shape:
        Input ``(B, in_channels, H, W)`` (224x224 in the paper, any size >= 32 runs); output
        ``(B, num_classes)``.

    Deviations:
        None at the defaults; ``stride_in_1x1=False`` gives the later "v1.5" ResNet-50.

    Example:
        >>> import torch
        >>> model = ResNet(BasicBlock, (2, 2, 2, 2), num_classes=10)
        >>> model(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 10])
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: Sequence[int],
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        stride_in_1x1: bool = True,
    ) -> None:
        super().__init__()
        check_int(num_classes, "num_classes")
        check_int(in_channels, "in_channels")
        if len(layers) != 4:
            raise ConfigError(f"Expected 4 stages of blocks. Received: layers={tuple(layers)!r}")
        for n in layers:
            check_int(n, "blocks per stage")
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)  # (B, 64, 112, 112)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)  # (B, 64, 56, 56)
        self._in = 64
        extra = {"stride_in_1x1": stride_in_1x1} if block is Bottleneck else {}
        self.layer1 = self._stage(block, 64, layers[0], 1, extra)  # (B, 64e, 56, 56)
        self.layer2 = self._stage(block, 128, layers[1], 2, extra)  # (B, 128e, 28, 28)
        self.layer3 = self._stage(block, 256, layers[2], 2, extra)  # (B, 256e, 14, 14)
        self.layer4 = self._stage(block, 512, layers[3], 2, extra)  # (B, 512e, 7, 7)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        _init_resnet(self)

    def _stage(
        self, block: type[BasicBlock] | type[Bottleneck], channels: int, n: int, stride: int, extra: dict[str, bool]
    ) -> nn.Sequential:
        blocks = []
        for i in range(n):
            blocks.append(block(self._in, channels, stride if i == 0 else 1, "B", **extra))
            self._in = channels * block.expansion
        return nn.Sequential(*blocks)

    def forward_features(self, x: Tensor) -> Tensor:
        """Stem and the four stages: ``(B, C, 224, 224) -> (B, 512e, 7, 7)``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, x: Tensor) -> Tensor:
        """Global average pooling and the final layer: ``(B, 512e, h, w) -> (B, num_classes)``."""
        return self.fc(self.avgpool(x).flatten(1))


class CifarResNet(FeatureHeadModel):
    """The 6n+2-layer CIFAR-10 ResNet of Sec. 4.2 of He et al. (2016).

    ::

        conv 3x3 16, BN, ReLU            (B, 16, 32, 32)
        layer1: n basic blocks, 16       (B, 16, 32, 32)
        layer2: n basic blocks, 32, /2   (B, 32, 16, 16)
        layer3: n basic blocks, 64, /2   (B, 64, 8, 8)
        global avgpool, fc               (B, num_classes)

    n = 3 gives ResNet-20 (0.27M in the paper's Table 6: 269,722 parameters with option A shortcuts,
    272,474 with option B), n = 9 ResNet-56 (0.85M: 853,018 with A, 855,770 with B).

    Args:
        depth: 6n + 2 (20, 32, 44, 56, 110, ...).
        num_classes: outputs of the final layer.
        in_channels: input channels.
        shortcut: ``"A"`` (zero-padding identity, the paper's choice for CIFAR) or ``"B"`` (projections).

    Shape:
        Input ``(B, in_channels, 32, 32)``; output ``(B, num_classes)``.

    Deviations:
        None. (Option A pads the new channels after the old ones; the paper does not say where.)

    Example:
        >>> import torch
        >>> model = CifarResNet(depth=20)
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self, *, depth: int = 20, num_classes: int = 10, in_channels: int = 3, shortcut: Literal["A", "B"] = "A"
    ) -> None:
        super().__init__()
        check_int(num_classes, "num_classes")
        check_int(in_channels, "in_channels")
        check_choice(shortcut, "shortcut", ("A", "B"))
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ConfigError(f"Expected depth = 6n + 2 with n >= 1 (20, 32, 44, 56, 110). Received: depth={depth!r}")
        n = (depth - 2) // 6
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(in_channels, 16, kernel_size=3, padding=1, bias=False)  # (B, 16, 32, 32)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        stages = []
        c_in = 16
        for c, stride in ((16, 1), (32, 2), (64, 2)):
            stages.append(
                nn.Sequential(
                    *(BasicBlock(c_in if i == 0 else c, c, stride if i == 0 else 1, shortcut) for i in range(n))
                )
            )
            c_in = c
        self.layer1, self.layer2, self.layer3 = stages  # (B, 16, 32, 32), (B, 32, 16, 16), (B, 64, 8, 8)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        _init_resnet(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, C, 32, 32) -> (B, 64, 8, 8)``."""
        x = self.relu(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(x)))

    def forward_head(self, x: Tensor) -> Tensor:
        """``(B, 64, h, w) -> (B, num_classes)``."""
        return self.fc(self.avgpool(x).flatten(1))


_PAPER = "He, Zhang, Ren & Sun 2016, Deep residual learning for image recognition, arXiv:1512.03385"


@register_model(
    paper=f"{_PAPER}, Table 1", year=2015, input_size=(3, 224, 224), num_params=11_689_512, gradcam_layer="layer4"
)
def resnet18(*, num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-18 (Table 1): 11,689,512 parameters."""
    model = ResNet(BasicBlock, (2, 2, 2, 2), num_classes=num_classes, in_channels=in_channels)
    return set_input_shape(model, (in_channels, 224, 224))


@register_model(
    paper=f"{_PAPER}, Table 1", year=2015, input_size=(3, 224, 224), num_params=21_797_672, gradcam_layer="layer4"
)
def resnet34(*, num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-34 (Table 1): 21,797,672 parameters."""
    model = ResNet(BasicBlock, (3, 4, 6, 3), num_classes=num_classes, in_channels=in_channels)
    return set_input_shape(model, (in_channels, 224, 224))


@register_model(
    paper=f"{_PAPER}, Table 1", year=2015, input_size=(3, 224, 224), num_params=25_557_032, gradcam_layer="layer4"
)
def resnet50(*, num_classes: int = 1000, in_channels: int = 3, stride_in_1x1: bool = True) -> ResNet:
    """ResNet-50 (Table 1): 25,557,032 parameters (``stride_in_1x1=False``: the v1.5 form, same count)."""
    model = ResNet(
        Bottleneck, (3, 4, 6, 3), num_classes=num_classes, in_channels=in_channels, stride_in_1x1=stride_in_1x1
    )
    return set_input_shape(model, (in_channels, 224, 224))


@register_model(
    paper=f"{_PAPER}, Sec. 4.2", year=2015, input_size=(3, 32, 32), num_params=269_722, gradcam_layer="layer3"
)
def resnet20(*, num_classes: int = 10, in_channels: int = 3, shortcut: Literal["A", "B"] = "A") -> CifarResNet:
    """CIFAR ResNet-20 (n = 3, Sec. 4.2): 269,722 parameters with option A shortcuts (272,474 with B)."""
    model = CifarResNet(depth=20, num_classes=num_classes, in_channels=in_channels, shortcut=shortcut)
    return set_input_shape(model, (in_channels, 32, 32))


@register_model(
    paper=f"{_PAPER}, Sec. 4.2", year=2015, input_size=(3, 32, 32), num_params=853_018, gradcam_layer="layer3"
)
def resnet56(*, num_classes: int = 10, in_channels: int = 3, shortcut: Literal["A", "B"] = "A") -> CifarResNet:
    """CIFAR ResNet-56 (n = 9, Sec. 4.2): 853,018 parameters with option A shortcuts (855,770 with B)."""
    model = CifarResNet(depth=56, num_classes=num_classes, in_channels=in_channels, shortcut=shortcut)
    return set_input_shape(model, (in_channels, 32, 32))
