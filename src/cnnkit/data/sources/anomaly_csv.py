"""``series-anomaly``: windows of a labelled series for ``task: anomaly`` (SR-CNN's training data).

``data: {name: series-anomaly, series: KDD-TSAD_135, window: 64}`` reads ``*_TRAIN.csv`` / ``*_TEST.csv``
(a ``value`` column and a 0/1 ``is_anomaly`` column, the layout of the series aeon ships: KDD-TSAD_135 of
the KDD Cup 2021 / UCR anomaly archive) from ``data.root`` or aeon's data folder, or one CSV file
(``series: FILE.csv``), split chronologically by ``data.test_fraction``.

Training windows (every ``w`` consecutive steps of the training part) get synthetic anomalies, as Ren et
al. (2019), Sec. 3.3, Eq. 7, train SR-CNN: at the window's last step with probability ``inject`` and at any
other step with probability ``inject / 10``, ``x_i <- x_i + (mean_local + mean) (1 + var) r``, ``r ~ N(0,
1)``, with ``mean_local`` the mean of the preceding points, ``mean`` and ``var`` those of the window; the
labels mark the injected steps (and any labelled anomaly). Drawn once, from ``data.split_seed``. Test
windows end at every step of the test part (the first ``w - 1`` repeat the first value before the start).
With ``data.val_fraction``, the last part of the training steps is held out *without* injected anomalies:
windows ending at each of its steps, on whose normal steps ``task: anomaly`` fits its threshold.

Eq. 7 is not scale-free (``var`` grows with the square of the series' units: on a series near 70 with std
13 it made anomalies 10^4 times the signal, which teaches the CNN nothing about real ones), so each window
is first scaled to ``[0, 3]`` (min-max) and the factor ``1 + var`` capped at 10, as the authors' code does
(microsoft/anomalydetector, ``srcnn/generate_data.py``, which also takes ``mean_local`` as the average of
the point and the two before it); :class:`~cnnkit.models.srcnn.SRCNN` scales every window it sees alike.
"""

from __future__ import annotations

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
from .forecast_csv import read_series_csv
from .ucr import aeon_data_dir

__all__ = ["AnomalyOptions", "inject_anomalies", "anomaly_windows", "minmax3"]


class AnomalyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    series: str = Field("KDD-TSAD_135", min_length=1, description="a folder name with *_TRAIN/_TEST.csv, or one CSV file")
    value: str = Field("value", description="the value column")
    label: str = Field("is_anomaly", description="the 0/1 label column")
    window: int = Field(64, ge=8, le=4096, description="steps per window (SR-CNN's w)")
    inject: float = Field(0.5, ge=0, le=1, description="probability of an injected anomaly at a training window's last step")


def _read(path: Path, o: AnomalyOptions) -> tuple[np.ndarray, np.ndarray]:
    values, _ = read_series_csv(path, [o.value, o.label])
    return values[0], (values[1] > 0.5).astype(np.float32)


def _files(o: AnomalyOptions, root: str | None) -> tuple[Path, Path | None]:
    folder = check_root(root) if root is not None else None
    p = Path(o.series).expanduser() if folder is None else folder / o.series
    if folder is not None and folder.is_file():
        p = folder
    if p.is_file():
        return p, None
    if not p.is_dir() and folder is None:
        aeon = aeon_data_dir()
        p = aeon / o.series if aeon is not None else p
    if p.is_dir():
        tr, te = sorted(p.glob("*_TRAIN*.csv")), sorted(p.glob("*_TEST*.csv"))
        if tr and te:
            return tr[0], te[0]
    raise DataError(f"series-anomaly: {safe_text(o.series, 80)!r} is neither a CSV file nor a folder with *_TRAIN.csv and *_TEST.csv")


def minmax3(x: np.ndarray) -> np.ndarray:
    """Each row of ``x`` scaled to ``[0, 3]`` (the authors' ``normalize`` in ``srcnn/generate_data.py``)."""
    lo, hi = x.min(axis=-1, keepdims=True), x.max(axis=-1, keepdims=True)
    return 3 * (x - lo) / (hi - lo + 1e-5)


