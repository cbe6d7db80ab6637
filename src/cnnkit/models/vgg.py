"""VGG (Simonyan & Zisserman 2015), configurations A (VGG-11) and D (VGG-16) of Table 1.

Reference: K. Simonyan, A. Zisserman, "Very deep convolutional networks for large-scale image
recognition", ICLR 2015, arXiv:1409.1556, Table 1 (configurations) and Sec. 2.1 (architecture).
Batch normalisation (Ioffe & Szegedy 2015) is the optional later addition torchvision ships as ``vgg*_bn``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .._checks import check_int, check_prob
from ..errors import ConfigError
from ._common import FeatureHeadModel, set_input_shape
from ._registry import register_model

__all__ = ["VGG", "vgg11", "vgg16", "VGG_CONFIGS"]

# Table 1 of Simonyan & Zisserman (2015). Integers: 3x3 conv (stride 1, padding 1) widths, each followed
# by ReLU; "M": 2x2 max-pool, stride 2. Configurations A (11 weight layers) and D (16 weight layers).
VGG_CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


def _make_features(cfg: Sequence[int | str], in_channels: int, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    c = in_channels
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            assert isinstance(v, int)
            # With BN the conv bias is redundant, but torchvision keeps it; so do we, to keep its counts
            # (vgg16_bn: 138,365,992) and state-dict layout.
            layers.append(nn.Conv2d(c, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU())
            c = v
    return nn.Sequential(*layers)


class VGG(FeatureHeadModel):
    """VGG: a stack of 3x3 convolutions and 2x2 max-pools, then three fully connected layers.

    For a 224x224 input the five pools give ``(B, 512, 7, 7)``; the classifier is
    FC-4096, ReLU, dropout 0.5, FC-4096, ReLU, dropout 0.5, FC-num_classes (Sec. 2.1 and 3.1).

    Args:
        cfg: the layer table, e.g. ``VGG_CONFIGS["vgg16"]``.
        num_classes: outputs of the last layer.
        in_channels: input channels.
        batch_norm: insert ``BatchNorm2d`` after every convolution.
        dropout: drop probability in the classifier.
        hidden_features: width of the two hidden fully connected layers (4096 in the paper; smaller
            values give cheap test-size networks of the same layout).

    Shape:
        Input ``(B, in_channels, H, W)`` with H, W >= 32 (224 in the paper); output ``(B, num_classes)``.
        The registered ``gradcam_layer`` (the last ReLU) is for ``batch_norm=False``; with BN it is
        ``features.27`` (VGG-11) or ``features.42`` (VGG-16).

    Deviations:
        - An adaptive average pooling to 7x7 sits before the classifier (identity at 224x224), so other
          input sizes run; the paper instead converts the FC layers to convolutions at test time (Sec. 3.2).
        - Kaiming initialisation instead of the paper's N(0, 0.01) and initialising deeper nets from
          configuration A (Sec. 3.1; the paper itself notes Glorot initialisation works without it).

    Example:
        >>> import torch
        >>> model = VGG(VGG_CONFIGS["vgg11"], num_classes=10)
        >>> model(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 10])
    """

    def __init__(
        self,
        cfg: Sequence[int | str],
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        batch_norm: bool = False,
        dropout: float = 0.5,
        hidden_features: int = 4096,
    ) -> None:
        super().__init__()
        check_int(num_classes, "num_classes")
        check_int(hidden_features, "hidden_features")
        check_int(in_channels, "in_channels")
        check_prob(dropout, "dropout")
        widths = [v for v in cfg if v != "M"]
        if not widths or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in widths):
            raise ConfigError(f"Expected cfg to hold positive conv widths and 'M'. Received: cfg={list(cfg)!r}")
        self.num_classes = num_classes
        self.features = _make_features(cfg, in_channels, batch_norm)  # (B, 512, 7, 7) at 224x224
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        last = int(widths[-1])  # type: ignore[arg-type]
        self.classifier = nn.Sequential(
            nn.Linear(last * 7 * 7, hidden_features),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_features, hidden_features),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_features, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)  # type: ignore[arg-type]
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        """Convolutions and pools: ``(B, C, 224, 224) -> (B, 512, 7, 7)``."""
        return self.features(x)

    def forward_head(self, x: Tensor) -> Tensor:
        """``(B, 512, h, w) -> (B, num_classes)``."""
        return self.classifier(self.avgpool(x).flatten(1))


def _build(name: str, num_classes: int, in_channels: int, batch_norm: bool, dropout: float) -> VGG:
    model = VGG(
        VGG_CONFIGS[name], num_classes=num_classes, in_channels=in_channels, batch_norm=batch_norm, dropout=dropout
    )
    return set_input_shape(model, (in_channels, 224, 224))


@register_model(
    paper="Simonyan & Zisserman 2015, arXiv:1409.1556, Table 1 configuration A",
    year=2014,
    input_size=(3, 224, 224),
    num_params=132_863_336,
    gradcam_layer="features.19",
)
def vgg11(*, num_classes: int = 1000, in_channels: int = 3, batch_norm: bool = False, dropout: float = 0.5) -> VGG:
    """VGG-11 (configuration A): 132,863,336 parameters; 132,868,840 with ``batch_norm=True``."""
    return _build("vgg11", num_classes, in_channels, batch_norm, dropout)


@register_model(
    paper="Simonyan & Zisserman 2015, arXiv:1409.1556, Table 1 configuration D",
    year=2014,
    input_size=(3, 224, 224),
    num_params=138_357_544,
    gradcam_layer="features.29",
)
def vgg16(*, num_classes: int = 1000, in_channels: int = 3, batch_norm: bool = False, dropout: float = 0.5) -> VGG:
    """VGG-16 (configuration D): 138,357,544 parameters; 138,365,992 with ``batch_norm=True``."""
    return _build("vgg16", num_classes, in_channels, batch_norm, dropout)
