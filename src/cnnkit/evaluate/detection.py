"""``cnnkit evaluate`` and ``cnnkit predict`` for detection runs: COCO mAP on a split, and boxes drawn on
images with COCO JSON results."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .._text import safe_text
from ..data import apply_preprocessing
from ..errors import CnnkitError, DataError
from ..plots.detection import draw_detections, plot_detections
from ..runs.io import read_json
from ..tasks.coco_eval import coco_map, to_coco_results
from ..tasks.detection import Detection
from .predict import expand_inputs, read_input

__all__ = ["evaluate_detection_run", "format_detection_report", "is_detection_run", "predict_detections"]


def is_detection_run(run_dir: str | Path) -> bool:
    """Whether ``run_dir/model.json`` records ``task: detection``."""
    desc = Path(run_dir) / "model.json"
    if not desc.is_file() or desc.stat().st_size > 16 << 20:
        return False
    try:
        info = read_json(desc, what="model description")
    except CnnkitError:
        return False
    task = info.get("task") if isinstance(info, dict) else None
    return isinstance(task, dict) and task.get("name") == "detection"


@torch.no_grad()
def evaluate_detection_run(run_dir: str | Path, *, split: str = "test", out: str | Path | None = None, device: str | None = None) -> dict[str, Any]:
    """COCO mAP@[.5:.95] and mAP@0.5 of a detection run's model on one split of its data; writes
    ``report.json``, the COCO results (``detections.json``) and a figure into ``out`` (default
    ``RUN_DIR/eval-<split>/``)."""
    from ..runs import load_model, load_run_data, split_loader
    from ..runtime import resolve_device

    loaded = load_model(run_dir, device=resolve_device(device))
    run = load_run_data(run_dir, loaded)
    loader = split_loader(run, split)
    model = loaded.model.eval()
    dev = next(iter(model.parameters())).device
    dets, targets, first = [], [], None
    _, h, w = (int(v) for v in loaded.preprocessing["input_shape"])
    size = (h, w)
    channels = int(loaded.preprocessing["input_shape"][0])
    for x, y in loader:
        if x.shape[1] != channels:  # the data's own channels differ from the model's (gray data, colour model)
            x = x.expand(-1, channels, -1, -1) if x.shape[1] == 1 else x.mean(1, keepdim=True)
        d = model(x.to(dev)).float().cpu()
        if first is None:
            first = (x[:8].cpu(), d[:8], y[:8].cpu())
        dets.extend(d)
        targets.extend(y.float().cpu())
    k = len(run.class_names)
    metrics = coco_map(dets, targets, num_classes=k, image_size=size)
    report: dict[str, Any] = {
        "task": "detection", "split": split, "count": len(dets), "num_classes": k, **metrics,
        "run_dir": str(run_dir), "data": run.cfg.data.name,
    }
    folder = Path(out) if out is not None else Path(run_dir) / f"eval-{split}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "detections.json").write_text(json.dumps(to_coco_results(dets)), encoding="utf-8")
    if first is not None:
        plot_detections(*first[:2], first[2], folder / "detections.png")
    (folder / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    report["out"] = str(folder)
    return report


def format_detection_report(report: dict[str, Any]) -> str:
    return (
        f"{report['split']} split: {report['count']} images, {report['num_classes']} classes\n"
        f"mAP@[.5:.95] {report['map']:.4f}   mAP@0.5 {report['map50']:.4f}   (COCO evaluator, pycocotools)\n"
        f"report: {Path(report['out']) / 'report.json'}"
    )


@torch.no_grad()
def predict_detections(
    run_dir: str | Path,
    inputs: list[str | Path],
    *,
    output: str | Path | None = None,
    draw: str | Path | None = None,
    score_threshold: float = 0.3,
    device: str | None = None,
    on_skip: Callable[[str, str], None] | None = None,
) -> list[dict[str, Any]]:
    """Detections on image files, in each file's own pixel coordinates.

    Each image is brought to the model's input (the recorded resize and normalization), detected, and its
    boxes scaled back. Detections scoring below ``score_threshold`` are dropped. The images with their
    boxes drawn go to ``draw`` (default ``RUN_DIR/predict/``) as ``<stem>.png``; the COCO results
    (``image_id``, ``category_id``, ``bbox`` ``[x, y, w, h]``, ``score``; plus ``file_name`` per image in
    ``images``) go to ``output`` (default ``<draw>/detections.json``).

    Returns:
        ``[{"input", "width", "height", "detections": [{"box", "score", "class", "name"}, ...]}]``, or
        ``{"input", "error"}`` for an input that could not be read.
    """
    from ..runs import load_model
    from ..runtime import resolve_device

    if not inputs:
        raise CnnkitError("no inputs given: pass image files or folders of them")
    if output is not None and Path(output).suffix.lower() != ".json":
        raise CnnkitError(f"detection results are COCO JSON: --output must end in .json. Received: {safe_text(output, 200)}")
    loaded = load_model(run_dir, device=resolve_device(device))
    pre = loaded.preprocessing
    model = loaded.model.eval()
    dev = next(iter(model.parameters())).device
    names = loaded.class_names or []
    meta = (loaded.info.get("data_meta") or {}) if isinstance(loaded.info, dict) else {}
    cat_ids = meta.get("category_ids") if isinstance(meta.get("category_ids"), list) else None
    draw_dir = Path(draw) if draw is not None else Path(run_dir) / "predict"
    draw_dir.mkdir(parents=True, exist_ok=True)
    _, h, w = pre["input_shape"]
    task = Detection()
    results: list[dict[str, Any]] = []
    coco_rows: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    for path in expand_inputs(inputs):
        try:
            items = read_input(path)
        except CnnkitError as exc:
            results.append({"input": str(path), "error": str(exc)})
            if on_skip is not None:
                on_skip(str(path), str(exc))
            continue
        for name, raw in items:
            try:
                x = apply_preprocessing(raw[None], pre)
            except (CnnkitError, RuntimeError, ValueError) as exc:
                err = str(DataError(f"input {name}: cannot be converted to the model input: {exc}"))
                results.append({"input": name, "error": err})
                if on_skip is not None:
                    on_skip(name, err)
                continue
            h0, w0 = int(raw.shape[-2]), int(raw.shape[-1])
            d = model(x.to(dev)).float().cpu()[0]
            d = d[(d[:, 5] >= 0) & (d[:, 4] >= score_threshold)]
            d[:, [0, 2]] *= w0 / w
            d[:, [1, 3]] *= h0 / h
            found = task.present(d[None], class_names=names)[0]["detections"]
            image_id = len(images) + 1
            images.append({"id": image_id, "file_name": name, "width": w0, "height": h0})
            coco_rows += to_coco_results([d], category_ids=cat_ids, image_ids=[image_id])
            img = raw if raw.dtype == torch.uint8 else (raw.clamp(0, 1) * 255).round().to(torch.uint8)
            arr = img[0].numpy() if img.shape[0] == 1 else img[:3].permute(1, 2, 0).numpy()
            drawn = draw_detections(Image.fromarray(arr), found)
            target = draw_dir / f"{Path(name).stem}.png"
            drawn.save(target)
            results.append({"input": name, "width": w0, "height": h0, "detections": found, "image": str(target)})
    if not images:
        first = next((r["error"] for r in results if "error" in r), "no input could be read")
        raise CnnkitError(f"nothing to predict: {first}")
    out_path = Path(output) if output is not None else draw_dir / "detections.json"
    out_path.write_text(json.dumps({"images": images, "annotations": coco_rows}, indent=1), encoding="utf-8")
    return results
