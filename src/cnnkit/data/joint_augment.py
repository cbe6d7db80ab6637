"""Joint augmentation of images and their label maps: the same geometric transform moves both.

Segmentation needs every pixel's label to travel with the pixel: :class:`JointAugment` draws one set of
parameters per batch (from the loader's per-batch generator, so resume stays exact) and applies the
translation / crop, flips, rotation + scale (one affine warp) and elastic deformation of
:mod:`cnnkit.data.augment` to the image with bilinear resampling and to the mask with nearest-neighbour
resampling, both through the same sampling grid. Mask pixels whose source lies outside the image get the
ignore index (nothing is known about them); random erasing and cutout change only the image.
"""

from __future__ import annotations

import torch

from ..config.schema import AugmentConfig
from .augment import BatchAugment, affine_warp, cutout, elastic_displacement, elastic_warp, random_erasing, translate

__all__ = ["JointAugment", "warp_mask"]


def warp_mask(y: torch.Tensor, op, ignore_index: int) -> torch.Tensor:
    """Apply the float-image ``op`` (a translation, flip or warp with zero fill) to the label map ``y``
    ``(B, H, W)`` with exact labels: the map is shifted by +1 so that the zero fill marks pixels from outside
    the image, which get ``ignore_index``."""
    m = op((y.to(torch.float32) + 1)[:, None])[:, 0]
    out = m.round().long() - 1
    return torch.where(out < 0, torch.full_like(out, ignore_index), out)


class JointAugment:
    """The geometric augmentations of an :class:`~cnnkit.config.AugmentConfig`, applied to an image batch
    ``x`` ``(B, C, H, W)`` in [0, 1] and its masks ``y`` ``(B, H, W)`` alike; erasing and cutout touch ``x``
    only. Parameters are drawn in :class:`~cnnkit.data.augment.BatchAugment`'s order.

    Args:
        cfg: which augmentations, with their parameters.
        ignore_index: label of mask pixels warped in from outside the image.
        fill: per-channel cutout value in [0, 1].

    Example:
        >>> aug = JointAugment(AugmentConfig(hflip=True, rotate=10))
        >>> x, y = aug(torch.rand(4, 1, 16, 16), torch.zeros(4, 16, 16, dtype=torch.long), torch.Generator().manual_seed(0))
        >>> x.shape, y.shape
        (torch.Size([4, 1, 16, 16]), torch.Size([4, 16, 16]))
    """

    def __init__(self, cfg: AugmentConfig, *, ignore_index: int = 255, fill: torch.Tensor | list[float] | float = 0.0) -> None:
        self.cfg = cfg
        self.ignore_index = int(ignore_index)
        self.fill = torch.as_tensor(fill, dtype=torch.float32)

    @property
    def enabled(self) -> bool:
        return BatchAugment(self.cfg).enabled

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.cfg
        b = x.shape[0]
        y = y.long()
        ign = self.ignore_index
        shifts = torch.zeros(b, 2, dtype=torch.long)
        for m in (c.crop_padding, c.translate):
            if m:
                shifts += torch.randint(-m, m + 1, (b, 2), generator=generator)
        one = torch.ones(b)
        fx = torch.where(torch.rand(b, generator=generator) < 0.5, -one, one) if c.hflip else one
        fy = torch.where(torch.rand(b, generator=generator) < 0.5, -one, one) if c.vflip else one
        if c.rotate or c.scale is not None:
            degrees = (torch.rand(b, generator=generator) * 2 - 1) * c.rotate
            scales = (
                torch.rand(b, generator=generator) * (c.scale[1] - c.scale[0]) + c.scale[0] if c.scale is not None else one
            )
            x = affine_warp(x, degrees, scales, shifts=shifts, flips=(fx, fy))
            y = warp_mask(y, lambda m: affine_warp(m, degrees, scales, shifts=shifts, flips=(fx, fy), mode="nearest"), ign)
        else:
            if c.crop_padding or c.translate:
                x = translate(x, shifts)
                y = warp_mask(y, lambda m: translate(m, shifts), ign)
            for flag, f, dim in ((c.hflip, fx, -1), (c.vflip, fy, -2)):
                if flag:
                    sel = (f < 0).to(x.device)
                    x = torch.where(sel.view(-1, 1, 1, 1), x.flip(dim), x)
                    y = torch.where(sel.view(-1, 1, 1), y.flip(dim), y)
        e = c.elastic
        if e is not None and e.alpha > 0 and e.p > 0:
            h, w = x.shape[-2:]
            chosen = (torch.rand(b, generator=generator) < e.p).to(x.device)
            field = elastic_displacement((b, h, w), e.alpha, e.sigma, generator)
            x = torch.where(chosen.view(-1, 1, 1, 1), elastic_warp(x, field), x)
            y = torch.where(chosen.view(-1, 1, 1), warp_mask(y, lambda m: elastic_warp(m, field, mode="nearest"), ign), y)
        if c.erasing:
            x = random_erasing(x, c.erasing, generator)
        if c.cutout:
            x = cutout(x, c.cutout, generator, self.fill)
        return x, y

    def __repr__(self) -> str:
        return repr(BatchAugment(self.cfg)).replace("BatchAugment", "JointAugment", 1)
