"""Anchors, the matcher and the balanced sampler against hand-computed cases and naive loops."""

from __future__ import annotations

import math

import pytest
import torch

from cnnkit.models.detection import AnchorGenerator, BalancedSampler, Matcher
from cnnkit.models.detection.matching import BACKGROUND, IGNORE


def test_anchors_naive_loop_and_shapes() -> None:
    gen = AnchorGenerator(scales=(8, 16), aspect_ratios=(0.5, 1.0, 2.0), stride=4)
    got = gen((3, 5))
    assert got.shape == (3 * 5 * 6, 4) and gen.num_anchors == 6
    rows = []
    for i in range(3):
        for j in range(5):
            cx, cy = (j + 0.5) * 4, (i + 0.5) * 4
            for r in (0.5, 1.0, 2.0):
                for s in (8, 16):
                    w, h = s / math.sqrt(r), s * math.sqrt(r)
                    rows.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    torch.testing.assert_close(got, torch.tensor(rows))
    # Every anchor of one scale has area s^2 and height / width = its ratio.
    wh = got[:, 2:] - got[:, :2]
    torch.testing.assert_close((wh[0::2, 0] * wh[0::2, 1]), torch.full((45,), 64.0))
    torch.testing.assert_close(wh[:, 1] / wh[:, 0], torch.tensor([0.5, 0.5, 1, 1, 2, 2] * 15))
    with pytest.raises(ValueError, match="positive anchor scales"):
        AnchorGenerator(scales=(0,))


def test_matcher_thresholds_and_low_quality() -> None:
    iou = torch.tensor([[0.8, 0.4, 0.1, 0.25, 0.0], [0.1, 0.5, 0.2, 0.25, 0.0]])
    plain = Matcher(0.7, 0.3)(iou)
    assert plain.tolist() == [0, IGNORE, BACKGROUND, BACKGROUND, BACKGROUND]
    # Low quality: ground truth 1's best prediction (index 1, IoU 0.5) is matched to it.
    assert Matcher(0.7, 0.3, allow_low_quality_matches=True)(iou).tolist() == [0, 1, BACKGROUND, BACKGROUND, BACKGROUND]
    # Ties of a box's best IoU are all matched.
    tie = torch.tensor([[0.2, 0.2, 0.1]])
    assert Matcher(0.7, 0.3, allow_low_quality_matches=True)(tie).tolist() == [0, 0, BACKGROUND]
    assert Matcher(0.5, 0.5)(torch.zeros(0, 4)).tolist() == [BACKGROUND] * 4
    with pytest.raises(ValueError, match="low_threshold <= high_threshold"):
        Matcher(0.3, 0.7)


def test_matcher_matches_naive_loop() -> None:
    g = torch.Generator().manual_seed(0)
    iou = torch.rand(4, 50, generator=g)
    got = Matcher(0.7, 0.3, allow_low_quality_matches=True)(iou).tolist()
    best_gt = iou.max(1).values
    for n in range(50):
        col = iou[:, n].tolist()
        m = max(range(4), key=lambda k: col[k])
        expected = m if col[m] >= 0.7 else (IGNORE if col[m] >= 0.3 else BACKGROUND)
        if any(iou[k, n] == best_gt[k] for k in range(4)):
            expected = m
        assert got[n] == expected


def test_sampler_counts_fraction_and_seed() -> None:
    labels = torch.tensor([1] * 30 + [0] * 500 + [-1] * 20)
    s = BalancedSampler(256, 0.25)
    pos, neg = s(labels, torch.Generator().manual_seed(0))
    assert int(pos.sum()) == 30 and int(neg.sum()) == 226  # 64 positives wanted, only 30 exist
    assert not (pos & neg).any() and not (pos | neg)[530:].any() and pos[:30].all()
    few = torch.tensor([1] * 300 + [0] * 20)
    pos, neg = s(few, torch.Generator().manual_seed(0))
    assert int(pos.sum()) == 64 and int(neg.sum()) == 20
    a = s(labels, torch.Generator().manual_seed(3))[1]
    b = s(labels, torch.Generator().manual_seed(3))[1]
    c = s(labels, torch.Generator().manual_seed(4))[1]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sampler_is_uniform_over_negatives() -> None:
    # Seeded statistical test: over 400 draws of 10 negatives from 40, each is picked 100 times in
    # expectation (binomial sd ~ 8.7); every count within 5 sd.
    labels = torch.zeros(40, dtype=torch.long)
    counts = torch.zeros(40)
    g = torch.Generator().manual_seed(0)
    s = BalancedSampler(10, 0.5)
    for _ in range(400):
        counts += s(labels, g)[1].float()
    assert counts.sum() == 4000
    assert (counts - 100).abs().max() < 5 * math.sqrt(400 * 0.25 * 0.75)
