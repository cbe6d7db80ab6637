"""A series classifier end to end through the CLI on a generated UCR problem: train, resume, evaluate,
predict (.ts, .npy, .csv), explain, export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnkit.cli import main

from ..data.sources.test_ucr import write_problem

FAST = ["train.threads=1", "train.epochs=2", "data.batch_size=8", "optim.name=adam", "optim.lr=0.01", "optim.momentum=0"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_problem(tmp_path_factory.mktemp("ucr"), unequal=True)
    out = tmp_path_factory.mktemp("runs") / "fcn"
    sets = [f"data.root={root}", "data.name=ucr", "data.dataset=Toy", "model.name=fcn1d", *FAST]
    assert main(["train", "--out", str(out), *sum((["--set", s] for s in sets), [])]) == 0
    return out


def test_train_writes_series_run(run: Path) -> None:
    summary = json.loads((run / "summary.json").read_text())
    assert 0 <= summary["test_accuracy"] <= 1
    info = json.loads((run / "model.json").read_text())
    assert info["kind"] == "series" and info["build"]["seq_len"] == 30 and info["class_names"] == ["early", "late"]


def test_resume_extends_the_run(run: Path) -> None:
    assert main(["train", "--resume", str(run), "--set", "train.epochs=3"]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if "train_loss" in r][-1] == 3


def test_evaluate_predict_explain(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(run)]) == 0
    ts = next(p for p in run.parent.parent.glob("ucr*/Toy_TEST.ts"))
    rng = np.random.default_rng(0)
    np.save(tmp_path / "one.npy", rng.normal(size=30))
    (tmp_path / "rows.csv").write_text("1,2,3,?,5,4,3\n0,0,1,1,0,0,1\n")
    out = tmp_path / "p.json"
    capsys.readouterr()
    assert main(["predict", str(run), str(ts), str(tmp_path / "one.npy"), str(tmp_path / "rows.csv"), "--output", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert len(rows) == 24 + 1 + 2 and all(r["label"] in ("early", "late") for r in rows)
    paths = tmp_path / "exp"
    assert main(["explain", str(run), str(tmp_path / "one.npy"), "--method", "integrated-gradients", "--out", str(paths)]) == 0
    record = json.loads((paths / "attributions.json").read_text())
    assert len(record[0]["attribution"]) == 30 and any(p.suffix == ".png" for p in paths.iterdir())
    (tmp_path / "bad.npy").write_bytes(b"nonsense")
    assert main(["predict", str(run), str(tmp_path / "bad.npy")]) == 2
    assert "bad.npy" in capsys.readouterr().err


def test_integrated_gradients_are_complete(run: Path) -> None:
    """Sundararajan et al. (2017), Prop. 1: attributions sum to F(x) - F(baseline)."""
    import torch

    from cnnkit.explain.series import attribute_series
    from cnnkit.runs import load_model

    model = load_model(run).model.eval()
    x = torch.randn(2, 1, 30)
    a, tgt, _ = attribute_series(model, x, "integrated-gradients", target=1)
    with torch.no_grad():
        diff = model(x)[:, 1] - model(torch.zeros_like(x))[:, 1]
    torch.testing.assert_close(a.sum(-1), diff, atol=2e-2, rtol=5e-2)


def test_export_onnx(run: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    assert main(["export", str(run), "--out", str(tmp_path / "m.onnx")]) == 0


def test_a_lying_header_stops_train_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_problem(tmp_path / "ucr")
    p = root / "Toy_TRAIN.ts"
    p.write_text(p.read_text().replace("@seriesLength 30", "@seriesLength 31"))
    code = main(["train", "--out", str(tmp_path / "run"), "--set", "data.name=ucr", "--set", f"data.root={root}",
                 "--set", "data.dataset=Toy", "--set", "model.name=fcn1d"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Toy_TRAIN.ts" in err[0] and "@seriesLength 31" in err[0]
    assert not (tmp_path / "run").exists()


def test_resume_is_exact_with_series_augmentation(tmp_path: Path) -> None:
    """2 epochs + resume to 4 gives the weights of 4 epochs straight: batches and their augmentation are
    functions of (seed, epoch, step)."""
    from safetensors.torch import load_file

    root = write_problem(tmp_path / "ucr", unequal=True)
    sets = [f"data.root={root}", "data.name=ucr", "data.dataset=Toy", "model.name=tcn", "model.num_channels=[4,4]",
            "model.kernel_size=3", "model.p=0.1", "schedule.name=none", "data.series_augment.jitter=0.05",
            "data.series_augment.time_warp=0.1", *FAST]
    args = sum((["--set", s] for s in sets), [])
    assert main(["train", "--out", str(tmp_path / "a"), *args, "--set", "train.epochs=4"]) == 0
    assert main(["train", "--out", str(tmp_path / "b"), *args, "--set", "train.epochs=2"]) == 0
    assert main(["train", "--resume", str(tmp_path / "b"), "--set", "train.epochs=4"]) == 0
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
