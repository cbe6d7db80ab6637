"""``cnnkit runs``: the run folders under a folder, one row each, with a status read from the folder.

Status, from the files alone (no process is asked):

- ``finished``: ``summary.json`` is there (written once, after the test evaluation);
- ``running``: no summary, and ``metrics.jsonl`` (or, before the first epoch ends, the folder) was written
  within the last :data:`RUNNING_WINDOW_S` seconds or three epochs' time, whichever is longer;
- ``interrupted``: no summary and nothing written recently (a kill, a crash, a SIGTERM checkpoint);
  ``cnnkit train --resume RUN`` continues it.

A run folder may come from someone else: every file is read with a size bound, JSON/YAML with safe
loaders, and nothing it says is followed as a path. Strings are returned as they are; whoever shows them
sanitises them (:func:`format_runs` for the terminal; the dashboard escapes them for the page).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .._text import safe_markup
from ..errors import CnnkitError
from .folder import is_run_dir

__all__ = ["RUN_STATUSES", "RUNNING_WINDOW_S", "SORT_KEYS", "RunInfo", "find_runs", "list_runs",
           "read_metrics", "read_summary", "run_info", "runs_table"]

RUN_STATUSES = ("running", "finished", "interrupted")
RUNNING_WINDOW_S = 120.0
_MAX_SMALL = 4 << 20  # config.yaml, summary.json, env.json: a few kilobytes; far larger is not cnnkit's
_MAX_METRICS = 64 << 20  # metrics.jsonl: ~200 bytes an epoch
_SCAN_DEPTH = 3  # DIR/run, DIR/group/run, DIR/cv/fold-k


@dataclass
class RunInfo:
    """One run folder, as ``cnnkit runs`` lists it (``None``: the folder does not say)."""

    id: str
    path: Path
    name: str
    model: str | None = None
    data: str | None = None
    task: str | None = None
    epochs: int | None = None
    planned_epochs: int | None = None
    test_accuracy: float | None = None
    seconds: float | None = None
    started: str | None = None
    status: str = "interrupted"
    has_model: bool = False
    plots: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


def _read_small(path: Path, limit: int = _MAX_SMALL) -> str | None:
    try:
        if not path.is_file() or path.stat().st_size > limit:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _read_json(path: Path) -> dict[str, Any]:
    text = _read_small(path)
    try:
        value = json.loads(text) if text is not None else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _read_yaml(path: Path) -> dict[str, Any]:
    text = _read_small(path)
    try:
        value = yaml.safe_load(text) if text is not None else None
    except yaml.YAMLError:
        return {}
    return value if isinstance(value, dict) else {}


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of ``metrics.jsonl`` that parse as JSON objects (a torn last row, as a kill may leave, is
    dropped); numbers that are not finite become None."""
    text = _read_small(Path(run_dir) / "metrics.jsonl", _MAX_METRICS)
    rows: list[dict[str, Any]] = []
    for line in (text or "").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()})
    return rows


def read_summary(run_dir: str | Path) -> dict[str, Any]:
    """``summary.json`` as a dict ({} when absent, too large or not a JSON object)."""
    return _read_json(Path(run_dir) / "summary.json")


def _is_candidate(path: Path) -> bool:
    if is_run_dir(path):
        return True
    # Folders written by save_model and a config (Python API, older runs) without the marker.
    return (path / "config.yaml").is_file() and any((path / f).is_file() for f in ("model.json", "metrics.jsonl", "summary.json"))


def find_runs(root: str | Path) -> list[Path]:
    """``root`` if it is a run folder, else the run folders below it (a few levels deep, sorted; hidden
    folders and symbolic links to folders are skipped, so the scan stays inside ``root``)."""
    root = Path(root)
    if not root.is_dir():
        raise CnnkitError(f"runs folder not found: {root}")
    if _is_candidate(root):
        return [root]
    found: list[Path] = []

    def scan(folder: Path, depth: int) -> None:
        try:
            children = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_dir() and not p.is_symlink())
        except OSError:
            return
        for child in children:
            if _is_candidate(child):
                found.append(child)
                if is_run_dir(child) and depth < _SCAN_DEPTH:
                    scan(child, depth + 1)  # a cv folder holds one run folder per fold
            elif depth < _SCAN_DEPTH:
                scan(child, depth + 1)

    scan(root, 1)
    return found


