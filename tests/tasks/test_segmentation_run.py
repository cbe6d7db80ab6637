"""Segmentation from the command line: train (summary.json with test_miou), exact resume, a user's
folder with one --set data.root, the recipes' configs, one-line errors for bad masks and oversized models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import load_file

from cnnkit.cli import main
from cnnkit.config import load_config
from cnnkit.data.sources.scenes import generate_scenes

from .seg_helpers import train_tiny

ROOT = Path(__file__).resolve().parents[2]


def test_train_writes_segmentation_summary(tmp_path, capsys):
    assert train_tiny(tmp_path / "full") == 0
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert summary["task"] == "segmentation"
    assert 0 <= summary["test_miou"] <= 1 and len(summary["test_per_class_iou"]) <= 11
    assert "test mIoU:" in capsys.readouterr().out
    info = json.loads((tmp_path / "full" / "model.json").read_text())
    assert info["task"]["name"] == "segmentation" and info["build"]["num_classes"] == 11
    assert (tmp_path / "full" / "plots" / "segmentation_samples.png").stat().st_size > 0  # Task.write_plots


@pytest.mark.slow
def test_resume_is_exact(tmp_path):
    assert train_tiny(tmp_path / "full") == 0
    # One epoch, then --resume to two: the same weights as the uninterrupted run (augmentation included).
    assert train_tiny(tmp_path / "half", "train.epochs=1") == 0
    assert main(["train", "--resume", str(tmp_path / "half"), "--set", "train.epochs=2", "--quiet"]) == 0
    a = load_file(tmp_path / "full" / "model.safetensors")
    b = load_file(tmp_path / "half" / "model.safetensors")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_a_users_folder_with_one_set(tmp_path):
    generate_scenes(16, seed=0, canvas=(32, 32), object_size=(8, 16)).write(tmp_path / "data", coco=False)
    assert train_tiny(tmp_path / "run", f"data.root={tmp_path / 'data'}", "train.epochs=1") == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["test_count"] == 4 and summary["dataset"] == "scenes"


def test_bad_mask_is_one_line_exit_2(tmp_path, capsys):
    generate_scenes(8, seed=0, canvas=(32, 32), object_size=(8, 16)).write(tmp_path / "data", coco=False)
    Image.fromarray(np.zeros((30, 32), np.uint8)).save(tmp_path / "data" / "masks" / "scene-00004.png")
    code = train_tiny(tmp_path / "run", f"data.root={tmp_path / 'data'}")
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "scene-00004.png: size 32x30 differs from its image" in err
    assert not (tmp_path / "run").exists()


def test_oversized_unet_is_refused_before_it_eats_the_machine(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CNNKIT_MAX_ACTIVATION_BYTES", str(2**20))  # 1 MiB; the tiny run needs ~1.2
    code = train_tiny(tmp_path / "run", "train.epochs=1")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "needs about" in err and "lower data.batch_size" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("recipe", ["segmentation-unet.yaml", "segmentation-fcn.yaml"])
def test_recipes_load_and_switch_to_a_folder(recipe, tmp_path):
    cfg = load_config(ROOT / "configs" / recipe)
    assert cfg.task.name == "segmentation" and cfg.data.name == "scenes"
    other = load_config(ROOT / "configs" / recipe, ["data.name=segmentation-folder", f"data.root={tmp_path}"])
    assert other.data.options() == {}  # the scenes' own options are dropped with the dataset


def test_summary_checks_the_papers_output_size(capsys):
    # 188 = 16 * 8 + 60 fits every pool of the unpadded depth-4 net; its output is 188 - 184 = 4.
    assert main(["summary", "unet", "--input", "1,188,188", "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    assert layers[-1]["name"] == "head" and layers[-1]["output_shape"] == [2, 4, 4]
    assert main(["summary", "unet", "--input", "1,190,190"]) == 2  # an odd map before a pool: refused
    assert "even map size before every 2x2 max-pool" in capsys.readouterr().err
