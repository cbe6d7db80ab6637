import io
import tarfile

import numpy as np
import pytest
import torch

from cnnkit.data import load_dataset
from cnnkit.data.sources.cifar import CIFAR10_CLASSES
from cnnkit.errors import DataError

from ..data_fixtures import cifar_bytes


def _c10_files(rng, n_per_batch=4):
    files, arrays = {}, {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        x = rng.integers(0, 256, (n_per_batch, 3, 32, 32), dtype=np.uint8)
        y = rng.integers(0, 10, n_per_batch)
        files[name] = cifar_bytes(x, y)
        arrays[name] = (x, y)
    files["batches.meta.txt"] = ("\n".join(CIFAR10_CLASSES) + "\n\n").encode()
    return files, arrays


def _write_tar(path, folder, files):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("layout", ["archive", "extracted"])
def test_cifar10(tmp_path, layout):
    files, arrays = _c10_files(np.random.default_rng(0))
    if layout == "archive":
        _write_tar(tmp_path / "cifar-10-binary.tar.gz", "cifar-10-batches-bin", files)
    else:
        d = tmp_path / "cifar-10-batches-bin"
        d.mkdir()
        for name, data in files.items():
            (d / name).write_bytes(data)
    train = load_dataset("cifar10", tmp_path, split="train")
    test = load_dataset("cifar10", tmp_path, split="test")
    x = np.concatenate([arrays[f"data_batch_{i}.bin"][0] for i in range(1, 6)])
    y = np.concatenate([arrays[f"data_batch_{i}.bin"][1] for i in range(1, 6)])
    assert train.images.shape == (20, 3, 32, 32) and torch.equal(train.images, torch.from_numpy(x))
    assert torch.equal(train.labels, torch.from_numpy(y))
    assert torch.equal(test.images, torch.from_numpy(arrays["test_batch.bin"][0]))
    assert train.class_names == CIFAR10_CLASSES


def test_cifar_record_layout_red_plane_first(tmp_path):
    # One record by hand: label 7, red plane all 10, green 20, blue 30.
    record = bytes([7]) + bytes([10]) * 1024 + bytes([20]) * 1024 + bytes([30]) * 1024
    files = {f"data_batch_{i}.bin": record for i in range(1, 6)} | {"test_batch.bin": record}
    _write_tar(tmp_path / "cifar-10-binary.tar.gz", "cifar-10-batches-bin", files)
    ds = load_dataset("cifar10", tmp_path, split="test")
    assert ds.labels.tolist() == [7]
    assert ds.images[0, :, 5, 5].tolist() == [10, 20, 30]


def test_cifar100_uses_fine_label(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (5, 3, 32, 32), dtype=np.uint8)
    fine, coarse = np.array([99, 0, 42, 7, 63]), np.array([19, 4, 2, 1, 0])
    d = tmp_path / "cifar-100-binary"
    d.mkdir()
    (d / "train.bin").write_bytes(cifar_bytes(x, fine, coarse))
    (d / "test.bin").write_bytes(cifar_bytes(x[:2], fine[:2], coarse[:2]))
    ds = load_dataset("cifar100", tmp_path)
    assert ds.labels.tolist() == fine.tolist() and torch.equal(ds.images, torch.from_numpy(x))
    assert len(ds.class_names) == 100


def test_cifar_truncated(tmp_path):
    files, _ = _c10_files(np.random.default_rng(0))
    files["data_batch_3.bin"] = files["data_batch_3.bin"][:-7]
    d = tmp_path / "cifar-10-batches-bin"
    d.mkdir()
    for name, data in files.items():
        (d / name).write_bytes(data)
    with pytest.raises(DataError, match=r"truncated or corrupt CIFAR file .*data_batch_3.bin: 12285 bytes"):
        load_dataset("cifar10", tmp_path)


def test_cifar_bad_label(tmp_path):
    files, _ = _c10_files(np.random.default_rng(0))
    files["test_batch.bin"] = bytes([12]) + files["test_batch.bin"][1:]
    _write_tar(tmp_path / "cifar-10-binary.tar.gz", "cifar-10-batches-bin", files)
    with pytest.raises(DataError, match="test_batch.bin: label 12 outside 0..9"):
        load_dataset("cifar10", tmp_path, split="test")


def test_cifar_corrupt_archive(tmp_path):
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(b"\x1f\x8b\x08\x00garbage" * 10)
    with pytest.raises(DataError, match="cifar-10-binary.tar.gz"):
        load_dataset("cifar10", tmp_path)


@pytest.mark.parametrize("damage", ["deflate", "truncated"])
def test_cifar_damaged_archive_is_one_line(tmp_path, damage):
    files, _ = _c10_files(np.random.default_rng(0), n_per_batch=40)
    path = tmp_path / "cifar-10-binary.tar.gz"
    _write_tar(path, "cifar-10-batches-bin", files)
    raw = bytearray(path.read_bytes())
    if damage == "deflate":
        raw[len(raw) // 2 : len(raw) // 2 + 40] = bytes(40)  # zlib.error, not an OSError, from the gzip layer
    else:
        del raw[len(raw) // 2 :]
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="corrupt archive .*cifar-10-binary.tar.gz") as e:
        load_dataset("cifar10", tmp_path)
    assert "\n" not in str(e.value)
