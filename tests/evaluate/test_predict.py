"""predict on PNG/JPEG/BMP/WebP/.npy inputs and folders; unreadable inputs skipped with a reason; tables."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.cli import main
from cnnkit.errors import CnnkitError
from cnnkit.evaluate import predict
from cnnkit.evaluate.predict import write_predictions


@pytest.fixture(scope="module")
def test_images(trained_run: Path) -> tuple[torch.Tensor, torch.Tensor]:
    from cnnkit.runs import load_model, load_run_data

    run = load_run_data(trained_run, load_model(trained_run))
    return run.bundle.test.images[:6].clone(), run.bundle.test.labels[:6].clone()


def test_npy_png_jpeg_and_folder_agree_with_the_model(trained_run: Path, tmp_path: Path, test_images) -> None:  # type: ignore[no-untyped-def]
    from cnnkit.runs import load_model

    imgs, _ = test_images  # uint8 (6, 1, 8, 8)
    np.save(tmp_path / "one.npy", imgs[0, 0].numpy())  # (H, W) uint8
    np.save(tmp_path / "batch.npy", imgs[1:4].numpy().astype(np.float32) / 255.0)  # (N, C, H, W) float
    Image.fromarray(imgs[4, 0].numpy(), mode="L").save(tmp_path / "four.png")
    Image.fromarray(np.repeat(imgs[5, 0].numpy()[..., None], 3, axis=2), mode="RGB").save(tmp_path / "five.jpg", quality=100)
    out = predict(trained_run, [tmp_path / "one.npy", tmp_path / "batch.npy", tmp_path / "four.png", tmp_path / "five.jpg"], top_k=3)
    assert [o["input"].split("/")[-1] for o in out] == ["one.npy", "batch.npy[0]", "batch.npy[1]", "batch.npy[2]", "four.png", "five.jpg"]
    loaded = load_model(trained_run)
    from cnnkit.data import apply_preprocessing

    with torch.no_grad():
        ref = torch.softmax(loaded.model(apply_preprocessing(imgs, loaded.preprocessing)), 1)
    for i, o in enumerate(out[:5]):  # exact pixels (the JPEG is lossy)
        assert len(o["top"]) == 3
        assert o["top"][0]["class"] == int(ref[i].argmax())
        assert o["top"][0]["probability"] == pytest.approx(float(ref[i].max()), abs=1e-3)  # float pixels round-trip
        assert o["top"][0]["name"] == loaded.class_names[o["top"][0]["class"]]
        probs = [t["probability"] for t in o["top"]]
        assert probs == sorted(probs, reverse=True)
    # a folder: its supported files, sorted
    assert [o["input"] for o in predict(trained_run, [tmp_path])] == [o["input"] for o in predict(trained_run, sorted(
        [tmp_path / "batch.npy", tmp_path / "five.jpg", tmp_path / "four.png", tmp_path / "one.npy"]))]


def test_other_sizes_are_fitted(trained_run: Path, tmp_path: Path) -> None:
    Image.fromarray((np.random.default_rng(0).random((20, 24)) * 255).astype(np.uint8)).save(tmp_path / "big.png")
    out = predict(trained_run, [tmp_path / "big.png"], top_k=100)
    assert len(out[0]["top"]) == 10  # top_k capped at the class count
    assert sum(t["probability"] for t in out[0]["top"]) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    "name,content,match",
    [
        ("bad.png", b"not a png at all", r"unreadable image .*bad\.png"),
        ("obj.npy", "object", r"obj\.npy is not a valid \.npy array file \(it holds Python objects"),
        ("shape.npy", np.zeros((2, 5, 8, 8), np.uint8), r"shape\.npy has shape \(2, 5, 8, 8\)"),
        ("five_d.npy", np.zeros((1, 1, 1, 8, 8), np.uint8), r"five_d\.npy has shape"),
        ("range.npy", np.full((8, 8), 3.0, np.float32), r"range\.npy: float pixels must be finite and lie in \[0, 1\]"),
        ("neg.npy", np.full((8, 8), -1, np.int16), r"neg\.npy: integer pixels must lie in 0..255"),
        ("pic.gif", b"GIF89a", r"unsupported input .*pic\.gif"),
    ],
)
def test_bad_inputs_name_the_file(trained_run: Path, tmp_path: Path, name: str, content: object, match: str) -> None:
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    elif isinstance(content, str):
        np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    else:
        np.save(p, content)
    with pytest.raises(CnnkitError, match=match) as info:
        predict(trained_run, [p])
    assert "pickle" not in str(info.value)  # never point a user at unpickling a file from elsewhere


def test_missing_and_empty(trained_run: Path, tmp_path: Path) -> None:
    with pytest.raises(CnnkitError, match="input not found"):
        predict(trained_run, [tmp_path / "nope.png"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CnnkitError, match="holds no PNG, JPEG, BMP, WebP or .npy files"):
        predict(trained_run, [tmp_path / "empty"])
    with pytest.raises(CnnkitError, match="no inputs given"):
        predict(trained_run, [])
    with pytest.raises(CnnkitError, match="Expected top_k >= 1"):
        predict(trained_run, [tmp_path], top_k=0)


def test_decompression_bomb_is_refused(trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4096 pixels > 2 x 1000: Pillow's hard limit
    with pytest.raises(CnnkitError, match=r"bomb\.png"):
        predict(trained_run, [tmp_path / "bomb.png"])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # between the limit and twice it: Pillow only warns
    with pytest.raises(CnnkitError, match=r"bomb\.png"):
        predict(trained_run, [tmp_path / "bomb.png"])


# ---------------------------------------------------------------- nothing lost: skips, folders, formats, tables


def _digit(test_images, i: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    return test_images[0][i, 0].numpy()


def test_an_unreadable_input_is_skipped_not_fatal(trained_run: Path, tmp_path: Path, test_images) -> None:  # type: ignore[no-untyped-def]
    np.save(tmp_path / "a.npy", _digit(test_images, 0))
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    np.save(tmp_path / "c.npy", _digit(test_images, 1))
    skipped: list[tuple[str, str]] = []
    inputs = [tmp_path / "a.npy", tmp_path / "bad.png", tmp_path / "missing.png", tmp_path / "c.npy"]
    out = predict(trained_run, inputs, on_skip=lambda name, error: skipped.append((name, error)))
    assert [Path(o["input"]).name for o in out] == ["a.npy", "bad.png", "missing.png", "c.npy"]
    assert "top" in out[0] and "top" in out[3]
    assert out[1]["error"].startswith("unreadable image") and "bad.png" in out[1]["error"]
    assert out[2]["error"] == f"input not found: {tmp_path / 'missing.png'}"
    assert skipped == [(o["input"], o["error"]) for o in out[1:3]]
    # the same predictions as without the bad inputs
    clean = predict(trained_run, [tmp_path / "a.npy", tmp_path / "c.npy"])
    assert [o["top"] for o in clean] == [out[0]["top"], out[3]["top"]]


def test_nothing_readable_raises_naming_the_first(trained_run: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    (tmp_path / "bad.npy").write_bytes(b"nope")
    with pytest.raises(CnnkitError, match=r"none of the 2 inputs could be read; the first: unreadable image .*bad\.png"):
        predict(trained_run, [tmp_path / "bad.png", tmp_path / "bad.npy"])


def test_folders_are_read_recursively(trained_run: Path, tmp_path: Path, test_images) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    np.save(tmp_path / "a" / "b" / "deep.npy", _digit(test_images, 0))
    np.save(tmp_path / ".hidden" / "secret.npy", _digit(test_images, 1))
    np.save(tmp_path / "a" / ".dot.npy", _digit(test_images, 1))
    Image.fromarray(_digit(test_images, 2), mode="L").save(tmp_path / "top.png")
    (tmp_path / "notes.txt").write_text("not an input")
    out = predict(trained_run, [tmp_path])
    assert [Path(o["input"]).relative_to(tmp_path).as_posix() for o in out] == ["a/b/deep.npy", "top.png"]
    assert all("top" in o for o in out)


def test_bmp_and_webp_are_read(trained_run: Path, tmp_path: Path, test_images) -> None:  # type: ignore[no-untyped-def]
    gray = _digit(test_images, 3)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    Image.fromarray(gray, mode="L").save(tmp_path / "ref.png")
    Image.fromarray(gray, mode="L").save(tmp_path / "gray.bmp")
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "colour.bmp")
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "lossless.webp", lossless=True)
    out = {Path(o["input"]).name: o for o in predict(trained_run, [tmp_path], top_k=3)}
    assert set(out) == {"ref.png", "gray.bmp", "colour.bmp", "lossless.webp"}  # a folder finds them too
    for name in ("gray.bmp", "colour.bmp", "lossless.webp"):
        assert out[name]["top"][0]["class"] == out["ref.png"]["top"][0]["class"], name
        assert out[name]["top"][0]["probability"] == pytest.approx(out["ref.png"]["top"][0]["probability"], abs=1e-5)
    (tmp_path / "fake.webp").write_bytes(b"RIFF0000WEBPjunk")
    with pytest.raises(CnnkitError, match=r"unreadable image .*fake\.webp: not a valid WebP file"):
        predict(trained_run, [tmp_path / "fake.webp"])
    (tmp_path / "png_named.bmp").write_bytes((tmp_path / "ref.png").read_bytes())
    with pytest.raises(CnnkitError, match=r"png_named\.bmp: not a valid BMP file"):
        predict(trained_run, [tmp_path / "png_named.bmp"])


def test_bmp_decompression_bomb_is_refused(trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "bomb.bmp")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # between the limit and twice it: Pillow only warns
    with pytest.raises(CnnkitError, match=r"unreadable image .*bomb\.bmp"):
        predict(trained_run, [tmp_path / "bomb.bmp"])


def test_output_table_csv_and_json(trained_run: Path, tmp_path: Path, test_images) -> None:  # type: ignore[no-untyped-def]
    np.save(tmp_path / "a.npy", _digit(test_images, 0))
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    inputs = [tmp_path / "a.npy", tmp_path / "bad.png"]
    results = predict(trained_run, inputs, top_k=2, output=tmp_path / "out" / "predictions.csv")
    with open(tmp_path / "out" / "predictions.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    top = results[0]["top"]
    assert rows[0] == {
        "input": str(tmp_path / "a.npy"), "label": top[0]["name"], "class": str(top[0]["class"]),
        "probability": str(top[0]["probability"]),
        "top_k": f"{top[0]['name']} ({top[0]['probability']:.4f}); {top[1]['name']} ({top[1]['probability']:.4f})",
        "error": "",
    }
    assert rows[1]["input"] == str(tmp_path / "bad.png") and rows[1]["label"] == "" and rows[1]["error"].startswith("unreadable image")
    predict(trained_run, inputs, top_k=2, output=tmp_path / "predictions.JSON")
    table = json.loads((tmp_path / "predictions.JSON").read_text())
    assert table[0] == {"input": str(tmp_path / "a.npy"), "label": top[0]["name"], "class": top[0]["class"],
                        "probability": top[0]["probability"], "top_k": top, "error": None}
    assert table[1]["label"] is None and table[1]["top_k"] == [] and "bad.png" in table[1]["error"]
    assert not list(tmp_path.rglob("*.tmp"))


def test_output_other_extensions_are_refused_before_reading(trained_run: Path, tmp_path: Path) -> None:
    for name in ("predictions.txt", "predictions"):
        with pytest.raises(CnnkitError, match=r"cannot write predictions to .*: .*ending in \.csv or \.json"):
            predict(trained_run, [tmp_path / "missing.png"], output=tmp_path / name)  # refused, not "not found"
        with pytest.raises(CnnkitError, match=r"ending in \.csv or \.json"):
            write_predictions([], tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_cli_skips_on_stderr_and_sets_the_exit_status(
    trained_run: Path, tmp_path: Path, test_images, capsys: pytest.CaptureFixture[str]  # type: ignore[no-untyped-def]
) -> None:
    np.save(tmp_path / "a.npy", _digit(test_images, 0))
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    assert main(["predict", str(trained_run), str(tmp_path / "a.npy"), str(tmp_path / "bad.png"),
                 "--output", str(tmp_path / "p.csv")]) == 0
    cap = capsys.readouterr()
    assert cap.out.startswith(f"{tmp_path / 'a.npy'}: ") and "bad.png" not in cap.out
    assert cap.err.startswith("cnnkit: skipped: unreadable image ") and "bad.png" in cap.err
    assert len(cap.err.strip().splitlines()) == 1
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 3  # header + one row per input
    assert main(["predict", str(trained_run), str(tmp_path / "bad.png"), str(tmp_path / "nope.npy")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("cnnkit: skipped: unreadable image") and err[1] == f"cnnkit: skipped: input not found: {tmp_path / 'nope.npy'}"
    assert err[2].startswith("cnnkit: error: none of the 2 inputs could be read")
    assert main(["predict", str(trained_run), str(tmp_path / "a.npy"), "--output", str(tmp_path / "p.xlsx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cnnkit: error: cannot write predictions to ") and ".csv or .json" in err[0]


def test_output_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "taken.csv").mkdir()  # a folder where the file should go
    with pytest.raises(CnnkitError, match=r"cannot write predictions to .*taken\.csv: "):
        write_predictions([{"input": "x.png", "error": "unreadable"}], tmp_path / "taken.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.csv"]  # no partial file left behind


def test_rows_of_other_tasks_keep_their_columns(tmp_path):
    # A forecaster's or anomaly detector's rows have no class columns: their own keys are written instead
    # (the classification columns came out empty before).
    results = [
        {"input": "a.csv", "forecast": [1.5, 2.0], "quantiles": {"0.1": [1.0, 1.5]}},
        {"input": "b.csv", "error": "unreadable"},
        {"input": "c.csv", "scores": [0.1, 0.9], "anomalies": [1], "threshold": 0.5},
    ]
    with open(write_predictions(results, tmp_path / "p.csv"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["input", "forecast", "quantiles", "scores", "anomalies", "threshold", "error"]
    assert rows[0]["forecast"] == "1.5; 2.0" and json.loads(rows[0]["quantiles"]) == {"0.1": [1.0, 1.5]}
    assert rows[1]["error"] == "unreadable" and rows[1]["forecast"] == ""
    assert rows[2]["anomalies"] == "1" and rows[2]["threshold"] == "0.5"
    data = json.loads(write_predictions(results, tmp_path / "p.json").read_text())
    assert data[2]["scores"] == [0.1, 0.9] and data[0]["error"] is None
