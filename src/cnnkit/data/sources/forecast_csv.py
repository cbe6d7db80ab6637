"""``series-forecast``: windows of one long series from a CSV file, for ``task: forecasting``.

``data: {name: series-forecast, series: Airline, context: 36, horizon: 12}`` reads a CSV file (a header row,
then one row per time step): ``series`` is a file path, or a name among the forecasting series the ``aeon``
package ships (Airline, ShampooSales, Lynx, PBS_dataset, Uschange, solar, ...). ``columns`` picks the input
channels (default: every numeric column; dates and text are skipped); ``target`` the forecast one (default:
the first), which becomes channel 0. Missing cells (empty, ``?``, ``NA``) are filled by linear interpolation.

Splits are chronological: the last ``data.test_fraction`` of the steps are the test segment, the
``data.val_fraction`` before them validation; each split's windows (``context`` steps in, the next
``horizon`` out) start at every step whose target lies inside that split (rolling origin), and a window's
history may reach back into the earlier split, as a forecaster's would.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from ..._text import safe_text
from ...config.schema import DataConfig
from ...errors import DataError
from .._core import DATASETS, DatasetSpec, check_root
from ..build import DataBundle
from ..loader import TensorLoader
from ..series import fill_missing
from .ucr import aeon_data_dir

__all__ = ["ForecastOptions", "read_series_csv", "forecast_windows"]

_MISSING = {"", "?", "na", "nan", "null"}


class ForecastOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    series: str = Field("Airline", min_length=1, description="a CSV path, or a forecasting series aeon ships")
    columns: list[str] | None = Field(None, description="input columns (default: every numeric one)")
    target: str | None = Field(None, description="the column to forecast (default: the first input column)")
    context: int = Field(24, ge=2, le=100_000, description="steps the model sees")
    horizon: int = Field(12, ge=1, le=10_000, description="steps forecast")
    quantiles: list[float] | None = Field(None, description="as task.quantiles: the model outputs horizon x len(quantiles)")


def _find_csv(name: str, root: str | None) -> Path:
    if root is not None:
        r = check_root(root)
        assert r is not None
        if r.is_file():
            return r
        for p in (r / name, r / f"{name}.csv", r / name / f"{name}.csv"):
            if p.is_file():
                return p
        raise DataError(f"series-forecast: no {name} or {name}.csv in data.root {r}")
    p = Path(name).expanduser()
    if p.is_file():
        return p
    aeon = aeon_data_dir()
    if aeon is not None and "/" not in name and (aeon / name / f"{name}.csv").is_file():
        return aeon / name / f"{name}.csv"
    raise DataError(f"series-forecast: {safe_text(name, 80)!r} is neither a CSV file nor a series aeon ships; set data.series to a CSV path")


def read_series_csv(path: Path, columns: list[str] | None = None, target: str | None = None) -> tuple[np.ndarray, list[str]]:
    """``(values (C, T) float64, column names)``, the target first."""
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if len(rows) < 3:
        raise DataError(f"{path}: expected a header row and at least two rows of values")
    header = [h.strip() for h in rows[0]]

    def number(cell: str) -> float | None:
        c = cell.strip()
        if c.lower() in _MISSING:
            return math.nan
        try:
            return float(c)
        except ValueError:
            return None

    names = columns or [h for i, h in enumerate(header) if all(len(r) > i and number(r[i]) is not None for r in rows[1:])]
    if target is not None:
        names = [target] + [n for n in names if n != target]
    if not names:
        raise DataError(f"{path}: no numeric column (columns: {safe_text(', '.join(header), 120)})")
    out = []
    for n in names:
        if n not in header:
            raise DataError(f"{path}: no column {safe_text(n, 40)!r} (columns: {safe_text(', '.join(header), 120)})")
        i = header.index(n)
        vals = []
        for lineno, r in enumerate(rows[1:], start=2):
            v = number(r[i]) if len(r) > i else math.nan
            if v is None:
                raise DataError(f"{path}:{lineno}: column {safe_text(n, 40)!r} holds {safe_text(r[i], 40)!r}, not a number")
            vals.append(v)
        out.append(vals)
    values = np.asarray(out, dtype=np.float64)
    if np.isnan(values).all(axis=1).any():
        raise DataError(f"{path}: a column holds no values at all")
    return fill_missing(values), names


def forecast_windows(values: np.ndarray, starts: np.ndarray, context: int, horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x (N, C, context)``, ``y (N, horizon)`` (channel 0) for windows whose targets begin at ``starts``."""
    x = np.stack([values[:, s - context : s] for s in starts]) if len(starts) else np.zeros((0, values.shape[0], context))
    y = np.stack([values[0, s : s + horizon] for s in starts]) if len(starts) else np.zeros((0, horizon))
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32))


