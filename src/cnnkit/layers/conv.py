"""Convolution variants: depthwise separable, several dilations in one layer, upsample-then-convolve."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .._checks import check_choice, check_int, check_real, to_pair
from ..errors import ConfigError
from ._registry import register_layer

__all__ = ["DepthwiseSeparableConv1d", "DepthwiseSeparableConv2d", "MultiDilationConv2d", "UpsampleConv2d"]

_Size = int | Sequence[int]


class _DepthwiseSeparable(nn.Module):
    _conv: type[nn.Conv1d] | type[nn.Conv2d]

    def __init__(self, in_channels: int, out_channels: int, kernel_size: _Size, stride: _Size = 1,
                 padding: _Size | str = 0, dilation: _Size = 1, bias: bool = True, depth_multiplier: int = 1) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels")
        self.out_channels = check_int(out_channels, "out_channels")
        self.depth_multiplier = check_int(depth_multiplier, "depth_multiplier")
        mid = in_channels * depth_multiplier
        # No bias on the depthwise step: the pointwise bias follows a linear map, so a second bias
        # would be redundant (Keras' SeparableConv2D and timm's SeparableConv2d do the same).
        # torch's stubs say int | tuple; any int sequence works at run time (torch converts it).
        self.depthwise = self._conv(in_channels, mid, kernel_size, stride=stride, padding=padding,  # type: ignore[arg-type]
                                    dilation=dilation, groups=in_channels, bias=False)  # type: ignore[arg-type]
        self.pointwise = self._conv(mid, out_channels, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(self.depthwise(x))

    def extra_repr(self) -> str:
        d = self.depthwise
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={d.kernel_size}, stride={d.stride}, "
                f"padding={d.padding}, dilation={d.dilation}, bias={self.pointwise.bias is not None}, "
                f"depth_multiplier={self.depth_multiplier}")


@register_layer
class DepthwiseSeparableConv2d(_DepthwiseSeparable):
    """Depthwise separable convolution: a depthwise conv (one filter per channel) then a 1x1 conv.

    Costs ``C_in * K^2 + C_in * C_out`` weights instead of ``C_in * C_out * K^2``.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation: as ``nn.Conv2d`` (the
            spatial arguments apply to the depthwise step).
        bias: bias on the pointwise step.
        depth_multiplier: depthwise filters per input channel.

    Shape:
        (B, in_channels, H, W) -> (B, out_channels, H_out, W_out), H_out as for ``nn.Conv2d``.

    Example:
        >>> conv = DepthwiseSeparableConv2d(32, 64, 3, padding=1)
        >>> conv(torch.randn(1, 32, 8, 8)).shape
        torch.Size([1, 64, 8, 8])

    Reference:
        Chollet, "Xception", CVPR 2017, Sec. 2 (depthwise separable convolution); Howard et al.,
        "MobileNets", arXiv:1704.04861, Sec. 3.1, Eq. 3-5 (cost).
    """

    _conv = nn.Conv2d


@register_layer
class DepthwiseSeparableConv1d(_DepthwiseSeparable):
    """1-D depthwise separable convolution: depthwise ``Conv1d`` (groups=in_channels) then 1x1.

    Shape:
        (B, in_channels, L) -> (B, out_channels, L_out).

    Example:
        >>> DepthwiseSeparableConv1d(8, 16, 5, padding=2)(torch.randn(2, 8, 30)).shape
        torch.Size([2, 16, 30])

    Reference:
        Chollet, "Xception", CVPR 2017, Sec. 2; Kaiser, Gomez & Chollet, "Depthwise Separable
        Convolutions for Neural Machine Translation", ICLR 2018 (1-D use).
    """

    _conv = nn.Conv1d


@register_layer
class MultiDilationConv2d(nn.Module):
    """One convolution layer whose filters have several dilation rates.

    The ``out_channels`` filters are split as evenly as possible across ``dilations`` (the first groups
    get the remainder); each group sees the whole input with "same" padding, so the outputs align and
    are concatenated along channels: small and large receptive fields in a single layer.

    Args:
        in_channels, out_channels, kernel_size: as ``nn.Conv2d``.
        dilations: one dilation rate per filter group; ``out_channels >= len(dilations)``.
        bias: learn a bias per filter.

    Shape:
        (B, in_channels, H, W) -> (B, out_channels, H, W).

    Example:
        >>> conv = MultiDilationConv2d(8, 12, 3, dilations=(1, 2, 3))
        >>> conv(torch.randn(2, 8, 16, 16)).shape
        torch.Size([2, 12, 16, 16])

    Reference:
        Yu & Koltun, "Multi-Scale Context Aggregation by Dilated Convolutions", ICLR 2016, Eq. 2
        (dilated convolution); the split across rates within one layer is the article's "single dilated
        convolutional layer can comprise filters with multiple dilation ratios" (cf. the parallel
        branches of ASPP, Chen et al., DeepLab, TPAMI 2018, Sec. 3.3).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: _Size,
                 dilations: Sequence[int] = (1, 2, 3), bias: bool = True) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels")
        self.out_channels = check_int(out_channels, "out_channels")
        self.kernel_size = to_pair(kernel_size, "kernel_size")
        if isinstance(dilations, (str, bytes)) or not isinstance(dilations, Sequence) or not dilations:
            raise ConfigError(f"Expected dilations to be a non-empty sequence of integers >= 1. Received: dilations={dilations!r}")
        self.dilations = tuple(check_int(d, "dilations") for d in dilations)
        if out_channels < len(self.dilations):
            raise ConfigError(f"Expected out_channels >= len(dilations), one filter per rate at least. "
                              f"Received: out_channels={out_channels}, dilations={self.dilations}")
        base, extra = divmod(out_channels, len(self.dilations))
        self.split = tuple(base + (i < extra) for i in range(len(self.dilations)))
        self.branches = nn.ModuleList(
            nn.Conv2d(in_channels, n, self.kernel_size, padding="same", dilation=d, bias=bias)
            for n, d in zip(self.split, self.dilations))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"dilations={self.dilations}, split={self.split}")


