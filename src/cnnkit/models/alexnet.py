"""AlexNet (Krizhevsky, Sutskever & Hinton 2012), as published and in its single-tower library form.

Reference: A. Krizhevsky, I. Sutskever, G. E. Hinton, "ImageNet classification with deep convolutional
neural networks", NeurIPS 2012, Section 3 (architecture, Figure 2), Sec. 3.3 (LRN), Sec. 3.4 (overlapping
pooling), Sec. 4.2 (dropout), Sec. 5 (initialisation). The single-tower form is the one of
A. Krizhevsky, "One weird trick for parallelizing convolutional neural networks", arXiv:1404.5997,
as shipped by torchvision.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

from torch import Tensor, nn

from .._checks import check_choice, check_int, check_prob
from ._common import FeatureHeadModel, set_input_shape
from ._registry import register_model

__all__ = ["AlexNet", "alexnet"]


class AlexNet(FeatureHeadModel):
    """AlexNet.

    ``variant="krizhevsky2012"`` (Figure 2; the two GPUs' halves are ``groups=2`` convolutions)::

        conv1 96@11x11/4, ReLU, LRN, maxpool 3x3/2   (B, 96, 55, 55) -> (B, 96, 27, 27)
        conv2 256@5x5 p2 g2, ReLU, LRN, maxpool      (B, 256, 27, 27) -> (B, 256, 13, 13)
        conv3 384@3x3 p1 (reads both halves), ReLU   (B, 384, 13, 13)
        conv4 384@3x3 p1 g2, ReLU                    (B, 384, 13, 13)
        conv5 256@3x3 p1 g2, ReLU, maxpool           (B, 256, 13, 13) -> (B, 256, 6, 6)
        fc6 4096, ReLU, dropout 0.5; fc7 4096, ReLU, dropout 0.5; fc8 num_classes

    with LRN ``b = a / (k + alpha * sum_{n neighbours} a^2)^beta``, k=2, n=5, alpha=1e-4, beta=0.75
    (Sec. 3.3): 60,965,224 parameters.

    ``variant="single_tower"``: 64-192-384-256-256 filters, no LRN, no groups, dropout before fc6 and
    fc7 (torchvision's ``alexnet``): 61,100,840 parameters.

    Args:
        variant: ``"krizhevsky2012"`` or ``"single_tower"``.
        num_classes: outputs of the last layer.
        in_channels: input channels.
        dropout: drop probability of the two hidden fully connected layers.

    Shape:
        Input ``(B, in_channels, 227, 227)`` (``224`` for ``single_tower``); output ``(B, num_classes)``.
        Other sizes of at least 67x67 also run (see Deviations).

    Deviations (``"krizhevsky2012"``):
        - Input 227x227, not the paper's 224x224: with an 11x11 kernel at stride 4, (224 - 11)/4 + 1 = 54.25
          does not tile, while (227 - 11)/4 + 1 = 55 gives the 55x55 maps of Figure 2 (Caffe's choice too).
        - An adaptive average pooling to 6x6 sits before fc6. It is the identity at 227x227 and lets other
          input sizes reach the classifier.
        - ``nn.LocalResponseNorm`` divides alpha by the window size n; it is given ``alpha * n`` so the
          normalisation is the paper's formula.
        - Initialisation follows Sec. 5 (weights N(0, 0.01); biases 1 in conv2, conv4, conv5 and the hidden
          fully connected layers, 0 elsewhere); it is slow to start with modern recipes and no BN.

    Example:
        >>> import torch
        >>> model = AlexNet()
        >>> model(torch.zeros(1, 3, 227, 227)).shape
        torch.Size([1, 1000])
    """

    def __init__(
        self,
        *,
        variant: Literal["krizhevsky2012", "single_tower"] = "krizhevsky2012",
        num_classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        check_choice(variant, "variant", ("krizhevsky2012", "single_tower"))
        check_int(num_classes, "num_classes")
        check_int(in_channels, "in_channels")
        check_prob(dropout, "dropout")
        self.variant = variant
        self.num_classes = num_classes

        if variant == "krizhevsky2012":
            n, alpha = 5, 1e-4

            def lrn() -> nn.Module:
                return nn.LocalResponseNorm(size=n, alpha=alpha * n, beta=0.75, k=2.0)

            self.features = nn.Sequential(
                OrderedDict(
                    conv1=nn.Conv2d(in_channels, 96, kernel_size=11, stride=4),  # (B, 96, 55, 55)
                    relu1=nn.ReLU(),
                    norm1=lrn(),
                    pool1=nn.MaxPool2d(kernel_size=3, stride=2),  # (B, 96, 27, 27): overlapping, Sec. 3.4
                    conv2=nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2),  # (B, 256, 27, 27)
                    relu2=nn.ReLU(),
                    norm2=lrn(),
                    pool2=nn.MaxPool2d(kernel_size=3, stride=2),  # (B, 256, 13, 13)
                    conv3=nn.Conv2d(256, 384, kernel_size=3, padding=1),  # (B, 384, 13, 13): crosses GPUs
                    relu3=nn.ReLU(),
                    conv4=nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2),  # (B, 384, 13, 13)
                    relu4=nn.ReLU(),
                    conv5=nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2),  # (B, 256, 13, 13)
                    relu5=nn.ReLU(),
                    pool5=nn.MaxPool2d(kernel_size=3, stride=2),  # (B, 256, 6, 6)
                )
            )
            # Sec. 4.2: dropout on the outputs of the first two fully connected layers.
            classifier = OrderedDict(
                fc6=nn.Linear(256 * 6 * 6, 4096),
                relu6=nn.ReLU(),
                drop6=nn.Dropout(dropout),
                fc7=nn.Linear(4096, 4096),
                relu7=nn.ReLU(),
                drop7=nn.Dropout(dropout),
                fc8=nn.Linear(4096, num_classes),
            )
        else:
            self.features = nn.Sequential(
                OrderedDict(
                    conv1=nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2),  # (B, 64, 55, 55)
                    relu1=nn.ReLU(),
                    pool1=nn.MaxPool2d(kernel_size=3, stride=2),  # (B, 64, 27, 27)
                    conv2=nn.Conv2d(64, 192, kernel_size=5, padding=2),  # (B, 192, 27, 27)
                    relu2=nn.ReLU(),
                    pool2=nn.MaxPool2d(kernel_size=3, stride=2),  # (B, 192, 13, 13)
                    conv3=nn.Conv2d(192, 384, kernel_size=3, padding=1),  # (B, 384, 13, 13)
                    relu3=nn.ReLU(),
                    conv4=nn.Conv2d(384, 256, kernel_size=3, padding=1),  # (B, 256, 13, 13)
                    relu4=nn.ReLU(),
                    conv5=nn.Conv2d(256, 256, kernel_size=3, padding=1),  # (B, 256, 13, 13)
                    relu5=nn.ReLU(),
                    pool5=nn.MaxPool2d(kernel_size=3, stride=2),  # (B, 256, 6, 6)
                )
            )
            classifier = OrderedDict(
                drop6=nn.Dropout(dropout),
                fc6=nn.Linear(256 * 6 * 6, 4096),
                relu6=nn.ReLU(),
                drop7=nn.Dropout(dropout),
                fc7=nn.Linear(4096, 4096),
                relu7=nn.ReLU(),
                fc8=nn.Linear(4096, num_classes),
            )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))  # (B, 256, 6, 6); identity at the native input size
        self.classifier = nn.Sequential(classifier)
        if variant == "krizhevsky2012":
            self._init_krizhevsky()

    def _init_krizhevsky(self) -> None:
        # Sec. 5: "initialized the neuron biases in the second, fourth, and fifth convolutional layers, as
        # well as in the fully-connected hidden layers, with the constant 1 ... positive inputs to ReLUs".
        ones = {"features.conv2", "features.conv4", "features.conv5", "classifier.fc6", "classifier.fc7"}
        for name, m in self.named_modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.normal_(m.weight, mean=0.0, std=0.01)
                nn.init.constant_(m.bias, 1.0 if name in ones else 0.0)  # type: ignore[arg-type]

    def forward_features(self, x: Tensor) -> Tensor:
        """conv1 ... pool5: ``(B, C, 227, 227) -> (B, 256, 6, 6)``."""
        return self.features(x)

    def forward_head(self, x: Tensor) -> Tensor:
        """``(B, 256, h, w) -> (B, num_classes)``."""
        return self.classifier(self.avgpool(x).flatten(1))


@register_model(
    paper="Krizhevsky, Sutskever & Hinton 2012, ImageNet classification with deep CNNs, Sec. 3, Fig. 2",
    year=2012,
    input_size=(3, 227, 227),
    num_params=60_965_224,
    gradcam_layer="features.relu5",
)
def alexnet(
    *,
    variant: Literal["krizhevsky2012", "single_tower"] = "krizhevsky2012",
    num_classes: int = 1000,
    in_channels: int = 3,
    dropout: float = 0.5,
) -> AlexNet:
    """AlexNet (see :class:`AlexNet`): 60,965,224 parameters at the defaults; single_tower 61,100,840."""
    model = AlexNet(variant=variant, num_classes=num_classes, in_channels=in_channels, dropout=dropout)
    size = 227 if variant == "krizhevsky2012" else 224
    return set_input_shape(model, (in_channels, size, size))