def _status(run_dir: Path, has_summary: bool, rows: list[dict[str, Any]], now: float) -> str:
    if has_summary:
        return "finished"
    epoch_s = sorted(float(r["seconds"]) for r in rows if isinstance(r.get("seconds"), (int, float)))
    window = max(RUNNING_WINDOW_S, 3 * epoch_s[len(epoch_s) // 2]) if epoch_s else RUNNING_WINDOW_S
    latest = 0.0
    for p in (run_dir / "metrics.jsonl", run_dir, run_dir / "checkpoints"):
        try:
            latest = max(latest, p.stat().st_mtime)
        except OSError:
            pass
    return "running" if now - latest <= window else "interrupted"


def _model_name(cfg: dict[str, Any], summary: dict[str, Any]) -> str | None:
    if isinstance(summary.get("model"), str):
        return summary["model"]
    model = cfg.get("model")
    if isinstance(model, dict):
        if isinstance(model.get("name"), str):
            return model["name"]
        if model.get("spec") is not None:
            return "spec"
    return None


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def run_info(run_dir: str | Path, *, root: str | Path | None = None, now: float | None = None) -> RunInfo:
    """What the files of one run folder say (see the module docstring for the status)."""
    run_dir = Path(run_dir)
    rel = run_dir.relative_to(root).as_posix() if root is not None and run_dir != Path(root) else run_dir.name
    summary = _read_json(run_dir / "summary.json")
    has_summary = (run_dir / "summary.json").is_file()
    cfg = _read_yaml(run_dir / "config.yaml")
    env = _read_json(run_dir / "env.json")
    rows = read_metrics(run_dir)
    data = summary.get("dataset") if isinstance(summary.get("dataset"), str) else None
    if data is None and isinstance(cfg.get("data"), dict) and isinstance(cfg["data"].get("name"), str):
        data = cfg["data"]["name"]
    task = summary.get("task") if isinstance(summary.get("task"), str) else None
    if task is None:
        t = cfg.get("task")
        task = t.get("name") if isinstance(t, dict) and isinstance(t.get("name"), str) else (t if isinstance(t, str) else None)
    epochs = summary.get("epochs") if isinstance(summary.get("epochs"), int) else (len(rows) if rows else None)
    train = cfg.get("train")
    train = train if isinstance(train, dict) else {}
    planned = train.get("epochs") if isinstance(train.get("epochs"), int) else None
    seconds = _number(summary.get("wall_seconds"))
    if seconds is None and rows:
        seconds = sum(_number(r.get("seconds")) or 0.0 for r in rows)
    plots_dir = run_dir / "plots"
    try:
        plots = sorted(p.name for p in plots_dir.iterdir() if p.suffix == ".png" and p.is_file() and not p.is_symlink()) \
            if plots_dir.is_dir() else []
    except OSError:
        plots = []
    return RunInfo(
        id=rel,
        path=run_dir,
        name=run_dir.name,
        model=_model_name(cfg, summary),
        data=data,
        task=task,
        epochs=epochs,
        planned_epochs=planned,
        test_accuracy=_number(summary.get("test_accuracy")),
        seconds=seconds,
        started=env.get("time") if isinstance(env.get("time"), str) else None,
        status=_status(run_dir, has_summary, rows, time.time() if now is None else now),
        has_model=(run_dir / "model.json").is_file() and (run_dir / "model.safetensors").is_file(),
        plots=plots,
    )


SORT_KEYS = ("started", "name", "model", "data", "epochs", "accuracy", "time", "status")
_SORT_FIELD = {"accuracy": "test_accuracy", "time": "seconds"}


def list_runs(root: str | Path, *, sort: str = "started") -> list[RunInfo]:
    """:func:`run_info` of every run folder under ``root``, sorted by ``sort`` (one of :data:`SORT_KEYS`;
    accuracy and time descending, the rest ascending; runs that lack the value last)."""
    if sort not in SORT_KEYS:
        from ..errors import did_you_mean

        raise CnnkitError(f"Unknown sort key {sort!r}{did_you_mean(sort, SORT_KEYS)}; choose one of {', '.join(SORT_KEYS)}")
    root = Path(root)
    now = time.time()
    runs = [run_info(p, root=root, now=now) for p in find_runs(root)]
    attr = _SORT_FIELD.get(sort, sort)
    present = [r for r in runs if getattr(r, attr) is not None]
    missing = [r for r in runs if getattr(r, attr) is None]
    present.sort(key=lambda r: getattr(r, attr), reverse=sort in ("accuracy", "time"))
    return present + missing


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return ""
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def runs_table(runs: list[RunInfo]) -> Any:
    """The runs as a rich table (strings from the folders sanitised and printed as text, never markup)."""
    from rich import box
    from rich.table import Table

    # One space between columns (the box's divider, no padding) and none at the edges: a run name with its
    # timestamp and the other columns fit in 80 columns, where rich's default padding squeezed "lenet5".
    table = Table(title=f"cnnkit runs ({len(runs)})", box=box.SIMPLE_HEAD, show_edge=False, padding=0)
    for col in ("name", "model", "data", "epochs", "test acc", "time", "status"):
        table.add_column(col, justify="right" if col in ("epochs", "test acc", "time") else "left",
                         no_wrap=col not in ("model", "data"), overflow="fold")
    style = {"finished": "green", "running": "yellow", "interrupted": "red"}
    for r in runs:
        epochs = "" if r.epochs is None else str(r.epochs)
        if r.status != "finished" and r.planned_epochs:
            epochs = f"{r.epochs or 0}/{r.planned_epochs}"
        acc = "" if r.test_accuracy is None else f"{100 * r.test_accuracy:.2f}%"
        table.add_row(safe_markup(r.id, None), safe_markup(r.model or "", 40), safe_markup(r.data or "", 40), epochs, acc,
                      _fmt_seconds(r.seconds), f"[{style[r.status]}]{r.status}[/]")
    return table
