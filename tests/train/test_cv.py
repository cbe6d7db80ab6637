"""k-fold cross-validation: the folds (cnnkit.data.kfold_indices) and the orchestration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cnnkit.config import validate_config
from cnnkit.data import kfold_indices
from cnnkit.errors import CnnkitError
from cnnkit.train import cross_validate
from cnnkit.train.cv import summarize_folds
from tests.evaluate.eval_helpers import SPEC


@pytest.mark.parametrize("stratified", [True, False])
@pytest.mark.parametrize("k", [2, 5, 7])
def test_folds_are_disjoint_and_cover(k: int, stratified: bool) -> None:
    y = np.random.default_rng(0).integers(0, 4, 203)
    folds = kfold_indices(y, k, stratified=stratified, seed=3)
    assert len(folds) == k
    allidx = np.concatenate(folds)
    assert len(allidx) == len(y) and (np.sort(allidx) == np.arange(len(y))).all()  # disjoint and covering
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= 1 + (4 if stratified else 0)


def test_stratified_folds_keep_class_ratios() -> None:
    y = np.repeat([0, 1, 2], [300, 90, 30])  # imbalanced 10:3:1
    for fold in kfold_indices(y, 5, stratified=True, seed=0):
        counts = np.bincount(y[fold], minlength=3)
        np.testing.assert_array_equal(counts, [60, 18, 6])  # exactly 1/5 of each class
    # unstratified folds drift (the rare class is not split evenly for this seed)
    drift = [np.bincount(y[f], minlength=3)[2] for f in kfold_indices(y, 5, stratified=False, seed=0)]
    assert drift != [6] * 5


def test_folds_are_seeded() -> None:
    y = np.arange(100) % 3
    a = kfold_indices(y, 4, seed=1)
    assert all((x == z).all() for x, z in zip(a, kfold_indices(y, 4, seed=1)))
    assert any((x != z).any() for x, z in zip(a, kfold_indices(y, 4, seed=2)))


def test_summarize_folds_by_hand() -> None:
    s = summarize_folds([{"acc": 0.8, "loss": 1.0}, {"acc": 0.9, "loss": 3.0}, {"acc": 1.0}])
    assert s["mean"] == {"acc": pytest.approx(0.9)}  # loss is not in every fold
    assert s["std"]["acc"] == pytest.approx(0.1)  # sample std (ddof=1)


def test_orchestration_with_a_fake_trainer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cnnkit.train

    seen: list[tuple[int | None, int | None, bool, Path]] = []

    def fake_fit(cfg: Any, *, out: Path, overwrite: bool = False, quiet: bool = False, **_: Any) -> dict[str, Any]:
        seen.append((cfg.data.folds, cfg.data.fold, cfg.data.stratified, Path(out)))
        Path(out).mkdir(parents=True)
        return {"run_dir": str(out), "final_val_accuracy": 0.5 + 0.1 * cfg.data.fold, "device": "cpu", "ok": True}

    monkeypatch.setattr(cnnkit.train.cv, "fit", fake_fit)
    cfg = validate_config({"name": "x"})
    res = cross_validate(cfg, folds=3, stratified=False, out=tmp_path / "cv")
    assert [(f, i, s) for f, i, s, _ in seen] == [(3, 0, False), (3, 1, False), (3, 2, False)]
    assert [p.name for *_, p in seen] == ["fold-0", "fold-1", "fold-2"]
    assert cfg.data.folds is None  # the caller's config is not modified
    assert res["mean"]["final_val_accuracy"] == pytest.approx(0.6)
    assert res["std"]["final_val_accuracy"] == pytest.approx(0.1)
    assert "device" not in res["mean"] and "ok" not in res["mean"]  # strings and booleans are not metrics
    on_disk = json.loads((tmp_path / "cv" / "cv_summary.json").read_text())
    assert on_disk["completed"] == 3 and len(on_disk["per_fold"]) == 3
    with pytest.raises(CnnkitError, match="already exists"):
        cross_validate(cfg, folds=3, out=tmp_path / "cv")
    cross_validate(cfg, folds=2, out=tmp_path / "cv", overwrite=True)
    assert not (tmp_path / "cv" / "fold-2").exists()
    with pytest.raises(CnnkitError, match="Expected folds >= 2"):
        cross_validate(cfg, folds=1, out=tmp_path / "cv2")


def test_real_training_two_folds(tmp_path: Path) -> None:
    cfg = validate_config({
        "name": "cvtest",
        "model": {"name": None, "spec": SPEC},
        "data": {"name": "digits", "batch_size": 128, "limit_train": 300},
        "train": {"epochs": 1, "threads": 1, "checkpoint": {"keep_last": 1}},
    })
    res = cross_validate(cfg, folds=2, out=tmp_path / "cv")
    assert res["completed"] == 2
    for i in range(2):
        run = tmp_path / "cv" / f"fold-{i}"
        assert (run / "model.safetensors").is_file() and (run / "config.yaml").is_file()
        assert f"fold: {i}" in (run / "config.yaml").read_text()
    assert "test_accuracy" in res["mean"] and "test_accuracy" in res["std"]
    accs = [f["metrics"]["test_accuracy"] for f in res["per_fold"]]
    assert res["mean"]["test_accuracy"] == pytest.approx(np.mean(accs))


def test_format_cv_prints_each_fold_and_mean_std() -> None:
    from cnnkit.train import format_cv

    result = {
        "folds": 2,
        "stratified": True,
        "out": "runs/x",
        "per_fold": [
            {"fold": 0, "metrics": {"final_val_accuracy": 0.9, "test_accuracy": 0.8, "test_loss": 0.5}},
            {"fold": 1, "metrics": {"final_val_accuracy": 0.7, "test_accuracy": 0.6, "test_loss": 0.7}},
        ],
        "mean": {"final_val_accuracy": 0.8, "test_accuracy": 0.7, "test_loss": 0.6},
        "std": {"final_val_accuracy": 0.1414, "test_accuracy": 0.1414, "test_loss": 0.1414},
    }
    text = format_cv(result)
    assert "2-fold stratified cross-validation" in text
    assert "0.9000" in text and "0.6000" in text
    assert "0.7000 ± 0.1414" in text


def test_cli_json_prints_only_json_on_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Real training, so that whatever a fold prints on its way (fit's "test accuracy:" line) is covered.
    import yaml

    from cnnkit.cli import main

    cfg = tmp_path / "cv.yaml"
    cfg.write_text(yaml.safe_dump({
        "name": "cvjson",
        "model": {"name": None, "spec": SPEC},
        "data": {"name": "digits", "batch_size": 128, "limit_train": 200},
        "train": {"epochs": 1, "threads": 1, "checkpoint": {"keep_last": 1}},
    }))
    assert main(["cv", str(cfg), "--folds", "2", "--out", str(tmp_path / "cv"), "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # the whole of stdout is one JSON document
    assert result["completed"] == 2 and "test_accuracy" in result["mean"]
    assert "test accuracy:" in captured.err  # the per-fold lines still reach the user, on stderr


def test_overwrite_never_deletes_a_folder_cnnkit_did_not_create(tmp_path: Path) -> None:
    # Before the fix `cnnkit cv --out DIR --overwrite` removed any DIR with its files.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    cfg = validate_config({"name": "x"})
    with pytest.raises(CnnkitError, match="not a cnnkit run folder"):
        cross_validate(cfg, folds=2, out=mine, overwrite=True)
    assert (mine / "thesis.tex").read_text() == "precious"