def inject_anomalies(x: np.ndarray, rng: np.random.Generator, p_last: float) -> tuple[np.ndarray, np.ndarray]:
    """Windows ``(N, w)`` scaled to ``[0, 3]`` with Ren et al.'s synthetic anomalies (see the module
    docstring); returns ``(x, injected (N, w) 0/1)``."""
    n, w = x.shape
    x = minmax3(x.astype(np.float64))
    hit = rng.random((n, w)) < p_last / 10
    hit[:, -1] = rng.random(n) < p_last
    mean, var = x.mean(1, keepdims=True), x.var(1, keepdims=True)
    csum = np.cumsum(np.pad(x, ((0, 0), (2, 0)), mode="edge"), axis=1)
    local = (csum[:, 2:] - np.pad(csum, ((0, 0), (1, 0)))[:, :w]) / 3  # mean of x[i-2..i], edge-padded
    r = rng.normal(size=(n, w))
    out = np.where(hit, x + (local + mean) * np.minimum(1 + var, 10) * r, x)
    return out, hit.astype(np.float32)


def anomaly_windows(series: np.ndarray, labels: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows ``(T, w)`` ending at every step (the start padded with the first value) and their labels."""
    xs = np.concatenate([np.full(w - 1, series[0]), series])
    ls = np.concatenate([np.zeros(w - 1, dtype=np.float32), labels])
    view = np.lib.stride_tricks.sliding_window_view
    return view(xs, w).copy(), view(ls, w).copy()


def _build(cfg: DataConfig, *, spec: DatasetSpec, input_shape: tuple[int, ...], device: torch.device, seed: int,
           rank: int = 0, world_size: int = 1) -> Any:
    o = AnomalyOptions(**cfg.options())
    tr_path, te_path = _files(o, cfg.root)
    s_tr, l_tr = _read(tr_path, o)
    if te_path is None:
        cut = int(len(s_tr) * (1 - cfg.test_fraction))
        s_tr, l_tr, s_te, l_te = s_tr[:cut], l_tr[:cut], s_tr[cut:], l_tr[cut:]
    else:
        s_te, l_te = _read(te_path, o)
    w = o.window
    # The last data.val_fraction of the training steps is a clean validation segment: windows ending at
    # each of its steps, without injected anomalies, so the anomaly task can fit its threshold to the
    # scores of normal steps (the training part of a UCR anomaly series is anomaly-free by construction).
    n_val = int(round(len(s_tr) * cfg.val_fraction))
    fit_end = len(s_tr) - n_val
    if fit_end < w + 1 or len(s_te) < 1:
        raise DataError(f"series-anomaly: {fit_end} training steps are too few for window {w}; lower data.window or data.val_fraction")
    view = np.lib.stride_tricks.sliding_window_view
    x_tr, y_tr = view(s_tr[:fit_end], w).copy(), view(l_tr[:fit_end], w).copy()
    x_tr, injected = inject_anomalies(x_tr, np.random.default_rng(cfg.split_seed), o.inject)
    y_tr = np.maximum(y_tr, injected)
    x_te, y_te = anomaly_windows(s_te, l_te, w)
    common: dict[str, Any] = dict(seed=seed, device=device, keep_on_device=cfg.device_data)

    def t(a: np.ndarray, x: bool) -> torch.Tensor:
        return torch.from_numpy(a.astype(np.float32))[:, None] if x else torch.from_numpy(a.astype(np.float32))

    k = len(x_tr)
    train = TensorLoader(t(x_tr, True), t(y_tr, False), batch_size=cfg.batch_size, shuffle=True,
                         rank=rank, world_size=world_size, **common)
    val = None
    if n_val:
        x_va, y_va = view(s_tr, w)[fit_end - w + 1 :], view(l_tr, w)[fit_end - w + 1 :]  # windows ending in the segment
        val = TensorLoader(t(x_va.copy(), True), t(y_va.copy(), False), batch_size=cfg.eval_batch_size, **common)
    test = TensorLoader(t(x_te, True), t(y_te, False), batch_size=cfg.eval_batch_size, **common)
    pre = {"kind": "series", "input_shape": [1, w], "normalize": "none", "missing": "linear", "padding": "nan-end"}
    return DataBundle(
        train=train, val=val, test=test, num_classes=w, class_names=[], input_shape=(1, w), preprocessing=pre,
        train_indices=np.arange(k), val_indices=np.arange(k, k + n_val) if n_val else None, dataset="series-anomaly",
        kind="series", model_kwargs={"in_channels": 1, "num_classes": w, "seq_len": w},
        meta={"series": o.series, "window": w, "test_steps": int(len(s_te)), "test_anomalies": int(l_te.sum())},
    )


DATASETS.add("series-anomaly", DatasetSpec(
    "series-anomaly", "windows of a labelled series (value, is_anomaly CSV; aeon's KDD-TSAD_135), for task: anomaly",
    kind="series", build=_build, options=AnomalyOptions, has_test_split=True,
    bundled="aeon" if aeon_data_dir() is not None else None,
))
