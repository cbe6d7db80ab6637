"""Greedy NMS and per-class NMS against a naive O(n^2) loop and a hand-computed case."""

from __future__ import annotations

import pytest
import torch

from cnnkit.layers import batched_nms, nms


def _iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _naive_nms(boxes: list[list[float]], scores: list[float], thr: float) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep: list[int] = []
    for i in order:
        if all(_iou(boxes[i], boxes[j]) <= thr for j in keep):
            keep.append(i)
    return keep


def _random(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 40
    wh = torch.rand(n, 2, generator=g) * 20 + 2
    return torch.cat([xy, xy + wh], 1), torch.rand(n, generator=g)


def test_hand_computed_case() -> None:
    # IoU(0, 1) = 81 / 119 = 0.68, IoU(0, 2) = 36 / 164 = 0.22, IoU(1, 2) = 49 / 151 = 0.32; box 3 is apart.
    boxes = torch.tensor([[0.0, 0, 10, 10], [1.0, 1, 11, 11], [4.0, 4, 14, 14], [30.0, 30, 40, 40]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    # 0.5 and 0.3: box 1 falls to box 0; box 2 only overlaps box 0 by 0.22 (its 0.32 with box 1 no longer counts).
    assert nms(boxes, scores, 0.5).tolist() == [3, 0, 2]
    assert nms(boxes, scores, 0.3).tolist() == [3, 0, 2]
    assert nms(boxes, scores, 0.2).tolist() == [3, 0]
    # Without box 0, box 1 suppresses box 2 at 0.3 but not at 0.35.
    assert nms(boxes[1:3], scores[1:3], 0.3).tolist() == [0]
    assert nms(boxes[1:3], scores[1:3], 0.35).tolist() == [0, 1]


@pytest.mark.parametrize("thr", [0.1, 0.3, 0.5, 0.7])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_naive_loop(thr: float, seed: int) -> None:
    boxes, scores = _random(60, seed)
    assert nms(boxes, scores, thr).tolist() == _naive_nms(boxes.tolist(), scores.tolist(), thr)


def test_batched_equals_per_class_loop() -> None:
    boxes, scores = _random(80, 5)
    classes = torch.randint(0, 4, (80,), generator=torch.Generator().manual_seed(6))
    got = batched_nms(boxes, scores, classes, 0.4).tolist()
    ref = []
    for c in range(4):
        idx = [i for i in range(80) if classes[i] == c]
        ref += [idx[j] for j in _naive_nms([boxes[i].tolist() for i in idx], [scores[i].item() for i in idx], 0.4)]
    assert sorted(got) == sorted(ref)
    assert scores[got].tolist() == sorted(scores[got].tolist(), reverse=True)
    # Two identical boxes of different classes both survive.
    b = torch.tensor([[0.0, 0, 5, 5], [0.0, 0, 5, 5]])
    assert batched_nms(b, torch.tensor([0.9, 0.8]), torch.tensor([0, 1]), 0.5).tolist() == [0, 1]


def test_empty_and_bad_shapes() -> None:
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []
    assert batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0), 0.5).tolist() == []
    with pytest.raises(ValueError, match=r"boxes \(N, 4\)"):
        nms(torch.zeros(3, 5), torch.zeros(3), 0.5)
