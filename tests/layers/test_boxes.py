"""Box conversions, areas, IoU and box coding against naive per-box loops and hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from cnnkit.layers.boxes import BoxCoder, box_area, box_convert, box_iou, clip_boxes, remove_small_boxes


def _random_boxes(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * 50
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * 30 + 0.5
    return torch.cat([xy, xy + wh], 1)


def _naive_iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def test_conversions_hand_values_and_round_trips() -> None:
    xyxy = torch.tensor([[1.0, 2.0, 4.0, 8.0]])
    assert box_convert(xyxy, "xyxy", "xywh").tolist() == [[1.0, 2.0, 3.0, 6.0]]
    assert box_convert(xyxy, "xyxy", "cxcywh").tolist() == [[2.5, 5.0, 3.0, 6.0]]
    b = _random_boxes(20, 0)
    for fmt in ("xywh", "cxcywh"):
        torch.testing.assert_close(box_convert(box_convert(b, "xyxy", fmt), fmt, "xyxy"), b)
        torch.testing.assert_close(box_convert(box_convert(b, "xyxy", fmt), fmt, "xywh"), box_convert(b, "xyxy", "xywh"))
    with pytest.raises(ValueError, match="Received: in_fmt='xy'"):
        box_convert(b, "xy", "xyxy")


def test_iou_matches_naive_loop() -> None:
    a, b = _random_boxes(15, 1), _random_boxes(11, 2)
    ref = torch.tensor([[_naive_iou(p, q) for q in b.tolist()] for p in a.tolist()], dtype=torch.float64)
    torch.testing.assert_close(box_iou(a, b), ref)
    assert box_area(a).tolist() == pytest.approx([(x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in a.tolist()])


def test_iou_hand_values_and_degenerate_boxes() -> None:
    a = torch.tensor([[0.0, 0, 2, 2]])
    b = torch.tensor([[1.0, 1, 3, 3], [0.0, 0, 2, 2], [5.0, 5, 6, 6], [1.0, 1, 1, 1]])
    # 1 / (4 + 4 - 1); identical; disjoint; an empty box
    torch.testing.assert_close(box_iou(a, b), torch.tensor([[1 / 7, 1.0, 0.0, 0.0]]))
    z = torch.tensor([[1.0, 1, 1, 1]])
    assert box_iou(z, z).item() == 0.0  # zero union: 0, not NaN


def test_clip_and_remove_small() -> None:
    b = torch.tensor([[-3.0, 2, 70, 80], [10, 10, 10.5, 30]])
    assert clip_boxes(b, (64, 48)).tolist() == [[0.0, 2.0, 48.0, 64.0], [10.0, 10.0, 10.5, 30.0]]
    assert remove_small_boxes(b, 1.0).tolist() == [0]


def test_encode_matches_equation_and_round_trips() -> None:
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    boxes, ref = _random_boxes(30, 3), _random_boxes(30, 4)
    t = coder.encode(boxes, ref)
    for (x1, y1, x2, y2), (a1, b1, a2, b2), row in zip(boxes.tolist(), ref.tolist(), t.tolist()):
        w, h, wa, ha = x2 - x1, y2 - y1, a2 - a1, b2 - b1
        x, y, xa, ya = x1 + w / 2, y1 + h / 2, a1 + wa / 2, b1 + ha / 2
        assert row == pytest.approx([10 * (x - xa) / wa, 10 * (y - ya) / ha, 5 * math.log(w / wa), 5 * math.log(h / ha)])
    torch.testing.assert_close(coder.decode(t, ref), boxes)


def test_decode_clamps_huge_sizes() -> None:
    coder = BoxCoder()
    out = coder.decode(torch.tensor([[0.0, 0.0, 50.0, 50.0]]), torch.tensor([[0.0, 0.0, 16.0, 16.0]]))
    assert torch.isfinite(out).all()
    assert (out[0, 2] - out[0, 0]).item() == pytest.approx(1000.0, rel=1e-5)  # 16 * exp(log(1000 / 16))
    with pytest.raises(ValueError, match="4 positive weights"):
        BoxCoder((1.0, 0.0, 1.0, 1.0))
