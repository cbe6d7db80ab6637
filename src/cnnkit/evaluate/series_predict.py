"""``predict`` for runs whose inputs are series (``kind: series`` in ``model.json``).

Inputs: ``.ts`` files (every case; labels, if any, are ignored), ``.npy`` arrays ``(L,)``, ``(C, L)`` or a
batch ``(N, C, L)`` (a 2-D array is one multivariate series when its first axis equals the model's channels,
else ``N`` univariate series), and ``.csv`` files with one univariate series per row (``?`` or an empty
cell: missing). Each is converted with the preprocessing in ``model.json``
(:func:`cnnkit.data.series_build.prepare_series`): missing values filled, per-series normalization, NaN
padding, the same code path as training. What a result holds comes from the run's task
(:meth:`cnnkit.tasks.Task.present`): top-k classes, a forecast, per-step anomaly scores.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.series_build import prepare_series
from ..data.sources.anomaly_csv import anomaly_windows
from ..data.sources.arrays import load_npy
from ..data.sources.ts_format import read_ts
from ..errors import CnnkitError, DataError
from ..tasks import create_task

__all__ = ["SERIES_SUFFIXES", "is_series_run", "load_series_inputs", "read_series_file", "predict_series"]

SERIES_SUFFIXES = (".ts", ".npy", ".csv")


def is_series_run(info: dict[str, Any]) -> bool:
    return info.get("kind") == "series" or (info.get("preprocessing") or {}).get("kind") == "series"


def _csv_rows(path: Path) -> list[np.ndarray]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    rows: list[np.ndarray] = []
    for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or all(not c.strip() for c in row):
            continue
        vals: list[float] = []
        header = False
        for cell in row:
            cell = cell.strip()
            if cell in ("", "?"):
                vals.append(math.nan)
                continue
            try:
                vals.append(float(cell))
            except ValueError:
                if not rows and lineno == 1:  # a header row
                    header = True
                    break
                raise DataError(f"{path}:{lineno}: {cell[:40]!r} is not a number") from None
        if not header:
            rows.append(np.asarray(vals, dtype=np.float64)[None, :])
    if not rows:
        raise DataError(f"{path} holds no series (one per row)")
    return rows


def read_series_file(path: str | Path, channels: int) -> list[tuple[str, np.ndarray]]:
    """``(name, case (C, L))`` for each series in one file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(f"{path} does not exist; check the path")
    if suffix == ".ts":
        cases = read_ts(path).series
    elif suffix == ".npy":
        arr = load_npy(path)
        if arr.dtype.kind not in "uif":
            raise DataError(f"{path}: expected numbers, not {arr.dtype}")
        if arr.ndim == 1:
            cases = [arr[None, :]]
        elif arr.ndim == 2:
            cases = [arr] if arr.shape[0] == channels and channels > 1 else [r[None, :] for r in arr]
        elif arr.ndim == 3:
            cases = list(arr)
        else:
            raise DataError(f"{path}: expected a series (L,), (C, L) or a batch (N, C, L). Received: {arr.shape}")
    elif suffix == ".csv":
        cases = _csv_rows(path)
    else:
        raise DataError(f"{path}: series inputs are .ts, .npy or .csv files")
    if len(cases) == 1:
        return [(str(path), np.asarray(cases[0], dtype=np.float64))]
    return [(f"{path}[{i}]", np.asarray(c, dtype=np.float64)) for i, c in enumerate(cases)]


def load_series_inputs(
    inputs: list[str | Path], preprocessing: dict[str, Any], on_skip: Callable[[str, str], None] | None = None,
    *, last: int | None = None,
) -> tuple[list[str], torch.Tensor]:
    """All series of ``inputs`` as one model-ready batch (padded to the longest, at least the training
    length); unreadable files are reported to ``on_skip`` and left out. ``last``: keep only each series'
    last ``last`` steps (a forecaster's context window)."""
    channels = int((preprocessing.get("input_shape") or [1])[0])
    names, cases = [], []
    for item in inputs:
        try:
            for name, case in read_series_file(item, channels):
                if case.ndim == 2 and case.shape[0] != channels:
                    raise DataError(f"{name}: {case.shape[0]} channels but the model reads {channels}")
                names.append(name)
                cases.append(case[:, -last:] if last else case)
        except CnnkitError as exc:
            if on_skip is None:
                raise
            on_skip(str(item), str(exc))
    if not cases:
        raise DataError("no series could be read from the inputs")
    length = max([int((preprocessing.get("input_shape") or [1, 1])[-1])] + [c.shape[-1] for c in cases])
    return names, prepare_series(cases, preprocessing, length=length, source="predict input")


