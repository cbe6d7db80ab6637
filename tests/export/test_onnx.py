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


def _file_opset(path: str | Path) -> int:
    import onnx

    return next(o.version for o in onnx.load(str(path)).opset_import if o.domain in ("", "ai.onnx"))


def test_the_requested_opset_is_the_one_written(run_dir: Path) -> None:
    result = export_onnx(run_dir, opset=18, check=False)
    assert result["opset"] == 18 == _file_opset(result["path"])
    assert export_onnx(run_dir, check=False)["opset"] == _file_opset(run_dir / "model.onnx")


def test_an_opset_the_exporter_cannot_write_is_one_line_exit_2(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from cnnkit.cli import main

    levels = {n: logging.getLogger(n).level for n in ("torch.onnx", "onnxscript")}
    out = run_dir / "old.onnx"
    # torch's exporter writes opset 18+; for 7 its down-conversion fails, it logs a traceback and keeps 18.
    assert main(["export", str(run_dir), "--opset", "7", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        "cnnkit: error: opset 7 is not supported by torch's exporter for this model (it writes opset 18 and newer; "
        "converting down to 7 failed); use --opset 18 or newer\n"
    )
    assert "wrote" not in captured.out and "Traceback" not in captured.err
    assert not out.exists()  # nothing left that claims to be opset 7
    assert {n: logging.getLogger(n).level for n in levels} == levels  # loggers restored
    assert main(["export", str(run_dir), "--opset", "999", "--out", str(out)]) == 2
    assert "opset 999 is newer than the installed onnx package supports" in capsys.readouterr().err
    assert main(["export", str(run_dir), "--opset", "18", "--out", str(out), "--no-check"]) == 0
    assert capsys.readouterr().out == f"wrote {out} (opset 18)\n"


def test_any_exporter_failure_is_one_line(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("exporter exploded\nwith a long traceback")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(CnnkitError, match=r"ONNX export failed for .*: exporter exploded$"):
        export_onnx(run_dir)
