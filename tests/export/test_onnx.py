"""ONNX export of a run folder, checked with onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cnnkit.errors import CnnkitError
from cnnkit.runs import save_model

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from cnnkit.export import export_onnx  # noqa: E402


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    from cnnkit.models import build_model

    build = {"name": "lenet5", "variant": "modern", "num_classes": 10}
    torch.manual_seed(0)
    save_model(tmp_path, build_model(build), build=build, preprocessing={"input_shape": [1, 32, 32]})
    return tmp_path


def test_export_matches_pytorch_with_dynamic_batch(run_dir: Path) -> None:
    from cnnkit.runs import load_model

    result = export_onnx(run_dir)
    assert result["max_abs_diff"] < 1e-4
    session = ort.InferenceSession(result["path"], providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((7, 1, 32, 32)).astype(np.float32)
    got = session.run(None, {"input": x})[0]
    expected = load_model(run_dir).model(torch.from_numpy(x)).detach().numpy()
    assert got.shape == (7, 10)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_export_of_a_missing_run(tmp_path: Path) -> None:
    with pytest.raises(CnnkitError, match="run folder not found"):
        export_onnx(tmp_path / "none")
