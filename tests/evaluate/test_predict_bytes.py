"""``read_bytes``: a file's content in memory decodes exactly as the file does with ``read_input``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.errors import DataError
from cnnkit.evaluate.predict import read_bytes, read_input


@pytest.mark.parametrize(("suffix", "fmt", "mode"), [
    (".png", "PNG", "L"), (".png", "PNG", "RGBA"), (".jpg", "JPEG", "RGB"), (".bmp", "BMP", "L"), (".webp", "WEBP", "RGB"),
])
def test_bytes_decode_as_the_file_does(tmp_path: Path, suffix: str, fmt: str, mode: str) -> None:
    rng = np.random.default_rng(0)
    shape = (12, 9) if mode == "L" else (12, 9, len(mode))
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(tmp_path / f"x{suffix}", format=fmt)
    (name, from_file), = read_input(tmp_path / f"x{suffix}")
    (label, from_bytes), = read_bytes((tmp_path / f"x{suffix}").read_bytes(), "upload")
    assert label == "upload" and from_bytes.dtype == torch.uint8
    assert torch.equal(from_file, from_bytes)
    assert from_bytes.shape[0] == (1 if mode == "L" else 3)


def test_npy_bytes_and_batches(tmp_path: Path) -> None:
    arr = np.random.default_rng(1).random((2, 1, 5, 5)).astype(np.float32)
    np.save(tmp_path / "b.npy", arr)
    items = read_bytes((tmp_path / "b.npy").read_bytes(), "arr")
    assert [n for n, _ in items] == ["arr[0]", "arr[1]"]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(items, read_input(tmp_path / "b.npy")))
    buf = io.BytesIO()
    np.save(buf, np.array([None, 1], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="Python objects"):
        read_bytes(buf.getvalue())


def test_limits_and_garbage() -> None:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(buf, format="PNG")
    assert read_bytes(buf.getvalue(), max_pixels=2000)[0][1].shape == (1, 40, 50)
    with pytest.raises(DataError, match="50x40: more than the limit of 1999 pixels"):
        read_bytes(buf.getvalue(), max_pixels=1999)
    with pytest.raises(DataError, match="not a valid PNG or JPEG or BMP or WebP file"):
        read_bytes(b"GIF89a not allowed either")
    with pytest.raises(DataError, match="corrupt or truncated"):
        read_bytes(b"\x93NUMPY\x01\x00garbage")
