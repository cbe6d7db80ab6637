"""Session fixtures: small trained run folders (see eval_helpers.make_run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .eval_helpers import make_run


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="session")
def run_without_val(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("run-noval"), val_fraction=0.0, steps=5)
