"""The atomic writer: a failed or interrupted write leaves the old file and no temp file."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from cnnkit.errors import CnnkitError
from cnnkit.runs import (
    atomic_write_text,
)


def _raise(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def test_failed_atomic_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "summary.json"
    atomic_write_text(target, "old")

    def full(fd: int) -> None:
        raise _raise(errno.ENOSPC)

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(CnnkitError, match=r"cannot write .*summary.json: No space left on device; free some disk space, then run the command again"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "a" / "f.json"
    atomic_write_text(target, "1")
    atomic_write_text(target, "2")
    assert target.read_text() == "2"
    assert [p.name for p in target.parent.iterdir()] == ["f.json"]
