"""Series ``(N, C, L)`` in memory: missing values, padding, per-series normalization, batched augmentation.

Padding convention: a series shorter than the batch's length ``L`` is padded at its end with NaN in every
channel. NaN travels with the data through every path (training batches, ``evaluate``, ``predict``,
``explain``, ONNX), so a model needs no second input: the series models turn NaN steps into zeros before
convolving and leave them out of global pooling (:func:`cnnkit.layers.masked_global_avg_pool1d`). Missing
values *inside* a series (``?`` in a ``.ts`` file) are filled by linear interpolation when the data is read
(:func:`fill_missing`), so after reading NaN means padding and nothing else.

Augmentation (:class:`SeriesAugment`) transforms a whole float batch on its device, seeded by the batch's
generator (the loaders' exact-resume contract), only over each series' own steps:

- jitter: ``x + N(0, sigma^2)`` (Um et al. 2017, Sec. 3.1);
- scaling: ``x * s``, ``s ~ N(1, sigma^2)`` per series and channel (Um et al. 2017);
- magnitude warp: ``x * c(t)``, ``c`` a smooth curve through knots ``~ N(1, sigma^2)`` (Um et al. 2017);
- time warp: ``x(w(t))``, ``w`` the normalized cumulative sum of such a curve (Um et al. 2017);
- window slicing: a random window of ``ratio`` of the series, stretched back to its length (Le Guennec,
  Malinowski & Tavenard 2016, Sec. 3.1).

Deviations: the smooth curves interpolate their knots linearly, not with the cubic splines of Um et al.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SeriesAugmentConfig", "SeriesAugment", "fill_missing", "pad_series", "padding_mask", "series_lengths",
    "znormalize", "resample", "series_transform",
]

_EPS = 1e-8


def fill_missing(series: np.ndarray) -> np.ndarray:
    """One case ``(C, L)`` with NaN (missing values) filled per channel by linear interpolation between
    the nearest observed values, and by the nearest observed value at either end; a channel with no value
    at all becomes zeros."""
    out = np.array(series, dtype=np.float64, copy=True)
    t = np.arange(out.shape[1])
    for row in out:
        bad = np.isnan(row)
        if not bad.any():
            continue
        if bad.all():
            row[:] = 0.0
            continue
        row[bad] = np.interp(t[bad], t[~bad], row[~bad])
    return out


def pad_series(series: list[np.ndarray], length: int | None = None) -> torch.Tensor:
    """Cases ``(C, L_i)`` as one float32 tensor ``(N, C, L)``, NaN-padded at the end; ``L`` is ``length``
    (longer cases are cut to it) or the longest case."""
    n = max(s.shape[1] for s in series) if length is None else length
    c = series[0].shape[0]
    out = np.full((len(series), c, n), np.nan, dtype=np.float32)
    for i, s in enumerate(series):
        m = min(n, s.shape[1])
        out[i, :, :m] = s[:, :m]
    return torch.from_numpy(out)


def padding_mask(x: torch.Tensor) -> torch.Tensor:
    """Boolean ``(B, L)``: True at the real steps of ``x`` ``(B, C, L)``, False at padding (NaN in every
    channel)."""
    return ~torch.isnan(x).all(dim=1)


def series_lengths(x: torch.Tensor) -> torch.Tensor:
    """Each series' own length (its real steps; padding sits at the end), int64 ``(B,)``."""
    return padding_mask(x).sum(dim=-1)


def znormalize(x: torch.Tensor) -> torch.Tensor:
    """Each channel of each series to zero mean and unit variance over its real steps (the UCR archive's
    convention); a constant channel becomes zeros. Padding stays NaN.

    Example:
        >>> [round(v, 4) for v in znormalize(torch.tensor([[[1.0, 2.0, 3.0, float("nan")]]]))[0, 0].tolist()]
        [-1.2247, 0.0, 1.2247, nan]
    """
    valid = ~torch.isnan(x)
    n = valid.sum(-1, keepdim=True).clamp_min(1)
    z = torch.where(valid, x, 0.0)
    mean = z.sum(-1, keepdim=True) / n
    var = (torch.where(valid, x - mean, 0.0) ** 2).sum(-1, keepdim=True) / n
    std = var.sqrt()
    out = (x - mean) / torch.where(std > _EPS, std, 1.0)
    return torch.where(valid, out, float("nan"))


