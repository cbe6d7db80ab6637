import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnkit.config import DataConfig
from cnnkit.data import DATASETS, load_dataset, read_idx
from cnnkit.data._core import missing_message
from cnnkit.errors import DataError

from ..data_fixtures import write_idx, write_mnist_dir


@pytest.mark.parametrize("gz", [True, False])
def test_idx_roundtrip(tmp_path, gz):
    arrays = write_mnist_dir(tmp_path / "m", gz=gz)
    for split in ("train", "test"):
        ds = load_dataset("mnist", tmp_path / "m", split=split)
        x, y = arrays[split]
        assert ds.images.dtype == torch.uint8 and ds.images.shape == (len(x), 1, 28, 28)
        assert torch.equal(ds.images[:, 0], torch.from_numpy(x))
        assert torch.equal(ds.labels, torch.from_numpy(y.astype(np.int64)))
        assert ds.class_names == [str(i) for i in range(10)] and ds.name == "mnist"


def test_idx_alternative_spelling(tmp_path):
    # Some unpackers turn train-images-idx3-ubyte into train-images.idx3-ubyte.
    arrays = write_mnist_dir(tmp_path / "m", gz=False)
    for p in (tmp_path / "m").iterdir():
        p.rename(p.with_name(p.name.replace("-idx", ".idx")))
    ds = load_dataset("mnist", tmp_path / "m")
    assert torch.equal(ds.images[:, 0], torch.from_numpy(arrays["train"][0]))


def test_root_with_dataset_subfolder(tmp_path):
    write_mnist_dir(tmp_path / "kmnist")
    ds = load_dataset("kmnist", tmp_path)  # root/<name> is searched too
    assert len(ds) == 60 and ds.class_names[0] == "o"


def test_truncated_idx_names_file_and_sizes(tmp_path):
    folder = tmp_path / "m"
    write_mnist_dir(folder, gz=False)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError) as e:
        load_dataset("mnist", folder)
    msg = str(e.value)
    expected = 16 + 60 * 28 * 28
    assert str(path) in msg and "truncated" in msg and f"expected {expected}" in msg and f"found {expected - 100}" in msg
    assert "\n" not in msg


def test_truncated_gzip(tmp_path):
    folder = tmp_path / "m"
    write_mnist_dir(folder, gz=True)
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(DataError, match="corrupt gzip file .*train-images-idx3-ubyte.gz"):
        load_dataset("mnist", folder)


def test_wrong_magic(tmp_path):
    folder = tmp_path / "m"
    write_mnist_dir(folder)
    # Labels written where images belong: magic 0x801 instead of 0x803.
    write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros(60, np.uint8))
    with pytest.raises(DataError, match=r"wrong magic number 0x00000801 in .*train-images-idx3-ubyte.gz: expected 0x00000803"):
        load_dataset("mnist", folder)


def test_count_mismatch(tmp_path):
    folder = tmp_path / "m"
    write_mnist_dir(folder)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(59, np.uint8))
    with pytest.raises(DataError, match="has 60 images but .*train-labels-idx1-ubyte.gz has 59 labels"):
        load_dataset("mnist", folder)


def test_label_out_of_range(tmp_path):
    folder = tmp_path / "m"
    write_mnist_dir(folder)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.full(30, 10, np.uint8))
    with pytest.raises(DataError, match="found label 10"):
        load_dataset("mnist", folder, split="test")


def test_read_idx_header_only_file(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"\x00\x00\x08")
    with pytest.raises(DataError, match="truncated IDX file"):
        read_idx(p, 3)


def test_missing_files_message(isolated_data):
    with pytest.raises(DataError) as e:
        load_dataset("kmnist")
    msg = str(e.value)
    assert "kmnist not found" in msg
    assert str(isolated_data / "cnnkit_data" / "kmnist") in msg and "/usr/share/datasets/kmnist" in msg
    assert "cnnkit datasets download kmnist" in msg and "\n" not in msg


def test_missing_root_is_an_error_naming_it(isolated_data):
    # A copy elsewhere on the search path must not be picked up in place of the missing data.root.
    write_mnist_dir(isolated_data / "cnnkit_data" / "mnist", n_train=20)
    missing = isolated_data / "nowhere"
    for name in ("mnist", "npz", "image-folder"):
        with pytest.raises(DataError, match=f"data.root {missing} does not exist") as e:
            load_dataset(name, missing)
        assert "\n" not in str(e.value)


def test_root_without_the_files_does_not_fall_back(isolated_data):
    write_mnist_dir(isolated_data / "cnnkit_data" / "mnist", n_train=20)
    empty = isolated_data / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as e:
        load_dataset("mnist", empty)
    msg = str(e.value)
    assert "mnist not found" in msg and str(empty) in msg and "cnnkit_data" not in msg
    assert f"cnnkit datasets download mnist --root {empty}" in msg


def test_fashion_missing_message_names_apt_package():
    msg = missing_message(DATASETS.get("fashion-mnist"), None)
    assert "apt-get install dataset-fashion-mnist" in msg and "cnnkit datasets download fashion-mnist" in msg


def test_search_order_env_before_cache(isolated_data, monkeypatch):
    env_dir = isolated_data / "cnnkit_data" / "mnist"
    cache_dir = isolated_data / "home" / ".cache" / "cnnkit" / "mnist"
    write_mnist_dir(env_dir, n_train=20)
    write_mnist_dir(cache_dir, n_train=30)
    assert len(load_dataset("mnist")) == 20
    monkeypatch.delenv("CNNKIT_DATA")
    assert len(load_dataset("mnist")) == 30


_DEBIAN = Path("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")


@pytest.mark.skipif(not _DEBIAN.exists(), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_test_split():
    # Published: 10,000 test images, 1,000 per class (Xiao et al. 2017, Table 1 / README).
    ds = load_dataset("fashion-mnist", split="test", cfg=DataConfig(name="fashion-mnist"))
    assert ds.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(ds.labels).tolist() == [1000] * 10
    assert ds.class_names[9] == "Ankle boot"
    raw = gzip.decompress(_DEBIAN.read_bytes())
    assert ds.labels[:5].tolist() == list(raw[8:13])
