"""Batched data augmentation: every op transforms a whole ``(B, C, H, W)`` float batch at once, on the
batch's device, with no per-sample Python (in the spirit of airbench).

Randomness comes from a CPU ``torch.Generator`` (small per-sample parameters, and the elastic noise, are
drawn on the CPU and moved to the batch's device), so a given generator state gives the same batch on
every device. Ops run on images scaled to [0, 1] *before* normalization, so the zero fill of
translations and warps is black, like the zero padding that fits MNIST into LeNet-5's 32x32 input.
Labels are never touched: every op here preserves the class.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ..config.schema import AugmentConfig

__all__ = [
    "translate",
    "random_translate",
    "random_flip",
    "affine_warp",
    "random_affine",
    "elastic_displacement",
    "elastic_warp",
    "random_elastic",
    "random_erasing",
    "cutout",
    "BatchAugment",
]


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator) * (high - low) + low


def translate(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Shift each image by whole pixels with zero fill: ``shifts[b] = (dy, dx)`` moves pixel ``(i, j)`` to
    ``(i + dy, j + dx)`` (``torch.roll``'s convention, but what leaves the image is dropped, not wrapped).

    Shape: x ``(B, C, H, W)``, shifts ``(B, 2)`` integer.
    """
    b, c, h, w = x.shape
    shifts = shifts.to(x.device, torch.long)
    p = int(shifts.abs().max()) if b else 0
    if p == 0:
        return x
    xp = F.pad(x, (p, p, p, p))
    dy, dx = shifts[:, 0], shifts[:, 1]
    # Output (i, j) reads padded input (i - dy + p, j - dx + p): two gathers, rows then columns.
    iy = torch.arange(h, device=x.device)[None, :] - dy[:, None] + p  # (B, H)
    ix = torch.arange(w, device=x.device)[None, :] - dx[:, None] + p  # (B, W)
    rows = xp.gather(2, iy[:, None, :, None].expand(b, c, h, w + 2 * p))  # (B, C, H, W + 2p)
    return rows.gather(3, ix[:, None, None, :].expand(b, c, h, w))  # (B, C, H, W)


