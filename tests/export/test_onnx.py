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


# Segmentation and detection runs: each trained for one tiny epoch from the command line, then exported.
_SEG = ["task=segmentation", "data.name=scenes", "data.num_train=16", "data.num_test=8", "data.canvas=[32,32]",
        "data.object_size=[8,16]", "data.batch_size=8", "data.eval_batch_size=8", "train.epochs=1", "train.threads=1",
        "schedule.name=none"]
_SEG_MODELS = {
    "unet-valid-overlap-tile": ["model.name=unet", "model.base_width=2", "model.depth=2", "model.padding=valid",
                                "model.overlap_tile=true"],
    "fcn-8s": ["model.name=fcn", "model.width_divisor=16", "model.hidden_features=16"],
    "segnet-index-unpooling": ["model.name=segnet", "model.width_divisor=16"],
}


def _train(out: Path, settings: list[str], recipe: str | None = None) -> Path:
    from cnnkit.cli import main

    args = ["train", *([recipe] if recipe else []), "--out", str(out), "--quiet"]
    for s in settings:
        args += ["--set", s]
    assert main(args) == 0
    return out


@pytest.mark.slow  # a training epoch plus the exporter: over 10 s on 2 cores
@pytest.mark.parametrize("name", list(_SEG_MODELS))
def test_segmentation_nets_export_and_match_onnxruntime(name: str, tmp_path: Path) -> None:
    from cnnkit.runs import load_model

    run = _train(tmp_path / "run", [*_SEG, *_SEG_MODELS[name]])
    result = export_onnx(run)
    assert result["max_abs_diff"] < 1e-4
    session = ort.InferenceSession(result["path"], providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((5, 1, 32, 32)).astype(np.float32)
    got = session.run(None, {"input": x})[0]
    expected = load_model(run).model.eval()(torch.from_numpy(x)).detach().numpy()
    assert got.shape == (5, 11, 32, 32)  # per-pixel scores of background + 10 digits
    np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.slow
def test_detector_exports_as_two_graphs_and_detects_like_pytorch(tmp_path: Path) -> None:
    pytest.importorskip("pycocotools")
    from cnnkit.data.sources.scenes import generate_scenes
    from cnnkit.export.detection import detect_with_onnx
    from cnnkit.runs import load_model

    recipe = str(Path(__file__).resolve().parents[2] / "configs" / "detection-faster-rcnn.yaml")
    run = _train(tmp_path / "run", ["data.scenes.num_train=12", "data.scenes.num_test=6", "data.batch_size=6",
                                    "data.eval_batch_size=6", "train.epochs=1", "model.representation=16"], recipe)
    result = export_onnx(run)
    assert result["max_abs_diff"] < 1e-4 and Path(result["head_path"]).name == "model-head.onnx"
    loaded = load_model(run)
    model = loaded.model.eval()
    proposer, head = (ort.InferenceSession(result[k], providers=["CPUExecutionProvider"]) for k in ("path", "head_path"))
    # Real scenes, normalized as the run's data was (mean/std from model.json), 4 images in one batch.
    pre = loaded.info["preprocessing"]
    images = torch.from_numpy(generate_scenes(4, seed=3, split="test").images).float() / 255
    x = ((images - torch.tensor(pre["mean"]).view(1, -1, 1, 1)) / torch.tensor(pre["std"]).view(1, -1, 1, 1)).numpy()
    dets, raw = detect_with_onnx(proposer, head, model, x)
    with torch.no_grad():
        want = model(torch.from_numpy(x))
    assert raw["anchors"].shape == (16 * 16 * 9, 4) and raw["rpn_logits"].shape == (4, 16 * 16 * 9)
    assert dets.shape == want.shape and torch.equal(dets[..., 5], want[..., 5])
    torch.testing.assert_close(dets, want, atol=1e-4, rtol=0)


def test_srcnn_exports_with_its_spectral_residual(tmp_path: Path) -> None:
    """SR-CNN's spectral residual runs inside the graph (a real DFT matrix product, no complex tensors), so
    the exported model scores raw windows as PyTorch does."""
    from cnnkit.models import build_model
    from cnnkit.runs import load_model

    build = {"name": "srcnn", "window": 32, "num_classes": 32}
    torch.manual_seed(0)
    save_model(tmp_path, build_model(build), build=build, preprocessing={"input_shape": [1, 32]},
               extra={"input_shape": [1, 32], "task": {"name": "anomaly"}})
    result = export_onnx(tmp_path)
    assert result["max_abs_diff"] < 1e-4
    session = ort.InferenceSession(result["path"], providers=["CPUExecutionProvider"])
    t = np.arange(32, dtype=np.float32)
    x = np.stack([np.sin(t / 3) + 0.1 * np.random.default_rng(i).standard_normal(32).astype(np.float32) for i in range(3)])
    x[1, 20] += 5  # a spike
    x = x[:, None]
    got = session.run(None, {"input": x})[0]
    expected = load_model(tmp_path).model.eval()(torch.from_numpy(x)).detach().numpy()
    assert got.shape == (3, 32)
    np.testing.assert_allclose(got, expected, atol=1e-4)
