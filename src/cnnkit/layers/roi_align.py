"""RoIAlign (Mask R-CNN): bilinear samples averaged in each bin of a region of interest, no rounding."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
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


def _grid(gx: Tensor, gy: Tensor) -> Tensor:
    """(K, oh g, ow g, 2) grid_sample coordinates from the per-RoI axes (K, ow g) and (K, oh g)."""
    return torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)


def _sample_per_image(features: Tensor, batch: Tensor, gx: Tensor, gy: Tensor) -> Tensor:
    """(K, C, oh g, ow g) bilinear samples, one grid_sample per image (its RoIs stacked along the grid's
    rows): no copy of the map per RoI. The loop over images makes the graph data-dependent."""
    k, c = gx.shape[0], features.shape[1]
    order = torch.sort(batch, stable=True).indices
    pieces, start = [], 0
    for b, n in zip(*(t.tolist() for t in torch.unique_consecutive(batch[order], return_counts=True))):
        idx = order[start : start + n]
        start += n
        grid = _grid(gx[idx], gy[idx])  # (n, oh g, ow g, 2)
        rows, cols = grid.shape[1], grid.shape[2]
        sampled = F.grid_sample(
            features[b : b + 1], grid.reshape(1, n * rows, cols, 2).to(features.dtype),
            mode="bilinear", padding_mode="border", align_corners=False,
        )  # (1, C, n oh g, ow g)
        pieces.append(sampled.view(c, n, rows, cols).transpose(0, 1))
    out = torch.cat(pieces)
    if not bool((order == torch.arange(k, device=order.device)).all()):
        out = out[torch.argsort(order)]
    return out


def _sample_gathered(features: Tensor, batch: Tensor, gx: Tensor, gy: Tensor) -> Tensor:
    """The same samples as :func:`_sample_per_image` from one grid_sample over each RoI's own copy of its
    image's map: no loop and no data-dependent shapes, so ``torch.export`` / ONNX can trace it (used while
    exporting; a copy of the map per RoI costs memory that the per-image path avoids)."""
    return F.grid_sample(
        features.index_select(0, batch), _grid(gx, gy).to(features.dtype),
        mode="bilinear", padding_mode="border", align_corners=False,
    )


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

    Bilinear samples come from ``grid_sample``, one call per image (its RoIs' grids stacked); while
    ``torch.export`` traces it (ONNX export), one call over a per-RoI gather of the map instead, which
    gives the same values without a data-dependent loop.
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
    # Sample coordinates in float64 for float64 maps (gradcheck, references), else float32.
    r = rois.detach().to(torch.float64 if features.dtype == torch.float64 else torch.float32)
    batch = r[:, 0].long()
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (r[:, i] * spatial_scale - offset for i in range(1, 5))
    rw, rh = x2 - x1, y2 - y1
    if not aligned:
        rw, rh = rw.clamp_min(1.0), rh.clamp_min(1.0)
    g = sampling_ratio
    ys, xs = _axis(y1, rh, oh, g), _axis(x1, rw, ow, g)  # (K, oh*g), (K, ow*g), in pixel-index units
    # Bilinear sampling is grid_sample's (align_corners=False: pixel i's centre is at (2i + 1) / size - 1);
    # "border" padding clamps to the edge pixels as RoIAlign does for samples within one pixel outside
    # the map, and samples farther out are zeroed below, which is torchvision's boundary rule.
    gy = (2 * ys + 1) / height - 1
    gx = (2 * xs + 1) / width - 1
    valid = ((ys >= -1) & (ys <= height))[:, :, None] & ((xs >= -1) & (xs <= width))[:, None, :]
    if torch.compiler.is_exporting():
        out = _sample_gathered(features, batch, gx, gy)
    else:
        out = _sample_per_image(features, batch, gx, gy)
    out = torch.where(valid[:, None], out, torch.zeros_like(out))
    return F.avg_pool2d(out, g) if g > 1 else out


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
