"""Series preprocessing and augmentation against numpy oracles and seeded statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnkit.data.series import (
    SeriesAugment,
    SeriesAugmentConfig,
    fill_missing,
    pad_series,
    padding_mask,
    resample,
    series_lengths,
    znormalize,
)

NAN = float("nan")


def test_fill_missing_interpolates_inside_and_holds_the_ends() -> None:
    s = np.array([[NAN, 1.0, NAN, 3.0, NAN], [NAN, NAN, NAN, NAN, NAN]])
    np.testing.assert_allclose(fill_missing(s), [[1.0, 1.0, 2.0, 3.0, 3.0], [0, 0, 0, 0, 0]])


def test_pad_series_and_mask() -> None:
    x = pad_series([np.ones((2, 3)), np.ones((2, 5))])
    assert x.shape == (2, 2, 5) and torch.isnan(x[0, :, 3:]).all()
    assert padding_mask(x).tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    assert series_lengths(x).tolist() == [3, 5]
    assert pad_series([np.ones((1, 6))], length=4).shape == (1, 1, 4)


def test_znormalize_matches_numpy_over_real_steps() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(3, 2, (2, 7)), rng.normal(-1, 5, (2, 4))
    x = znormalize(pad_series([a, b]))
    for i, s in enumerate((a, b)):
        ref = (s - s.mean(1, keepdims=True)) / s.std(1, keepdims=True)
        np.testing.assert_allclose(x[i, :, : s.shape[1]].numpy(), ref, rtol=1e-5, atol=1e-5)
    assert torch.isnan(x[1, :, 4:]).all()
    assert torch.equal(znormalize(torch.full((1, 1, 4), 2.0)), torch.zeros(1, 1, 4))  # constant -> zeros


def test_resample_identity_and_half_steps() -> None:
    x = torch.arange(10.0).view(1, 2, 5)
    lengths = torch.tensor([5])
    assert torch.equal(resample(x, torch.arange(5.0)[None], lengths), x)
    out = resample(x, torch.tensor([[0.5, 1.5, 2.5, 3.5, 9.0]]), lengths)
    assert out[0, 0].tolist() == [0.5, 1.5, 2.5, 3.5, 4.0]  # clamped at the last real step


def _batch(n: int = 64, length: int = 50) -> torch.Tensor:
    return torch.sin(torch.linspace(0, 6, length)).repeat(n, 2, 1)


def test_augment_is_a_function_of_the_generator_and_keeps_padding() -> None:
    aug = SeriesAugment(SeriesAugmentConfig(jitter=0.1, scaling=0.1, magnitude_warp=0.2, time_warp=0.2, window_slice=0.8))
    x = _batch(4)
    x[0, :, 30:] = NAN
    a = aug(x, torch.Generator().manual_seed(1))
    b = aug(x, torch.Generator().manual_seed(1))
    c = aug(x, torch.Generator().manual_seed(2))
    assert torch.equal(a.nan_to_num(), b.nan_to_num()) and not torch.equal(a.nan_to_num(), c.nan_to_num())
    assert torch.equal(torch.isnan(a), torch.isnan(x))  # padding stays padding, nothing else becomes NaN


def test_jitter_and_scaling_statistics() -> None:
    x = torch.zeros(200, 1, 100)
    noise = SeriesAugment(SeriesAugmentConfig(jitter=0.3))(x, torch.Generator().manual_seed(0))
    assert abs(noise.std().item() - 0.3) < 0.01 and abs(noise.mean().item()) < 0.01
    ones = torch.ones(2000, 1, 10)
    s = SeriesAugment(SeriesAugmentConfig(scaling=0.2))(ones, torch.Generator().manual_seed(0))[:, 0, 0]
    assert abs(s.std().item() - 0.2) < 0.015 and abs(s.mean().item() - 1.0) < 0.015
    assert torch.allclose(SeriesAugment(SeriesAugmentConfig(scaling=0.2))(ones, torch.Generator().manual_seed(0)).std(-1), torch.zeros(2000, 1))


def test_time_warp_and_slicing_keep_endpoints_order_and_range() -> None:
    x = torch.arange(50.0).repeat(8, 1, 1)  # a ramp: any monotone warp keeps it sorted
    for cfg in (SeriesAugmentConfig(time_warp=0.3), SeriesAugmentConfig(window_slice=0.5)):
        y = SeriesAugment(cfg)(x, torch.Generator().manual_seed(0))
        assert (y.diff(dim=-1) >= -1e-5).all()
        assert y.min() >= 0 and y.max() <= 49
    tw = SeriesAugment(SeriesAugmentConfig(time_warp=0.3))(x, torch.Generator().manual_seed(0))
    assert torch.allclose(tw[..., 0], torch.zeros(8, 1)) and torch.allclose(tw[..., -1], torch.full((8, 1), 49.0))
    ws = SeriesAugment(SeriesAugmentConfig(window_slice=0.5))(x, torch.Generator().manual_seed(0))
    assert torch.allclose(ws[..., -1] - ws[..., 0], torch.full((8, 1), 24.0), atol=1e-4)  # a window of 25 steps


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        SeriesAugmentConfig(window_slice=0)
    with pytest.raises(ValueError):
        SeriesAugmentConfig(jitter=-1)
    assert not SeriesAugment().enabled
