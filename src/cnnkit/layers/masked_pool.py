"""Global average pooling over time that leaves out padding (series of unequal length in one batch).

cnnkit pads short series at their end with NaN in every channel (:mod:`cnnkit.data.series`), so the mask
travels inside the tensor: a step is real unless all its channels are NaN. Global average pooling
(Lin, Chen & Yan 2014, Sec. 3.2; the head of FCN, ResNet and InceptionTime in Wang et al. 2017 and Fawaz
et al. 2020) then averages each channel over the real steps only, so a series gets the same features
whatever it was padded to.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._registry import register_layer

__all__ = ["MaskedGlobalAvgPool1d", "masked_global_avg_pool1d", "padding_mask", "zero_padding", "nan_padding"]


def padding_mask(x: Tensor) -> Tensor:
    """Boolean ``(B, L)``: True at the real steps of ``x`` ``(B, C, L)``, False where every channel is NaN."""
    return ~torch.isnan(x).all(dim=1)


def zero_padding(x: Tensor) -> tuple[Tensor, Tensor]:
    """``(x with NaN replaced by 0, mask (B, 1, L) float)``: what a convolution can take."""
    mask = padding_mask(x)[:, None, :]
    return torch.where(mask, x, 0.0).nan_to_num(0.0), mask.to(x.dtype if x.is_floating_point() else torch.float32)


def nan_padding(x: Tensor, mask: Tensor) -> Tensor:
    """``x`` with the steps where ``mask`` (``(B, 1, L)``) is 0 set to NaN again, marking them as padding."""
    return torch.where(mask > 0, x, float("nan"))


def masked_global_avg_pool1d(x: Tensor) -> Tensor:
    """``(B, C, L) -> (B, C)``: each channel's mean over the real steps (NaN steps are padding).

    A series with no real step at all gets zeros.

    Example:
        >>> nan = float("nan")
        >>> masked_global_avg_pool1d(torch.tensor([[[1.0, 3.0, nan]], [[1.0, 2.0, 3.0]]])).tolist()
        [[2.0], [2.0]]
    """
    if x.ndim != 3:
        raise ValueError(f"Expected input of shape (B, C, L). Received: {tuple(x.shape)}")
    mask = padding_mask(x)[:, None, :]
    total = torch.where(mask, x, 0.0).sum(dim=-1)
    return total / mask.sum(dim=-1).clamp_min(1).to(x.dtype)


@register_layer
class MaskedGlobalAvgPool1d(nn.Module):
    """Module form of :func:`masked_global_avg_pool1d`.

    Input shape: ``(B, C, L)`` with padding as NaN. Output shape: ``(B, C)``.

    Example:
        >>> MaskedGlobalAvgPool1d()(torch.ones(2, 4, 9)).shape
        torch.Size([2, 4])

    Reference:
        M. Lin, Q. Chen, S. Yan, "Network In Network", ICLR 2014, Sec. 3.2 (global average pooling).
    """

    def forward(self, x: Tensor) -> Tensor:
        return masked_global_avg_pool1d(x)

    def extra_repr(self) -> str:
        return "padding=nan"
