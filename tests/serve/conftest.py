"""Session fixtures: two tiny digits runs under one runs folder (see serve_helpers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .serve_helpers import make_serve_run


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve-runs")
    make_serve_run(root / "tiny-a", seed=0)
    make_serve_run(root / "tiny-b", seed=1, steps=40)
    return root


@pytest.fixture(scope="session")
def run_a(runs_root: Path) -> Path:
    return runs_root / "tiny-a"


@pytest.fixture(scope="session")
def run_b(runs_root: Path) -> Path:
    return runs_root / "tiny-b"
