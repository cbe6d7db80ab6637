import math

import pytest
import torch
import torch.nn.functional as F

from cnnkit.config.schema import AugmentConfig, ElasticConfig
from cnnkit.data.augment import (
    BatchAugment,
    _gaussian_kernel,
    affine_warp,
    cutout,
    elastic_displacement,
    elastic_warp,
    random_erasing,
    random_flip,
    random_translate,
    translate,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def roll_zero_fill(img, dy, dx):
    """Reference: torch.roll, then zero what wrapped around."""
    out = torch.roll(img, shifts=(dy, dx), dims=(-2, -1)).clone()
    if dy > 0:
        out[..., :dy, :] = 0
    elif dy < 0:
        out[..., dy:, :] = 0
    if dx > 0:
        out[..., :, :dx] = 0
    elif dx < 0:
        out[..., :, dx:] = 0
    return out


def test_translate_equals_roll_with_zero_fill():
    x = torch.rand(6, 2, 7, 9)
    shifts = torch.tensor([[0, 0], [1, -2], [-3, 4], [6, 0], [-7, -9], [2, 8]])
    out = translate(x, shifts)
    for b, (dy, dx) in enumerate(shifts.tolist()):
        assert torch.equal(out[b], roll_zero_fill(x[b], dy, dx))


def test_random_translate_is_an_in_range_shift_and_crop_equivalence():
    x = torch.rand(16, 1, 8, 8) + 0.1  # no zeros, so the shift is identifiable
    out = random_translate(x, 2, gen(1))
    for b in range(16):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if torch.equal(out[b], roll_zero_fill(x[b], dy, dx))]
        assert len(matches) == 1
    # Random crop of the zero-padded image at offset (oy, ox) == shift by (p - oy, p - ox).
    p, oy, ox = 2, 0, 3
    crop = F.pad(x, (p, p, p, p))[..., oy : oy + 8, ox : ox + 8]
    assert torch.equal(crop, translate(x, torch.tensor([[p - oy, p - ox]] * 16)))


def test_flip_exact_and_statistical():
    x = torch.rand(400, 3, 4, 5)
    assert torch.equal(random_flip(x, -1, gen(), p=1.0), x.flip(-1))
    assert torch.equal(random_flip(x, -2, gen(), p=1.0), x.flip(-2))
    assert torch.equal(random_flip(x, -1, gen(), p=0.0), x)
    out = random_flip(x, -1, gen(2))
    flipped = torch.tensor([torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x, strict=True)])
    kept = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x, strict=True)])
    assert bool((flipped ^ kept).all())
    # Binomial(400, 0.5): mean 200, sd 10; 4 sd bounds.
    assert 160 <= int(flipped.sum()) <= 240


def test_affine_identity_rotation_and_scale():
    x = torch.rand(3, 2, 9, 9)
    ident = affine_warp(x, torch.zeros(3), torch.ones(3))
    assert torch.allclose(ident, x, atol=1e-5)
    # 90 degrees on a square image is an exact pixel permutation: compare with torch.rot90.
    assert torch.allclose(affine_warp(x, torch.full((3,), 90.0), torch.ones(3)), torch.rot90(x, 1, (2, 3)), atol=1e-5)
    assert torch.allclose(affine_warp(x, torch.full((3,), -90.0), torch.ones(3)), torch.rot90(x, -1, (2, 3)), atol=1e-5)
    # Scale 2 about the centre: the centre pixel stays; scale 0.5: the border becomes zero fill.
    z = affine_warp(x, torch.zeros(3), torch.full((3,), 2.0))
    assert torch.allclose(z[..., 4, 4], x[..., 4, 4], atol=1e-5)
    s = affine_warp(x, torch.zeros(3), torch.full((3,), 0.5))
    assert s[..., 0, :].abs().max() == 0 and s[..., :, -1].abs().max() == 0


def test_non_square_rotation_has_no_shear():
    # A 180-degree turn of a non-square image must equal flipping both axes.
    x = torch.rand(2, 1, 6, 10)
    assert torch.allclose(affine_warp(x, torch.full((2,), 180.0), torch.ones(2)), x.flip(-1).flip(-2), atol=1e-5)


def test_elastic_alpha_zero_is_identity():
    x = torch.rand(4, 1, 12, 12)
    field = elastic_displacement((4, 12, 12), 0.0, 4.0, gen())
    assert field.abs().max() == 0
    assert torch.allclose(elastic_warp(x, field), x, atol=1e-5)
    aug = BatchAugment(AugmentConfig(elastic=ElasticConfig(alpha=0.0, sigma=4.0, p=1.0)))
    assert not aug.enabled


