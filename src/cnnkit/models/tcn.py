"""Temporal convolutional network (Bai, Kolter & Koltun 2018): dilated causal 1-D residual blocks."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm as _weight_norm

from ..errors import ConfigError
from ..layers.masked_pool import nan_padding, padding_mask, zero_padding
from ._common import FeatureHeadModel
from ._registry import register_model

__all__ = ["TCN", "TemporalBlock", "tcn"]


class TemporalBlock(nn.Module):
    """Residual block of Bai et al. (2018), Fig. 1(b): two dilated causal convolutions with a 1x1 shortcut.

    Causality comes from padding ``(k - 1) * dilation`` zeros on the left only, so output step t sees
    inputs up to t and nothing later (the paper pads both sides and "chomps" the right end; same result).

    Args:
        in_channels: Input channels.
        out_channels: Output channels; a 1x1 convolution matches the shortcut when they differ.
        kernel_size: Filter size k.
        dilation: Dilation d of both convolutions.
        p: Dropout probability after each convolution.
        weight_norm: Weight normalization on the convolutions, as in the paper.

    Shape:
        ``(B, in_channels, T) -> (B, out_channels, T)``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, dilation: int, p: float, weight_norm: bool
    ) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ConfigError(f"Expected 0 <= p < 1. Received: p={p}")
        pad = (kernel_size - 1) * dilation
        layers: list[nn.Module] = []
        for c_in in (in_channels, out_channels):
            conv = nn.Conv1d(c_in, out_channels, kernel_size, dilation=dilation)
            layers += [nn.ConstantPad1d((pad, 0), 0.0), _weight_norm(conv) if weight_norm else conv, nn.ReLU(), nn.Dropout(p)]
        self.net = nn.Sequential(*layers)
        self.downsample = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.net(x) + self.downsample(x))


class TCN(FeatureHeadModel):
    """A stack of :class:`TemporalBlock` with dilations 1, 2, 4, ..., then a linear layer on the last step.

    The receptive field is ``1 + 2 (k - 1)(2^L - 1)`` steps for ``L`` levels (two convolutions per block):
    1 + 2 * 6 * 255 = 3061 >= 784 for the sequential-MNIST setting below.

    Args:
        num_classes: Outputs of the linear layer applied to the last time step.
        in_channels: Input features per step (1 for pixel-by-pixel MNIST).
        num_channels: Hidden channels per level (8 levels of 25 for sequential MNIST, Sec. 5 / Table 1).
        kernel_size: Filter size k (7 for sequential MNIST).
        p: Dropout probability (0.05 for sequential MNIST).
        weight_norm: Weight normalization on every causal convolution, as in the paper.
        seq_len: Sequence length recorded in ``input_shape`` (784 for sequential MNIST).

    Shape:
        Input ``(B, in_channels, T)``; output ``(B, num_classes)``.

    Example:
        >>> tcn(num_channels=(8, 8))(torch.randn(2, 1, 50)).shape
        torch.Size([2, 10])

    Reference:
        S. Bai, J. Z. Kolter, V. Koltun, "An Empirical Evaluation of Generic Convolutional and Recurrent
        Networks for Sequence Modeling", arXiv:1803.01271, 2018, Sec. 3 and Fig. 1.

    Deviations:
        Causal padding is applied on the left instead of padding both ends and chomping the right (the
        outputs are identical). With ``weight_norm=True`` each convolution holds a magnitude ``g`` (one per
        output channel) and a direction ``v``, so it has ``out_channels`` more parameters than a plain conv.
    """

    def __init__(
        self,
        *,
        num_classes: int = 10,
        in_channels: int = 1,
        num_channels: tuple[int, ...] = (25,) * 8,
        kernel_size: int = 7,
        p: float = 0.05,
        weight_norm: bool = True,
        seq_len: int = 784,
    ) -> None:
        super().__init__()
        if not num_channels:
            raise ConfigError(f"Expected at least one level. Received: num_channels={num_channels}")
        if kernel_size < 1:
            raise ConfigError(f"Expected kernel_size >= 1. Received: kernel_size={kernel_size}")
        blocks = []
        c_in = in_channels
        for i, c_out in enumerate(num_channels):
            blocks.append(TemporalBlock(c_in, c_out, kernel_size, 2**i, p, weight_norm))
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c_in, num_classes)
        self.input_shape = (in_channels, seq_len)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        # NaN steps at the end are padding (cnnkit.data.series): zeros in, NaN out. Causal convolutions
        # never look ahead, so padding after a series' end cannot change its real steps.
        x, mask = zero_padding(x)
        return nan_padding(self.blocks(x), mask)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        # The last real step has seen the whole (causal) sequence.
        last = (padding_mask(x).sum(dim=1) - 1).clamp_min(0)
        return self.fc(x.gather(2, last[:, None, None].expand(-1, x.shape[1], 1))[:, :, 0])


@register_model(
    paper="Bai, Kolter & Koltun 2018, arXiv:1803.01271, Sec. 3, sequential MNIST setting (Table 1)",
    year=2018,
    input_size=(1, 784),
    num_params=66_910,
    task="sequence",
    gradcam_layer="blocks.7",
)
def tcn(
    *,
    num_classes: int = 10,
    in_channels: int = 1,
    num_channels: tuple[int, ...] = (25,) * 8,
    kernel_size: int = 7,
    p: float = 0.05,
    weight_norm: bool = True,
    seq_len: int = 784,
) -> TCN:
    """The sequential-MNIST TCN (8 levels x 25 channels, k = 7). See :class:`TCN`."""
    return TCN(
        num_classes=num_classes,
        in_channels=in_channels,
        num_channels=tuple(num_channels),
        kernel_size=kernel_size,
        p=p,
        weight_norm=weight_norm,
        seq_len=seq_len,
    )
