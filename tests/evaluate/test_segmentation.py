"""evaluate / predict on a segmentation run: the report agrees with summary.json and with scikit-learn,
mask PNGs hold the model's arg-max, overlays and tables are written, explain and export work."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import jaccard_score

from cnnkit.cli import main
from cnnkit.data.sources.scenes import generate_scenes
from cnnkit.data.sources.segmentation import read_mask
from cnnkit.runs import load_model

from ..tasks.seg_helpers import train_tiny


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("segrun")
    assert train_tiny(root / "run", "train.epochs=1") == 0
    images = root / "images"
    generate_scenes(3, seed=9, split="test", canvas=(32, 32), object_size=(8, 16)).write(images, coco=False)
    return root / "run", images / "images"


def test_evaluate_matches_the_summary_and_scikit_learn(run, capsys):
    run_dir, _ = run
    assert main(["evaluate", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "mIoU" in out and "pixel accuracy" in out
    report = json.loads((run_dir / "eval-test" / "report.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert report["miou"] == pytest.approx(summary["test_miou"]) and report["n"] == summary["test_count"]
    cm = np.array(report["confusion_matrix"])
    # Expand the confusion matrix back into (truth, prediction) pairs and let scikit-learn score them.
    t = np.repeat(np.arange(len(cm)), cm.sum(1))
    p = np.concatenate([np.repeat(np.arange(len(cm)), row) for row in cm])
    present = [i for i in range(len(cm)) if cm[i].sum() + cm[:, i].sum() > 0]
    assert report["miou"] == pytest.approx(jaccard_score(t, p, labels=present, average="macro"))
    for f in ("pixel_confusion.png", "samples.png"):
        assert (run_dir / "eval-test" / f).stat().st_size > 0
    assert main(["evaluate", str(run_dir), "--tta", "flip"]) == 2
    assert "classification runs" in capsys.readouterr().err


def test_predict_writes_masks_of_the_models_argmax(run, tmp_path, capsys):
    run_dir, images = run
    table = tmp_path / "pred.csv"
    assert main(["predict", str(run_dir), str(images), "--output", str(table)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(": mask " in line for line in lines)
    loaded = load_model(run_dir)
    for name in ("scene-00000", "scene-00002"):
        mask = read_mask(tmp_path / "pred" / f"{name}_mask.png")
        with Image.open(tmp_path / "pred" / f"{name}_mask.png") as im:
            assert im.mode == "P"
        img = np.array(Image.open(images / f"{name}.png"))
        pre = loaded.preprocessing
        x = (torch.from_numpy(img).float()[None, None] / 255 - pre["mean"][0]) / pre["std"][0]
        with torch.no_grad():
            expected = loaded.model(x).argmax(1)[0].numpy()
        np.testing.assert_array_equal(mask, expected)
        assert (tmp_path / "pred" / f"{name}_overlay.png").is_file()
    assert table.read_text().splitlines()[0] == "input,mask,overlay,classes,error"


def test_explain_per_class_saliency(run, tmp_path, capsys):
    run_dir, images = run
    assert main(["explain", str(run_dir), str(images / "scene-00001.png"), "--method", "saliency", "--out", str(tmp_path)]) == 0
    (path,) = capsys.readouterr().out.split()
    assert path.endswith("_saliency.png") and (tmp_path / path.split("/")[-1]).is_file()
    assert main(["explain", str(run_dir), str(images / "scene-00001.png"), "--method", "gradcam", "--out", str(tmp_path)]) == 2
    assert "--method saliency" in capsys.readouterr().err


@pytest.mark.slow  # onnx export + onnxruntime check: ~40 s on the loaded 2-core CPU
def test_export_onnx_matches(run, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    run_dir, _ = run
    assert main(["export", str(run_dir), "--out", str(tmp_path / "m.onnx")]) == 0
    assert "onnxruntime matches PyTorch" in capsys.readouterr().out
