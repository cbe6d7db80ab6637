"""``evaluate`` for runs of tasks other than classification: the task's own metrics over one split
(:meth:`cnnkit.tasks.Task.evaluate`), written to ``report.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..runs import atomic_write_text, split_loader
from ..tasks import create_task

__all__ = ["evaluate_task_run", "task_of"]


def task_of(info: dict[str, Any]) -> dict[str, Any]:
    record = info.get("task")
    return record if isinstance(record, dict) and record.get("name") else {"name": "classification"}


@torch.no_grad()
def evaluate_task_run(run_dir: str | Path, loaded: Any, run: Any, *, split: str, out: str | Path | None) -> dict[str, Any]:
    record = task_of(loaded.info)
    task = create_task(str(record["name"]), **{k: v for k, v in record.items() if k != "name"})
    model = loaded.model.eval()
    dev = next(iter(model.parameters()), torch.empty(0)).device
    loader = split_loader(run, split)
    metrics = task.evaluate(lambda x, y: task.eval_step(model, x.to(dev), y.to(dev)), loader, dev)
    report = {"split": split, "task": record, "n": metrics.get("count"), "metrics": metrics, "run_dir": str(run_dir),
              "data": run.cfg.data.name}
    folder = Path(out) if out is not None else Path(run_dir) / f"eval-{split}"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "report.json", json.dumps(report, indent=2))
    return report
