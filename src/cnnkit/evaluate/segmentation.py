"""Segmentation runs: ``evaluate`` (mIoU, per-class IoU and Dice, pixel accuracy, the pixel confusion
matrix and its plot, sample figures) and ``predict`` (mask PNGs and colour overlays).

``cnnkit evaluate`` / ``cnnkit predict`` call these for a run whose ``model.json`` records
``task: segmentation``. Masks are written as palette PNGs in the Pascal VOC convention: the pixel values
are the class indices (what ``segmentation-folder`` reads back) and the palette colours them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .._text import safe_text
from ..errors import CnnkitError, DataError

__all__ = ["evaluate_segmentation_run", "format_segmentation_report", "predict_masks", "segmentation_task", "write_mask_table"]


def segmentation_task(info: dict[str, Any], num_classes: int | None = None):
    """The run's :class:`~cnnkit.tasks.Segmentation` (its settings from ``model.json``)."""
    from ..tasks import create_task

    record = dict(info.get("task") or {})
    record.pop("name", None)
    if num_classes is not None:
        record["num_classes"] = num_classes
    try:
        return create_task("segmentation", **record)
    except CnnkitError as exc:
        raise CnnkitError(f"model.json: {exc}") from None


def _num_classes(loaded: Any) -> int:
    return int(loaded.info.get("build", {}).get("num_classes") or len(loaded.class_names or []) or 2)


