"""DropConnect (Wan et al. 2013): drop individual weights, not units, while training."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_prob
from ._registry import register_layer

__all__ = ["DropConnectConv2d", "DropConnectLinear", "drop_connect"]


def drop_connect(weight: Tensor, p: float, training: bool = True, generator: torch.Generator | None = None) -> Tensor:
    """Training: ``weight * M`` with ``M_ij ~ Bernoulli(1 - p)``; evaluation: the expectation ``(1 - p) * weight``."""
    if not training or p == 0.0:
        return weight * (1.0 - p) if p else weight
    keep = torch.empty_like(weight).bernoulli_(1.0 - p, generator=generator)
    return weight * keep


@register_layer
class DropConnectLinear(nn.Linear):
    """A fully connected layer with DropConnect on its weight matrix.

    Training: ``y = x (M * W)^T + b`` with a fresh mask ``M ~ Bernoulli(1 - p)`` per forward call;
    evaluation: ``y = x ((1 - p) W)^T + b``, the expected weights (no rescaling while training).

    Args:
        in_features, out_features, bias: as ``nn.Linear``.
        p: probability of dropping each weight, ``0 <= p < 1``.

    Shape:
        (*, in_features) -> (*, out_features).

    Example:
        >>> layer = DropConnectLinear(20, 10, p=0.5)
        >>> layer(torch.randn(4, 20)).shape
        torch.Size([4, 10])

    Reference:
        Wan, Zeiler, Zhang, LeCun & Fergus, "Regularization of Neural Networks using DropConnect",
        ICML 2013, Sec. 2.2 (training) and Sec. 3 (inference).

    Deviations:
        One mask per mini-batch (the paper samples one per example); the bias is not dropped;
        inference uses the mean weights (the paper's Sec. 3 moment-matching Gaussian sampling is
        replaced by its mean, which is the "mean-inference" the paper compares against).
    """

    def __init__(self, in_features: int, out_features: int, p: float = 0.5, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.p = check_prob(p)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, drop_connect(self.weight, self.p, self.training), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"


@register_layer
class DropConnectConv2d(nn.Conv2d):
    """A 2-D convolution with DropConnect on its filters (one mask per forward call, shared by positions).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias: as ``nn.Conv2d``.
        p: probability of dropping each weight, ``0 <= p < 1``.

    Shape:
        (B, in_channels, H, W) -> (B, out_channels, H_out, W_out), as ``nn.Conv2d``.

    Example:
        >>> conv = DropConnectConv2d(3, 8, 3, padding=1, p=0.3)
        >>> conv(torch.randn(2, 3, 16, 16)).shape
        torch.Size([2, 8, 16, 16])

    Reference:
        Wan et al., "Regularization of Neural Networks using DropConnect", ICML 2013, Sec. 2.2, applied
        to the shared filter weights.

    Deviations:
        As :class:`DropConnectLinear`; the paper applies DropConnect to fully connected layers only.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] | str = 0,
                 dilation: int | tuple[int, int] = 1, groups: int = 1, bias: bool = True, p: float = 0.5) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, bias=bias)
        self.p = check_prob(p)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, drop_connect(self.weight, self.p, self.training), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"