def random_translate(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by ``(dy, dx)`` drawn uniformly from ``-max_shift .. max_shift``, zero fill.

    This is also the classic "random crop after zero-padding by ``max_shift``" (Krizhevsky et al. 2012;
    He et al. 2016 pad CIFAR by 4): cropping ``H x W`` at offset ``o`` from the padded image equals a shift
    by ``max_shift - o``.
    """
    if max_shift <= 0:
        return x
    shifts = torch.randint(-max_shift, max_shift + 1, (x.shape[0], 2), generator=generator)
    return translate(x, shifts)


def random_flip(x: torch.Tensor, dim: int, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Flip each image along ``dim`` (-1: horizontal, -2: vertical) with probability ``p``."""
    mask = (torch.rand(x.shape[0], generator=generator) < p).to(x.device)
    return torch.where(mask.view(-1, 1, 1, 1), x.flip(dim), x)


def _base_coords(h: int, w: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates in grid_sample's normalized [-1, 1] frame (align_corners=False), shaped
    ``(1, 1, W, 1)`` and ``(1, H, 1, 1)`` to broadcast against ``(B, H, W, 2)`` grids."""
    u = (torch.arange(w, device=device, dtype=dtype) * 2 + 1) / w - 1
    v = (torch.arange(h, device=device, dtype=dtype) * 2 + 1) / h - 1
    return u.view(1, 1, w, 1), v.view(1, h, 1, 1)


def _affine_grid(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``F.affine_grid(theta, (B, C, h, w), align_corners=False)`` by broadcasting: on the CPU the builtin
    runs a batched matmul over every pixel, several times slower than these multiply-adds."""
    u, v = _base_coords(h, w, theta.device, theta.dtype)
    t = theta.transpose(1, 2).reshape(-1, 1, 1, 3, 2)  # t[..., k, :] = column k of theta
    return t[..., 0, :] * u + t[..., 1, :] * v + t[..., 2, :]  # (B, H, W, 2), (x, y) order


def affine_warp(
    x: torch.Tensor,
    degrees: torch.Tensor,
    scales: torch.Tensor,
    *,
    shifts: torch.Tensor | None = None,
    flips: tuple[torch.Tensor, torch.Tensor] | None = None,
    mode: str = "bilinear",
) -> torch.Tensor:
    """Rotate each image by ``degrees[b]`` (counter-clockwise) and scale it by ``scales[b]`` about its
    centre, as ONE bilinear resampling (two separate warps would blur twice); zero fill outside.

    Optionally the same warp also flips (``flips = (fx, fy)``, each ``(B,)`` of +1 / -1) and then shifts
    by ``shifts[b] = (dy, dx)`` pixels, i.e. it computes ``rotate(flip(translate(x)))`` with a single
    interpolation. The pixel-space map ``p_in = F R(-a) p_out / s - d`` is conjugated into grid_sample's
    normalized coordinates, so non-square images rotate without shearing. ``mode="nearest"`` resamples
    label maps (segmentation masks) with the same warp (see :mod:`cnnkit.data.joint_augment`).
    """
    b, _, h, w = x.shape
    a = torch.deg2rad(degrees.to(torch.float32))
    s = scales.to(torch.float32)
    cos, sin = torch.cos(a) / s, torch.sin(a) / s
    fx, fy = (torch.ones(b), torch.ones(b)) if flips is None else (flips[0].float(), flips[1].float())
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = fx * cos
    theta[:, 0, 1] = fx * -sin * (h / w)
    theta[:, 1, 0] = fy * sin * (w / h)
    theta[:, 1, 1] = fy * cos
    if shifts is not None:
        theta[:, 0, 2] = -shifts[:, 1].float() * (2.0 / w)
        theta[:, 1, 2] = -shifts[:, 0].float() * (2.0 / h)
    grid = _affine_grid(theta.to(x.device, x.dtype), h, w)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


def random_affine(
    x: torch.Tensor, max_degrees: float, scale: tuple[float, float] | None, generator: torch.Generator
) -> torch.Tensor:
    """Rotation uniform in ``[-max_degrees, max_degrees]`` and scale uniform in ``scale``, one warp."""
    n = x.shape[0]
    degrees = _uniform(n, -max_degrees, max_degrees, generator)
    scales = _uniform(n, scale[0], scale[1], generator) if scale is not None else torch.ones(n)
    return affine_warp(x, degrees, scales)


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def elastic_displacement(
    shape: tuple[int, int, int], alpha: float, sigma: float, generator: torch.Generator
) -> torch.Tensor:
    """Simard et al. (2003), section 2: a displacement field ``(B, 2, H, W)`` in pixels (channel 0: x,
    channel 1: y): uniform noise in (-1, 1) at every pixel, convolved with a Gaussian of standard deviation
    ``sigma`` pixels, scaled by ``alpha`` pixels.

    Deviations: the convolution pads by replicating the border (the paper does not say how edges are handled).
    """
    b, h, w = shape
    noise = torch.rand(b, 2, h, w, generator=generator) * 2 - 1
    k = _gaussian_kernel(sigma)
    r = (len(k) - 1) // 2
    # Separable Gaussian: a row pass then a column pass, each grouped so x and y fields stay separate.
    field = F.conv2d(F.pad(noise, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).repeat(2, 1, 1, 1), groups=2)
    field = F.conv2d(F.pad(field, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1).repeat(2, 1, 1, 1), groups=2)
    return field * alpha


def elastic_warp(x: torch.Tensor, displacement: torch.Tensor, *, mode: str = "bilinear") -> torch.Tensor:
    """Resample each image at ``p + displacement(p)`` (bilinear, or ``mode``; zero fill); ``displacement``
    in pixels."""
    b, _, h, w = x.shape
    scale = torch.tensor([2.0 / w, 2.0 / h], device=x.device, dtype=x.dtype)
    identity = _affine_grid(torch.eye(2, 3, device=x.device, dtype=x.dtype).expand(1, 2, 3), h, w)  # (1, H, W, 2)
    grid = identity + displacement.to(x.device, x.dtype).permute(0, 2, 3, 1) * scale  # (B, H, W, 2), (x, y)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


def random_elastic(
    x: torch.Tensor, alpha: float, sigma: float, p: float, generator: torch.Generator
) -> torch.Tensor:
    """Elastic deformation (Simard et al. 2003) of each image with probability ``p``."""
    b, _, h, w = x.shape
    chosen = (torch.rand(b, generator=generator) < p).to(x.device)
    field = elastic_displacement((b, h, w), alpha, sigma, generator)
    return torch.where(chosen.view(-1, 1, 1, 1), elastic_warp(x, field), x)


def _box_mask(h: int, w: int, y0: torch.Tensor, x0: torch.Tensor, y1: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` boolean mask of rows ``y0 <= i < y1`` and columns ``x0 <= j < x1``."""
    i = torch.arange(h)[None, :]
    j = torch.arange(w)[None, :]
    rows = (i >= y0[:, None]) & (i < y1[:, None])  # (B, H)
    cols = (j >= x0[:, None]) & (j < x1[:, None])  # (B, W)
    return (rows[:, :, None] & cols[:, None, :])[:, None]


def random_erasing(
    x: torch.Tensor,
    p: float,
    generator: torch.Generator,
    *,
    area: tuple[float, float] = (0.02, 0.4),
    ratio: tuple[float, float] = (0.3, 1 / 0.3),
) -> torch.Tensor:
    """Random erasing (Zhong et al. 2020, Algorithm 1): with probability ``p`` replace a rectangle of area
    ``S_e ~ U(s_l, s_h) * H * W`` and aspect ratio ``r_e ~ U(r_1, 1 / r_1)`` by uniform random values.

    Deviations: Algorithm 1 redraws until the rectangle fits; here its sides are clipped to the image, so
    every draw succeeds in one batched step.
    """
    b, c, h, w = x.shape
    chosen = torch.rand(b, generator=generator) < p
    s_e = _uniform(b, area[0], area[1], generator) * h * w
    r_e = _uniform(b, ratio[0], ratio[1], generator)
    eh = torch.sqrt(s_e * r_e).round().clamp(1, h).long()
    ew = torch.sqrt(s_e / r_e).round().clamp(1, w).long()
    y0 = (torch.rand(b, generator=generator) * (h - eh + 1)).long()
    x0 = (torch.rand(b, generator=generator) * (w - ew + 1)).long()
    values = torch.rand(b, c, h, w, generator=generator)
    mask = _box_mask(h, w, y0, x0, y0 + eh, x0 + ew) & chosen.view(-1, 1, 1, 1)
    return torch.where(mask.to(x.device), values.to(x.device, x.dtype), x)


def cutout(
    x: torch.Tensor, size: int, generator: torch.Generator, fill: torch.Tensor | float = 0.0
) -> torch.Tensor:
    """Cutout (DeVries & Taylor 2017): mask a ``size x size`` square centred on a uniformly random pixel
    (it may extend past the border, as in the paper) with ``fill``.

    The paper zero-masks normalized images, i.e. fills with the dataset mean; pass the per-channel mean
    as ``fill`` to match (the loaders do).
    """
    b, c, h, w = x.shape
    cy = torch.randint(0, h, (b,), generator=generator)
    cx = torch.randint(0, w, (b,), generator=generator)
    y0, x0 = cy - size // 2, cx - size // 2
    mask = _box_mask(h, w, y0, x0, y0 + size, x0 + size).to(x.device)
    fill_t = torch.as_tensor(fill, dtype=x.dtype, device=x.device)
    fill_t = fill_t.view(1, -1, 1, 1) if fill_t.ndim == 1 else fill_t
    return torch.where(mask, fill_t, x)


class BatchAugment:
    """The augmentations an :class:`~cnnkit.config.AugmentConfig` asks for, applied in a fixed order: crop
    (padding), translation, horizontal flip, vertical flip, rotation+scale, elastic, random erasing,
    cutout. When rotation or scaling is on, crop, translation and flips are folded into its single affine
    warp; otherwise they run as exact integer shifts and flips.

    Args:
        cfg: which augmentations, with their parameters.
        fill: per-channel value for cutout, in [0, 1] (the training mean, so it is 0 after normalization).

    Example:
        >>> aug = BatchAugment(AugmentConfig(hflip=True, crop_padding=4))
        >>> y = aug(torch.rand(8, 3, 32, 32), torch.Generator().manual_seed(0))
    """

    def __init__(self, cfg: AugmentConfig, *, fill: torch.Tensor | list[float] | float = 0.0) -> None:
        self.cfg = cfg
        self.fill = torch.as_tensor(fill, dtype=torch.float32)

    @property
    def enabled(self) -> bool:
        c = self.cfg
        elastic = c.elastic is not None and c.elastic.alpha > 0 and c.elastic.p > 0
        return bool(
            c.crop_padding or c.translate or c.hflip or c.vflip or c.rotate or c.scale is not None or elastic
            or c.erasing or c.cutout
        )

    def __call__(
        self, x: torch.Tensor, generator: torch.Generator, *, flip: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Augment the batch ``x`` with the randomness of ``generator``; ``flip`` (bool ``(B,)``), when given,
        decides which images are mirrored instead of a coin (the loader's alternating flips)."""
        c = self.cfg
        b = x.shape[0]
        # Random parameters are drawn in one fixed order whichever path runs below.
        shifts = torch.zeros(b, 2, dtype=torch.long)
        for m in (c.crop_padding, c.translate):
            if m:
                shifts += torch.randint(-m, m + 1, (b, 2), generator=generator)
        one = torch.ones(b)
        fx = torch.where(torch.rand(b, generator=generator) < 0.5, -one, one) if c.hflip else one
        if c.hflip and flip is not None:  # the coin is still drawn: the other draws stay where they were
            fx = torch.where(flip.cpu(), -one, one)
        fy = torch.where(torch.rand(b, generator=generator) < 0.5, -one, one) if c.vflip else one
        if c.rotate or c.scale is not None:
            degrees = _uniform(b, -c.rotate, c.rotate, generator)
            scales = _uniform(b, c.scale[0], c.scale[1], generator) if c.scale is not None else one
            # Crop, translation and flips fold into the rotation's warp: the same transform with one
            # interpolation instead of two gathers, a flip and a warp.
            x = affine_warp(x, degrees, scales, shifts=shifts, flips=(fx, fy))
        else:
            if c.crop_padding or c.translate:
                x = translate(x, shifts)  # exact integer shift, no interpolation
            if c.hflip:
                x = torch.where((fx < 0).to(x.device).view(-1, 1, 1, 1), x.flip(-1), x)
            if c.vflip:
                x = torch.where((fy < 0).to(x.device).view(-1, 1, 1, 1), x.flip(-2), x)
        if c.elastic is not None and c.elastic.alpha > 0 and c.elastic.p > 0:
            x = random_elastic(x, c.elastic.alpha, c.elastic.sigma, c.elastic.p, generator)
        if c.erasing:
            x = random_erasing(x, c.erasing, generator)
        if c.cutout:
            x = cutout(x, c.cutout, generator, self.fill)
        return x

    def describe(self) -> dict[str, Any]:
        return self.cfg.model_dump(mode="json")

    def __repr__(self) -> str:
        on = {k: v for k, v in self.describe().items() if v not in (0, 0.0, False, None)}
        return f"BatchAugment({', '.join(f'{k}={v}' for k, v in on.items())})"
