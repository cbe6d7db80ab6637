"""Detection end to end through the CLI on tiny generated scenes: train (summary.json has test_map),
evaluate (the same mAP), predict (boxes drawn, COCO JSON in image pixels), a user's COCO folder with one
--set data.root, resume, and bad input as exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnkit.cli import main
from cnnkit.data.sources.scenes import generate_scenes

pytest.importorskip("pycocotools")  # the dense extra: pip install "cnnkit[dense]"

RECIPE = str(Path(__file__).resolve().parents[2] / "configs" / "detection-faster-rcnn.yaml")
TINY = ["data.scenes.num_train=12", "data.scenes.num_test=6", "data.batch_size=6", "data.eval_batch_size=6", "train.epochs=1",
        "model.representation=16"]


def _train(out: Path, *extra: str) -> int:
    args = ["train", RECIPE]
    for s in (*TINY, *extra):
        args += ["--set", s]
    return main([*args, "--out", str(out), "--quiet"])


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("det") / "run"
    assert _train(out) == 0
    return out


def test_train_writes_map(run: Path) -> None:
    summary = json.loads((run / "summary.json").read_text())
    assert 0.0 <= summary["test_map"] <= summary["test_map50"] <= 1.0
    info = json.loads((run / "model.json").read_text())
    assert info["task"]["name"] == "detection" and info["build"]["name"] == "faster_rcnn"
    assert info["build"]["in_channels"] == 1 and info["build"]["num_classes"] == 10
    assert (run / "plots" / "detections.png").is_file()  # the task's end-of-run figure


def test_evaluate_reports_the_same_map(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    summary = json.loads((run / "summary.json").read_text())
    assert report["map"] == pytest.approx(summary["test_map"]) and report["count"] == 6
    assert (run / "eval-test" / "detections.json").is_file()


def test_predict_draws_and_writes_coco(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenes = generate_scenes(2, seed=9, split="test")
    scenes.write(tmp_path / "in", masks=False, coco=False)
    big = tmp_path / "in" / "images" / "big.png"
    with Image.open(tmp_path / "in" / "images" / "scene-00000.png") as im:
        im.resize((128, 96)).save(big)
    out = tmp_path / "res.json"
    code = main(["predict", str(run), str(tmp_path / "in" / "images"), "--output", str(out),
                 "--draw", str(tmp_path / "drawn"), "--score-threshold", "0"])
    assert code == 0
    assert "objects" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert [im["width"] for im in doc["images"]] == [128, 64, 64]
    for row in doc["annotations"]:
        im = doc["images"][row["image_id"] - 1]
        x, y, w, h = row["bbox"]
        assert 0 <= x and x + w <= im["width"] + 1e-3 and 0 <= y and y + h <= im["height"] + 1e-3
        assert 1 <= row["category_id"] <= 10
    with Image.open(tmp_path / "drawn" / "big.png") as im:
        assert im.size == (128, 96)


def test_explain_gradcam_of_the_top_detection(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cnnkit.explain.detection import detection_gradcam
    from cnnkit.runs import load_model

    generate_scenes(1, seed=9, split="test").write(tmp_path / "in", masks=False, coco=False)
    img = tmp_path / "in" / "images" / "scene-00000.png"
    assert main(["explain", str(run), str(img), "--method", "gradcam", "--out", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "scene-00000-gradcam.png").is_file()
    assert main(["explain", str(run), str(img), "--method", "saliency", "--out", str(tmp_path / "x")]) == 2
    model = load_model(run).model
    torch.manual_seed(0)
    cams, tops = detection_gradcam(model, torch.randn(2, 1, 64, 64))
    assert cams.shape == (2, 64, 64) and (cams >= 0).all() and tops.shape == (2, 6)


@pytest.mark.slow  # the exporter traces two graphs: over 10 s on 2 cores
def test_export_writes_both_graphs_from_the_cli(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    capsys.readouterr()
    assert main(["export", str(run)]) == 0
    assert "onnxruntime matches PyTorch" in capsys.readouterr().out
    assert (run / "model.onnx").is_file() and (run / "model-head.onnx").is_file()


def test_user_coco_folder_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "mine"
    generate_scenes(10, seed=4, channels=3).write(root, masks=False)
    assert _train(tmp_path / "r", f"data.root={root}", "data.val_fraction=0.3") == 0
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["test_map"] is not None
    row = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["val_map"] is not None and row["val_loss"] is None  # val_map picks the best weights
    doc = json.loads((root / "annotations.json").read_text())
    doc["images"][0]["file_name"] = "gone.png"
    (root / "annotations.json").write_text(json.dumps(doc))
    capsys.readouterr()
    assert _train(tmp_path / "r2", f"data.root={root}") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "gone.png" in err and "Traceback" not in err


@pytest.mark.slow
def test_resume_is_exact(tmp_path: Path) -> None:
    # A constant learning rate: cosine is stretched to the extended length, by design.
    assert _train(tmp_path / "a", "train.epochs=2", "schedule.name=none") == 0
    assert _train(tmp_path / "b", "schedule.name=none") == 0
    assert main(["train", "--resume", str(tmp_path / "b"), "--set", "train.epochs=2", "--quiet"]) == 0
    a = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["train_loss"] for r in a] == [r["train_loss"] for r in b]
    sa = json.loads((tmp_path / "a" / "summary.json").read_text())
    sb = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert sa["test_map"] == sb["test_map"]