@register_layer
class UpsampleConv2d(nn.Module):
    """Upsample-then-convolve: resize by ``scale_factor``, then a "same"-padded convolution.

    Every output pixel gets the same number of kernel taps, which avoids the checkerboard artifacts
    that a transposed convolution with kernel size not divisible by its stride produces.

    Args:
        in_channels, out_channels, kernel_size: as ``nn.Conv2d`` (stride 1, "same" padding).
        scale_factor: upsampling factor (> 0).
        mode: "nearest" (the paper's choice), "bilinear" or "bicubic".
        bias: learn a bias per filter.

    Shape:
        (B, in_channels, H, W) -> (B, out_channels, floor(H * s), floor(W * s)).

    Example:
        >>> UpsampleConv2d(8, 4, 3)(torch.randn(1, 8, 5, 5)).shape
        torch.Size([1, 4, 10, 10])

    Reference:
        Odena, Dumoulin & Olah, "Deconvolution and Checkerboard Artifacts", Distill 2016 (section
        "Better Upsampling": resize-convolution with nearest-neighbour interpolation).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: _Size, scale_factor: float = 2,
                 mode: str = "nearest", bias: bool = True) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels")
        self.out_channels = check_int(out_channels, "out_channels")
        self.scale_factor = check_real(scale_factor, "scale_factor", low=0.0, low_open=True)
        self.mode = check_choice(mode, "mode", ("nearest", "bilinear", "bicubic"))
        align = None if mode == "nearest" else False
        self.upsample = nn.Upsample(scale_factor=self.scale_factor, mode=mode, align_corners=align)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding="same", bias=bias)  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.upsample(x))

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.conv.kernel_size}, "
                f"scale_factor={self.scale_factor}, mode={self.mode!r}")
