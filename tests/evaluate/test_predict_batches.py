"""predict on batches: .npy stacks (N, H, W) and (N, C, H, W), large folders run in batches of
--batch-size, tables to CSV/JSON, and the --backend choice."""

from __future__ import annotations

import csv
import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.cli import main
from cnnkit.evaluate import predict
from cnnkit.runs import load_model


@pytest.fixture(scope="module")
def test_images(trained_run: Path) -> torch.Tensor:
    from cnnkit.runs import load_run_data

    return load_run_data(trained_run, load_model(trained_run)).bundle.test.images[:40].clone()  # uint8 (40, 1, 8, 8)


def _reference(run: Path, imgs: torch.Tensor) -> list[int]:
    from cnnkit.data import apply_preprocessing

    loaded = load_model(run)
    with torch.no_grad():
        return loaded.model(apply_preprocessing(imgs, loaded.preprocessing)).argmax(1).tolist()


def test_npy_stacks_give_one_prediction_per_image(trained_run: Path, tmp_path: Path, test_images: torch.Tensor) -> None:
    ref = _reference(trained_run, test_images)
    np.save(tmp_path / "nhw.npy", test_images[:, 0].numpy())  # (40, 8, 8)
    np.save(tmp_path / "nchw.npy", test_images.numpy())  # (40, 1, 8, 8)
    np.save(tmp_path / "three.npy", test_images[:3, 0].numpy())  # (3, 8, 8): three gray images for a gray model
    for name, n in (("nhw", 40), ("nchw", 40), ("three", 3)):
        out = predict(trained_run, [tmp_path / f"{name}.npy"], backend="torch")
        assert [o["input"] for o in out] == [f"{tmp_path / name}.npy[{i}]" for i in range(n)]
        assert [o["top"][0]["class"] for o in out] == ref[:n]


def test_auto_predicts_what_eager_fp32_predicts(trained_run: Path, tmp_path: Path, test_images: torch.Tensor) -> None:
    np.save(tmp_path / "nhw.npy", test_images[:, 0].numpy())
    seen = []
    out = predict(trained_run, [tmp_path / "nhw.npy"], backend="auto", on_backend=seen.append)
    assert [o["top"][0]["class"] for o in out] == _reference(trained_run, test_images)
    assert len(seen) == 1 and seen[0].probe is not None and "torch" in seen[0].probe["seconds"]


def test_a_folder_of_a_thousand_images_runs_in_batches(
    trained_run: Path, tmp_path: Path, test_images: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(1000):
        Image.fromarray(test_images[i % 40, 0].numpy(), mode="L").save(folder / f"{i:04d}.png")
    sizes: list[int] = []
    real_load = load_model

    def spy_load(path: object, **kw: object) -> object:  # count the batch sizes the model sees
        loaded = real_load(path, **kw)  # type: ignore[arg-type]
        loaded.model.register_forward_pre_hook(lambda m, args: sizes.append(len(args[0])))
        return loaded

    # (the package re-exports the function predict under the module's name: fetch the module itself)
    monkeypatch.setattr(importlib.import_module("cnnkit.evaluate.predict"), "load_model", spy_load)
    out = predict(trained_run, [folder], batch_size=128, backend="torch", output=tmp_path / "p.csv")
    assert sizes == [128] * 7 + [104]  # streamed: never more than one batch in memory
    ref = _reference(trained_run, test_images)
    assert [o["top"][0]["class"] for o in out] == [ref[i % 40] for i in range(1000)]
    with open(tmp_path / "p.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1000 and rows[5]["input"].endswith("0005.png") and int(rows[5]["class"]) == ref[5]


def test_cli_backend_batch_size_and_json_output(trained_run: Path, tmp_path: Path, test_images: torch.Tensor,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "nhw.npy", test_images[:10, 0].numpy())
    assert main(["predict", str(trained_run), str(tmp_path / "nhw.npy"), "--backend", "torch-cl",
                 "--batch-size", "4", "--output", str(tmp_path / "p.json")]) == 0
    captured = capsys.readouterr()
    assert captured.err == "cnnkit: backend torch-cl\n"
    rows = json.loads((tmp_path / "p.json").read_text())
    assert [int(r["class"]) for r in rows] == _reference(trained_run, test_images[:10])
    assert main(["predict", str(trained_run), str(tmp_path / "nhw.npy")]) == 0
    assert capsys.readouterr().err == ""  # without --backend: auto, silently
    assert main(["predict", str(trained_run), str(tmp_path / "nhw.npy"), "--batch-size", "0"]) == 2
    assert capsys.readouterr().err == "cnnkit: error: Expected batch_size >= 1. Received: batch_size=0\n"
