"""Run folders, atomic writes and the pickle-free model format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cnnkit.errors import CnnkitError
from cnnkit.runs import atomic_write_text, environment_info, load_model, make_run_dir, save_model


def test_make_run_dir_default_and_refuses_overwrite(tmp_path: Path) -> None:
    run = make_run_dir("exp", root=tmp_path)
    assert run.parent == tmp_path and run.name.startswith("exp-") and (run / "plots").is_dir()
    (run / "summary.json").write_text("{}")
    with pytest.raises(CnnkitError, match="already exists; pass --overwrite"):
        make_run_dir("exp", out=run)
    again = make_run_dir("exp", out=run, overwrite=True)
    assert again == run and not (run / "summary.json").exists()


def test_two_runs_in_the_same_second_get_distinct_folders(tmp_path: Path) -> None:
    a = make_run_dir("x", root=tmp_path)
    b = make_run_dir("x", root=tmp_path)
    assert a != b


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "a" / "f.json"
    atomic_write_text(target, "1")
    atomic_write_text(target, "2")
    assert target.read_text() == "2"
    assert [p.name for p in target.parent.iterdir()] == ["f.json"]


def test_environment_info_is_json() -> None:
    info = json.loads(json.dumps(environment_info("cpu")))
    assert info["torch"] == torch.__version__ and info["device"] == "cpu"


def _lenet_build() -> dict:
    return {"name": "lenet5", "variant": "modern", "num_classes": 10}


def test_save_load_round_trip(tmp_path: Path) -> None:
    from cnnkit.models import build_model

    torch.manual_seed(0)
    model = build_model(_lenet_build()).eval()
    pre = {"input_shape": [1, 32, 32], "mean": [0.5], "std": [0.25]}
    save_model(tmp_path, model, build=_lenet_build(), preprocessing=pre, class_names=[str(i) for i in range(10)])
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["format"] == "cnnkit-model/1" and meta["input_shape"] == [1, 32, 32]
    loaded = load_model(tmp_path)
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(loaded.model(x), model(x))
    assert loaded.preprocessing == pre and loaded.class_names[3] == "3"


def test_load_errors_are_one_line(tmp_path: Path) -> None:
    from cnnkit.models import build_model

    with pytest.raises(CnnkitError, match="run folder not found"):
        load_model(tmp_path / "nope")
    save_model(tmp_path, build_model(_lenet_build()), build=_lenet_build(), preprocessing={"input_shape": [1, 32, 32]})
    weights = tmp_path / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CnnkitError, match="corrupt or truncated"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(CnnkitError, match="is not valid JSON"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(CnnkitError, match="is not a cnnkit model description"):
        load_model(tmp_path)


def test_architecture_mismatch(tmp_path: Path) -> None:
    from cnnkit.models import build_model

    save_model(tmp_path, build_model(_lenet_build()), build=_lenet_build(), preprocessing={"input_shape": [1, 32, 32]})
    meta = json.loads((tmp_path / "model.json").read_text())
    meta["build"]["num_classes"] = 3
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(CnnkitError, match="do not fit the architecture|do not match the architecture"):
        load_model(tmp_path)
