"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009) from the *binary* distribution, never the pickled one: the
reader, the two datasets and where their archives are downloaded from.

Binary records: CIFAR-10 is ``<1 label byte><3072 pixel bytes>``; CIFAR-100 is ``<1 coarse label byte><1
fine label byte><3072 pixel bytes>``; pixels are the red, then green, then blue 32x32 planes, row-major.
Files are read from the extracted folder or straight out of the ``.tar.gz`` (by member name, nothing is
extracted, so a hostile archive cannot write outside it).
"""

from __future__ import annotations

import tarfile
import zlib
from pathlib import Path

import numpy as np
import torch

from ...config.schema import DataConfig
from ...errors import DataError
from .._core import DATASETS, ArrayDataset, DatasetSpec
from ..download import RemoteFile, Resources

__all__ = ["read_cifar_records", "CIFAR10_CLASSES"]

_PIXELS = 3 * 32 * 32
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

_C10 = {
    "archive": "cifar-10-binary.tar.gz",
    "dir": "cifar-10-batches-bin",
    "train": [f"data_batch_{i}.bin" for i in range(1, 6)],
    "test": ["test_batch.bin"],
    "meta": "batches.meta.txt",
    "label_bytes": 1,
    "num_classes": 10,
}
_C100 = {
    "archive": "cifar-100-binary.tar.gz",
    "dir": "cifar-100-binary",
    "train": ["train.bin"],
    "test": ["test.bin"],
    "meta": "fine_label_names.txt",
    "label_bytes": 2,
    "num_classes": 100,
}


def read_cifar_records(data: bytes, source: str, *, label_bytes: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Parse binary CIFAR records into ``(images uint8 (N, 3, 32, 32), labels int64 (N,))``.

    The label is the last label byte (CIFAR-100's fine label). ``source`` names the file in errors.
    """
    record = label_bytes + _PIXELS
    if len(data) == 0 or len(data) % record:
        raise DataError(
            f"truncated or corrupt CIFAR file {source}: {len(data)} bytes is not a whole number of "
            f"{record}-byte records"
        )
    arr = np.frombuffer(data, dtype=np.uint8).reshape(-1, record)
    labels = arr[:, label_bytes - 1].astype(np.int64)
    if labels.max() >= num_classes:
        raise DataError(f"corrupt CIFAR file {source}: label {labels.max()} outside 0..{num_classes - 1}")
    return arr[:, label_bytes:].reshape(-1, 3, 32, 32), labels


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None


def _member_reader(folder: Path, layout: dict):
    """A function name -> bytes reading from the extracted folder if present, else from the archive."""
    for d in (folder / layout["dir"], folder):
        if all((d / f).is_file() for f in layout["train"] + layout["test"]):
            return lambda name, d=d: (_read_file(d / name), str(d / name))
    archive = folder / layout["archive"]

    def from_tar(name: str) -> tuple[bytes, str]:
        member = f"{layout['dir']}/{name}"
        try:
            with tarfile.open(archive, "r:gz") as tar:
                f = tar.extractfile(member)
                if f is None:
                    raise KeyError(member)
                return f.read(), f"{archive}:{member}"
        except KeyError:
            raise DataError(f"{archive} has no member {member}") from None
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:  # zlib.error: bad deflate data
            raise DataError(f"corrupt archive {archive}: {e}") from None

    return from_tar


def _make_loader(layout: dict):
    def load(folder: Path, split: str, cfg: DataConfig, **_: object) -> ArrayDataset:
        read = _member_reader(folder, layout)
        xs, ys = [], []
        for name in layout[split]:
            data, source = read(name)
            x, y = read_cifar_records(data, source, label_bytes=layout["label_bytes"], num_classes=layout["num_classes"])
            xs.append(x)
            ys.append(y)
        try:
            meta, _ = read(layout["meta"])
            names = [s.strip() for s in meta.decode("utf-8", "replace").splitlines() if s.strip()]
        except (DataError, OSError):
            names = []
        if len(names) != layout["num_classes"]:  # the label-name file is optional
            names = CIFAR10_CLASSES if layout["num_classes"] == 10 else [str(i) for i in range(layout["num_classes"])]
        return ArrayDataset(torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)), names)

    return load


# SHA-256 of Krizhevsky's binary archives (CIFAR-10's size 170,052,171 bytes; the CIFAR page publishes MD5
# c32a1d4ab5d03f1284b67883e8d87530 and 03b5dce01913d631647c71ecec9e9cb8).
_MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)
_C10_RESOURCES = Resources(
    _MIRRORS,
    (RemoteFile("cifar-10-binary.tar.gz", "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd", size=170052171),),
)
_C100_RESOURCES = Resources(
    _MIRRORS, (RemoteFile("cifar-100-binary.tar.gz", "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec"),)
)


def _files(layout: dict) -> tuple[tuple[str, ...], ...]:
    extracted = tuple(f"{layout['dir']}/{f}" for f in layout["train"] + layout["test"])
    flat = tuple(layout["train"] + layout["test"])
    return ((layout["archive"],), extracted, flat)


DATASETS.add(
    "cifar10",
    DatasetSpec(
        "cifar10",
        "CIFAR-10, 50k/10k 32x32 RGB, 10 classes (Krizhevsky 2009), binary version",
        _make_loader(_C10),
        files=_files(_C10),
        resources=_C10_RESOURCES,
        num_classes=10,
        source_shape=(3, 32, 32),
    ),
)
DATASETS.add(
    "cifar100",
    DatasetSpec(
        "cifar100",
        "CIFAR-100, 50k/10k 32x32 RGB, 100 fine classes (Krizhevsky 2009), binary version",
        _make_loader(_C100),
        files=_files(_C100),
        resources=_C100_RESOURCES,
        num_classes=100,
        source_shape=(3, 32, 32),
    ),
)
