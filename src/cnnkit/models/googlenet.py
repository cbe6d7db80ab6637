"""GoogLeNet / Inception v1 (Szegedy et al. 2015), with its two auxiliary classifiers.

Reference: C. Szegedy, W. Liu, Y. Jia, P. Sermanet, S. Reed, D. Anguelov, D. Erhan, V. Vanhoucke,
A. Rabinovich, "Going deeper with convolutions", CVPR 2015, arXiv:1409.4842, Table 1 (the network),
Figure 2(b) (the Inception module), Figure 3 and Sec. 5 (stem LRN, auxiliary classifiers).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .._checks import check_int, check_prob
from ..errors import ConfigError
from ._common import set_input_shape
from ._registry import register_model

__all__ = ["GoogLeNet", "GoogLeNetOutputs", "Inception", "googlenet", "INCEPTION_TABLE"]

# Table 1 of Szegedy et al.: name -> (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj).
INCEPTION_TABLE: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


class GoogLeNetOutputs(NamedTuple):
    """Training-mode output: main logits and the two auxiliary classifiers' logits (after 4a and 4d).

    Sec. 5: the auxiliary losses are added to the total loss with weight 0.3 during training.
    """

    logits: Tensor
    aux1: Tensor
    aux2: Tensor


def _conv_relu(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0
) -> nn.Sequential:
    # Sec. 5: "All the convolutions, including those inside the Inception modules, use rectified linear
    # activation." No batch normalisation: it did not exist yet (torchvision's googlenet adds it).
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding),
            relu=nn.ReLU(),
        )
    )


class Inception(nn.Module):
    """The Inception module with dimension reductions, Figure 2(b).

    Four parallel branches, concatenated along channels:
    1x1; 1x1 reduce -> 3x3; 1x1 reduce -> 5x5; 3x3 max-pool (stride 1) -> 1x1 projection.

    Shape:
        ``(B, in_channels, H, W) -> (B, c1x1 + c3x3 + c5x5 + pool_proj, H, W)``.
    """

    def __init__(
        self, in_channels: int, c1x1: int, c3x3_reduce: int, c3x3: int, c5x5_reduce: int, c5x5: int, pool_proj: int
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = c1x1 + c3x3 + c5x5 + pool_proj
        self.branch1 = _conv_relu(in_channels, c1x1, 1)
        self.branch2 = nn.Sequential(
            _conv_relu(in_channels, c3x3_reduce, 1), _conv_relu(c3x3_reduce, c3x3, 3, padding=1)
        )
        # A true 5x5 as in the paper (torchvision's googlenet has a 3x3 here, a known slip).
        self.branch3 = nn.Sequential(
            _conv_relu(in_channels, c5x5_reduce, 1), _conv_relu(c5x5_reduce, c5x5, 5, padding=2)
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True), _conv_relu(in_channels, pool_proj, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}"


class _AuxClassifier(nn.Module):
    """Auxiliary classifier of Sec. 5: avg-pool 5x5/3, 1x1 conv 128 + ReLU, FC 1024 + ReLU, dropout 0.7,
    linear. On a 14x14 map (224 input) the pool gives 4x4, so the FC reads 4 * 4 * 128 = 2048 values."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(kernel_size=5, stride=3)  # (B, C, 4, 4) from 14x14
        self.resize = nn.AdaptiveAvgPool2d((4, 4))  # identity at 224 input; lets smaller inputs run
        self.conv = _conv_relu(in_channels, 128, 1)  # (B, 128, 4, 4)
        self.fc = nn.Linear(4 * 4 * 128, 1024)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(1024, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        if min(x.shape[-2:]) < 5:
            raise ConfigError(
                "GoogLeNet's auxiliary classifiers need maps of at least 5x5 after inception 4a/4d (an input of "
                f"at least 79x79). Received: {tuple(x.shape[-2:])} maps. Use a larger input or aux_logits=False."
            )
        x = self.conv(self.resize(self.pool(x))).flatten(1)
        return self.classifier(self.dropout(self.relu(self.fc(x))))


class GoogLeNet(nn.Module):
    """GoogLeNet (Inception v1), Table 1 of Szegedy et al.

    ::

        conv1 7x7/2 64            (B, 64, 112, 112)
        maxpool 3x3/2, LRN        (B, 64, 56, 56)
        conv2 1x1 64, 3x3 192, LRN (B, 192, 56, 56)
        maxpool 3x3/2             (B, 192, 28, 28)
        inception 3a, 3b          (B, 480, 28, 28)
        maxpool 3x3/2             (B, 480, 14, 14)
        inception 4a .. 4e        (B, 832, 14, 14)   aux1 after 4a, aux2 after 4d
        maxpool 3x3/2             (B, 832, 7, 7)
        inception 5a, 5b          (B, 1024, 7, 7)
        avgpool 7x7, dropout 0.4, linear

    6,998,552 parameters without the auxiliary classifiers and 13,378,280 with them (1000 classes).

    Args:
        num_classes: outputs of the classifiers.
        in_channels: input channels.
        aux_logits: build the two auxiliary classifiers (used only in training mode).
        dropout: drop probability before the main linear layer (0.4 in the paper).
        dropout_aux: drop probability in the auxiliary classifiers (0.7 in the paper).

    Shape:
        Input ``(B, in_channels, 224, 224)``; inputs down to 32x32 run in eval mode or without auxiliary
        classifiers, down to 79x79 with them in training mode. Output: in eval mode, or
        with ``aux_logits=False``, the logits ``(B, num_classes)``; in training mode with auxiliary
        classifiers a :class:`GoogLeNetOutputs` ``(logits, aux1, aux2)``.

    Deviations:
        - LRN parameters are not in the paper; those of the BVLC Caffe reimplementation are used
          (size 5, alpha 1e-4 divided by the size as torch and Caffe do, beta 0.75, k 1).
        - Max-pools use ceil rounding (``ceil_mode=True``) so 112 -> 56 -> 28 -> 14 -> 7 as in Table 1.
        - The final 7x7 average pool is a global average pool and the auxiliary heads adapt their pooled
          map to 4x4 after the 5x5/3 pool; both are identities at 224x224 and let smaller inputs run.
        - Default PyTorch initialisation (the paper does not specify one).

    Example:
        >>> model = GoogLeNet(aux_logits=False).eval()
        >>> model(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 1000])
    """

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        aux_logits: bool = True,
        dropout: float = 0.4,
        dropout_aux: float = 0.7,
    ) -> None:
        super().__init__()
        check_int(num_classes, "num_classes")
        check_int(in_channels, "in_channels")
        check_prob(dropout, "dropout")
        check_prob(dropout_aux, "dropout_aux")
        self.num_classes = num_classes
        self.aux_logits = aux_logits

        def lrn() -> nn.Module:
            return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=1.0)

        def pool() -> nn.Module:
            return nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)

        def inception(name: str, in_c: int) -> Inception:
            return Inception(in_c, *INCEPTION_TABLE[name])

        self.features = nn.Sequential(
            OrderedDict(
                conv1=_conv_relu(in_channels, 64, 7, stride=2, padding=3),  # (B, 64, 112, 112)
                pool1=pool(),  # (B, 64, 56, 56)
                norm1=lrn(),
                conv2_reduce=_conv_relu(64, 64, 1),  # (B, 64, 56, 56)
                conv2=_conv_relu(64, 192, 3, padding=1),  # (B, 192, 56, 56)
                norm2=lrn(),
                pool2=pool(),  # (B, 192, 28, 28)
                inception3a=inception("3a", 192),  # (B, 256, 28, 28)
                inception3b=inception("3b", 256),  # (B, 480, 28, 28)
                pool3=pool(),  # (B, 480, 14, 14)
                inception4a=inception("4a", 480),  # (B, 512, 14, 14)
                inception4b=inception("4b", 512),  # (B, 512, 14, 14)
                inception4c=inception("4c", 512),  # (B, 512, 14, 14)
                inception4d=inception("4d", 512),  # (B, 528, 14, 14)
                inception4e=inception("4e", 528),  # (B, 832, 14, 14)
                pool4=pool(),  # (B, 832, 7, 7)
                inception5a=inception("5a", 832),  # (B, 832, 7, 7)
                inception5b=inception("5b", 832),  # (B, 1024, 7, 7)
            )
        )
        self.aux1: _AuxClassifier | None = _AuxClassifier(512, num_classes, dropout_aux) if aux_logits else None
        self.aux2: _AuxClassifier | None = _AuxClassifier(528, num_classes, dropout_aux) if aux_logits else None
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # (B, 1024, 1, 1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        """Stem and the nine Inception modules: ``(B, C, 224, 224) -> (B, 1024, 7, 7)``."""
        return self.features(x)

    def forward_head(self, x: Tensor) -> Tensor:
        """``(B, 1024, h, w) -> (B, num_classes)``."""
        return self.fc(self.dropout(self.avgpool(x).flatten(1)))

    def forward(self, x: Tensor) -> Tensor | GoogLeNetOutputs:
        if not (self.training and self.aux1 is not None and self.aux2 is not None):
            return self.forward_head(self.forward_features(x))
        # Training with auxiliary heads: tap the trunk after 4a and 4d (Sec. 5).
        aux: dict[str, Tensor] = {}
        for name, layer in self.features.named_children():
            x = layer(x)
            if name == "inception4a":
                aux["aux1"] = self.aux1(x)
            elif name == "inception4d":
                aux["aux2"] = self.aux2(x)
        return GoogLeNetOutputs(self.forward_head(x), aux["aux1"], aux["aux2"])


@register_model(
    paper="Szegedy et al. 2015, Going deeper with convolutions, arXiv:1409.4842, Table 1",
    year=2014,
    input_size=(3, 224, 224),
    num_params=13_378_280,
    gradcam_layer="features.inception5b",
)
def googlenet(
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    aux_logits: bool = True,
    dropout: float = 0.4,
    dropout_aux: float = 0.7,
) -> GoogLeNet:
    """GoogLeNet (see :class:`GoogLeNet`); 13,378,280 parameters with the auxiliary classifiers
    (the default, as trained in the paper), 6,998,552 with ``aux_logits=False``."""
    model = GoogLeNet(
        num_classes=num_classes,
        in_channels=in_channels,
        aux_logits=aux_logits,
        dropout=dropout,
        dropout_aux=dropout_aux,
    )
    return set_input_shape(model, (in_channels, 224, 224))
