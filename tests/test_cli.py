"""The ``cnnkit`` command end to end: dispatch, one-line user errors with exit status 2, the main job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from cnnkit.cli import main


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "cnnkit", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("train", "evaluate", "cv", "predict", "explain", "summary", "export", "models", "datasets", "config", "audit"):
        assert cmd in out


def test_config_prints_resolved_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "--set", "train.epochs=3", "--set", "optim.lr=1e-3"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["train"]["epochs"] == 3 and cfg["optim"]["lr"] == 0.001 and cfg["model"]["name"] == "lenet5"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["train", "--set", "train.epoch=3"], "config key train.epoch: unknown key; did you mean 'epochs'?"),
        (["config", "missing.yaml"], "config file not found: missing.yaml"),
        (["train", "--set", "model.name=lenet"], "Unknown model 'lenet'"),
        (["train", "--set", "data.name=fashion_mnist2"], "Unknown dataset 'fashion_mnist2'"),
        (["summary", "nosuchnet", "--input", "3,32,32"], "Unknown model 'nosuchnet'"),
        (["evaluate", "no/such/run"], "run folder not found"),
    ],
)
def test_user_errors_are_one_line_exit_2(args: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*args, *(["--out", str(tmp_path / "r")] if args[0] == "train" else [])])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("cnnkit: error: ") and expected in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_python_dash_m_and_errors_without_traceback() -> None:
    proc = run_cli("train", "--set", "train.epochs=zero")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "cnnkit: error: config key train.epochs: expected an integer, received 'zero' (str)"


def test_models_layers_datasets_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    names = {m["name"] for m in json.loads(capsys.readouterr().out)}
    assert {"lenet5", "alexnet", "vgg16", "resnet18", "mobilenet_v1", "dqn", "unet"} <= names
    assert main(["layers", "--json"]) == 0
    layers = set(json.loads(capsys.readouterr().out))
    assert {"conv2d", "max_pool2d", "mixed_pool2d", "lp_pool2d", "roi_pool", "relu", "linear"} <= layers
    assert main(["datasets", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["digits"]["present"] is True
    assert {"mnist", "fashion-mnist", "kmnist", "cifar10", "cifar100", "image-folder", "npz"} <= set(rows)


def test_summary_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "lenet5", "--input", "1,32,32", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total_params"] == 60_000
    assert {"name", "type", "output_shape", "params", "flops", "receptive_field"} <= set(out["layers"][0])


def test_summary_stride_fit_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump({"input": [1, 28, 28], "layers": [{"conv2d": {"out_channels": 4, "kernel_size": 3, "stride": 2}}]}))
    assert main(["summary", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "stride" in err and err.count("\n") == 1


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One short real training run through the CLI, shared by the tests below."""
    out = tmp_path_factory.mktemp("cli") / "run"
    proc = run_cli("train", "--set", "train.epochs=2", "--set", "data.val_fraction=0.1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "test accuracy" in proc.stdout.lower() and str(out) in proc.stdout
    return out


def test_train_writes_the_run_folder(trained_run: Path) -> None:
    for name in ("config.yaml", "env.json", "metrics.jsonl", "summary.json", "model.safetensors", "model.json"):
        assert (trained_run / name).is_file(), name
    assert list((trained_run / "plots").glob("*.png"))
    summary = json.loads((trained_run / "summary.json").read_text())
    assert 0.5 < summary["test_accuracy"] <= 1.0
    assert {"epochs", "train_seconds", "wall_seconds"} <= set(summary)
    rows = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] or [r["epoch"] for r in rows] == [0, 1]
    # an existing run folder is never overwritten silently
    proc = run_cli("train", "--set", "train.epochs=1", "--out", str(trained_run))
    assert proc.returncode == 2 and "--overwrite" in proc.stderr


def test_evaluate_predict_export(trained_run: Path, tmp_path: Path) -> None:
    proc = run_cli("evaluate", str(trained_run), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert 0.5 < report["accuracy"] <= 1.0

    image = np.zeros((8, 8), dtype=np.float32)
    np.save(tmp_path / "x.npy", image)
    proc = run_cli("predict", str(trained_run), str(tmp_path / "x.npy"), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    preds = json.loads(proc.stdout)
    assert len(preds) == 1 and abs(sum(t["probability"] for t in preds[0]["top"]) - 1) < 0.5

    (tmp_path / "bad.npy").write_bytes(b"not an array")
    proc = run_cli("predict", str(trained_run), str(tmp_path / "bad.npy"))
    assert proc.returncode == 2 and "bad.npy" in proc.stderr and "Traceback" not in proc.stderr

    proc = run_cli("export", str(trained_run), "--out", str(tmp_path / "m.onnx"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "m.onnx").is_file() and "onnxruntime matches" in proc.stdout


def test_a_failed_start_leaves_no_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["train", "--set", "data.name=npz", "--set", f"data.root={tmp_path / 'missing.npz'}", "--out", str(out)]) == 2
    assert "missing.npz" in capsys.readouterr().err
    assert not out.exists()
