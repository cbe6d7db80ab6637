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
   test steps, on aeon's KDD-TSAD_135 and on generated series with known spikes and bursts: per-step F1,
   the delay-adjusted F1 of Ren et al. (2019, Sec. 4.2), the best adjusted F1 over thresholds, ROC-AUC.

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

# Published test accuracies, each checked against its source file (not typed from memory):
# - fcn1d / resnet1d: Fawaz et al. (2019), "Deep learning for time series classification: a review",
#   the authors' results on the UCR 2018 archive, mean +- std over their 5 runs (hfawaz/dl-4-tsc,
#   results/results-ucr-128.csv, columns classifier_name fcn / resnet, accuracy); the same FCN and ResNet
#   as Wang, Yan & Oates (2017), rerun. Multivariate JapaneseVowels: results/results-mts-avg-std.csv
#   (Baydogan's MTS archive version of it, mean (std) over 10 runs).
# - inception_time: Fawaz et al. (2020), the InceptionTime ensemble of 5 networks on UCR 2018
#   (hfawaz/InceptionTime, results-InceptionTime-128.csv, rows InceptionTime); ours is one network.
# - 1nn_dtw: the UCR 2018 archive's DataSummary.csv, 1 - "DTW (w=100)" error (full-window DTW, 1-NN).
# Wang et al. (2017) Table 2 (UCR 2015, 44 problems, FCN/ResNet error) could not be checked from here, so
# none of its numbers are quoted. None: the source has no such row.
PUBLISHED: dict[str, dict[str, tuple[float, float] | float | None]] = {
    "GunPoint": {"fcn1d": (1.000, 0.000), "resnet1d": (0.9907, 0.0076), "inception_time": 1.000, "1nn_dtw": 0.9067},
    "ItalyPowerDemand": {"fcn1d": (0.9629, 0.0013), "resnet1d": (0.9615, 0.0027), "inception_time": 0.9650, "1nn_dtw": 0.9504},
    "ArrowHead": {"fcn1d": (0.8434, 0.0125), "resnet1d": (0.8377, 0.0238), "inception_time": 0.8457, "1nn_dtw": 0.7029},
    "OSULeaf": {"fcn1d": (0.9785, 0.0054), "resnet1d": (0.9802, 0.0061), "inception_time": 0.9421, "1nn_dtw": 0.5909},
    "ACSF1": {"fcn1d": (0.898, 0.0164), "resnet1d": (0.916, 0.0261), "inception_time": 0.920, "1nn_dtw": 0.640},
    "PickupGestureWiimoteZ": {"fcn1d": (0.744, 0.0297), "resnet1d": (0.704, 0.0297), "inception_time": 0.760, "1nn_dtw": 0.660},
    "JapaneseVowels": {"fcn1d": (0.993, 0.002), "resnet1d": (0.992, 0.003), "inception_time": None, "1nn_dtw": None},
    "BasicMotions": {"fcn1d": None, "resnet1d": None, "inception_time": None, "1nn_dtw": None},
}
# Greydanus (2020): the MNIST-1D table of the paper and of greydanus/mnist1d README.md (checked).
MNIST1D_PUBLISHED = {"logistic regression": 0.32, "MLP": 0.68, "CNN": 0.94, "GRU": 0.91, "human": 0.96}
DEFAULT_DATASETS = ("GunPoint", "ItalyPowerDemand", "ArrowHead", "BasicMotions", "OSULeaf", "JapaneseVowels", "ACSF1",
                    "PickupGestureWiimoteZ")


def _pub(v: tuple[float, float] | float | None) -> str:
    if v is None:
        return "-"
    return f"{v[0]:.4f} ± {v[1]:.4f}" if isinstance(v, tuple) else f"{v:.4f}"


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


def ucr(datasets: list[str], models: list[str], seeds: int, epochs: int, overrides: list[str] | None = None) -> None:
    extra = list(overrides or [])
    note = f"; {', '.join(extra)}" if extra else ""
    print(f"\n### UCR/UEA classification ({epochs} epochs, Adam 1e-3, cosine, batch 16, {seeds} seed(s){note})\n")
    print("| problem | model | test accuracy | published (see PUBLISHED) | 1-NN DTW (UCR 2018) | s / run |")
    print("|---|---|---|---|---|---|")
    for ds in datasets:
        for model in models:
            accs, secs = [], []
            for seed in range(seeds):
                s = _run([f"seed={seed}", f"model.name={model}", "data.name=ucr", f"data.dataset={ds}",
                          f"train.epochs={epochs}", *extra], "configs/ucr-fcn.yaml")
                accs.append(float(s["test_accuracy"]))
                secs.append(s["bench_seconds"])
            pub = PUBLISHED.get(ds, {})
            print(f"| {ds} | {model} | {_ms(accs)} | {_pub(pub.get(model))} | {_pub(pub.get('1nn_dtw'))} | "
                  f"{statistics.mean(secs):.0f} |", flush=True)


