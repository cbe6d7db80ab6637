"""task: detection: the step sums the model's losses; COCO mAP against hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from cnnkit.errors import DataError
from cnnkit.models.detection import DetectionLosses
from cnnkit.tasks import create_task
from cnnkit.tasks.coco_eval import coco_map, to_coco_gt, to_coco_results

pytest.importorskip("pycocotools")  # the dense extra: pip install "cnnkit[dense]"


def _target(*rows: list[float], m: int = 3) -> torch.Tensor:
    t = torch.full((m, 5), -1.0)
    t[:, 1:] = 0
    for i, r in enumerate(rows):
        t[i] = torch.tensor(r)
    return t


def _dets(*rows: list[float], d: int = 5) -> torch.Tensor:
    out = torch.zeros(d, 6)
    out[:, 5] = -1
    for i, r in enumerate(rows):
        out[i] = torch.tensor(r)
    return out


def test_map_hand_cases() -> None:
    gt = [_target([0, 10, 10, 30, 30]), _target([1, 5, 5, 25, 45])]
    perfect = [_dets([10, 10, 30, 30, 0.9, 0]), _dets([5, 5, 25, 45, 0.8, 1])]
    assert coco_map(perfect, gt, num_classes=2, image_size=(64, 64)) == pytest.approx({"map": 1.0, "map50": 1.0})
    # IoU 0.62 with the one box of each class: matched at thresholds 0.50, 0.55, 0.60 -> AP 1 there, 0 above.
    w = 20 * 0.62  # [10, 10, 10 + w, 30] inside [10, 10, 30, 30]: IoU = w / 20
    shifted = [_dets([10, 10, 10 + w, 30, 0.9, 0]), _dets([5, 5, 25, 5 + 40 * 0.62, 0.8, 1])]
    got = coco_map(shifted, gt, num_classes=2, image_size=(64, 64))
    assert got["map50"] == pytest.approx(1.0) and got["map"] == pytest.approx(0.3)
    # Wrong class: nothing matched.
    wrong = [_dets([10, 10, 30, 30, 0.9, 1]), _dets([5, 5, 25, 45, 0.8, 0])]
    assert coco_map(wrong, gt, num_classes=2, image_size=(64, 64)) == {"map": 0.0, "map50": 0.0}
    # No detections at all; no ground truth at all.
    assert coco_map([_dets(), _dets()], gt, num_classes=2, image_size=(64, 64))["map"] == 0.0
    assert math.isnan(coco_map(perfect, [_target(), _target()], num_classes=2, image_size=(64, 64))["map"])


def test_map_ranks_by_score() -> None:
    # Two images of class 0; the higher-scored detection is a false positive: precision 1/2 at recall 1/2..1
    # for the true one ranked second. COCO's 101-point interpolated AP: recall 0..0.5 -> 0.5, 0.5..1 -> 0.667.
    gt = [_target([0, 0, 0, 20, 20]), _target([0, 30, 30, 50, 50])]
    dets = [_dets([0, 0, 20, 20, 0.5, 0], [40, 0, 60, 20, 0.9, 0]), _dets([30, 30, 50, 50, 0.4, 0])]
    got = coco_map(dets, gt, num_classes=1, image_size=(64, 64))
    # ranks: FP (0.9), TP (0.5), TP (0.4): precision 0, 1/2, 2/3 at recall 0, 1/2, 1 -> interpolated 2/3 everywhere
    assert got["map50"] == pytest.approx(2 / 3, abs=1e-6)


def test_coco_dicts() -> None:
    g = to_coco_gt([_target([1, 1, 2, 4, 6])], num_classes=2, image_size=(8, 8))
    assert g["annotations"][0]["bbox"] == [1, 2, 3, 4] and g["annotations"][0]["category_id"] == 2
    r = to_coco_results([_dets([1, 2, 4, 6, 0.5, 0])], category_ids=[7])
    assert r == [{"image_id": 1, "category_id": 7, "bbox": [1.0, 2.0, 3.0, 4.0], "score": 0.5}]


def test_steps_metrics_and_errors() -> None:
    task = create_task("detection")
    losses = DetectionLosses(*(torch.tensor(v, requires_grad=True) for v in (0.5, 0.25, 1.0, 0.125)))
    y = torch.stack([_target([0, 1, 1, 5, 5])] * 2)
    out = task.train_step(lambda x, t: losses, torch.zeros(2, 1, 8, 8), y)
    assert out.loss.item() == 1.875 and out.outputs.tolist() == [0.5, 0.25, 1.0, 0.125]
    state = task.metric_state(torch.device("cpu"))
    task.update_metrics(state, out)
    m = task.compute_metrics(state)
    assert m["loss"] == 1.875 and m["count"] == 2 and math.isnan(m["map"])
    ev = task.evaluate(lambda x, t: task.eval_step(lambda v: torch.stack([_dets([1, 1, 5, 5, 0.9, 0])] * 2), x, t),
                       [(torch.zeros(2, 1, 8, 8), y)], torch.device("cpu"))
    assert ev["map"] == pytest.approx(1.0) and ev["count"] == 2
    assert task.headline({"test_map": 0.5, "test_map50": 0.75}) == "test mAP@[.5:.95]: 0.5000, mAP@0.5: 0.7500"
    task.check_target(y)
    with pytest.raises(DataError, match="task detection reads padded boxes"):
        task.check_target(torch.zeros(2, dtype=torch.long))
    shown = task.present(_dets([1, 2, 3, 4, 0.7, 1])[None], class_names=["a", "b"])
    assert shown == [{"detections": [{"box": [1.0, 2.0, 3.0, 4.0], "score": pytest.approx(0.7), "class": 1, "name": "b"}]}]
