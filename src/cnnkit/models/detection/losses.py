"""The multi-task losses of Fast R-CNN and the region proposal network."""

from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor

__all__ = ["DetectionLosses", "fast_rcnn_loss", "smooth_l1"]


class DetectionLosses(NamedTuple):
    """What a detector returns in training mode: the four terms of Faster R-CNN's training loss (their
    sum is what is minimized, Ren et al. 2015, Sec. 3.2, "approximate joint training")."""

    rpn_objectness: Tensor
    rpn_box: Tensor
    classifier: Tensor
    box: Tensor

    def total(self) -> Tensor:
        return self.rpn_objectness + self.rpn_box + self.classifier + self.box


def smooth_l1(x: Tensor, beta: float = 1.0) -> Tensor:
    """Elementwise robust loss of Fast R-CNN, Eq. 3: ``0.5 x^2 / beta`` if ``|x| < beta``, else
    ``|x| - 0.5 beta`` (the paper's beta = 1; the RPN of torchvision / Detectron uses 1/9)."""
    return F.smooth_l1_loss(x, x.new_zeros(()).expand_as(x), reduction="none", beta=beta)


def fast_rcnn_loss(
    class_logits: Tensor, box_deltas: Tensor, labels: Tensor, targets: Tensor, *, beta: float = 1.0, lam: float = 1.0
) -> tuple[Tensor, Tensor]:
    """Fast R-CNN's multi-task loss (Girshick 2015, Eq. 1) over R sampled RoIs:

    ``L(p, u, t^u, v) = L_cls(p, u) + lam [u >= 1] L_loc(t^u, v)``, ``L_cls = -log p_u`` (softmax
    cross-entropy), ``L_loc = sum_{i in x,y,w,h} smooth_L1(t^u_i - v_i)`` (Eq. 2).

    Args:
        class_logits: (R, K + 1), class 0 is background.
        box_deltas: (R, 4 (K + 1)): per-class box regression ``t^k``.
        labels: (R,) int64 ``u`` in 0..K.
        targets: (R, 4) regression targets ``v`` (used where ``u >= 1``).

    Returns:
        ``(L_cls, lam * L_loc)``, each averaged over the R RoIs (the mean over the minibatch; the box
        term's normalizer is R too, so background RoIs dilute it, as in torchvision and Detectron).
    """
    cls = F.cross_entropy(class_logits.float(), labels)
    r = labels.shape[0]
    pos = (labels > 0).nonzero().flatten()
    per_class = box_deltas.float().view(r, -1, 4)
    t_u = per_class[pos, labels[pos]]
    loc = smooth_l1(t_u - targets[pos].float(), beta).sum() / max(r, 1)
    return cls, lam * loc
