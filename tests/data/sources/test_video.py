"""video-folder and video-npz: reading, fitting to the model, and one-line errors for bad clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.config.schema import DataConfig
from cnnkit.data import build_data
from cnnkit.data.sources.video import clip_array, read_clip_folder
from cnnkit.errors import DataError


def write_clip(folder: Path, frames: np.ndarray) -> None:
    """``frames`` (T, H, W) uint8 as frame1.png ... frameT.png (names sorted naturally, not as strings)."""
    folder.mkdir(parents=True, exist_ok=True)
    for t, f in enumerate(frames, start=1):
        Image.fromarray(f).save(folder / f"frame{t}.png")


def make_video_folder(root: Path, *, n: int = 4, t: int = 4, size: int = 8) -> Path:
    rng = np.random.default_rng(0)
    for cls in ("left", "right"):
        for i in range(n):
            write_clip(root / cls / f"clip{i}", rng.integers(0, 256, (t, size, size), dtype=np.uint8))
    return root


def test_read_clip_folder_orders_frames_naturally(tmp_path: Path):
    frames = np.stack([np.full((4, 5), 10 * t, dtype=np.uint8) for t in range(12)])
    write_clip(tmp_path / "c", frames)
    x = read_clip_folder(tmp_path / "c")
    assert x.shape == (1, 12, 4, 5)
    assert x[0, :, 0, 0].tolist() == [10 * t for t in range(12)]  # frame10 after frame9, not after frame1


def test_video_folder_builds_clips_at_the_model_size(tmp_path: Path):
    root = make_video_folder(tmp_path / "v", n=6, t=6, size=12)
    cfg = DataConfig(name="video-folder", root=str(root), test_fraction=0.25, batch_size=4)
    b = build_data(cfg, input_shape=(3, 3, 8, 8), device="cpu", seed=0)
    assert b.kind == "clip" and b.class_names == ["left", "right"]
    assert b.input_shape == (1, 3, 8, 8)  # gray frames stay gray; frames subsampled 6 -> 3, resized 12 -> 8
    assert len(b.train.labels) == 9 and len(b.test.labels) == 3
    assert b.preprocessing["source"] == {"frames": 6, "frame_size": [12, 12]}


@pytest.mark.parametrize(("damage", "match"), [
    ("empty", "clip folder .*clip1 holds no PNG/JPEG frames"),
    ("frames", "clip folder .*clip1 has 3 frames but .*clip0 has 4 frames"),
    ("size", "clip folder .*clip1 has 9x9 but .*clip0 has 8x8"),
    ("mixed", "clip folder .*clip1 has frames of different sizes"),
])
def test_bad_clip_folders_are_one_line_errors(tmp_path: Path, damage: str, match: str):
    root = make_video_folder(tmp_path / "v", n=2)
    bad = root / "left" / "clip1"
    for f in bad.iterdir():
        f.unlink()
    if damage == "frames":
        write_clip(bad, np.zeros((3, 8, 8), dtype=np.uint8))
    elif damage == "size":
        write_clip(bad, np.zeros((4, 9, 9), dtype=np.uint8))
    elif damage == "mixed":
        write_clip(bad, np.zeros((3, 8, 8), dtype=np.uint8))
        Image.fromarray(np.zeros((9, 9), dtype=np.uint8)).save(bad / "frame4.png")
    cfg = DataConfig(name="video-folder", root=str(root))
    with pytest.raises(DataError, match=match) as info:
        build_data(cfg, input_shape=(1, 4, 8, 8), device="cpu", seed=0)
    assert "\n" not in str(info.value)


def test_video_folder_too_few_frames_and_no_classes(tmp_path: Path):
    root = make_video_folder(tmp_path / "v", n=2, t=2)
    with pytest.raises(DataError, match="has 2 frames but the model takes 4"):
        build_data(DataConfig(name="video-folder", root=str(root)), input_shape=(1, 4, 8, 8), device="cpu", seed=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="has no class folders"):
        build_data(DataConfig(name="video-folder", root=str(tmp_path / "empty")), input_shape=(1, 4, 8, 8),
                   device="cpu", seed=0)


def test_video_npz_reads_gray_and_colour_clips(tmp_path: Path):
    rng = np.random.default_rng(0)
    path = tmp_path / "clips.npz"
    np.savez(path, x_train=rng.integers(0, 256, (10, 4, 6, 6), dtype=np.uint8), y_train=np.arange(10) % 3,
             x_test=rng.integers(0, 256, (4, 4, 6, 6), dtype=np.uint8), y_test=np.arange(4) % 3)
    b = build_data(DataConfig(name="video-npz", root=str(path)), input_shape=(3, 4, 6, 6), device="cpu", seed=0)
    assert b.input_shape == (1, 4, 6, 6) and b.num_classes == 3 and len(b.test.labels) == 4
    x = clip_array(rng.random((2, 3, 2, 4, 4)).astype(np.float32), "a")
    assert x.dtype == torch.float32 and x.shape == (2, 3, 2, 4, 4)
    with pytest.raises(DataError, match="values must lie in 0..1"):
        clip_array(np.full((1, 1, 2, 2, 2), 2.0), "a")
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=np.zeros((3, 4, 6, 6), np.uint8), y_train=np.zeros(2, np.int64))
    with pytest.raises(DataError, match="y_train must hold one non-negative integer label per clip"):
        build_data(DataConfig(name="video-npz", root=str(bad)), input_shape=(1, 4, 6, 6), device="cpu", seed=0)
