"""FID against hand-computed Gaussian cases; the checkerboard energy on known patterns and on untrained
generators of both up-sampling modes (seeded, with a margin)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnkit.models.dcgan import dcgan
from cnnkit.tasks.gan_metrics import checkerboard_energy, checkerboard_white_level, fid_from_features, frechet_distance


def _rotation(d: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


def test_frechet_distance_of_commuting_gaussians_by_hand():
    # S1 = R diag(a) R^T, S2 = R diag(b) R^T commute: Tr(S1 + S2 - 2 (S1 S2)^1/2) = sum (sqrt(a) - sqrt(b))^2.
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 16.0])
    r = _rotation(3, 0)
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    hand = 1 + 0 + 4 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 4) ** 2
    got = frechet_distance(mu1, r @ np.diag(a) @ r.T, mu2, r @ np.diag(b) @ r.T)
    assert got == pytest.approx(hand, rel=1e-9)
    assert frechet_distance(np.zeros(1), np.array([[4.0]]), np.ones(1), np.array([[1.0]])) == pytest.approx(1 + 1)


def test_frechet_distance_of_general_gaussians_against_the_symmetric_form():
    # Tr((S1 S2)^1/2) = Tr((S1^1/2 S2 S1^1/2)^1/2): computed here with eigendecompositions, not sqrtm.
    rng = np.random.default_rng(1)
    m1, m2 = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = m1 @ m1.T + 0.1 * np.eye(5), m2 @ m2.T + 0.1 * np.eye(5)

    def psd_sqrt(s: np.ndarray) -> np.ndarray:
        w, v = np.linalg.eigh(s)
        return v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T

    r1 = psd_sqrt(s1)
    hand = np.trace(s1) + np.trace(s2) - 2 * np.trace(psd_sqrt(r1 @ s2 @ r1)) + 3.0
    mu = np.zeros(5)
    assert frechet_distance(mu, s1, mu + np.array([1.0, 1.0, 1.0, 0, 0]), s2) == pytest.approx(hand, rel=1e-8)


def test_fid_from_samples_converges_to_the_population_value():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20_000, 4, generator=g, dtype=torch.float64)
    b = torch.randn(20_000, 4, generator=g, dtype=torch.float64) * 2 + 0.5
    # Population: 4 * 0.25 (means) + 4 * (1 - 2)^2 (standard deviations).
    assert fid_from_features(a, b) == pytest.approx(5.0, rel=0.03)
    assert fid_from_features(a[:10_000], a[10_000:]) < 0.01
    # A singular covariance (a dead feature) takes the reference's eps offset instead of failing.
    dead = torch.cat([a[:, :3], torch.zeros(20_000, 1, dtype=torch.float64)], 1)
    assert np.isfinite(fid_from_features(dead, torch.flip(dead, [0])))


def test_checkerboard_energy_of_known_patterns():
    board = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(14, 14)
    stripes = torch.tensor([1.0, -1.0]).repeat(28, 14)  # period 2 along one axis only
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    smooth = torch.sin(2 * torch.pi * xx / 28) + torch.cos(2 * torch.pi * yy / 14)
    e = checkerboard_energy(torch.stack([board, stripes, smooth])).tolist()
    assert e[0] == pytest.approx(1.0) and e[1] == pytest.approx(1.0) and e[2] < 1e-12
    noise = checkerboard_energy(torch.randn(400, 3, 28, 28, generator=torch.Generator().manual_seed(0)))
    level = checkerboard_white_level(28, 28)
    assert level == pytest.approx((28 + 28 - 1) / (28 * 28 - 1))
    assert abs(float(noise.mean()) - level) < 4 * float(noise.std()) / 20  # 4 standard errors
    with pytest.raises(ValueError, match="divisible by 2"):
        checkerboard_energy(torch.zeros(1, 1, 7, 8))


def test_upscale_then_convolve_removes_the_checkerboard_of_untrained_generators():
    # Odena et al. (2016): a 4x4 stride-2 transposed conv overlaps unevenly from initialization on; nearest
    # up-sampling has a zero at the stride's frequency. Five seeds per mode, 64 images each.
    energy = {}
    for mode in ("transpose", "upsample_conv"):
        per_seed = []
        for seed in range(5):
            torch.manual_seed(seed)
            gan = dcgan(upsample=mode, base_width=16, fid_width=4).eval()
            with torch.no_grad():
                per_seed.append(float(checkerboard_energy(gan.generate(64)).mean()))
        energy[mode] = per_seed
    white = checkerboard_white_level(28, 28)
    assert min(energy["transpose"]) > white  # more than noise puts there
    assert max(energy["upsample_conv"]) < white / 5  # far less than noise
    assert min(energy["transpose"]) > 10 * max(energy["upsample_conv"])
