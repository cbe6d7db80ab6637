"""The pickle-free model format: save, load, and one-line errors for bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cnnkit.errors import CnnkitError
from cnnkit.runs import (
    load_model,
    save_model,
)


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
