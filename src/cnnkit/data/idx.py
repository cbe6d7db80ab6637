"""MNIST, Fashion-MNIST and KMNIST: IDX files (LeCun et al. 1998), gzipped or not.

The IDX format: 2 zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, one big-endian
int32 per dimension, then the data. Images are ``(N, 28, 28)`` (magic 0x00000803), labels ``(N,)`` (magic
0x00000801).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from ..config.schema import DataConfig
from ..errors import DataError
from ._core import DATASETS, ArrayDataset, DatasetSpec

__all__ = ["read_idx", "IDX_FILES"]

_TYPE_UBYTE = 0x08

# Each name lists its accepted spellings: gzipped, raw, and the '.idx' spelling that unpackers on some
# systems produce from the original MNIST archives.
IDX_FILES = {
    ("train", "images"): "train-images-idx3-ubyte.gz|train-images-idx3-ubyte|train-images.idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte.gz|train-labels-idx1-ubyte|train-labels.idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte.gz|t10k-images-idx3-ubyte|t10k-images.idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte.gz|t10k-labels-idx1-ubyte|t10k-labels.idx1-ubyte",
}


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:
            raise DataError(f"corrupt gzip file {path}: {e}") from None
    return raw


def read_idx(path: str | Path, ndim: int) -> np.ndarray:
    """Read an unsigned-byte IDX file with ``ndim`` dimensions (gzipped or not) into a uint8 array.

    Raises:
        DataError: wrong magic number, or the file size disagrees with the header (truncated / corrupt).
    """
    path = Path(path)
    data = _read_bytes(path)
    expected_magic = (_TYPE_UBYTE << 8) | ndim
    if len(data) < 4:
        raise DataError(f"truncated IDX file {path}: {len(data)} bytes, expected at least a 4-byte header")
    (magic,) = struct.unpack(">I", data[:4])
    if magic != expected_magic:
        raise DataError(
            f"wrong magic number 0x{magic:08x} in {path}: expected 0x{expected_magic:08x} "
            f"(IDX unsigned byte, {ndim}-D {'labels' if ndim == 1 else 'images'})"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"truncated IDX file {path}: {len(data)} bytes, shorter than its {header}-byte header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "corrupt"
        raise DataError(
            f"{what} IDX file {path}: expected {expected} bytes for shape {tuple(dims)}, found {len(data)}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _find(folder: Path, spellings: str) -> Path:
    for alt in spellings.split("|"):
        if (folder / alt).is_file():
            return folder / alt
    raise DataError(f"missing file {folder / spellings.split('|')[0]}")


def _make_loader(class_names: list[str]):
    def load(folder: Path, split: str, cfg: DataConfig, **_: object) -> ArrayDataset:
        img_path = _find(folder, IDX_FILES[(split, "images")])
        lbl_path = _find(folder, IDX_FILES[(split, "labels")])
        images = read_idx(img_path, 3)
        labels = read_idx(lbl_path, 1)
        if len(images) != len(labels):
            raise DataError(f"{img_path} has {len(images)} images but {lbl_path} has {len(labels)} labels")
        if len(labels) and labels.max() >= len(class_names):
            raise DataError(
                f"corrupt labels in {lbl_path}: found label {labels.max()}, expected 0..{len(class_names) - 1}"
            )
        x = torch.from_numpy(images.copy()).unsqueeze(1)  # (N, 1, 28, 28)
        return ArrayDataset(x, torch.from_numpy(labels.astype(np.int64)), list(class_names))

    return load


_LAYOUT = (tuple(IDX_FILES.values()),)

DATASETS.add(
    "mnist",
    DatasetSpec(
        "mnist",
        "MNIST handwritten digits, 60k/10k 28x28 gray (LeCun et al. 1998)",
        _make_loader([str(i) for i in range(10)]),
        files=_LAYOUT,
        downloadable=True,
        num_classes=10,
        source_shape=(1, 28, 28),
    ),
)
DATASETS.add(
    "fashion-mnist",
    DatasetSpec(
        "fashion-mnist",
        "Fashion-MNIST clothing, 60k/10k 28x28 gray (Xiao et al. 2017)",
        _make_loader(
            ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
        ),
        files=_LAYOUT,
        downloadable=True,
        apt_package="dataset-fashion-mnist",
        num_classes=10,
        source_shape=(1, 28, 28),
    ),
)
DATASETS.add(
    "kmnist",
    DatasetSpec(
        "kmnist",
        "Kuzushiji-MNIST cursive Japanese, 60k/10k 28x28 gray (Clanuwat et al. 2018)",
        _make_loader(["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]),
        files=_LAYOUT,
        downloadable=True,
        num_classes=10,
        source_shape=(1, 28, 28),
    ),
)
