"""MNIST, Fashion-MNIST and KMNIST: IDX files (LeCun et al. 1998), gzipped or not; the reader, the three
datasets and where their files are downloaded from.

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

from ...config.schema import DataConfig
from ...errors import DataError
from .._core import DATASETS, ArrayDataset, DatasetSpec
from ..download import RemoteFile, Resources

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

# Mirrors and checksums.
# - MNIST: SHA-256 and sizes of the files LeCun et al. distribute (mirrored by PyTorch's ossci bucket and
#   Google's cvdf bucket; yann.lecun.com itself now often refuses downloads).
# - Fashion-MNIST: SHA-256 of the files on Zalando's S3 bucket; the sizes match the authors' README
#   table (which publishes MD5: 8d4fb7e6..., 25c81989..., bef4ecab..., bb300cfd...).
# - KMNIST: CODH publishes no checksums; these are the MD5s torchvision's KMNIST class verifies against
#   (we could not confirm a SHA-256, so MD5 it is).
_MNIST = Resources(
    (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    (
        RemoteFile("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", size=9912422),
        RemoteFile("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", size=28881),
        RemoteFile("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", size=1648877),
        RemoteFile("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", size=4542),
    ),
)
_FASHION_MNIST = Resources(
    ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    (
        RemoteFile("train-images-idx3-ubyte.gz", "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", size=26421880),
        RemoteFile("train-labels-idx1-ubyte.gz", "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", size=29515),
        RemoteFile("t10k-images-idx3-ubyte.gz", "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", size=4422102),
        RemoteFile("t10k-labels-idx1-ubyte.gz", "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", size=5148),
    ),
)
_KMNIST = Resources(
    ("https://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    (
        RemoteFile("train-images-idx3-ubyte.gz", md5="bdb82020997e1d708af4cf47b453dcf7"),
        RemoteFile("train-labels-idx1-ubyte.gz", md5="e144d726b3acfaa3e44228e80efcd344"),
        RemoteFile("t10k-images-idx3-ubyte.gz", md5="5c965bf0a639b31b8f53240b1b52f4d7"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", md5="7320c461ea6c1c855c0b718fb2a4b134"),
    ),
)

DATASETS.add(
    "mnist",
    DatasetSpec(
        "mnist",
        "MNIST handwritten digits, 60k/10k 28x28 gray (LeCun et al. 1998)",
        _make_loader([str(i) for i in range(10)]),
        files=_LAYOUT,
        resources=_MNIST,
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
        resources=_FASHION_MNIST,
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
        resources=_KMNIST,
        num_classes=10,
        source_shape=(1, 28, 28),
    ),
)
