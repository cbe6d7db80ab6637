"""``cnnkit runs``: run folders found under a folder, their status from the files, sorting, --json."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from cnnkit.cli import main
from cnnkit.errors import CnnkitError
from cnnkit.runs import RUN_MARKER, list_runs, run_info
from cnnkit.runs.listing import RUNNING_WINDOW_S, find_runs, read_metrics


def _run(path: Path, *, epochs: int = 3, summary: dict | None = None, checkpoints: bool = True, model: str = "lenet5",
         planned: int = 10, seconds: float = 0.5) -> Path:
    path.mkdir(parents=True)
    (path / RUN_MARKER).write_text(json.dumps({"format": "cnnkit-run/1"}))
    (path / "config.yaml").write_text(f"model:\n  name: {model}\ndata:\n  name: digits\ntrain:\n  epochs: {planned}\n")
    rows = [{"epoch": e, "train_loss": 1.0 / e, "seconds": seconds} for e in range(1, epochs + 1)]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if checkpoints:
        (path / "checkpoints" / "step-000000010").mkdir(parents=True)
    if summary is not None:
        (path / "summary.json").write_text(json.dumps(summary))
    return path


def _age(path: Path, seconds: float) -> None:
    """Make every file and folder of ``path`` look ``seconds`` old."""
    t = time.time() - seconds
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.utime(Path(root) / name, (t, t))
    os.utime(path, (t, t))


def test_status_comes_from_the_files(tmp_path: Path) -> None:
    done = _run(tmp_path / "done", summary={"test_accuracy": 0.97, "epochs": 3, "wall_seconds": 12.0, "model": "lenet5", "dataset": "digits"})
    live = _run(tmp_path / "live")
    dead = _run(tmp_path / "dead")
    _age(done, 10 * RUNNING_WINDOW_S)
    _age(dead, 10 * RUNNING_WINDOW_S)
    assert run_info(done).status == "finished"  # however old: the summary says it ended
    assert run_info(live).status == "running"
    assert run_info(dead).status == "interrupted"
    # Slow epochs widen the window: 3 epochs of 100 s each, last written 200 s ago, is still running.
    slow = _run(tmp_path / "slow", seconds=100.0)
    _age(slow, 200)
    assert run_info(slow).status == "running"
    _age(slow, 301)
    assert run_info(slow).status == "interrupted"


def test_fields_and_sorting(tmp_path: Path) -> None:
    _run(tmp_path / "b", summary={"test_accuracy": 0.90, "epochs": 3, "wall_seconds": 5.0, "model": "vgg11", "dataset": "cifar10"})
    _run(tmp_path / "a", summary={"test_accuracy": 0.99, "epochs": 3, "wall_seconds": 9.0, "model": "lenet5", "dataset": "digits"})
    _run(tmp_path / "c", epochs=2, planned=7)
    by_acc = list_runs(tmp_path, sort="accuracy")
    assert [r.name for r in by_acc] == ["a", "b", "c"]  # descending, the run without a value last
    assert [r.name for r in list_runs(tmp_path, sort="name")] == ["a", "b", "c"]
    assert [r.name for r in list_runs(tmp_path, sort="time")] == ["a", "b", "c"]
    a, b, c = by_acc
    assert (a.model, a.data, a.epochs, a.test_accuracy, a.seconds) == ("lenet5", "digits", 3, 0.99, 9.0)
    assert (c.model, c.epochs, c.planned_epochs, c.test_accuracy) == ("lenet5", 2, 7, None)
    assert c.seconds == pytest.approx(1.0)  # no summary: the epochs' own times
    with pytest.raises(CnnkitError, match="did you mean 'accuracy'"):
        list_runs(tmp_path, sort="acuracy")


def test_scan_finds_nested_runs_and_stays_inside(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    _run(root / "group" / "one")
    cv = _run(root / "cv")
    _run(cv / "fold-0")
    (root / "not-a-run").mkdir()
    (root / "not-a-run" / "notes.txt").write_text("hello")
    outside = _run(tmp_path / "outside")
    (root / "link").symlink_to(outside, target_is_directory=True)
    _run(root / ".hidden")
    ids = [run_info(p, root=root).id for p in find_runs(root)]
    assert ids == ["cv", "cv/fold-0", "group/one"]
    assert find_runs(cv) == [cv]  # a run folder itself
    with pytest.raises(CnnkitError, match="not found"):
        find_runs(tmp_path / "missing")


def test_torn_and_hostile_files_are_tolerated(tmp_path: Path) -> None:
    run = _run(tmp_path / "r")
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write('{"epoch": 4, "train_lo')  # a kill mid-write
    (run / "summary.json").write_text("[1, 2]")  # not an object
    (run / "config.yaml").write_text("!!python/object:os.system ls\n")  # unsafe YAML: not loaded
    assert [r["epoch"] for r in read_metrics(run)] == [1, 2, 3]
    info = run_info(run)
    assert info.status == "finished" and info.model is None and info.test_accuracy is None


def test_cli_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run(tmp_path / "ok", summary={"test_accuracy": 0.975, "epochs": 3, "wall_seconds": 75.0, "model": "lenet5", "dataset": "digits"})
    _run(tmp_path / "\x1b[2Jevil")
    assert main(["runs", str(tmp_path), "--sort", "name"]) == 0
    out = capsys.readouterr().out
    assert "97.50%" in out and "1.2 min" in out and "finished" in out and "running" in out
    assert "\x1b" not in out and "evil" in out
    assert main(["runs", str(tmp_path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["status"] for r in rows} == {"finished", "running"} and all("path" in r for r in rows)
    assert main(["runs", str(tmp_path / "nope")]) == 2
    assert "runs folder not found" in capsys.readouterr().err


def test_table_keeps_a_quickstart_row_on_one_line_in_80_columns(tmp_path: Path) -> None:
    from rich.console import Console

    from cnnkit.runs.listing import runs_table

    run = _run(tmp_path / "lenet5-digits-20261204-015904", epochs=20, planned=20, summary={
        "test_accuracy": 0.9911, "epochs": 20, "wall_seconds": 158.0, "model": "lenet5", "dataset": "digits"})
    console = Console(width=80, record=True)
    console.print(runs_table([run_info(run)]))
    lines = [line for line in console.export_text().splitlines() if "lenet5-digits" in line]
    assert len(lines) == 1 and lines[0].split() == ["lenet5-digits-20261204-015904", "lenet5", "digits", "20", "99.11%", "2.6", "min", "finished"]
