"""k-fold cross-validation: K trainings, each holding out one fold of the training set as validation.

The folds come from :func:`cnnkit.data.kfold_indices` (disjoint, covering the training indices,
stratified by default) through ``cfg.data.folds`` / ``cfg.data.fold``, which :func:`cnnkit.data.build_data`
turns into the train/validation split; the test split is untouched. Each fold is an ordinary run folder
(``OUT/fold-<i>``); ``OUT/cv_summary.json`` holds the per-fold numbers and their mean and standard
deviation (sample std, ``ddof=1``, the usual estimate from K folds).
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CnnkitError
from ..runs import atomic_write_text, make_run_dir
from .fit import fit

__all__ = ["cross_validate", "format_cv", "summarize_folds"]


def _numbers(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a (nested) summary dict, keys joined with '.'."""
    out: dict[str, float] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, bool):
            continue
        if isinstance(v, (int, float)) and math.isfinite(float(v)):
            out[key] = float(v)
        elif isinstance(v, dict):
            out.update(_numbers(v, key + "."))
    return out


def summarize_folds(fold_metrics: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation of each metric present in every fold."""
    if not fold_metrics:
        return {"mean": {}, "std": {}}
    keys = [k for k in fold_metrics[0] if all(k in m for m in fold_metrics)]
    mean, std = {}, {}
    for k in keys:
        v = np.array([m[k] for m in fold_metrics], dtype=np.float64)
        mean[k] = float(v.mean())
        std[k] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    return {"mean": mean, "std": std}


def cross_validate(
    cfg: Any,
    *,
    folds: int,
    stratified: bool = True,
    out: str | Path | None = None,
    overwrite: bool = False,
    quiet: bool = True,
) -> dict[str, Any]:
    """Train ``folds`` models with :func:`cnnkit.train.fit`, fold ``i`` held out as validation in run ``i``.

    Args:
        cfg: the run config (:class:`cnnkit.config.Config`); ``data.folds``/``data.fold``/``data.stratified``
            are set per run, and ``data.val_fraction`` is ignored by the data pipeline when folds are set.
        folds: K >= 2.
        stratified: keep the class ratios in every fold.
        out: the summary folder (default ``runs/<name>-cv-<timestamp>``); must be new or empty unless
            ``overwrite``.

    Returns:
        ``{"folds", "stratified", "out", "per_fold": [{"fold", "run_dir", "metrics"}], "mean", "std"}``,
        also written to ``OUT/cv_summary.json``.
    """

    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise CnnkitError(f"Expected folds >= 2. Received: folds={folds!r}")
    name = cfg.name or "cv"
    # The cv folder is a run folder like any other: it carries cnnkit's marker, so --overwrite replaces
    # only a folder cnnkit made (never the current folder, home, or a user's folder).
    out = make_run_dir(f"{name}-cv", out=out, overwrite=overwrite)
    per_fold: list[dict[str, Any]] = []
    for i in range(folds):
        fold_cfg = cfg.model_copy(deep=True)
        fold_cfg.data.folds = folds
        fold_cfg.data.fold = i
        fold_cfg.data.stratified = stratified
        fold_cfg.name = f"{name}-fold{i}"
        summary = fit(fold_cfg, out=out / f"fold-{i}", overwrite=True, quiet=quiet)
        metrics = _numbers({k: v for k, v in summary.items() if k != "run_dir"})
        per_fold.append({"fold": i, "run_dir": str(summary.get("run_dir", out / f"fold-{i}")), "metrics": metrics})
        # Written after every fold so an interrupted run keeps what it finished.
        stats = summarize_folds([f["metrics"] for f in per_fold])
        result = {"folds": folds, "stratified": stratified, "out": str(out), "completed": i + 1,
                  "per_fold": per_fold, **stats}
        atomic_write_text(out / "cv_summary.json", json.dumps(result, indent=2))
    return result


_CV_COLUMNS = (("final_val_accuracy", "val accuracy"), ("test_accuracy", "test accuracy"), ("test_loss", "test loss"))
# Other tasks' headline metrics, shown when the folds report them (cv_summary.json holds every metric).
_TASK_COLUMNS = (("test_f1_macro", "test macro F1"), ("test_map", "test mAP"), ("test_rmse", "test RMSE"), ("test_r2", "test R^2"))


def format_cv(result: dict[str, Any]) -> str:
    """Per-fold and mean ± std metrics of :func:`cross_validate` as a table (text)."""


    from rich.console import Console  # rich loads only when a table is printed (keeps `import cnnkit.train` fast)
    from rich.table import Table  # rich loads only when a table is printed (keeps `import cnnkit.train` fast)

    kind = "stratified " if result.get("stratified") else ""
    mean, std = result.get("mean", {}), result.get("std", {})
    columns = [c for c in _CV_COLUMNS if c[0] != "test_accuracy" or "test_accuracy" in mean]
    columns += [c for c in _TASK_COLUMNS if c[0] in mean]
    table = Table(title=f"{result['folds']}-fold {kind}cross-validation ({result['out']})")
    table.add_column("fold")
    for _, label in columns:
        table.add_column(label, justify="right")
    for fold in result["per_fold"]:
        m = fold["metrics"]
        table.add_row(str(fold["fold"]), *(f"{m[k]:.4f}" if k in m else "-" for k, _ in columns))
    table.add_row(
        "mean ± std", *(f"{mean[k]:.4f} ± {std[k]:.4f}" if k in mean else "-" for k, _ in columns), style="bold"
    )
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()
