"""Session fixtures: the synthetic-task CNNs and a digits run folder (see explain_helpers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

from .explain_helpers import make_digits_run, trained_shape_model, trained_square_model


@pytest.fixture(scope="session")
def square_model() -> nn.Module:
    return trained_square_model()


@pytest.fixture(scope="session")
def shape_model() -> nn.Module:
    return trained_shape_model()


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_digits_run(tmp_path_factory.mktemp("digits-run"))
