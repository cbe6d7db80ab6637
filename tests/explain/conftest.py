"""Session fixtures: the square-task CNN and its run folder (see explain_helpers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from explain_helpers import make_square_run, trained_shape_model, trained_square_model  # type: ignore[import-not-found]
from torch import nn


@pytest.fixture(scope="session")
def square_model() -> nn.Module:
    return trained_square_model()


@pytest.fixture(scope="session")
def shape_model() -> nn.Module:
    return trained_shape_model()


@pytest.fixture(scope="session")
def square_run(square_model: nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_square_run(tmp_path_factory.mktemp("square-run"), square_model)