@torch.no_grad()
def evaluate_segmentation_run(
    loaded: Any,
    run_dir: str | Path,
    *,
    data: str | None = None,
    split: str = "test",
    out: str | Path | None = None,
    samples: int = 6,
) -> dict[str, Any]:
    """Evaluate a segmentation run on one split of its data; writes ``report.json``,
    ``pixel_confusion.png`` and ``samples.png`` to ``out`` (default ``RUN/eval-<split>``)."""
    from ..plots import plot_confusion_matrix
    from ..plots.segmentation import plot_segmentation_samples
    from ..runs import load_run_data
    from ..runs.run_data import split_loader
    from ..tasks.segmentation import align_target

    model = loaded.model.eval()
    device = next(iter(model.parameters())).device
    k = _num_classes(loaded)
    task = segmentation_task(loaded.info, k)
    run = load_run_data(run_dir, loaded, data=data)
    loader = split_loader(run, split)
    state = task.metric_state(device)
    first: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    for x, y in loader.epoch_batches(0):
        x, y = x.to(device), y.to(device)
        step = task.eval_step(model, x, y)
        task.update_metrics(state, step)
        if first is None:
            first = (x[:samples].cpu(), step.target[:samples].cpu(), step.outputs[:samples].argmax(1).cpu())
    metrics = task.compute_metrics(state)
    cm = task.confusion(state)
    names = list(run.class_names or [str(i) for i in range(k)])[:k]
    from ..tasks.segmentation_metrics import scores_from_confusion

    scores: dict[str, Any] = scores_from_confusion(cm)
    out = Path(out) if out is not None else Path(run_dir) / (f"eval-{split}" + (f"-{data}" if data else ""))
    files: dict[str, str] = {}
    try:
        files["pixel_confusion_png"] = str(plot_confusion_matrix(cm, names, out / "pixel_confusion.png", title="Pixel confusion matrix"))
        if first is not None:
            files["samples_png"] = str(plot_segmentation_samples(*first, out / "samples.png"))
    except OSError as exc:
        raise CnnkitError(f"cannot write to {out}: {exc.strerror or exc}") from None
    report: dict[str, Any] = {
        "task": "segmentation",
        "split": split,
        "n": metrics["count"],
        "loss": metrics["loss"],
        "miou": metrics["miou"],
        "dice": metrics["dice"],
        "pixel_accuracy": metrics["accuracy"],
        "per_class": {
            name: {"iou": scores["per_class_iou"][i], "dice": scores["per_class_dice"][i], "pixels": int(cm[i].sum())}
            for i, name in enumerate(names)
        },
        "confusion_matrix": cm.astype(np.int64).tolist(),
        "ignore_index": task.ignore_index,
        "run_dir": str(run_dir),
        "data": run.cfg.data.name,
        "files": files,
    }
    del align_target
    files["report_json"] = str(out / "report.json")
    (out / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


def format_segmentation_report(report: dict[str, Any]) -> str:
    """The report as text: headline numbers, then IoU / Dice / pixels per class."""
    lines = [
        f"Segmentation ({safe_text(report.get('split', 'test'), 40)}, n={report['n']})",
        f"  mIoU            {report['miou']:.4f}",
        f"  mean Dice       {report['dice']:.4f}",
        f"  pixel accuracy  {report['pixel_accuracy']:.4f}",
        f"  loss            {report['loss']:.4f}",
        f"  {'class':<16} {'IoU':>7} {'Dice':>7} {'pixels':>10}",
    ]
    fmt = lambda v: "      -" if v is None else f"{v:7.3f}"  # noqa: E731
    for name, m in report["per_class"].items():
        lines.append(f"  {safe_text(name, 16):<16} {fmt(m['iou'])} {fmt(m['dice'])} {m['pixels']:>10}")
    files = report.get("files") or {}
    if files:
        lines.append("wrote " + ", ".join(safe_text(f, None) for f in sorted(files.values())))
    return "\n".join(lines)


def _display_image(raw: torch.Tensor) -> np.ndarray:
    a = raw
    if a.dtype != torch.uint8:
        a = (a.float().clamp(0, 1) * 255).round().to(torch.uint8)
    arr = a.cpu().numpy()
    return arr[0] if arr.shape[0] == 1 else np.transpose(arr[:3], (1, 2, 0))


@torch.no_grad()
def predict_masks(
    loaded: Any,
    inputs: list[str | Path],
    *,
    out: str | Path,
    on_skip=None,
) -> list[dict[str, Any]]:
    """Predict a mask for every input image and write ``out/<stem>_mask.png`` (palette PNG of class
    indices) and ``out/<stem>_overlay.png``; returns one row per input (``input``, ``mask``, ``overlay``,
    ``classes``: pixel fraction per predicted class, ``text``), or ``{"input", "error"}`` for a skipped one.

    An image of another size than the training images is resized to it and the scores are resized back
    (bilinear) before the arg-max, so the mask has the image's own size.
    """
    from ..data.sources.scenes import voc_palette
    from ..plots.segmentation import overlay
    from .predict import iter_inputs

    model = loaded.model.eval()
    device = next(iter(model.parameters())).device
    names = loaded.class_names or [str(i) for i in range(_num_classes(loaded))]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    used: set[str] = set()
    palette = voc_palette()

    def skip(name: str, error: str) -> None:
        results.append({"input": name, "error": error})
        if on_skip is not None:
            on_skip(name, error)

    for name, raw, x, error in iter_inputs(inputs, loaded.preprocessing):
        if error is not None:
            skip(name, error)
            continue
        assert raw is not None and x is not None
        logits = model(x.to(device))
        logits = logits[0] if isinstance(logits, (tuple, list)) else logits
        h, w = raw.shape[-2:]
        if tuple(logits.shape[-2:]) != (h, w):
            logits = F.interpolate(logits.float(), size=(h, w), mode="bilinear", align_corners=False)
        mask = logits.argmax(1)[0].to(torch.uint8).cpu().numpy()
        stem = Path(name).stem or "input"
        base, i = stem, 1
        while stem in used:  # two inputs with one stem (a.png, a.jpg; .npy items) keep both
            i += 1
            stem = f"{base}-{i}"
        used.add(stem)
        mask_path, overlay_path = out / f"{stem}_mask.png", out / f"{stem}_overlay.png"
        try:
            im = Image.fromarray(mask, mode="L").convert("P")
            im.putpalette(palette)
            im.save(mask_path)
            Image.fromarray(overlay(_display_image(raw), mask)).save(overlay_path)
        except OSError as exc:
            raise CnnkitError(f"cannot write {mask_path}: {exc.strerror or exc}") from None
        counts = np.bincount(mask.ravel(), minlength=len(names)) / mask.size
        classes = {str(names[c]) if c < len(names) else str(c): float(f) for c, f in enumerate(counts) if f > 0}
        top = sorted(classes.items(), key=lambda kv: -kv[1])[:4]
        text = f"mask {mask_path} (" + ", ".join(f"{safe_text(n, 40)} {f:.1%}" for n, f in top) + ")"
        results.append({"input": name, "mask": str(mask_path), "overlay": str(overlay_path), "classes": classes, "text": text})
    failed = [r for r in results if "error" in r]
    if len(failed) == len(results):
        if len(failed) == 1:
            raise DataError(failed[0]["error"])
        raise DataError(f"none of the {len(failed)} inputs could be read; the first: {failed[0]['error']}")
    (out / "predictions.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    return results


def write_mask_table(results: list[dict[str, Any]], path: str | Path) -> Path:
    """:func:`predict_masks`'s rows as ``.json`` (as returned) or ``.csv`` (``input, mask, overlay, classes,
    error``; ``classes`` reads ``name fraction; ...``)."""
    import csv

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".json":
            path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
            return path
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["input", "mask", "overlay", "classes", "error"])
            w.writeheader()
            for r in results:
                classes = "; ".join(f"{n} {v:.4f}" for n, v in (r.get("classes") or {}).items())
                w.writerow({"input": r["input"], "mask": r.get("mask", ""), "overlay": r.get("overlay", ""),
                            "classes": classes, "error": r.get("error", "")})
    except OSError as e:
        raise CnnkitError(f"cannot write predictions to {path}: {e.strerror or e}") from None
    return path
