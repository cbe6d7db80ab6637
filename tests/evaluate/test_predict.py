"""predict on PNG/JPEG/.npy inputs and folders; clear errors for bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.errors import CnnkitError
from cnnkit.evaluate import predict


@pytest.fixture(scope="module")
def test_images(trained_run: Path) -> tuple[torch.Tensor, torch.Tensor]:
    from cnnkit.evaluate._run import load_run_data
    from cnnkit.runs import load_model

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
        ("obj.npy", "object", r"unreadable array .*obj\.npy"),
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
    with pytest.raises(CnnkitError, match=match):
        predict(trained_run, [p])


def test_missing_and_empty(trained_run: Path, tmp_path: Path) -> None:
    with pytest.raises(CnnkitError, match="input not found"):
        predict(trained_run, [tmp_path / "nope.png"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CnnkitError, match="holds no PNG, JPEG or .npy files"):
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
