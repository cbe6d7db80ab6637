"""Time-series benchmarks: UCR/UEA accuracy next to published numbers, MNIST-1D, forecasting vs baselines.

Every run trains through ``cnnkit.train.fit`` (the CLI's path) in a temporary folder, one thread.

1. Classification on the UCR/UEA problems that aeon ships, for each model (``fcn1d``, ``resnet1d``,
   ``inception_time``): test accuracy mean +- std over seeds and wall seconds per run, next to the published
   accuracies (``PUBLISHED``). The papers train 1500-2000 epochs; ``--epochs`` sets our budget, so a gap
   at a small budget is the budget's, not the architecture's.
2. MNIST-1D (``mnist1d_cnn``) next to Greydanus (2020), Table 1.
3. Forecasting with ``configs/forecast-tcn.yaml`` next to the naive (last value) and seasonal-naive (the
   value one season back) forecasts of the same test windows, measured in the same run with the same
   metric code (:func:`cnnkit.tasks.forecasting.forecast_errors`).
4. Anomaly detection with ``configs/anomaly-srcnn.yaml`` next to the plain spectral residual of the same
   test steps (ROC-AUC and the best F1 over thresholds, both by scikit-learn).

    python benchmarks/timeseries.py                       # everything, 3 seeds (~1 h on 2 loaded cores)
    python benchmarks/timeseries.py --parts ucr --datasets GunPoint --models fcn1d --seeds 1 --epochs 20
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnkit.config import load_config
from cnnkit.train import fit

# Published test accuracies. Wang, Yan & Oates (2017), Table 2 (error rates of FCN, ResNet and 1-NN DTW,
# given here as 1 - error); Fawaz et al. (2020), InceptionTime on the UCR 85 archive. Transcribed by hand
# from the published tables (no copy of the papers was at hand when this file was written): check a value
# against the paper before citing it. Problems absent from a paper's table are None.
PUBLISHED: dict[str, dict[str, float | None]] = {
    "GunPoint": {"fcn1d": 1.000, "resnet1d": 0.993, "1nn_dtw": 0.907, "inception_time": 1.000},
    "ItalyPowerDemand": {"fcn1d": 0.970, "resnet1d": 0.960, "1nn_dtw": 0.950, "inception_time": 0.967},
    "OSULeaf": {"fcn1d": 0.988, "resnet1d": 0.979, "1nn_dtw": 0.591, "inception_time": None},
}
MNIST1D_PUBLISHED = {"logistic regression": 0.32, "MLP": 0.68, "CNN": 0.94, "GRU": 0.91, "human": 0.96}
DEFAULT_DATASETS = ("GunPoint", "ItalyPowerDemand", "ArrowHead", "BasicMotions", "OSULeaf", "JapaneseVowels")


def _run(overrides: list[str], config: str | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(config, ["train.threads=1", "train.checkpoint.every_epochs=1000", *overrides])
        start = time.perf_counter()
        summary = fit(cfg, out=Path(tmp) / "run", quiet=True)
        summary["bench_seconds"] = time.perf_counter() - start
        return summary


def _ms(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def ucr(datasets: list[str], models: list[str], seeds: int, epochs: int) -> None:
    print(f"\n### UCR/UEA classification ({epochs} epochs, Adam 1e-3, cosine, batch 16, {seeds} seed(s))\n")
    print("| problem | model | test accuracy | published | 1-NN DTW (published) | s / run |")
    print("|---|---|---|---|---|---|")
    for ds in datasets:
        for model in models:
            accs, secs = [], []
            for seed in range(seeds):
                s = _run([f"seed={seed}", f"model.name={model}", "data.name=ucr", f"data.dataset={ds}",
                          f"train.epochs={epochs}"], "configs/ucr-fcn.yaml")
                accs.append(float(s["test_accuracy"]))
                secs.append(s["bench_seconds"])
            pub = PUBLISHED.get(ds, {})
            p, d = pub.get(model), pub.get("1nn_dtw")
            print(f"| {ds} | {model} | {_ms(accs)} | {'-' if p is None else f'{p:.3f}'} | "
                  f"{'-' if d is None else f'{d:.3f}'} | {statistics.mean(secs):.0f} |", flush=True)


def mnist1d(seeds: int, epochs: int) -> None:
    accs = [float(_run([f"seed={s}", f"train.epochs={epochs}"], "configs/mnist1d-cnn.yaml")["test_accuracy"]) for s in range(seeds)]
    print(f"\n### MNIST-1D ({epochs} epochs, {seeds} seed(s))\n")
    print(f"| model | test accuracy |\n|---|---|\n| mnist1d_cnn (ours) | {_ms(accs)} |")
    for k, v in MNIST1D_PUBLISHED.items():
        print(f"| {k} (Greydanus 2020, Table 1) | {v:.2f} |")


def _baselines(config: str) -> dict[str, dict[str, float]]:
    from cnnkit.data import build_data
    from cnnkit.tasks.forecasting import forecast_errors

    cfg = load_config(config, [])
    b = build_data(cfg.data, input_shape=(1, 1), device="cpu", seed=0)
    x, y = b.test.x[:, 0].double(), b.test.labels.double()
    season, h = int(cfg.task.kwargs().get("season", 1)), y.shape[1]
    naive = x[:, -1:].expand(-1, h)
    idx = torch.arange(h) % season - season  # the value one season before each forecast step
    seasonal = x[:, idx + x.shape[1]] if season <= x.shape[1] else naive
    out = {}
    for name, pred in (("naive", naive), (f"seasonal naive (m={season})", seasonal)):
        e = forecast_errors(pred, y, x, season)
        n = y.numel()
        out[name] = {"mae": float(e["abs"].sum() / n), "rmse": float((e["sq"].sum() / n) ** 0.5),
                     "smape": float(e["smape"].sum() / n), "mase": float(e["mase"].mean())}
    return out


def forecasting(seeds: int, epochs: int | None, config: str = "configs/forecast-tcn.yaml") -> None:
    runs = [_run([f"seed={s}"] + ([f"train.epochs={epochs}"] if epochs else []), config) for s in range(seeds)]
    print(f"\n### Forecasting ({config}, {seeds} seed(s))\n")
    print("| forecaster | MAE | RMSE | sMAPE % | MASE | 80% interval coverage |\n|---|---|---|---|---|---|")
    keys = ("mae", "rmse", "smape", "mase")
    print("| TCN (ours) | " + " | ".join(_ms([float(r[f"test_{k}"]) for r in runs]) for k in keys) + " | "
          + _ms([float(r.get("test_interval_coverage", float("nan"))) for r in runs]) + " |")
    for name, m in _baselines(config).items():
        print(f"| {name} | " + " | ".join(f"{m[k]:.4f}" for k in keys) + " | - |")


def anomaly(seeds: int, epochs: int | None, config: str = "configs/anomaly-srcnn.yaml") -> None:
    from sklearn.metrics import precision_recall_curve, roc_auc_score

    from cnnkit.data import build_data
    from cnnkit.models.srcnn import sr_scores

    runs = [_run([f"seed={s}"] + ([f"train.epochs={epochs}"] if epochs else []), config) for s in range(seeds)]
    cfg = load_config(config, [])
    b = build_data(cfg.data, input_shape=(1, 1), device="cpu", seed=0)
    y = b.test.labels[:, -1].numpy()
    s = sr_scores(b.test.x[:, 0])[:, -1].numpy()
    p, r, _ = precision_recall_curve(y, s)
    best_f1 = float(np.max(2 * p * r / np.maximum(p + r, 1e-12)))
    print(f"\n### Anomaly detection ({config}, {seeds} seed(s))\n")
    print("| detector | F1 (threshold 0.5) | best F1 over thresholds | ROC-AUC |\n|---|---|---|---|")
    print(f"| SR-CNN (ours) | {_ms([float(r['test_f1']) for r in runs])} | - | {_ms([float(r['test_roc_auc']) for r in runs])} |")
    print(f"| spectral residual (Ren et al. 2019, Eq. 6) | - | {best_f1:.4f} | {roc_auc_score(y, s):.4f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=["ucr", "mnist1d", "forecasting", "anomaly"])
    ap.add_argument("--datasets", nargs="+", default=list(DEFAULT_DATASETS))
    ap.add_argument("--models", nargs="+", default=["fcn1d", "resnet1d", "inception_time"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=None, help="epochs per run (default: each recipe's)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if "ucr" in args.parts:
        ucr(args.datasets, args.models, args.seeds, args.epochs or 200)
    if "mnist1d" in args.parts:
        mnist1d(args.seeds, args.epochs or 60)
    if "forecasting" in args.parts:
        forecasting(args.seeds, args.epochs)
    if "anomaly" in args.parts:
        anomaly(args.seeds, args.epochs)


if __name__ == "__main__":
    main()
