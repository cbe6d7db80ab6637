"""RoIAlign (Mask R-CNN): bilinear samples averaged in each bin of a region of interest, no rounding."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .._checks import check_int, check_real, to_pair
from ._registry import register_layer

__all__ = ["RoIAlign", "roi_align"]


def _axis(start: Tensor, length: Tensor, bins: int, grid: int) -> Tensor:
    """Sample coordinates along one axis: (K, bins * grid), bin-major."""
    step = (length / bins)[:, None]
    i = torch.arange(bins * grid, device=start.device, dtype=start.dtype)
    b, g = i // grid, i % grid
    return start[:, None] + b * step + (g + 0.5) * step / grid


def _bilinear_1d(coord: Tensor, size: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Low/high indices, their weights, and validity, along one axis (torchvision's boundary rules)."""
    valid = (coord >= -1.0) & (coord <= size)
    c = coord.clamp_min(0)
    low = c.floor().long()
    at_edge = low >= size - 1
    low = torch.where(at_edge, torch.full_like(low, size - 1), low)
    high = torch.where(at_edge, low, low + 1)
    c = torch.where(at_edge, low.to(c.dtype), c)
    w_high = c - low.to(c.dtype)
    return low, high, w_high, valid


def roi_align(
    features: Tensor,
    rois: Tensor,
    output_size: int | Sequence[int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = 2,
    aligned: bool = True,
) -> Tensor:
    """RoIAlign of ``features`` (B, C, H, W) over ``rois`` (K, 5) rows ``(batch_index, x1, y1, x2, y2)``
    -> (K, C, oh, ow).

    Each bin averages ``sampling_ratio**2`` bilinear samples on a regular grid; a sample more than one
    pixel outside the map contributes 0. ``aligned`` shifts the scaled corners by -0.5 so that a pixel's
    centre sits at its coordinate + 0.5 (continuous coordinates); without it, RoIs smaller than one
    pixel are widened to one pixel, as in the original implementation.

    Vectorized: every sample of every RoI is gathered at once ((K, C, oh*g, ow*g) values).
    """
    oh, ow = to_pair(output_size, "output_size")
    if features.dim() != 4:
        raise ValueError(f"Expected features of shape (B, C, H, W). Received: shape={tuple(features.shape)}")
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f"Expected rois of shape (K, 5) = (batch_index, x1, y1, x2, y2). Received: shape={tuple(rois.shape)}")
    _, c, height, width = features.shape
    k = rois.shape[0]
    if k == 0:
        return features.new_zeros(0, c, oh, ow)
    r = rois.detach().to(torch.float32)
    batch = r[:, 0].long()
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (r[:, i] * spatial_scale - offset for i in range(1, 5))
    rw, rh = x2 - x1, y2 - y1
    if not aligned:
        rw, rh = rw.clamp_min(1.0), rh.clamp_min(1.0)
    g = sampling_ratio
    ys, xs = _axis(y1, rh, oh, g), _axis(x1, rw, ow, g)  # (K, oh*g), (K, ow*g)
    ylo, yhi, wy, vy = _bilinear_1d(ys, height)
    xlo, xhi, wx, vx = _bilinear_1d(xs, width)
    flat = features.permute(0, 2, 3, 1)  # (B, H, W, C): one gather picks all channels
    b = batch[:, None, None]

    def at(yi: Tensor, xi: Tensor) -> Tensor:
        return flat[b, yi[:, :, None], xi[:, None, :]]  # (K, oh*g, ow*g, C)

    wy_, wx_ = wy[:, :, None, None].to(features.dtype), wx[:, None, :, None].to(features.dtype)
    val = (
        at(ylo, xlo) * (1 - wy_) * (1 - wx_) + at(ylo, xhi) * (1 - wy_) * wx_
        + at(yhi, xlo) * wy_ * (1 - wx_) + at(yhi, xhi) * wy_ * wx_
    )
    valid = (vy[:, :, None] & vx[:, None, :])[..., None]
    val = torch.where(valid, val, torch.zeros_like(val))
    out = val.view(k, oh, g, ow, g, c).mean(dim=(2, 4))
    return out.permute(0, 3, 1, 2)


@register_layer
class RoIAlign(nn.Module):
    """Region-of-interest alignment to a fixed ``output_size`` grid (bilinear sampling, no quantization).

    Args:
        output_size: bins per side (int or (oh, ow)).
        spatial_scale: factor from input-image to feature-map coordinates (1/stride).
        sampling_ratio: samples per bin side (Mask R-CNN uses 2, i.e. four samples per bin).
        aligned: the half-pixel correction (Detectron2's ``ROIAlignV2``, torchvision's ``aligned=True``).

    Shape:
        ``forward(features, rois)``: features (B, C, H, W), rois (K, 5) rows
        ``(batch_index, x1, y1, x2, y2)`` -> (K, C, oh, ow).

    Example:
        >>> align = RoIAlign(1, sampling_ratio=1)
        >>> x = torch.arange(16.0).view(1, 1, 4, 4)
        >>> align(x, torch.tensor([[0.0, 1, 1, 3, 3]])).flatten()  # the bilinear value at (2, 2) - 0.5
        tensor([7.5000])

    Reference:
        He, Gkioxari, Dollár & Girshick, "Mask R-CNN", ICCV 2017, Sec. 3 (RoIAlign, Figure 3); boundary
        and sampling rules as in torchvision.ops.roi_align (a fixed ``sampling_ratio``).

    Deviations:
        ``sampling_ratio`` must be fixed (>= 1): the adaptive ``ceil(roi_size / output_size)`` samples of
        torchvision's ``sampling_ratio=-1`` vary per RoI and would need a loop.
    """

    def __init__(
        self, output_size: int | Sequence[int], spatial_scale: float = 1.0, sampling_ratio: int = 2, aligned: bool = True
    ) -> None:
        super().__init__()
        self.output_size = to_pair(output_size, "output_size")
        self.spatial_scale = check_real(spatial_scale, "spatial_scale", low=0.0, low_open=True)
        self.sampling_ratio = check_int(sampling_ratio, "sampling_ratio")
        self.aligned = bool(aligned)

    def forward(self, features: Tensor, rois: Tensor) -> Tensor:
        return roi_align(features, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
                f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}")