def resample(x: torch.Tensor, pos: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``out[b, :, t] = x[b, :, pos[b, t]]`` by linear interpolation, for ``t < lengths[b]`` (NaN after).

    Shape: x ``(B, C, L)``, pos ``(B, L)`` float source positions (clamped to ``[0, lengths[b] - 1]``),
    lengths ``(B,)``.
    """
    b, c, n = x.shape
    hi = (lengths - 1).clamp_min(0).to(pos.dtype)[:, None]
    pos = torch.minimum(pos.clamp_min(0), hi)
    lo = pos.floor().long()
    up = torch.minimum(lo + 1, hi.long())
    w = (pos - lo.to(pos.dtype))[:, None, :]
    xz = torch.where(torch.isnan(x), 0.0, x)
    a = xz.gather(2, lo[:, None, :].expand(b, c, n))
    u = xz.gather(2, up[:, None, :].expand(b, c, n))
    out = a + w * (u - a)
    keep = torch.arange(n, device=x.device)[None, :] < lengths[:, None]
    return torch.where(keep[:, None, :], out, float("nan"))


class SeriesAugmentConfig(BaseModel):
    """Batched series augmentations (dataset option ``series_augment``: ``data.series_augment.jitter=0.03``); all off by default. Sigmas are in units of
    the (normalized) series."""

    model_config = ConfigDict(extra="forbid")
    jitter: float = Field(0.0, ge=0, description="std of added Gaussian noise (Um et al. 2017)")
    scaling: float = Field(0.0, ge=0, description="std of the per-series, per-channel factor around 1")
    magnitude_warp: float = Field(0.0, ge=0, description="std of the smooth multiplicative curve's knots")
    time_warp: float = Field(0.0, ge=0, description="std of the smooth speed curve's knots")
    knots: int = Field(4, ge=1, le=64, description="knots of the warping curves")
    window_slice: float = Field(1.0, gt=0, le=1, description="fraction of the series kept by window slicing; 1 = off")

    @property
    def enabled(self) -> bool:
        return bool(self.jitter or self.scaling or self.magnitude_warp or self.time_warp or self.window_slice < 1)


def _smooth_curves(b: int, n: int, knots: int, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """``(B, n)`` curves through ``knots + 2`` random values ``~ N(1, sigma^2)`` spread evenly over the steps."""
    k = knots + 2
    values = 1.0 + sigma * torch.randn(b, k, generator=generator)
    pos = torch.linspace(0, k - 1, n)
    lo = pos.floor().long().clamp(max=k - 2)
    w = pos - lo
    return values[:, lo] * (1 - w) + values[:, lo + 1] * w


class SeriesAugment:
    """The augmentations of :class:`SeriesAugmentConfig`, applied to a ``(B, C, L)`` float batch in the
    order window slicing, time warp, magnitude warp, scaling, jitter (warps first, so noise is not warped).

    Example:
        >>> aug = SeriesAugment(SeriesAugmentConfig(jitter=0.1))
        >>> x = torch.zeros(2, 1, 5)
        >>> y = aug(x, torch.Generator().manual_seed(0))
        >>> bool((y != 0).any()), tuple(y.shape)
        (True, (2, 1, 5))
    """

    def __init__(self, cfg: SeriesAugmentConfig | dict[str, Any] | None = None) -> None:
        self.cfg = cfg if isinstance(cfg, SeriesAugmentConfig) else SeriesAugmentConfig(**(cfg or {}))

    @property
    def enabled(self) -> bool:
        return self.cfg.enabled

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        cfg = self.cfg
        b, c, n = x.shape
        dev = x.device
        lengths = series_lengths(x)
        steps = torch.arange(n, dtype=torch.float32)[None, :].expand(b, n)
        lf = lengths.cpu().to(torch.float32)[:, None]
        if cfg.window_slice < 1:
            width = (lf * cfg.window_slice).clamp_min(1)
            start = torch.rand(b, 1, generator=generator) * (lf - width)
            # Output step t of a series of length m reads window position start + t (width - 1) / (m - 1).
            pos = start + steps * (width - 1) / (lf - 1).clamp_min(1)
            x = resample(x, pos.to(dev), lengths)
        if cfg.time_warp:
            speed = _smooth_curves(b, n, cfg.knots, cfg.time_warp, generator).clamp_min(0.05)
            speed = torch.where(steps < lf, speed, 0.0)
            t = torch.cumsum(speed, dim=1) - speed[:, :1]
            t = t / t.gather(1, (lengths.cpu() - 1).clamp_min(0)[:, None]).clamp_min(_EPS) * (lf - 1)
            x = resample(x, t.to(dev), lengths)
        if cfg.magnitude_warp:
            x = x * _smooth_curves(b, n, cfg.knots, cfg.magnitude_warp, generator).to(dev)[:, None, :]
        if cfg.scaling:
            x = x * (1.0 + cfg.scaling * torch.randn(b, c, 1, generator=generator)).to(dev)
        if cfg.jitter:
            x = x + cfg.jitter * torch.randn(b, c, n, generator=generator).to(dev)
        return x

    def __repr__(self) -> str:
        return f"SeriesAugment({self.cfg.model_dump()})"


def series_transform(augment: SeriesAugment | None):
    """A :data:`~cnnkit.data.loader.BatchTransform` that augments ``x`` (or None when nothing is enabled)."""
    if augment is None or not augment.enabled:
        return None

    def transform(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return augment(x, generator), y

    return transform
