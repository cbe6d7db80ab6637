"""Run folders: the marker, what --overwrite may replace, failed creations, the umask, env.json."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from cnnkit.errors import CnnkitError
from cnnkit.runs import (
    RUN_MARKER,
    atomic_write_text,
    environment_info,
    is_run_dir,
    make_run_dir,
    save_model,
)


def test_make_run_dir_default_and_refuses_overwrite(tmp_path: Path) -> None:
    run = make_run_dir("exp", root=tmp_path)
    assert run.parent == tmp_path and run.name.startswith("exp-") and (run / "plots").is_dir()
    assert is_run_dir(run) and json.loads((run / RUN_MARKER).read_text())["format"] == "cnnkit-run/1"
    (run / "summary.json").write_text("{}")
    with pytest.raises(CnnkitError, match="already exists; pass --overwrite"):
        make_run_dir("exp", out=run)
    again = make_run_dir("exp", out=run, overwrite=True)
    assert again == run and not (run / "summary.json").exists() and is_run_dir(run)


def _user_folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "thesis.tex").write_text("years of work")
    (path / "data").mkdir(exist_ok=True)
    (path / "data" / "x.csv").write_text("1,2")
    # A folder that merely looks like a run is still not one: recognised by the marker, not by file names.
    (path / "config.yaml").write_text("seed: 0")
    return path


def _intact(path: Path) -> bool:
    return (path / "thesis.tex").read_text() == "years of work" and (path / "data" / "x.csv").is_file()


def test_overwrite_refuses_a_folder_cnnkit_did_not_create(tmp_path: Path) -> None:
    folder = _user_folder(tmp_path / "mine")
    with pytest.raises(CnnkitError, match="is not a cnnkit run folder") as info:
        make_run_dir("x", out=folder, overwrite=True)
    assert _intact(folder) and "\n" not in str(info.value)
    with pytest.raises(CnnkitError, match="not a cnnkit run folder .*; cnnkit replaces only folders it created") as info:
        make_run_dir("x", out=folder)
    assert "--overwrite" not in str(info.value)  # never suggested for a folder it would refuse


def test_overwrite_refuses_the_current_folder_its_ancestors_and_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run_dir("x", out=tmp_path / "run")
    (run / "keep.txt").write_text("1")
    monkeypatch.chdir(run)
    with pytest.raises(CnnkitError, match="refuses to delete .*: it is the current folder"):
        make_run_dir("x", out=".", overwrite=True)
    with pytest.raises(CnnkitError, match="already exists; pass --resume"):
        make_run_dir("x", out=".")
    monkeypatch.chdir(run / "plots")
    with pytest.raises(CnnkitError, match="it holds the current folder"):
        make_run_dir("x", out="..", overwrite=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(run))
    with pytest.raises(CnnkitError, match="it is the home folder"):
        make_run_dir("x", out=run, overwrite=True)
    assert (run / "keep.txt").read_text() == "1"


def test_an_empty_folder_is_used_as_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path / "empty")
    assert make_run_dir("x", out=".") == Path(".") and is_run_dir(".")


def _raise(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def test_read_only_folder_is_a_one_line_error_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = Path.mkdir

    def read_only(self: Path, *args: object, **kwargs: object) -> None:
        if str(self).startswith(str(tmp_path / "ro")):
            raise _raise(errno.EROFS)
        real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(CnnkitError, match=r"cannot write .*ro/run: Read-only file system; make it writable or choose another --out"):
        make_run_dir("x", out=tmp_path / "ro" / "run")
    assert not (tmp_path / "ro").exists()


def test_full_disk_while_creating_the_run_folder_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int) -> None:
        raise _raise(errno.ENOSPC)

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(CnnkitError, match=f"cannot write .*{RUN_MARKER}: No space left on device"):
        make_run_dir("x", out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.fixture
def umask_027() -> Iterator[None]:
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def test_run_folder_files_follow_the_umask(tmp_path: Path, umask_027: None) -> None:
    from cnnkit.models import build_model

    run = make_run_dir("x", out=tmp_path / "run")
    atomic_write_text(run / "config.yaml", "seed: 0")
    save_model(run, build_model(_lenet_build()), build=_lenet_build(), preprocessing={"input_shape": [1, 32, 32]})
    modes = {p.name: p.stat().st_mode & 0o777 for p in run.rglob("*")}
    assert modes == {
        RUN_MARKER: 0o640, "config.yaml": 0o640, "model.safetensors": 0o640, "model.json": 0o640, "plots": 0o750
    }


def test_two_runs_in_the_same_second_get_distinct_folders(tmp_path: Path) -> None:
    a = make_run_dir("x", root=tmp_path)
    b = make_run_dir("x", root=tmp_path)
    assert a != b


def test_environment_info_is_json() -> None:
    info = json.loads(json.dumps(environment_info("cpu")))
    assert info["torch"] == torch.__version__ and info["device"] == "cpu"


def _lenet_build() -> dict:
    return {"name": "lenet5", "variant": "modern", "num_classes": 10}
