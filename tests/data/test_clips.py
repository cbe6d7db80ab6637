"""Clip pipeline: fitting clips to the model's input, statistics, per-clip augmentation, the bundle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnkit.config.schema import AugmentConfig, DataConfig
from cnnkit.data.clips import (
    ClipAugment,
    ClipTransform,
    apply_clip_preprocessing,
    clip_bundle,
    clip_stats,
    fit_clips,
    frame_indices,
)
from cnnkit.errors import ConfigError, DataError


def _moving_bar(n: int = 6, t: int = 5, h: int = 8, w: int = 10) -> torch.Tensor:
    """Clips whose frame k has a bright column at position k (plus a per-clip row marker)."""
    x = torch.zeros(n, 1, t, h, w, dtype=torch.uint8)
    for k in range(t):
        x[:, 0, k, :, k + 1] = 200
    for i in range(n):
        x[i, 0, :, i % h, :] = 50
    return x


def test_frame_indices_spread_evenly_and_refuse_too_few():
    assert frame_indices(8, 8).tolist() == list(range(8))
    assert frame_indices(8, 4).tolist() == [0, 2, 4, 6]
    assert frame_indices(9, 3).tolist() == [1, 4, 7]  # the middle frame of each third
    with pytest.raises(DataError, match="has 3 frames but the model takes 4"):
        frame_indices(3, 4)


def test_fit_clips_resizes_every_frame_like_interpolate_and_converts_channels():
    x = torch.randint(0, 256, (2, 3, 4, 12, 12), dtype=torch.uint8)
    out = fit_clips(x, (1, 2, 6, 6))
    assert out.shape == (2, 1, 2, 6, 6) and out.dtype == torch.uint8
    # Reference: luma of frames 0 and 2 (evenly spaced), each frame resized on its own.
    luma = (x.float() * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1, 1)).sum(1, keepdim=True)
    for j, k in enumerate((0, 2)):
        ref = torch.nn.functional.interpolate(luma[:, :, k], size=(6, 6), mode="bilinear", antialias=True)
        assert (out[:, :, j].float() - ref.round().clamp(0, 255)).abs().max() <= 1
    assert fit_clips(out, (1, 2, 6, 6)) is out  # already right: no copy
    with pytest.raises(DataError, match="expected clips"):
        fit_clips(torch.zeros(2, 3, 4, 4), (1, 1, 4, 4))


def test_clip_stats_match_numpy():
    x = torch.randint(0, 256, (5, 2, 3, 4, 4), dtype=torch.uint8)
    mean, std = clip_stats(x)
    ref = x.numpy().astype(np.float64) / 255
    np.testing.assert_allclose(mean, ref.mean(axis=(0, 2, 3, 4)), rtol=1e-12)
    np.testing.assert_allclose(std, ref.std(axis=(0, 2, 3, 4)), rtol=1e-9)


def test_augmentation_is_the_same_for_every_frame_of_a_clip():
    x = _moving_bar(n=64).float() / 255
    y = torch.zeros(64, dtype=torch.long)
    aug = ClipAugment(crop_padding=2, hflip=True, vflip=True, cutout=3, hflip_labels=[1, 0], vflip_labels=[0, 0])
    out, _ = aug(x, y, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    # The static row marker (50) of each clip lands on one row in every frame: one shift/flip per clip.
    marker = (out == 50 / 255).any(-1)[:, 0]  # (N, T, H)
    same = (marker == marker[:, :1]).all()
    assert bool(same)
    # And the clips did move: not every clip kept its marker row.
    rows = torch.tensor([i % 8 for i in range(64)])
    kept = marker[:, 0].float().argmax(-1) == rows
    assert 0 < int(kept.sum()) < 64


def test_flip_permutes_labels_with_the_flipped_clips():
    # Frame k has its bar at column k+1: motion to the right; a flipped clip moves left.
    x = _moving_bar(n=200).float() / 255
    y = torch.zeros(200, dtype=torch.long)  # 0 = right, 1 = left
    out, ya = ClipAugment(hflip=True, hflip_labels=[1, 0])(x, y, torch.Generator().manual_seed(1))
    col0 = (out[:, 0, 0] > 0.5).float().sum(1).argmax(-1)
    col1 = (out[:, 0, 1] > 0.5).float().sum(1).argmax(-1)
    moves_left = col1 < col0
    assert torch.equal(moves_left, ya == 1)
    # Seeded statistical check: about half flipped (binomial(200, 1/2): 4 sigma is +-28).
    assert 72 <= int(ya.sum()) <= 128


def test_augment_config_refuses_image_only_augmentations():
    with pytest.raises(ConfigError, match="data.augment.rotate is not available for clips"):
        ClipAugment.from_config(AugmentConfig(rotate=10))
    aug = ClipAugment.from_config(AugmentConfig(translate=3, hflip=True))
    assert aug.crop_padding == 3 and aug.hflip and aug.enabled


def test_transform_normalizes_and_preprocessing_replays_it():
    x = torch.randint(0, 256, (4, 1, 3, 5, 5), dtype=torch.uint8)
    mean, std = clip_stats(x)
    xt, _ = ClipTransform(torch.tensor(mean), torch.tensor(std))(x, torch.zeros(4), torch.Generator())
    torch.testing.assert_close(xt.mean(), torch.tensor(0.0), atol=1e-5, rtol=0)
    pre = {"input_shape": [1, 3, 5, 5], "mean": mean, "std": std}
    torch.testing.assert_close(apply_clip_preprocessing(x[0], pre), xt[:1])


def test_bundle_splits_and_records_preprocessing():
    x = torch.randint(0, 256, (40, 1, 4, 6, 6), dtype=torch.uint8)
    y = torch.arange(40) % 2
    cfg = DataConfig(name="video-npz", val_fraction=0.25, batch_size=8, limit_test=10)
    b = clip_bundle(cfg, train=(x, y), test=(x.clone(), y.clone()), class_names=["a", "b"], dataset="video-npz",
                    device=torch.device("cpu"), seed=0)
    assert b.kind == "clip" and b.input_shape == (1, 4, 6, 6) and b.model_kwargs == {"input_size": (4, 6, 6)}
    assert len(b.train_indices) == 30 and len(b.val_indices) == 10 and len(b.test.labels) == 10
    assert b.preprocessing["kind"] == "clip" and b.preprocessing["input_shape"] == [1, 4, 6, 6]
    xb, yb = next(iter(b.train))
    assert xb.shape == (8, 1, 4, 6, 6) and xb.dtype == torch.float32
    # Exact-resume contract: the same batch for the same (epoch, step).
    a = next(b.train.epoch_batches(2, 1))[0]
    torch.testing.assert_close(a, next(b.train.epoch_batches(2, 1))[0])
    with pytest.raises(DataError, match="no clips"):
        clip_bundle(cfg, train=(x[:0], y[:0]), test=(x, y), class_names=["a", "b"], dataset="d",
                    device=torch.device("cpu"), seed=0)
