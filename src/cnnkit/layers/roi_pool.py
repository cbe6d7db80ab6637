"""RoI max pooling (Fast R-CNN): a fixed-size grid of maxima over each region of interest."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_real, to_pair
from ._registry import register_layer

__all__ = ["RoIPool", "roi_pool"]


def _round_half_away(t: Tensor) -> Tensor:
    # C's round(), as in the Caffe / torchvision kernels; torch.round rounds half to even.
    return torch.sign(t) * torch.floor(t.abs() + 0.5)


def _sparse_table(x: Tensor, length: int) -> Tensor:
    """Level j holds the max of x[..., i : i + 2**j] along the last axis, for 2**j <= length:
    (levels, *x.shape)."""
    levels = [x]
    step = 1
    while 2 * step <= length:
        prev = levels[-1]
        shifted = F.pad(prev[..., step:], (0, step), value=float("-inf"))
        levels.append(torch.maximum(prev, shifted))
        step *= 2
    return torch.stack(levels)


def _bins(start: Tensor, end: Tensor, bins: int, size: int) -> tuple[Tensor, Tensor]:
    """Bin bounds [lo, hi) along one axis for each RoI, as in Fast R-CNN: (K, bins) each."""
    extent = (end - start + 1).clamp_min(1).to(torch.float32)  # the RoI includes both end pixels
    step = (extent / bins)[:, None]
    i = torch.arange(bins, device=start.device, dtype=torch.float32)
    lo = (torch.floor(i * step).long() + start[:, None]).clamp(0, size)
    hi = (torch.ceil((i + 1) * step).long() + start[:, None]).clamp(0, size)
    return lo, hi


def _range_max(table: Tensor, batch: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """Max over [lo, hi) from a sparse table laid out (levels, N, length, ...): (K, bins, ...).

    Two overlapping power-of-two ranges cover [lo, hi) exactly: max(T_j[lo], T_j[hi - 2**j]),
    j = floor(log2(hi - lo)). Empty ranges read a valid cell and are zeroed by the caller.
    """
    n = (hi - lo).clamp_min(1)
    j = torch.floor(torch.log2(n.to(torch.float32))).long()
    j = j - (2 ** j > n).long()  # guard against log2 rounding up just below a power of two
    last = table.shape[2] - 1
    lo_c = lo.clamp(0, last)
    hi_c = (lo_c + n - 2 ** j).clamp(0, last)
    b = batch[:, None]
    return torch.maximum(table[j, b, lo_c], table[j, b, hi_c])


def roi_pool(features: Tensor, rois: Tensor, output_size: int | Sequence[int], spatial_scale: float = 1.0) -> Tensor:
    """RoI max pooling of ``features`` (B, C, H, W) over ``rois`` (K, 5) -> (K, C, oh, ow).

    ``rois`` rows are ``(batch_index, x1, y1, x2, y2)`` in input-image coordinates; corners are scaled
    by ``spatial_scale`` and rounded, the RoI includes both corner pixels, bins are
    ``[floor(i h / oh), ceil((i + 1) h / oh))`` clipped to the map, and an empty bin gives 0.

    Vectorized with sparse tables (range-maximum queries in O(1) after an O(n log n) build): no loop
    over RoIs or bins; memory is about (1 + log2 w) times the feature map plus (1 + log2 h) times the
    (K, C, H, ow) column maxima, where w, h are the widest bin's sizes.
    """
    oh, ow = to_pair(output_size, "output_size")
    if features.dim() != 4:
        raise ValueError(f"Expected features of shape (B, C, H, W). Received: shape={tuple(features.shape)}")
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f"Expected rois of shape (K, 5) = (batch_index, x1, y1, x2, y2). Received: shape={tuple(rois.shape)}")
    _, _, height, width = features.shape
    r = rois.detach().to(torch.float32)
    batch = r[:, 0].long()
    x1, y1, x2, y2 = (_round_half_away(r[:, i] * spatial_scale).long() for i in range(1, 5))
    wlo, whi = _bins(x1, x2, ow, width)
    hlo, hhi = _bins(y1, y2, oh, height)
    # Columns first: (levels, B, W, C, H) -> (K, ow, C, H); then rows of that: -> (K, oh, ow, C).
    # Only the levels that the widest bin needs (a host sync; bins are far narrower than the map).
    # While exporting (ONNX), every level up to the map's size instead: no host sync, the same maxima.
    if torch.compiler.is_exporting():
        widest = (width, height)
    else:
        widest = (int((whi - wlo).max()), int((hhi - hlo).max())) if len(rois) else (1, 1)
    table_w = _sparse_table(features, max(widest[0], 1)).permute(0, 1, 4, 2, 3)
    cols = _range_max(table_w, batch, wlo, whi)
    table_h = _sparse_table(cols, max(widest[1], 1)).permute(0, 1, 4, 2, 3)  # (levels, K, H, ow, C)
    out = _range_max(table_h, torch.arange(rois.shape[0], device=features.device), hlo, hhi)  # shape, not len: a traced count
    empty = (hhi <= hlo)[:, :, None, None] | (whi <= wlo)[:, None, :, None]
    out = torch.where(empty, torch.zeros_like(out), out)
    return out.permute(0, 3, 1, 2)


@register_layer
class RoIPool(nn.Module):
    """Region-of-interest max pooling to a fixed ``output_size`` grid.

    Args:
        output_size: bins per side (int or (oh, ow)); Fast R-CNN uses 7 x 7 on VGG16's conv5.
        spatial_scale: factor from input-image to feature-map coordinates (1/16 for VGG16 conv5).

    Shape:
        ``forward(features, rois)``: features (B, C, H, W), rois (K, 5) rows
        ``(batch_index, x1, y1, x2, y2)`` -> (K, C, oh, ow).

    Example:
        >>> pool = RoIPool(2)
        >>> x = torch.arange(16.0).view(1, 1, 4, 4)
        >>> pool(x, torch.tensor([[0.0, 0, 0, 3, 3]])).flatten()
        tensor([ 5.,  7., 13., 15.])

    Reference:
        Girshick, "Fast R-CNN", ICCV 2015, Sec. 2.1 (the RoI pooling layer); bin and rounding rules as
        in its Caffe implementation (roi_pooling_layer.cpp) and torchvision.ops.roi_pool.

    Deviations:
        On ties the gradient is shared among the tied maxima instead of going to one of them.
    """

    def __init__(self, output_size: int | Sequence[int], spatial_scale: float = 1.0) -> None:
        super().__init__()
        self.output_size = to_pair(output_size, "output_size")
        self.spatial_scale = check_real(spatial_scale, "spatial_scale", low=0.0, low_open=True)

    def forward(self, features: Tensor, rois: Tensor) -> Tensor:
        return roi_pool(features, rois, self.output_size, self.spatial_scale)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"
