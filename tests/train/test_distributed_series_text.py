"""DDP (2 CPU ranks, gloo on 127.0.0.1) for a series task and a text task through ``cnnkit.train.fit``:
quantile forecasting with its conformal calibration (a rule fitted on rank 0 and broadcast) and TextCNN
classification on a generated corpus. Each run completes on both ranks, writes one run folder, and every
rank reports the same test metrics and ``world_size: 2``."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from .test_distributed import _free_port

pytestmark = pytest.mark.slow  # two spawned interpreters per run: ~20 s on 2 loaded cores

WORLD = 2


def _write_inputs(kind: str, root: Path) -> None:
    """The data files, written once before the ranks start."""
    rng = np.random.default_rng(0)
    if kind == "forecast":
        t = np.arange(240)
        vals = 10 + 2 * np.sin(2 * np.pi * t / 12) + rng.normal(size=240)
        (root / "s.csv").write_text("t,value\n" + "\n".join(f"{i},{v:.4f}" for i, v in zip(t, vals)) + "\n")
        return
    words = {"pos": ["good", "great", "fine", "nice"], "neg": ["bad", "awful", "poor", "sad"]}
    with open(root / "t.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(80):
            label = ("pos", "neg")[i % 2]
            w.writerow([" ".join(rng.choice(words[label] + ["the", "a", "film"], 6)), label])


def _sets(kind: str, root: Path) -> list[str]:
    common = ["train.epochs=2", "train.threads=1", "optim.name=adam", "optim.lr=0.01", "optim.momentum=0", "seed=0"]
    if kind == "forecast":
        return ["task.name=forecasting", "task.horizon=4", "task.quantiles=[0.1,0.5,0.9]", "model.name=tcn",
                "model.num_channels=[4,4]", "data.name=series-forecast", f"data.series={root / 's.csv'}",
                "data.columns=[value]", "data.context=16", "data.horizon=4", "data.quantiles=[0.1,0.5,0.9]",
                "data.val_fraction=0.2", "data.batch_size=16", *common]
    return ["data.name=text-csv", f"data.root={root / 't.csv'}", "data.max_length=8", "model.name=textcnn",
            "data.batch_size=8", *common]


def _worker(rank: int, port: int, kind: str, tmp: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(WORLD), "LOCAL_RANK": str(rank)})
    from cnnkit.config import load_config
    from cnnkit.train import fit

    root = Path(tmp)
    summary = fit(load_config(None, _sets(kind, root)), out=root / "run", quiet=True)
    (root / f"summary{rank}.json").write_text(json.dumps({k: v for k, v in summary.items() if isinstance(v, (int, float, str))}))


@pytest.mark.parametrize("kind", ["forecast", "text"])
def test_two_rank_gloo_series_and_text(tmp_path: Path, kind: str) -> None:
    _write_inputs(kind, tmp_path)
    mp.spawn(_worker, args=(_free_port(), kind, str(tmp_path)), nprocs=WORLD, join=True)
    s0 = json.loads((tmp_path / "summary0.json").read_text())
    s1 = json.loads((tmp_path / "summary1.json").read_text())
    assert s0["world_size"] == 2 and s0["epochs"] == 2
    key = "test_rmse" if kind == "forecast" else "test_accuracy"
    assert s0[key] == s1[key]  # rank 0 evaluates and shares: every rank reports the same
    run = tmp_path / "run"
    assert (run / "summary.json").is_file() and (run / "model.safetensors").is_file()
    record = json.loads((run / "model.json").read_text())
    if kind == "forecast":  # the conformal offsets were fitted once and saved with the task
        assert len(record["task"]["offsets"]) == 3 and s0["calibration"].startswith("conformalized")
    assert all(torch.isfinite(v).all() for v in load_file(str(run / "model.safetensors")).values())
