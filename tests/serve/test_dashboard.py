"""The dashboard API: run folders under --runs DIR, their curves and plots by name only, and the test
split's confusion matrix and mistakes, checked against ``cnnkit evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cnnkit.evaluate import evaluate_run
from cnnkit.runs import RUN_MARKER

pytest.importorskip("starlette")
pytest.importorskip("python_multipart")
from starlette.testclient import TestClient  # noqa: E402

from cnnkit.serve import create_app  # noqa: E402
from cnnkit.serve.dashboard import page_text  # noqa: E402


@pytest.fixture(scope="module")
def client(runs_root: Path):  # type: ignore[no-untyped-def]
    with TestClient(create_app({}, runs_dir=runs_root)) as c:
        yield c


def test_runs_listing_has_no_local_paths(client) -> None:  # type: ignore[no-untyped-def]
    runs = client.get("/api/runs").json()["runs"]
    assert [r["id"] for r in sorted(runs, key=lambda r: r["id"])] == ["tiny-a", "tiny-b"]
    assert all("path" not in r for r in runs)
    assert {r["status"] for r in runs} == {"finished"} and runs[0]["plots"] == ["learning_curves.png"]
    assert client.get("/healthz").json()["dashboard"] is True
    assert client.get("/dashboard").status_code == 200


def test_run_detail_curves_and_config(client, run_a: Path) -> None:  # type: ignore[no-untyped-def]
    d = client.get("/api/run", params={"id": "tiny-a"}).json()
    assert [r["epoch"] for r in d["metrics"]] == [1, 2, 3, 4]
    assert d["metrics"][1]["train_loss"] == pytest.approx(1.0)
    assert "digits" in d["config"] and d["summary"]["test_accuracy"] == 0.9


def test_plots_and_runs_are_chosen_by_name_never_by_path(client, run_a: Path) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/api/run/plot", params={"id": "tiny-a", "name": "learning_curves.png"})
    assert r.status_code == 200 and r.content == (run_a / "plots" / "learning_curves.png").read_bytes()
    for rid, name in (("tiny-a", "../config.yaml"), ("tiny-a", "/etc/passwd"), ("../tiny-a", "learning_curves.png"),
                      ("/etc", "passwd"), ("tiny-a/plots", "learning_curves.png")):
        r = client.get("/api/run/plot", params={"id": rid, "name": name})
        assert r.status_code == 404, (rid, name)
    assert client.get("/api/run", params={"id": "tiny-c"}).json()["error"].startswith("no run 'tiny-c' under the runs folder; did you mean")
    assert client.get("/api/run").status_code == 422


def test_confusion_matrix_and_mistakes_agree_with_cnnkit_evaluate(client, run_a: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    e = client.get("/api/run/errors", params={"id": "tiny-a", "limit": 256}).json()
    report = evaluate_run(run_a, out=tmp_path / "eval")
    cm = np.array(e["confusion"])
    assert cm.sum() == e["count"] == report["n"]
    assert e["accuracy"] == pytest.approx(report["accuracy"], abs=1e-12)
    assert np.array_equal(cm, np.array(report["confusion_matrix"]))
    wrong = int(cm.sum() - np.trace(cm))
    assert len(e["misclassified"]) == min(wrong, 256)
    first = e["misclassified"][0]
    assert first["image"].startswith("data:image/png;base64,") and len(first["top"]) == 3
    assert first["top"][0]["label"] != first["label"]  # its top-1 is the wrong class
    confs = [m["top"][0]["probability"] for m in e["misclassified"]]
    assert confs == sorted(confs, reverse=True)  # most confident first
    assert len(client.get("/api/run/errors", params={"id": "tiny-a", "limit": 2}).json()["misclassified"]) == min(wrong, 2)


def test_strings_from_run_folders_reach_the_page_cleaned(tmp_path: Path, run_a: Path) -> None:
    import shutil

    root = tmp_path / "runs"
    hostile = root / "hostile"
    shutil.copytree(run_a, hostile)
    (hostile / "summary.json").write_text(json.dumps({"model": "<img src=x onerror=alert(1)>\x1b]0;pwned\x07"}))
    with TestClient(create_app({}, runs_dir=root)) as c:
        run = c.get("/api/runs").json()["runs"][0]
        assert run["model"] == "<img src=x onerror=alert(1)>"  # control sequences gone; markup stays text for the page
    assert page_text("a\x1b[2Jb\nc\u202ed") == "ab\ncd"


def test_no_dashboard_without_runs_dir(run_a: Path) -> None:
    with TestClient(create_app({})) as c:
        assert c.get("/api/runs").status_code == 404 and c.get("/dashboard").status_code == 404
        r = c.post("/api/predict", json={"array": [[0]]})
        assert r.status_code == 422 and "holds no model" in r.json()["error"]


# The run folders cnnkit's other tasks write (task and kind as their model.json records them), and folders
# damaged in the ways a copied or half-written one can be.
_KINDS = [("segmentation", "image"), ("detection", "image"), ("forecasting", "series"), ("anomaly", "series"),
          ("classification", "series"), ("classification", "text"), ("classification", "clip"), ("gan", "image"),
          ("masked_autoencoder", "image"), ("dqn", "environment"), ("alphazero", "game")]


def test_every_kind_of_run_folder_is_listed_and_none_gives_a_500(tmp_path: Path, run_a: Path) -> None:
    import shutil

    root = tmp_path / "runs"
    for task, kind in _KINDS:
        run = root / f"{task}-{kind}"
        shutil.copytree(run_a, run)
        info = json.loads((run / "model.json").read_text())
        info.update(task={"name": task}, kind=kind)
        (run / "model.json").write_text(json.dumps(info))
        (run / "summary.json").write_text(json.dumps({"task": task, "test_mean_iou": 0.5, "test_accuracy": "n/a"}))
    torn = root / "torn"
    shutil.copytree(run_a, torn)
    (torn / "model.json").write_text('{"format": "cnnkit-mod')
    (torn / "summary.json").write_text("[1, 2]")
    (torn / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": NaN}\n{"epoch": 2, "train_lo')
    (root / "no-model").mkdir(parents=True)
    shutil.copy(run_a / "metrics.jsonl", root / "no-model" / "metrics.jsonl")
    shutil.copy(run_a / RUN_MARKER, root / "no-model" / RUN_MARKER)
    with TestClient(create_app({}, runs_dir=root), raise_server_exceptions=False) as c:
        runs = c.get("/api/runs")
        assert runs.status_code == 200
        ids = {r["id"] for r in runs.json()["runs"]}
        assert {f"{t}-{k}" for t, k in _KINDS} | {"torn"} <= ids
        for rid in sorted(ids):
            assert c.get("/api/run", params={"id": rid}).status_code == 200, rid
            e = c.get("/api/run/errors", params={"id": rid, "limit": 4})
            assert e.status_code in (200, 422), (rid, e.status_code, e.text)
            if rid not in ("torn", "no-model"):
                assert e.status_code == 422 and "image classification runs only" in e.json()["error"], (rid, e.text)
        assert "no model yet" in c.get("/api/run/errors", params={"id": "no-model"}).json()["error"]
