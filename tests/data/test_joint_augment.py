"""Joint augmentation: the image gets exactly BatchAugment's transform, the mask the same geometry with
nearest-neighbour resampling and the ignore index where it came from outside the image."""

from __future__ import annotations

import pytest
import torch

from cnnkit.config.schema import AugmentConfig, ElasticConfig
from cnnkit.data.augment import BatchAugment, affine_warp
from cnnkit.data.joint_augment import JointAugment, warp_mask


def _blocks(b: int = 6, h: int = 24, w: int = 24) -> torch.Tensor:
    """Masks of large constant blocks (labels 0..3), so a label image tells where each pixel went."""
    g = torch.Generator().manual_seed(1)
    coarse = torch.randint(0, 4, (b, 3, 3), generator=g)
    return coarse.repeat_interleave(h // 3, 1).repeat_interleave(w // 3, 2)


CONFIGS = {
    "shift_flip": AugmentConfig(translate=3, hflip=True, vflip=True),
    "affine": AugmentConfig(rotate=20, scale=(0.8, 1.2), hflip=True, crop_padding=2),
    "elastic": AugmentConfig(elastic=ElasticConfig(alpha=6.0, sigma=3.0, p=1.0)),
    "with_erasing": AugmentConfig(hflip=True, erasing=0.5, cutout=4),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_image_matches_batch_augment(name):
    cfg = CONFIGS[name]
    x = torch.rand(6, 2, 24, 24)
    expected = BatchAugment(cfg)(x, torch.Generator().manual_seed(7))
    got, _ = JointAugment(cfg)(x, _blocks(), torch.Generator().manual_seed(7))
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("name", ["shift_flip", "affine", "elastic"])
def test_mask_follows_the_image(name):
    y = _blocks()
    # The image is the label map itself: after an exact op the two must agree wherever the mask is known.
    x = (y.float() / 10)[:, None]
    xa, ya = JointAugment(CONFIGS[name], ignore_index=255)(x, y, torch.Generator().manual_seed(3))
    known = ya != 255
    assert known.float().mean() > 0.6
    assert set(ya.unique().tolist()) <= {0, 1, 2, 3, 255}
    err = (xa[:, 0] * 10 - ya.float()).abs()
    agree = err < 1e-4
    if name == "shift_flip":  # integer shifts and flips are exact for both
        assert agree[known].all()
        assert (xa[:, 0][~known] == 0).all()
    else:  # bilinear vs nearest differ only along block edges
        assert (err[known] < 0.5).float().mean() > 0.9, (err[known] < 0.5).float().mean()
    assert not torch.equal(ya, y)


def test_mask_warp_is_nearest_resampling_of_the_same_grid():
    y = _blocks()
    deg, sc = torch.full((6,), 17.0), torch.full((6,), 1.1)
    ref = affine_warp((y.float() + 1)[:, None], deg, sc, mode="nearest")[:, 0].long() - 1
    ref[ref < 0] = 9
    got = warp_mask(y, lambda m: affine_warp(m, deg, sc, mode="nearest"), 9)
    assert torch.equal(got, ref)
    assert (got == 9).any()


def test_seeded_and_batch_dependent():
    cfg = CONFIGS["affine"]
    x, y = torch.rand(6, 1, 24, 24), _blocks()
    a = JointAugment(cfg)(x, y, torch.Generator().manual_seed(0))
    b = JointAugment(cfg)(x, y, torch.Generator().manual_seed(0))
    c = JointAugment(cfg)(x, y, torch.Generator().manual_seed(1))
    assert torch.equal(a[1], b[1]) and torch.equal(a[0], b[0])
    assert not torch.equal(a[1], c[1])


def test_disabled_is_identity():
    assert not JointAugment(AugmentConfig()).enabled
    x, y = torch.rand(2, 1, 8, 8), _blocks(2, 9, 9)[:, :8, :8]
    xa, ya = JointAugment(AugmentConfig())(x, y, torch.Generator())
    assert torch.equal(xa, x) and torch.equal(ya, y)
