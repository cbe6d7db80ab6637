"""Mean average precision of detections with the COCO evaluator (pycocotools), the standard implementation
of Lin et al.'s protocol (ECCV 2014; cocodataset.org/#detection-eval): AP averaged over IoU thresholds
0.50:0.05:0.95 (``map``) and at IoU 0.5 (``map50``, the Pascal VOC metric's threshold), up to 100
detections per image, all object sizes."""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Sequence

import torch

from ..errors import CnnkitError

__all__ = ["coco_map", "to_coco_gt", "to_coco_results"]


def to_coco_gt(targets: Sequence[torch.Tensor], *, num_classes: int, image_size: tuple[int, int]) -> dict:
    """A COCO ground-truth dict from padded targets (M, 5) per image (``class, x1, y1, x2, y2``)."""
    h, w = image_size
    images: list[dict] = []
    anns: list[dict] = []
    for i, t in enumerate(targets):
        images.append({"id": i + 1, "width": int(w), "height": int(h)})
        for row in t[t[:, 0] >= 0].tolist():
            c, x1, y1, x2, y2 = row
            anns.append({
                "id": len(anns) + 1, "image_id": i + 1, "category_id": int(c) + 1,
                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
            })
    return {"images": images, "annotations": anns, "categories": [{"id": k + 1, "name": str(k)} for k in range(num_classes)]}


def to_coco_results(detections: Sequence[torch.Tensor], category_ids: Sequence[int] | None = None, image_ids: Sequence[int] | None = None) -> list[dict]:
    """COCO result rows (``image_id, category_id, bbox [x, y, w, h], score``) from detections (D, 6) per
    image (``x1, y1, x2, y2, score, class``, class -1 = padding); ``category_ids[k]`` is class k's id
    (default k + 1), ``image_ids[i]`` image i's (default i + 1)."""
    rows = []
    for i, d in enumerate(detections):
        for x1, y1, x2, y2, s, c in d[d[:, 5] >= 0].tolist():
            rows.append({
                "image_id": int(image_ids[i]) if image_ids is not None else i + 1,
                "category_id": int(category_ids[int(c)]) if category_ids is not None else int(c) + 1,
                "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)], "score": round(float(s), 5),
            })
    return rows


def coco_map(detections: Sequence[torch.Tensor], targets: Sequence[torch.Tensor], *, num_classes: int, image_size: tuple[int, int]) -> dict[str, float]:
    """``{"map": AP@[.5:.95], "map50": AP@.5}`` of per-image detections against padded targets.

    NaN when there is no ground-truth box at all (COCO's -1); 0 when there are boxes but no detections.

    Raises:
        CnnkitError: pycocotools is not installed.
    """
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:  # an optional dependency: the dense extra
        raise CnnkitError("detection metrics need pycocotools: pip install 'cnnkit[dense]' (or pip install pycocotools)") from None
    gt_dict = to_coco_gt(targets, num_classes=num_classes, image_size=image_size)
    if not gt_dict["annotations"]:
        return {"map": math.nan, "map50": math.nan}
    rows = to_coco_results(detections)
    if not rows:
        return {"map": 0.0, "map50": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and table
        gt = COCO()
        gt.dataset = gt_dict
        gt.createIndex()
        dt = gt.loadRes(rows)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = ev.stats
    return {"map": max(float(stats[0]), 0.0), "map50": max(float(stats[1]), 0.0)}