def mnist1d(seeds: int, epochs: int) -> None:
    accs = [float(_run([f"seed={s}", f"train.epochs={epochs}"], "configs/mnist1d-cnn.yaml")["test_accuracy"]) for s in range(seeds)]
    print(f"\n### MNIST-1D ({epochs} epochs, {seeds} seed(s))\n")
    print(f"| model | test accuracy |\n|---|---|\n| mnist1d_cnn (ours) | {_ms(accs)} |")
    for k, v in MNIST1D_PUBLISHED.items():
        print(f"| {k} (Greydanus 2020, Table 1) | {v:.2f} |")


def _baselines(config: str, overrides: list[str] | None = None) -> dict[str, dict[str, float]]:
    from cnnkit.data import build_data
    from cnnkit.tasks.forecasting import forecast_errors

    cfg = load_config(config, list(overrides or []))
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


def _synthetic_series(path: Path, steps: int = 240) -> None:
    """A stationary monthly series with Gaussian noise: ``10 + 2 sin(2 pi t / 12) + e_t``, ``e_t ~ N(0, 1)``
    (seed 0), whose true conditional quantiles are known (``10 + 2 sin + z_tau``: the 10-90% band covers
    80%); about Airline's length (144 months), so the training windows are as few and as easily overfitted."""
    rng = np.random.default_rng(0)
    t = np.arange(steps)
    v = 10 + 2 * np.sin(2 * np.pi * t / 12) + rng.normal(size=steps)
    path.write_text("t,value\n" + "\n".join(f"{i},{x:.5f}" for i, x in zip(t, v)) + "\n")


def forecasting(seeds: int, epochs: int | None, config: str = "configs/forecast-tcn.yaml") -> None:
    """Each seed trains once with the conformal calibration and once without (the same weights: a seeded
    run is deterministic), so the two coverage columns differ by the calibration alone."""
    keys = ("mae", "rmse", "smape", "mase")
    with tempfile.TemporaryDirectory() as tmp:
        synth = Path(tmp) / "synthetic.csv"
        _synthetic_series(synth)
        series = [("Airline", []), ("synthetic stationary, 240 months (known quantiles)",
                                    [f"data.series={synth}", "data.columns=[value]"])]
        for title, extra in series:
            ep = [f"train.epochs={epochs}"] if epochs else []
            cal = [_run([f"seed={s}", *extra, *ep, "task.conformal=true"], config) for s in range(seeds)]
            raw = [_run([f"seed={s}", *extra, *ep, "task.conformal=false"], config) for s in range(seeds)]
            print(f"\n### Forecasting: {title} ({config}, {seeds} seed(s))\n")
            print("| forecaster | MAE | RMSE | sMAPE % | MASE | 10-90% band coverage | q0.1 / q0.5 / q0.9 coverage | s / run |")
            print("|---|---|---|---|---|---|---|---|")
            for name, runs in (("TCN, uncalibrated", raw), ("TCN + CQR on validation", cal)):
                each = " / ".join(_ms([float(r[f"test_coverage_{q}"]) for r in runs]) for q in ("0.1", "0.5", "0.9"))
                print(f"| {name} | " + " | ".join(_ms([float(r[f"test_{k}"]) for r in runs]) for k in keys) + " | "
                      + _ms([float(r["test_interval_coverage"]) for r in runs]) + f" | {each} | "
                      + f"{statistics.mean(r['bench_seconds'] for r in runs):.0f} |", flush=True)
            for name, m in _baselines(config, extra).items():
                print(f"| {name} | " + " | ".join(f"{m[k]:.4f}" for k in keys) + " | - | - | - |")


