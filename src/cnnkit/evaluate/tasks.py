"""Evaluating and presenting runs of any task through its :class:`~cnnkit.tasks.Task`: the path
``evaluate`` and ``predict`` take for tasks other than image classification (multi-label, regression,
text classification, ...).

A run's ``model.json`` records its task (``task``: name and settings, fitted ones such as multilabel
thresholds included) and what its inputs are (``kind``); :func:`run_task` rebuilds the task from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .._text import safe_text
from ..errors import CnnkitError
from ..tasks import Task, create_task

__all__ = [
    "classifier_report_kind", "evaluate_task_run", "format_task_report", "run_kind", "run_task", "task_rows", "uses_task_path",
]

# Inputs whose classification runs get the full classifier report (confusion matrix, per-class metrics,
# calibration, a grid of the most confident errors: clips are shown as filmstrips) rather than the task's
# streamed sums. Text and series classifiers keep the task path (their errors cannot be drawn as images).
_CLASSIFIER_REPORT_KINDS = ("image", "clip")


def run_task(info: dict[str, Any]) -> Task | None:
    """The task a run was trained for, rebuilt from ``model.json`` (None: image classification, as
    written before tasks were recorded)."""
    record = info.get("task")
    if record is None:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("name"), str):
        raise CnnkitError("model.json: expected task to be a mapping with a name")
    kwargs = {k: v for k, v in record.items() if k != "name"}
    try:
        return create_task(record["name"], **kwargs)
    except CnnkitError as exc:
        raise CnnkitError(f"model.json: {safe_text(exc, 300)}") from None


def run_kind(info: dict[str, Any]) -> str:
    """What the run's inputs are: ``image`` (the default), ``text``, ``series``, ..."""
    kind = info.get("kind", "image")
    return kind if isinstance(kind, str) else "image"


def uses_task_path(info: dict[str, Any]) -> bool:
    """Whether ``evaluate``/``predict`` go through the task (anything but image classification)."""
    task = info.get("task")
    name = task.get("name") if isinstance(task, dict) else None
    return run_kind(info) != "image" or (name is not None and name != "classification")


def classifier_report_kind(info: dict[str, Any]) -> bool:
    """Whether ``evaluate`` writes the classifier report for this run: a classification run (the task
    recorded as ``classification``, or none) on images or clips."""
    task = info.get("task")
    name = task.get("name") if isinstance(task, dict) else None
    return name in (None, "classification") and run_kind(info) in _CLASSIFIER_REPORT_KINDS


def task_rows(task: Task, outputs: torch.Tensor, class_names: list[str] | None, *, top_k: int = 3) -> list[dict[str, Any]]:
    """:meth:`Task.present` rows, each with ``label`` (one line: the class, the labels, the values) and the
    fields :func:`~cnnkit.evaluate.write_predictions` reads (``top`` items carry ``class``)."""
    rows = task.present(outputs, class_names=class_names, top_k=top_k)
    for r in rows:
        for t in r.get("top", []):
            t.setdefault("class", t.get("index"))
        if "labels" in r:
            r["label"] = ";".join(r["labels"])
        elif "values" in r:
            r["label"] = " ".join(f"{v:.6g}" for v in r["values"])
        elif r.get("top"):
            r["label"] = r["top"][0]["name"]
    return rows


def evaluate_task_run(run_dir: str | Path, loaded: Any, task: Task, *, split: str = "test", data: str | None = None,
                      out: str | Path | None = None) -> dict[str, Any]:
    """The task's metrics of one split of a run's data (rebuilt from its ``config.yaml``), written to
    ``out/report.json`` (default ``RUN_DIR/eval-<split>/``)."""
    from ..runs import load_run_data, split_batches, split_loader

    run = load_run_data(run_dir, loaded, data=data)
    loader = split_loader(run, split)
    model = loaded.model.eval()
    dev = next(iter(model.parameters()), torch.empty(0)).device
    # Image loaders hold raw pixels, converted with the recorded preprocessing; others yield model input.
    pre = loaded.preprocessing if run_kind(loaded.info) == "image" else {}
    batches = split_batches(loader, pre, batch_size=int(run.cfg.data.eval_batch_size))

    def step(x: torch.Tensor, y: torch.Tensor) -> Any:
        with torch.no_grad():
            return task.eval_step(model, x.to(dev), y.to(dev))

    metrics = task.evaluate(step, batches, dev)
    report = {
        "report": "task", "task": task.name, "kind": run_kind(loaded.info), "split": split, "dataset": run.cfg.data.name,
        "count": metrics.get("count"), "metrics": {k: v for k, v in metrics.items() if k != "count"},
    }
    folder = Path(out) if out is not None else Path(run_dir) / (f"eval-{split}" + (f"-{data}" if data else ""))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "report.json").write_text(json.dumps(report, indent=2, default=str))
    except OSError as exc:
        raise CnnkitError(f"cannot write {folder / 'report.json'}: {exc.strerror or exc}") from None
    report["out"] = str(folder)
    return report


def format_task_report(report: dict[str, Any]) -> str:
    """The task report as text: one line per metric."""
    lines = [f"{report['task']} on the {report['split']} split of {safe_text(report.get('dataset'), 60)} ({report.get('count')} items)"]
    for k, v in report["metrics"].items():
        lines.append(f"  {k:<18} {v:.4f}" if isinstance(v, (int, float)) else f"  {k:<18} {v}")
    if report.get("out"):
        lines.append(f"report: {safe_text(report['out'], None)}/report.json")
    return "\n".join(lines)
