"""Quality measures of generated images: the Fréchet distance (FID) and the checkerboard energy.

- :func:`frechet_distance`: Heusel et al. (2017), Eq. 6 (after Dowson & Landau 1982): the Fréchet
  distance between the Gaussians fitted to two sets of features,
  ``||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))``. The matrix square root is scipy's
  (``scipy.linalg.sqrtm``), as in the authors' and pytorch-fid's code.
- :func:`checkerboard_energy`: the share of an image's spectral energy at the frequencies whose period is
  the up-sampling stride (Odena, Dumoulin & Olah 2016): a stride-``s`` transposed convolution whose kernel
  is not divisible by ``s`` stamps a pattern of period ``s``; nearest-neighbour up-sampling has a zero of
  its transfer function exactly there, so an upscale-then-convolve generator starts without it.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy import linalg
from torch import Tensor

__all__ = ["checkerboard_energy", "checkerboard_white_level", "feature_stats", "frechet_distance", "fid_from_features"]


def feature_stats(features: Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of ``(N, D)`` features, in float64."""
    f = features.detach().double().cpu().numpy() if isinstance(features, Tensor) else np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"Expected (N >= 2, D) features. Received: shape={f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6) -> float:
    """The Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017, Eq. 6).

    As in the reference code: when the product's square root is singular, ``eps`` is added to both
    diagonals; a negligible imaginary part (numerical) is dropped.

    Example:
        >>> import numpy as np
        >>> round(frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2)), 6)  # 2 + 2 * (2 - 1)^2
        4.0
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    diff = mu1 - mu2
    with warnings.catch_warnings():
        # scipy warns on a singular product (few items, dead features); the reference code then offsets.
        warnings.simplefilter("error", linalg.LinAlgWarning)
        try:
            covmean = linalg.sqrtm(s1 @ s2)
            singular = not np.isfinite(covmean).all()
        except linalg.LinAlgWarning:
            singular = True
    if singular:
        offset = np.eye(s1.shape[0]) * eps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def fid_from_features(a: Tensor, b: Tensor) -> float:
    """FID between two ``(N, D)`` feature sets."""
    return frechet_distance(*feature_stats(a), *feature_stats(b))


def _period_bins(h: int, w: int, period: int) -> Tensor:
    """A boolean (h, w) map of the FFT bins at a nonzero multiple of 1/period cycles per pixel along an axis."""
    rows = torch.zeros(h, dtype=torch.bool)
    cols = torch.zeros(w, dtype=torch.bool)
    for k in range(1, period):
        if (k * h) % period == 0:
            rows[k * h // period] = True
        if (k * w) % period == 0:
            cols[k * w // period] = True
    return rows[:, None] | cols[None, :]


def checkerboard_energy(images: Tensor, period: int = 2) -> Tensor:
    """Per image, the fraction of its spectral energy (DC excluded) at the stride's period.

    The bins are every 2-D FFT frequency whose vertical or horizontal component is a nonzero multiple of
    ``1 / period`` cycles per pixel (for ``period = 2``: the Nyquist row and column), where a period-``s``
    pattern (the checkerboard of a stride-``s`` transposed convolution, Odena et al. 2016) puts its energy;
    channels are averaged first. White noise puts :func:`checkerboard_white_level` there.

    Args:
        images: ``(N, C, H, W)`` (or ``(N, H, W)``), sides divisible by ``period``.

    Returns:
        ``(N,)`` float64 fractions in [0, 1].

    Example:
        >>> board = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(4, 4)[None]  # a pure period-2 pattern
        >>> float(checkerboard_energy(board))
        1.0
    """
    x = images.detach().double()
    if x.ndim == 4:
        x = x.mean(dim=1)
    if x.ndim != 3 or x.shape[-1] % period or x.shape[-2] % period:
        raise ValueError(f"Expected (N, [C,] H, W) images with sides divisible by {period}. Received: {tuple(images.shape)}")
    power = torch.fft.fft2(x - x.mean(dim=(-2, -1), keepdim=True)).abs().square()
    total = power.sum(dim=(-2, -1))
    at_period = power[:, _period_bins(x.shape[-2], x.shape[-1], period)].sum(dim=-1)
    return torch.where(total > 0, at_period / total.clamp_min(1e-300), torch.zeros_like(total))


def checkerboard_white_level(height: int, width: int, period: int = 2) -> float:
    """The expected :func:`checkerboard_energy` of white noise: the share of non-DC bins at the period."""
    return float(_period_bins(height, width, period).sum()) / (height * width - 1)
