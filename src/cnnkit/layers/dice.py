"""The Dice loss of V-Net (Milletari, Navab & Ahmadi 2016), for multi-class segmentation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DiceLoss", "dice_loss"]


def dice_loss(logits: Tensor, target: Tensor, *, ignore_index: int | None = 255, smooth: float = 1.0) -> Tensor:
    """``1 - mean_c D_c`` with Milletari et al.'s Dice coefficient per class ``c`` (Eq. 1):
    ``D_c = 2 sum_i p_ic g_ic / (sum_i p_ic^2 + sum_i g_ic^2)``, ``p`` the softmax probabilities, ``g`` the
    one-hot target, sums over every (non-ignored) pixel of the batch.

    Args:
        logits: ``(B, K, H, W)``.
        target: class indices ``(B, H, W)``; ``ignore_index`` pixels count for no class.
        smooth: added to numerator and denominator, so a class absent from both prediction and target
            scores 1 (not 0/0) and gradients stay finite.

    Deviations:
        The paper's loss is binary (foreground vs background); for K classes the per-class coefficients are
        averaged (the "generalised" use common since). ``smooth`` is not in the paper.

    Example:
        >>> t = torch.tensor([[[0, 1], [1, 1]]])
        >>> perfect = torch.nn.functional.one_hot(t, 2).permute(0, 3, 1, 2).float() * 50
        >>> round(float(dice_loss(perfect, t, smooth=0.0)), 4)
        0.0
    """
    if logits.ndim != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"Expected logits (B, K, H, W) and target (B, H, W). Received: {tuple(logits.shape)}, {tuple(target.shape)}")
    k = logits.shape[1]
    p = torch.softmax(logits.float(), dim=1)
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    g = F.one_hot(torch.where(valid, target, torch.zeros_like(target)).long(), k).permute(0, 3, 1, 2).float()
    v = valid[:, None].float()
    p, g = p * v, g * v
    dims = (0, 2, 3)
    inter = (p * g).sum(dims)
    den = (p * p).sum(dims) + (g * g).sum(dims)
    return 1 - ((2 * inter + smooth) / (den + smooth)).mean()


class DiceLoss(nn.Module):
    """:func:`dice_loss` as a module.

    Args:
        ignore_index: target value that counts for no class (None: none).
        smooth: added to numerator and denominator.

    Shape:
        logits ``(B, K, H, W)``, target ``(B, H, W)`` -> scalar.

    Reference:
        F. Milletari, N. Navab, S.-A. Ahmadi, "V-Net: Fully Convolutional Neural Networks for Volumetric
        Medical Image Segmentation", 3DV 2016, Sec. 3, Eq. 1.
    """

    def __init__(self, *, ignore_index: int | None = 255, smooth: float = 1.0) -> None:
        super().__init__()
        if smooth < 0:
            raise ValueError(f"Expected smooth >= 0. Received: smooth={smooth}")
        self.ignore_index = ignore_index
        self.smooth = float(smooth)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return dice_loss(logits, target, ignore_index=self.ignore_index, smooth=self.smooth)

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}, smooth={self.smooth}"
