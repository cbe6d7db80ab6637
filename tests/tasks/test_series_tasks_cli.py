"""Forecasting and anomaly runs end to end through the CLI on generated CSV series."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cnnkit.cli import main

FAST = ["train.threads=1", "train.epochs=2", "optim.name=adam", "optim.lr=0.01", "optim.momentum=0", "data.batch_size=16"]


def _sets(items: list[str]) -> list[str]:
    return sum((["--set", s] for s in items), [])


def test_forecasting_cli(tmp_path: Path, capsys) -> None:
    t = np.arange(200)
    vals = 10 + np.sin(2 * np.pi * t / 12) + 0.01 * t
    (tmp_path / "s.csv").write_text("month,value\n" + "\n".join(f"{i},{v:.4f}" for i, v in zip(t, vals)) + "\n")
    out = tmp_path / "run"
    sets = ["task.name=forecasting", "task.horizon=4", "task.quantiles=[0.1,0.5,0.9]", "model.name=tcn",
            "model.num_channels=[4,4]", "model.kernel_size=3", "data.name=series-forecast", f"data.series={tmp_path / 's.csv'}",
            "data.columns=[value]", "data.context=16", "data.horizon=4", "data.quantiles=[0.1,0.5,0.9]", *FAST]
    assert main(["train", "--out", str(out), *_sets(sets)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_rmse"] > 0 and "test_interval_coverage" in summary
    assert main(["evaluate", str(out)]) == 0
    assert json.loads((out / "eval-test" / "report.json").read_text())["metrics"]["rmse"] == pytest.approx(summary["test_rmse"], rel=1e-4)
    np.save(tmp_path / "hist.npy", vals[-40:])  # longer than the context: its last 16 steps are used
    capsys.readouterr()
    assert main(["predict", str(out), str(tmp_path / "hist.npy"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows[0]["forecast"]) == 4 and 5 < rows[0]["forecast"][0] < 15  # in the series' units
    # a data horizon that disagrees with the task's is one line, exit 2
    assert main(["train", "--out", str(tmp_path / "bad"), *_sets(sets + ["data.horizon=3"])]) == 2


def test_anomaly_cli(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("TRAIN", 300), ("TEST", 200)):
        v = np.sin(np.arange(n) / 3) + 0.05 * rng.normal(size=n)
        lab = np.zeros(n, dtype=int)
        if split == "TEST":
            v[[50, 120]] += 5
            lab[[50, 120]] = 1
        folder = tmp_path / "toy"
        folder.mkdir(exist_ok=True)
        (folder / f"toy_{split}.csv").write_text("timestamp,value,is_anomaly\n" + "\n".join(f"{i},{a:.4f},{b}" for i, (a, b) in enumerate(zip(v, lab))) + "\n")
    out = tmp_path / "run"
    sets = ["task.name=anomaly", "model.name=srcnn", "model.window=16", "data.name=series-anomaly", f"data.root={tmp_path}",
            "data.series=toy", "data.window=16", *FAST]
    assert main(["train", "--out", str(out), *_sets(sets)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert 0 <= summary["test_f1"] <= 1 and 0 <= summary["test_roc_auc"] <= 1 and summary["test_count"] == 200
    assert "test_f1_adjusted" in summary and "test_best_f1_adjusted" in summary
    # predict scores every step of a raw series longer than the window, as the test split is scored
    np.save(tmp_path / "a.npy", np.sin(np.arange(40) / 3))
    capsys.readouterr()
    assert main(["predict", str(out), str(tmp_path / "a.npy"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows[0]["scores"]) == 40 and all(0 <= v <= 1 for v in rows[0]["scores"])
    assert rows[0]["threshold"] == pytest.approx(json.loads((out / "model.json").read_text())["task"].get("threshold", 0.5))
    # explain takes the series' last window (the model's input length), not the whole series
    assert main(["explain", str(out), str(tmp_path / "a.npy"), "--method", "saliency", "--out", str(tmp_path / "x")]) == 0
    assert list((tmp_path / "x").glob("*.png"))
