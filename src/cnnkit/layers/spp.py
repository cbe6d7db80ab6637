"""Spatial pyramid pooling (He et al. 2014): a fixed-length vector from a feature map of any size."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_choice, check_int
from ..errors import ConfigError
from ._registry import register_layer

__all__ = ["SpatialPyramidPool2d", "spatial_pyramid_pool2d"]

_MODES = ("max", "avg")


def spatial_pyramid_pool2d(x: Tensor, levels: Sequence[int] = (1, 2, 4), mode: str = "max") -> Tensor:
    """(B, C, H, W) -> (B, C * sum(n * n for n in levels)), level by level, each flattened as (C, n, n)."""
    pool = F.adaptive_max_pool2d if mode == "max" else F.adaptive_avg_pool2d
    return torch.cat([pool(x, n).flatten(1) for n in levels], dim=1)


@register_layer
class SpatialPyramidPool2d(nn.Module):
    """Spatial pyramid pooling: pool each map into n x n bins for every level n, then concatenate.

    Args:
        levels: bins per side for each pyramid level (the paper's 4-level pyramid is (1, 2, 3, 6)).
        mode: "max" (the paper) or "avg".

    Shape:
        (B, C, H, W) -> (B, C * sum(n * n)), the same length for every H, W.

    Example:
        >>> spp = SpatialPyramidPool2d(levels=(1, 2, 4))
        >>> spp(torch.randn(2, 8, 13, 17)).shape
        torch.Size([2, 168])

    Reference:
        He, Zhang, Ren & Sun, "Spatial Pyramid Pooling in Deep Convolutional Networks for Visual
        Recognition", ECCV 2014 / TPAMI 2015, Sec. 2.3 (bins with window ceil(a/n), stride floor(a/n)).

    Deviations:
        The paper's window ceil(a/n) with stride floor(a/n) gives the wrong bin count when n does not
        divide a (a = 7, n = 4 gives 6 bins). We use adaptive bins [floor(i a / n), ceil((i + 1) a / n)),
        which always give n bins and equal the paper's bins whenever n divides a.
    """

    def __init__(self, levels: Sequence[int] = (1, 2, 4), mode: str = "max") -> None:
        super().__init__()
        if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence) or not levels:
            raise ConfigError(f"Expected levels to be a non-empty sequence of integers >= 1. Received: levels={levels!r}")
        self.levels = tuple(check_int(n, "levels") for n in levels)
        self.mode = check_choice(mode, "mode", _MODES)

    @property
    def bins(self) -> int:
        """Bins per channel: the output has ``C * bins`` features."""
        return sum(n * n for n in self.levels)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"Expected a (B, C, H, W) input. Received: shape={tuple(x.shape)}")
        return spatial_pyramid_pool2d(x, self.levels, self.mode)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, mode={self.mode!r}"