@torch.no_grad()
def predict_series(
    loaded: Any, inputs: list[str | Path], *, top_k: int = 5, batch_size: int = 64,
    on_skip: Callable[[str, str], None] | None = None,
) -> list[dict[str, Any]]:
    """Results of a series run's model for ``inputs``, one row per series (see the module docstring)."""
    record = loaded.info.get("task") or {"name": "classification"}
    task = create_task(str(record.get("name", "classification")), **{k: v for k, v in record.items() if k != "name"})
    results: list[dict[str, Any]] = []

    def skip(name: str, error: str) -> None:
        results.append({"input": name, "error": error})
        if on_skip is not None:
            on_skip(name, error)

    if task.name == "anomaly":
        return results + _predict_anomaly(task, loaded, inputs, skip, batch_size)
    # A forecaster sees the last `context` steps of each history, as in training.
    context = int((loaded.preprocessing.get("input_shape") or [1, 0])[-1]) if hasattr(task, "forecast") else None
    names, x = load_series_inputs(inputs, loaded.preprocessing, on_skip=skip, last=context or None)
    model = loaded.model.eval()
    dev = next(iter(model.parameters()), torch.empty(0)).device
    if hasattr(task, "forecast"):  # forecasts in the series' units (the task scales each window)
        outs = torch.cat([task.forecast(model, x[i : i + batch_size].to(dev))[0].flatten(1).cpu() for i in range(0, len(x), batch_size)])
    else:
        outs = torch.cat([model(x[i : i + batch_size].to(dev)).float().cpu() for i in range(0, len(x), batch_size)])
    if task.name == "classification":
        rows = task.present(outs, class_names=loaded.class_names, top_k=top_k)
        for row in rows:  # the image predict's row format, so write_predictions takes both
            row["top"] = [{"class": t["index"], "name": t["name"], "probability": t["probability"]} for t in row["top"]]
    else:
        rows = task.present(outs, class_names=loaded.class_names, top_k=top_k)
    for name, row in zip(names, rows):
        results.append({"input": name, **row})
    return results


def _predict_anomaly(task: Any, loaded: Any, inputs: list[str | Path], skip: Callable[[str, str], None],
                     batch_size: int) -> list[dict[str, Any]]:
    """Every step of each series scored as the test split is: by the window of the run's length that ends
    at it (the start padded with the first value), the sigmoid of that window's last logit; the steps at or
    above the run's (fitted) threshold are listed."""
    w = int((loaded.preprocessing.get("input_shape") or [1, 1])[-1])
    model = loaded.model.eval()
    dev = next(iter(model.parameters()), torch.empty(0)).device
    rows: list[dict[str, Any]] = []
    for item in inputs:
        try:
            for name, case in read_series_file(item, 1):
                series = prepare_series([case], loaded.preprocessing, source=name)[0, 0].double().numpy()
                x, _ = anomaly_windows(series, np.zeros(len(series), dtype=np.float32), w)
                xt = torch.from_numpy(x.astype(np.float32))[:, None]
                logits = torch.cat([model(xt[i : i + batch_size].to(dev)).float()[:, -1].cpu() for i in range(0, len(xt), batch_size)])
                scores = torch.sigmoid(logits.double())
                flagged = torch.nonzero(scores >= task.threshold).flatten().tolist()
                rows.append({"input": name, "scores": [round(float(v), 6) for v in scores], "anomalies": flagged,
                             "threshold": task.threshold})
        except CnnkitError as exc:
            skip(str(item), str(exc))
    return rows
