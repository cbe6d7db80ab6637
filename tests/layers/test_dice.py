"""Dice loss (Milletari et al. 2016): hand-computed values, the module wrapper, errors."""

from __future__ import annotations

import pytest
import torch

from cnnkit.layers.dice import DiceLoss, dice_loss


def test_hand_computed_value():
    # Two pixels, two classes; probabilities (0.5, 0.5) everywhere (zero logits); truth [0, 1].
    # Per class: 2 * 0.5 / (0.5 + 1) = 2/3, so the loss is 1/3 without smoothing.
    loss = dice_loss(torch.zeros(1, 2, 1, 2), torch.tensor([[[0, 1]]]), smooth=0.0)
    assert float(loss) == pytest.approx(1 / 3)


def test_ignored_pixels_do_not_count_and_gradient_flows():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    y = torch.randint(0, 3, (2, 4, 4))
    y2 = y.clone()
    y2[0, 0, 0] = 255
    logits2 = logits.detach().clone()
    logits2[0, :, 0, 0] = 100.0  # a wild prediction on the ignored pixel changes nothing
    assert float(dice_loss(logits2, y2)) == pytest.approx(float(dice_loss(logits.detach(), y2)))
    DiceLoss()(logits, y).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_module_repr_and_errors():
    assert repr(DiceLoss(smooth=0.5)) == "DiceLoss(ignore_index=255, smooth=0.5)"
    with pytest.raises(ValueError, match="Expected smooth >= 0"):
        DiceLoss(smooth=-1)
    with pytest.raises(ValueError, match=r"Expected logits \(B, K, H, W\)"):
        dice_loss(torch.zeros(1, 2, 3, 3), torch.zeros(1, 3, 4, dtype=torch.long))
