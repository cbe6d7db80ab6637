"""Faster R-CNN: parameter count by hand, the losses against their equations, the SPP head against
per-level RoI pooling, and a tiny overfit (the model finds the box it was trained on)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnkit.layers.functional import roi_pool
from cnnkit.models import create_model
from cnnkit.models.detection import DetectionLosses, SpatialPyramidRoIPool, fast_rcnn_loss, smooth_l1, split_targets


def _backbone_params(c: int) -> int:
    # CIFAR ResNet-8 body, option A shortcuts: conv1 + BN, then one basic block per stage (16, 32, 64).
    conv = lambda i, o: 9 * i * o  # noqa: E731
    return conv(c, 16) + 32 + (conv(16, 16) * 2 + 64) + (conv(16, 32) + conv(32, 32) + 128) + (conv(32, 64) + conv(64, 64) + 256)


def _head_params(flat: int, k: int, rep: int = 256) -> int:
    return flat * rep + rep + rep * rep + rep + rep * (k + 1) + (k + 1) + rep * 4 * (k + 1) + 4 * (k + 1)


RPN = 64 * 64 * 9 + 64 + 64 * 9 + 9 + 64 * 36 + 36  # 3x3 conv, 9 objectness logits, 36 deltas


@pytest.mark.parametrize(("name", "flat"), [("faster_rcnn", 64 * 49), ("faster_rcnn_spp", 64 * (1 + 4 + 16))])
def test_parameter_count_by_hand(name: str, flat: int) -> None:
    with torch.device("meta"):
        model = create_model(name)
    assert sum(p.numel() for p in model.parameters()) == _backbone_params(3) + RPN + _head_params(flat, 10)


def test_fast_rcnn_loss_equation() -> None:
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    deltas = torch.arange(24.0).view(2, 12) / 10
    labels = torch.tensor([0, 2])
    targets = torch.tensor([[9.0, 9, 9, 9], [0.8, 1.0, 1.0, 1.5]])
    cls, loc = fast_rcnn_loss(logits, deltas, labels, targets)
    assert cls.item() == pytest.approx(F.cross_entropy(logits, labels).item())
    # Only RoI 1 (class 2) regresses, with its class-2 deltas t^2 = deltas[1, 8:12]; R = 2 normalizes.
    diff = (deltas[1, 8:12] - targets[1]).tolist()
    ref = sum(0.5 * d * d if abs(d) < 1 else abs(d) - 0.5 for d in diff) / 2
    assert loc.item() == pytest.approx(ref)
    assert smooth_l1(torch.tensor([0.5, -2.0])).tolist() == [0.125, 1.5]


def test_spp_roi_pool_equals_pooling_each_level() -> None:
    torch.manual_seed(0)
    f = torch.randn(2, 3, 13, 11)
    rois = torch.tensor([[0, 0, 0, 10, 12], [1, 2.4, 3.5, 9.6, 7.2], [0, 1.5, 2.5, 6.5, 6.5], [1, 0, 0, 3, 3]])
    got = SpatialPyramidRoIPool((1, 2, 4))(f, rois)
    ref = torch.cat([roi_pool(f, rois, n).flatten(1) for n in (1, 2, 4)], dim=1)
    torch.testing.assert_close(got, ref)


def test_split_targets_and_errors() -> None:
    t = torch.tensor([[[1, 0, 0, 4, 4], [-1, 0, 0, 0, 0]], [[-1, 0, 0, 0, 0], [-1, 0, 0, 0, 0]]]).float()
    boxes, labels = split_targets(t)
    assert [b.shape[0] for b in boxes] == [1, 0] and labels[0].tolist() == [1]
    with pytest.raises(ValueError, match=r"\(B, M, 5\)"):
        split_targets(torch.zeros(2, 5))


@pytest.mark.parametrize("name", ["faster_rcnn", "faster_rcnn_spp"])
def test_train_and_eval_outputs(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, in_channels=1, representation=32)
    x = torch.rand(2, 1, 64, 64)
    t = torch.tensor([[[0, 10, 10, 30, 30], [2, 40, 5, 60, 25]], [[1, 5, 30, 25, 60], [-1, 0, 0, 0, 0]]]).float()
    losses = model.train()(x, t)
    assert isinstance(losses, DetectionLosses) and all(torch.isfinite(v) and v >= 0 for v in losses)
    losses.total().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        dets = model(x)
    assert dets.shape == (2, 50, 6)
    valid = dets[..., 5] >= 0
    assert ((dets[..., 5] < 3) & (dets[..., 4] <= 1)).all()
    assert (dets[valid][:, :4] >= 0).all() and (dets[valid][:, [2]] <= 64).all()


@pytest.mark.slow
def test_overfits_one_image() -> None:
    # A trained detector must find the boxes it saw: 60 Adam steps on one image with two objects.
    torch.manual_seed(0)
    x = torch.zeros(1, 1, 64, 64)
    x[0, 0, 8:30, 10:28] = 1.0
    x[0, 0, 36:56, 34:60] = -1.0
    t = torch.tensor([[[0, 10, 8, 28, 30], [1, 34, 36, 60, 56]]]).float()
    model = create_model("faster_rcnn", num_classes=2, in_channels=1, representation=64)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    first = None
    for _ in range(60):
        loss = model(x, t).total()
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first
    model.eval()
    with torch.no_grad():
        d = model(x)[0]
    from cnnkit.layers.boxes import box_iou

    for cls, *box in t[0].tolist():
        mine = d[d[:, 5] == cls]
        assert len(mine) and box_iou(mine[:1, :4], torch.tensor([box])).item() > 0.5
