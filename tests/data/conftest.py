"""Fixtures for the data tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .data_fixtures import write_mnist_dir


@pytest.fixture
def isolated_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME and CNNKIT_DATA pointed into tmp_path so no real dataset folder is found by accident
    (except /usr/share/datasets, which tests avoid by using names not installed there)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CNNKIT_DATA", str(tmp_path / "cnnkit_data"))
    return tmp_path


@pytest.fixture
def mnist_dir(tmp_path: Path) -> Callable[..., tuple[Path, dict]]:
    def make(**kw) -> tuple[Path, dict]:
        folder = tmp_path / "mnist"
        return folder, write_mnist_dir(folder, **kw)

    return make