def _build(cfg: DataConfig, *, spec: DatasetSpec, input_shape: tuple[int, ...], device: torch.device, seed: int,
           rank: int = 0, world_size: int = 1) -> Any:
    o = ForecastOptions(**cfg.options())
    path = _find_csv(o.series, cfg.root)
    values, names = read_series_csv(path, o.columns, o.target)
    t = values.shape[1]
    n_test = max(o.horizon, int(round(t * cfg.test_fraction)))
    n_val = int(round(t * cfg.val_fraction))
    test_begin, val_begin = t - n_test, t - n_test - n_val
    if val_begin - o.context - o.horizon < 0:
        raise DataError(
            f"{path}: {t} steps are too few for context {o.context} + horizon {o.horizon} with a test segment of "
            f"{n_test}; lower data.context or data.test_fraction"
        )

    def starts(lo: int, hi: int) -> np.ndarray:  # targets begin in [lo, hi - horizon]
        return np.arange(max(lo, o.context), hi - o.horizon + 1)

    tr = starts(0, val_begin)
    va = starts(val_begin, test_begin) if n_val else np.zeros(0, dtype=np.int64)
    te = starts(test_begin, t)
    if not len(tr) or not len(te):
        raise DataError(f"{path}: no {'training' if not len(tr) else 'test'} window fits; lower data.context or data.horizon")
    common: dict[str, Any] = dict(seed=seed, device=device, keep_on_device=cfg.device_data)
    x, y = forecast_windows(values, tr, o.context, o.horizon)
    train = TensorLoader(x, y, batch_size=cfg.batch_size, shuffle=True, rank=rank, world_size=world_size, **common)
    val = None
    if len(va):
        val = TensorLoader(*forecast_windows(values, va, o.context, o.horizon), batch_size=cfg.eval_batch_size, **common)
    test = TensorLoader(*forecast_windows(values, te, o.context, o.horizon), batch_size=cfg.eval_batch_size, **common)
    c = values.shape[0]
    outputs = o.horizon * max(1, len(o.quantiles or []))
    pre = {"kind": "series", "input_shape": [c, o.context], "normalize": "none", "missing": "linear", "padding": "nan-end"}
    return DataBundle(
        train=train, val=val, test=test, num_classes=outputs, class_names=[], input_shape=(c, o.context),
        preprocessing=pre, train_indices=np.arange(len(tr)), val_indices=np.arange(len(va)) if len(va) else None,
        dataset="series-forecast", kind="series",
        model_kwargs={"in_channels": c, "num_classes": outputs, "seq_len": o.context},
        meta={"series": str(path.name), "columns": names, "context": o.context, "horizon": o.horizon,
              "quantiles": o.quantiles or [], "test_begin": int(test_begin), "steps": int(t)},
    )


DATASETS.add("series-forecast", DatasetSpec(
    "series-forecast", "windows of a long series from a CSV column (aeon's Airline etc.), for task: forecasting",
    kind="series", build=_build, options=ForecastOptions, has_test_split=True,
    bundled="aeon" if aeon_data_dir() is not None else None,
))