def _synthetic_anomaly_series(root: Path, seed: int) -> str:
    """A normal training part (2,000 steps) and a test part (3,000 steps) of a noisy sine with a slow
    trend; the test part gets 6 spikes (one step, +-5 noise std) and 3 bursts (8 steps of 4x noise), as the
    KDD-TSAD_135 anomaly is. Written as ``root/synth{seed}/synth{seed}_TRAIN.csv`` / ``_TEST.csv``."""
    rng = np.random.default_rng(seed)
    period, sigma = rng.uniform(20, 60), 0.1
    t = np.arange(5000)
    v = np.sin(2 * np.pi * t / period) + 0.0002 * t + sigma * rng.normal(size=5000)
    lab = np.zeros(5000, dtype=int)
    spots = rng.choice(np.arange(2100, 4950, 30), 9, replace=False)
    for i, s in enumerate(spots):
        if i < 6:
            v[s] += rng.choice([-1, 1]) * 5 * sigma * 2
            lab[s] = 1
        else:
            v[s : s + 8] += 4 * sigma * rng.normal(size=8)
            lab[s : s + 8] = 1
    name = f"synth{seed}"
    (root / name).mkdir(parents=True, exist_ok=True)
    for split, sl in (("TRAIN", slice(0, 2000)), ("TEST", slice(2000, 5000))):
        rows = "\n".join(f"{i},{a:.5f},{b}" for i, a, b in zip(t[sl], v[sl], lab[sl]))
        (root / name / f"{name}_{split}.csv").write_text("timestamp,value,is_anomaly\n" + rows + "\n")
    return name


def anomaly(seeds: int, epochs: int | None, config: str = "configs/anomaly-srcnn.yaml", n_synthetic: int = 3) -> None:
    """SR-CNN and plain spectral residual scored on the same test steps by the same code
    (:func:`cnnkit.tasks.anomaly.point_metrics`): per-step F1 and delay-adjusted F1 at the run's threshold
    (SR-CNN only: spectral residual has no probability scale), the best adjusted F1 over thresholds (an
    oracle threshold, as the authors' script picks it), and ROC-AUC."""
    from cnnkit.data import build_data
    from cnnkit.models.srcnn import sr_scores
    from cnnkit.tasks.anomaly import point_metrics

    def table(title: str, extra: list[str]) -> None:
        runs = [_run([f"seed={s}", *extra] + ([f"train.epochs={epochs}"] if epochs else []), config) for s in range(seeds)]
        cfg = load_config(config, extra)
        b = build_data(cfg.data, input_shape=(1, 1), device="cpu", seed=0)
        y = b.test.labels[:, -1].numpy()
        sr = point_metrics(sr_scores(b.test.x[:, 0])[:, -1].numpy(), y, threshold=3.0)
        delay = int(cfg.task.kwargs().get("delay", 7))
        print(f"\n### Anomaly detection: {title} ({seeds} seed(s); {int(y.sum())} anomalous of {len(y)} test steps; delay k = {delay})\n")
        print("| detector | F1 per step | F1 adjusted | best F1 adjusted (oracle threshold) | ROC-AUC | s / run |")
        print("|---|---|---|---|---|---|")
        print(f"| SR-CNN (ours, threshold fitted on the clean validation part) | {_ms([float(r['test_f1']) for r in runs])} | "
              f"{_ms([float(r['test_f1_adjusted']) for r in runs])} | {_ms([float(r['test_best_f1_adjusted']) for r in runs])} | "
              f"{_ms([float(r['test_roc_auc']) for r in runs])} | {statistics.mean(r['bench_seconds'] for r in runs):.0f} |")
        print(f"| spectral residual (Ren et al. 2019, Eq. 6, threshold 3) | {sr['f1']:.4f} | {sr['f1_adjusted']:.4f} | "
              f"{sr['best_f1_adjusted']:.4f} | {sr['roc_auc']:.4f} | - |", flush=True)

    table("aeon's KDD-TSAD_135", [])
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(n_synthetic):
            name = _synthetic_anomaly_series(Path(tmp), k)
            table(f"synthetic series {k} (spikes and bursts)", [f"data.root={tmp}", f"data.series={name}"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=["ucr", "mnist1d", "forecasting", "anomaly"])
    ap.add_argument("--datasets", nargs="+", default=list(DEFAULT_DATASETS))
    ap.add_argument("--models", nargs="+", default=["fcn1d", "resnet1d", "inception_time"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=None, help="epochs per run (default: each recipe's)")
    ap.add_argument("--synthetic", type=int, default=3, help="generated anomaly series next to KDD-TSAD_135")
    ap.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                    help="config overrides for the UCR runs (e.g. data.normalize=false); repeatable")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if "ucr" in args.parts:
        ucr(args.datasets, args.models, args.seeds, args.epochs or 200, args.set)
    if "mnist1d" in args.parts:
        mnist1d(args.seeds, args.epochs or 60)
    if "forecasting" in args.parts:
        forecasting(args.seeds, args.epochs)
    if "anomaly" in args.parts:
        anomaly(args.seeds, args.epochs, n_synthetic=args.synthetic)


if __name__ == "__main__":
    main()
