"""Session fixtures: two tiny digits runs under one runs folder (see serve_helpers), and a tiny text run."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from .serve_helpers import make_serve_run


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve-runs")
    make_serve_run(root / "tiny-a", seed=0)
    make_serve_run(root / "tiny-b", seed=1, steps=40)
    return root


@pytest.fixture(scope="session")
def run_a(runs_root: Path) -> Path:
    return runs_root / "tiny-a"


@pytest.fixture(scope="session")
def run_b(runs_root: Path) -> Path:
    return runs_root / "tiny-b"


WORDS = {"pos": ["good", "great", "superb"], "neg": ["bad", "dull", "awful"]}


@pytest.fixture(scope="session")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve-text")
    rng = random.Random(0)
    with open(root / "t.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(80):
            label = "pos" if i % 2 else "neg"
            w.writerow([" ".join(rng.choice([*WORDS[label], "the", "a", "film"]) for _ in range(6)), label])
    run = root / "run"
    args = ["train", "--out", str(run), "--quiet"]
    for s in ("data.name=text-csv", f"data.root={root / 't.csv'}", "data.max_length=8", "model.name=textcnn",
              "model.embed_dim=16", "model.num_filters=8", "data.batch_size=8", "train.epochs=3", "train.threads=1",
              "optim.name=adam", "optim.lr=0.01", "optim.momentum=0", "seed=0"):
        args += ["--set", s]
    from cnnkit.cli import main

    assert main(args) == 0
    return run