def test_elastic_field_statistics_match_simard():
    # Uniform(-1, 1) noise has variance 1/3; after a normalized separable Gaussian k (x) k the variance is
    # (1/3) * (sum k^2)^2; scaled by alpha. Check away from the replicate-padded border.
    sigma, alpha = 2.0, 10.0
    field = elastic_displacement((64, 48, 48), alpha, sigma, gen(3))
    k = _gaussian_kernel(sigma)
    expected_sd = alpha * math.sqrt(1 / 3) * float((k**2).sum())
    inner = field[..., 8:-8, 8:-8]
    assert abs(inner.std().item() / expected_sd - 1) < 0.1
    assert abs(inner.mean().item()) < 0.05 * expected_sd * 10


def test_elastic_whole_pixel_displacement_is_a_shift():
    x = torch.rand(2, 1, 10, 10)
    field = torch.zeros(2, 2, 10, 10)
    field[:, 0] = -1.0  # sample from x - 1: content moves right by one pixel
    assert torch.allclose(elastic_warp(x, field), translate(x, torch.tensor([[0, 1], [0, 1]])), atol=1e-5)


def test_erasing_and_cutout():
    x = torch.rand(50, 3, 20, 20)
    assert torch.equal(random_erasing(x, 0.0, gen()), x)
    out = random_erasing(x, 1.0, gen(1))
    changed = (out != x).any(dim=1)  # (B, H, W)
    for b in range(50):
        rows, cols = changed[b].any(1).nonzero(), changed[b].any(0).nonzero()
        area = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert area >= changed[b].sum()  # one rectangle
        assert area <= 0.4 * 400 * 1.3 + 40  # s_h = 0.4 (plus rounding)
    c = cutout(torch.ones(30, 2, 16, 16), 4, gen(2), fill=torch.tensor([0.25, 0.75]))
    masked = c[:, 0] != 1
    inner = masked[:, 2:-2, 2:-2].flatten(1).any(1)
    assert (masked.flatten(1).sum(1) <= 16).all()
    for b in range(30):
        if masked[b].sum() == 16:  # fully inside: a 4x4 square
            r, q = masked[b].nonzero().min(0).values.tolist()
            assert masked[b, r : r + 4, q : q + 4].all()
    assert inner.any()
    assert set(c[:, 0][masked].unique().tolist()) == {0.25} and set(c[:, 1][masked].unique().tolist()) == {0.75}


CFG = AugmentConfig(crop_padding=2, translate=1, hflip=True, vflip=True, rotate=15, scale=(0.9, 1.1),
                    elastic=ElasticConfig(alpha=8.0, sigma=3.0, p=0.5), erasing=0.5, cutout=4)


def test_batch_augment_deterministic_for_a_generator():
    x = torch.rand(8, 1, 16, 16)
    aug = BatchAugment(CFG, fill=[0.5])
    a, b = aug(x, gen(7)), aug(x, gen(7))
    assert torch.equal(a, b) and a.shape == x.shape
    assert not torch.equal(a, aug(x, gen(8)))
    assert aug.enabled and not BatchAugment(AugmentConfig()).enabled
    assert "hflip=True" in repr(aug)


@pytest.mark.parametrize("field", ["crop_padding", "rotate", "erasing"])
def test_each_augmentation_changes_images(field):
    value = {"crop_padding": 3, "rotate": 30.0, "erasing": 1.0}[field]
    x = torch.rand(8, 1, 16, 16)
    assert not torch.equal(BatchAugment(AugmentConfig(**{field: value}))(x, gen()), x)


def test_affine_warp_folds_shift_and_flip_exactly():
    x = torch.rand(4, 2, 8, 11)
    shifts = torch.tensor([[1, -2], [0, 3], [-1, 0], [2, 2]])
    flips = (torch.tensor([-1.0, 1.0, -1.0, 1.0]), torch.tensor([1.0, -1.0, -1.0, 1.0]))
    out = affine_warp(x, torch.zeros(4), torch.ones(4), shifts=shifts, flips=flips)
    # rotate(flip(translate(x))) with rotation 0: flip after the shift.
    ref = translate(x, shifts)
    ref = torch.stack([r.flip(-1) if fx < 0 else r for r, fx in zip(ref, flips[0], strict=True)])
    ref = torch.stack([r.flip(-2) if fy < 0 else r for r, fy in zip(ref, flips[1], strict=True)])
    assert torch.allclose(out, ref, atol=1e-5)


def test_batch_augment_without_warp_is_exact():
    # Crop + flip only: every output is an exact integer shift, possibly flipped, of its input.
    x = torch.rand(12, 1, 6, 6) + 0.1
    out = BatchAugment(AugmentConfig(crop_padding=1, hflip=True))(x, gen(4))
    for o, xi in zip(out, x, strict=True):
        cands = [roll_zero_fill(xi, dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        assert any(torch.equal(o, c) or torch.equal(o, c.flip(-1)) for c in cands)
