"""Anchor boxes of the region proposal network (Ren et al. 2015, Sec. 3.1.1): k = scales x aspect ratios
reference boxes centred on every position of a feature map with a given stride."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["AnchorGenerator"]


class AnchorGenerator:
    """Anchors ``xyxy`` in image coordinates for a feature map of stride ``stride``.

    At each feature-map position (i, j) the anchors are centred on the receptive field's centre
    ``((j + 0.5) * stride, (i + 0.5) * stride)``; for scale ``s`` and aspect ratio ``r = h / w`` the anchor has
    area ``s**2``: ``w = s / sqrt(r)``, ``h = s * sqrt(r)`` (the paper: 3 scales {128^2, 256^2, 512^2} x 3
    ratios {1:1, 1:2, 2:1}, k = 9, on VGG-16's stride-16 conv5). Order: position-major, then ratio, then
    scale, so the RPN's ``k`` outputs at a position are ``ratio * len(scales) + scale``.

    Args:
        scales: anchor sides in pixels (square-root areas).
        aspect_ratios: heights / widths.
        stride: feature-map stride in pixels.

    Example:
        >>> gen = AnchorGenerator(scales=(8,), aspect_ratios=(1.0,), stride=4)
        >>> gen((1, 2))
        tensor([[-2., -2.,  6.,  6.],
                [ 2., -2., 10.,  6.]])

    Deviations:
        Centres at ``(j + 0.5) * stride`` (the centre of the stride cell) rather than the Caffe code's
        ``j * stride + (stride - 1) / 2`` in pixel indices; sizes are not rounded to integers.
    """

    def __init__(self, scales: Sequence[float] = (16, 32), aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0), stride: int = 4) -> None:
        self.scales = tuple(float(s) for s in scales)
        self.aspect_ratios = tuple(float(r) for r in aspect_ratios)
        if not self.scales or not all(s > 0 for s in self.scales):
            raise ValueError(f"Expected positive anchor scales. Received: scales={tuple(scales)}")
        if not self.aspect_ratios or not all(r > 0 for r in self.aspect_ratios):
            raise ValueError(f"Expected positive aspect ratios. Received: aspect_ratios={tuple(aspect_ratios)}")
        if stride < 1:
            raise ValueError(f"Expected stride >= 1. Received: stride={stride}")
        self.stride = int(stride)

    @property
    def num_anchors(self) -> int:
        """k: anchors per feature-map position."""
        return len(self.scales) * len(self.aspect_ratios)

    def base_anchors(self, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Tensor:
        """The k anchors centred on (0, 0): (k, 4)."""
        rows = []
        for r in self.aspect_ratios:
            for s in self.scales:
                w, h = s / math.sqrt(r), s * math.sqrt(r)
                rows.append([-w / 2, -h / 2, w / 2, h / 2])
        return torch.tensor(rows, dtype=dtype, device=device)

    def __call__(self, feature_size: tuple[int, int], *, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Tensor:
        """All anchors of a ``(fh, fw)`` feature map: (fh * fw * k, 4)."""
        fh, fw = feature_size
        cy = (torch.arange(fh, dtype=dtype, device=device) + 0.5) * self.stride
        cx = (torch.arange(fw, dtype=dtype, device=device) + 0.5) * self.stride
        yy, xx = torch.meshgrid(cy, cx, indexing="ij")
        shifts = torch.stack([xx, yy, xx, yy], -1).reshape(-1, 1, 4)
        return (shifts + self.base_anchors(dtype, device)[None]).reshape(-1, 4)

    def __repr__(self) -> str:
        return f"AnchorGenerator(scales={self.scales}, aspect_ratios={self.aspect_ratios}, stride={self.stride})"
