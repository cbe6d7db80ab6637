"""Video models end to end through the CLI on tiny generated Moving-MNIST clips: train, resume, evaluate,
predict (.npy clips and folders of frames), explain, summary; and the clip input reader's errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.cli import main
from cnnkit.evaluate.clip_inputs import iter_clip_inputs, load_clip_inputs
from cnnkit.runs import load_model

# 4 frames of 16x16, 48 training clips: a CNN + LSTM trains an epoch in about a second.
TINY = ["data.name=moving-mnist", "data.sprites=digits", "data.n_train=48", "data.n_test=16", "data.batch_size=16",
        "model.name=cnn_lstm", "model.widths=[4, 8]", "model.hidden_size=8", "model.input_size=[4, 16, 16]",
        "train.threads=1", "schedule.name=none", "data.augment.hflip=true", "data.augment.crop_padding=1"]


def _train(out: Path, *extra: str) -> dict:
    args = ["train", "--out", str(out)]
    for s in TINY + list(extra):
        args += ["--set", s]
    assert main(args) == 0
    return json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("video") / "run"
    _train(out, "train.epochs=2")
    return out


def test_train_writes_a_clip_run(run: Path):
    summary = json.loads((run / "summary.json").read_text())
    assert 0 <= summary["test_accuracy"] <= 1 and summary["model"] == "cnn_lstm"
    info = json.loads((run / "model.json").read_text())
    assert info["kind"] == "clip" and info["input_shape"] == [1, 4, 16, 16]
    assert info["build"]["input_size"] == [4, 16, 16] and info["build"]["in_channels"] == 1
    assert info["class_names"] == ["up-right", "up-left", "down-left", "down-right"]
    assert info["data_meta"]["generator"] == "moving-mnist"


def test_resume_continues_exactly(run: Path, tmp_path: Path):
    part = tmp_path / "part"
    _train(part, "train.epochs=1")
    assert main(["train", "--resume", str(part), "--set", "train.epochs=2"]) == 0
    a, b = load_model(run).model.state_dict(), load_model(part).model.state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_evaluate_predict_explain_and_summary(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["evaluate", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    summary = json.loads((run / "summary.json").read_text())
    # Clip classifiers get the classifier report: the confusion matrix over the 16 test clips (its rows sum
    # to each class's support), per-class metrics, and the most confident errors drawn as filmstrips.
    assert report["accuracy"] == pytest.approx(summary["test_accuracy"])
    cm = np.array(report["confusion_matrix"])
    assert cm.shape == (4, 4) and cm.sum() == 16 and np.trace(cm) == round(16 * report["accuracy"])
    assert list(cm.sum(axis=1)) == [report["per_class"][c]["support"] for c in report["class_names"]]
    for key in ("confusion_matrix_png", "confusion_matrix_txt", "most_confident_errors_png"):
        assert Path(report["files"][key]).stat().st_size > 0, key
    assert main(["evaluate", str(run)]) == 0
    assert "Per class" in capsys.readouterr().out
    rng = np.random.default_rng(0)
    np.save(tmp_path / "one.npy", rng.integers(0, 256, (1, 6, 20, 20), dtype=np.uint8))  # resized, subsampled
    frames = tmp_path / "clips" / "c0"
    frames.mkdir(parents=True)
    for t in range(4):
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(frames / f"f{t}.png")
    out = tmp_path / "pred.json"
    assert main(["predict", str(run), str(tmp_path / "one.npy"), str(tmp_path / "clips"), str(tmp_path / "nope"),
                 "--output", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["error"] is None for r in rows] == [True, True, False]
    assert rows[1]["input"].endswith("c0") and rows[0]["label"] in ("up-right", "up-left", "down-left", "down-right")
    assert "input not found" in capsys.readouterr().err
    assert main(["explain", str(run), str(frames), "--method", "gradcam", "--out", str(tmp_path / "ex")]) == 0
    assert (tmp_path / "ex" / "000-c0-gradcam.png").stat().st_size > 1000
    capsys.readouterr()
    assert main(["summary", "cnn_lstm", "--input", "1,4,16,16", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["input_shape"] == [1, 4, 16, 16]


def test_c3d_and_two_stream_train_a_step(tmp_path: Path):
    for name, extra in (("c3d", ["model.variant=small", "model.input_size=[8, 16, 16]", "model.batch_norm=true"]),
                        ("two_stream", ["model.variant=small", "model.input_size=[3, 32, 32]", "task.aux_weight=1.0"])):
        s = _train(tmp_path / name, f"model.name={name}", "train.epochs=1", "data.limit_train=16",
                   "data.limit_test=8", "model.widths=null", "model.hidden_size=null", *extra)
        assert s["model"] == name and 0 <= s["test_accuracy"] <= 1


def test_clip_input_errors(tmp_path: Path):
    pre = {"kind": "clip", "input_shape": [1, 4, 8, 8], "mean": [0.5], "std": [0.25]}
    np.save(tmp_path / "short.npy", np.zeros((1, 2, 8, 8), np.uint8))
    np.save(tmp_path / "flat.npy", np.zeros((8, 8), np.uint8))
    (tmp_path / "empty").mkdir()
    (tmp_path / "a.txt").write_text("x")
    got = {Path(n).name: e for n, _, e in iter_clip_inputs(
        [tmp_path / "short.npy", tmp_path / "flat.npy", tmp_path / "empty", tmp_path / "a.txt"], pre)}
    assert "has 2 frames but the model takes 4" in got["short.npy"]
    assert "expected a clip (C, T, H, W)" in got["flat.npy"]
    assert "holds no .npy clips or folders of frame images" in got["empty"]
    assert "unsupported input" in got["a.txt"]
    names, x = load_clip_inputs([tmp_path / "short.npy"], {**pre, "input_shape": [1, 2, 4, 4]})
    assert x.shape == (1, 1, 2, 4, 4)
    torch.testing.assert_close(x, torch.full_like(x, -2.0))  # (0 - 0.5) / 0.25


def test_image_only_tta_leaves_clips_as_they_are():
    from cnnkit.evaluate.tta import tta_log_probs, tta_views

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 3 * 4 * 4, 3))
    x = torch.randn(2, 1, 2, 3, 4, 4)[:, 0]  # (N, C=2, T=3, H, W)
    assert len(tta_views(x, "flip")) == 1  # a flip would change a motion label: clips are not flipped
    torch.testing.assert_close(tta_log_probs(model, x, "flip"), torch.log_softmax(model(x).double(), 1))
