"""Pooling that reduces a whole axis: global average/max over space, max over channel groups."""

from __future__ import annotations

from torch import Tensor, nn

from .._checks import check_int
from ._registry import register_layer

__all__ = ["ChannelMaxPool2d", "GlobalAvgPool2d", "GlobalMaxPool2d", "channel_max_pool2d",
           "global_avg_pool2d", "global_max_pool2d"]


def _check_spatial(x: Tensor, layer: str) -> None:
    if x.dim() < 3:
        raise ValueError(f"Expected a (B, C, H, W) input to {layer}. Received: shape={tuple(x.shape)}")


def global_avg_pool2d(x: Tensor) -> Tensor:
    """(B, C, *spatial) -> (B, C): mean over all spatial positions."""
    _check_spatial(x, "global_avg_pool2d")
    return x.mean(dim=tuple(range(2, x.dim())))


def global_max_pool2d(x: Tensor) -> Tensor:
    """(B, C, *spatial) -> (B, C): maximum over all spatial positions."""
    _check_spatial(x, "global_max_pool2d")
    return x.amax(dim=tuple(range(2, x.dim())))


@register_layer
class GlobalAvgPool2d(nn.Module):
    """Global average pooling: one number per feature map.

    Shape:
        (B, C, H, W) -> (B, C) (any number of spatial axes is accepted).

    Example:
        >>> import torch
        >>> GlobalAvgPool2d()(torch.ones(2, 3, 5, 5)).shape
        torch.Size([2, 3])

    Reference:
        Lin, Chen & Yan, "Network In Network", ICLR 2014, Sec. 3.2.
    """

    def forward(self, x: Tensor) -> Tensor:
        return global_avg_pool2d(x)

    def extra_repr(self) -> str:
        return "(B, C, H, W) -> (B, C)"


@register_layer
class GlobalMaxPool2d(nn.Module):
    """Global max pooling: the maximum of each feature map.

    Shape:
        (B, C, H, W) -> (B, C) (any number of spatial axes is accepted).

    Example:
        >>> import torch
        >>> GlobalMaxPool2d()(torch.ones(2, 3, 5, 5)).shape
        torch.Size([2, 3])

    Reference:
        The max counterpart of Network-in-Network's global average pooling (Lin et al., ICLR 2014);
        Oquab et al., "Is object localization for free?", CVPR 2015, Sec. 3.3.
    """

    def forward(self, x: Tensor) -> Tensor:
        return global_max_pool2d(x)

    def extra_repr(self) -> str:
        return "(B, C, H, W) -> (B, C)"


def channel_max_pool2d(x: Tensor, out_channels: int) -> Tensor:
    """(B, C, H, W) -> (B, out_channels, H, W): max over each group of C / out consecutive channels."""
    if x.dim() != 4 or x.shape[1] % out_channels:
        raise ValueError(f"Expected a (B, C, H, W) input with C divisible by out_channels={out_channels}. "
                         f"Received: shape={tuple(x.shape)}")
    return x.unflatten(1, (out_channels, x.shape[1] // out_channels)).amax(dim=2)


@register_layer
class ChannelMaxPool2d(nn.Module):
    """Channel max pooling (CMP): max over groups of consecutive channels, positions unchanged.

    Args:
        out_channels: number of output channels; the input channel count must be a multiple.

    Shape:
        (B, C, H, W) -> (B, out_channels, H, W); output channel ``j`` is the max of input channels
        ``j * C/out ... (j + 1) * C/out - 1``.

    Example:
        >>> import torch
        >>> ChannelMaxPool2d(2)(torch.arange(4.0).view(1, 4, 1, 1)).flatten()
        tensor([1., 3.])

    Reference:
        Ma, Chang, Xie, Ding, Song & Guo, "Fine-Grained Vehicle Classification With Channel Max
        Pooling Modified CNNs", IEEE Trans. Vehicular Technology 68(4), 2019, Sec. III-B (CMP layer).
    """

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        self.out_channels = check_int(out_channels, "out_channels")

    def forward(self, x: Tensor) -> Tensor:
        return channel_max_pool2d(x, self.out_channels)

    def extra_repr(self) -> str:
        return f"out_channels={self.out_channels}"
