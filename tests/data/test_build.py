import numpy as np
import pytest
import torch

from cnnkit.config import DataConfig
from cnnkit.data import apply_preprocessing, build_data, load_dataset
from cnnkit.errors import ConfigError, DataError


def _build(**kw):
    shape = kw.pop("input_shape", (1, 32, 32))
    return build_data(DataConfig(**kw), input_shape=shape, device="cpu", seed=0)


def test_default_digits_bundle():
    b = _build()
    assert b.num_classes == 10 and b.input_shape == (1, 32, 32) and b.val is None and b.dataset == "digits"
    assert b.train.images.shape == (1348, 1, 32, 32) and b.test.images.shape == (449, 1, 32, 32)
    pre = b.preprocessing
    assert pre["fit"] == "resize" and pre["source_shape"] == [1, 8, 8] and pre["input_shape"] == [1, 32, 32]
    # Normalization statistics come from the training split: normalized train data has mean 0, std 1.
    x = torch.cat([x for x, _ in b.train.epoch_batches(0)])
    assert abs(x.mean().item()) < 1e-4 and abs(x.std().item() - 1) < 1e-3
    assert len(b.train) == 22 and b.train.batch_size == 64


def test_apply_preprocessing_matches_test_loader():
    b = _build()
    raw = load_dataset("digits", split="test")
    assert torch.equal(apply_preprocessing(raw.images, b.preprocessing), torch.cat([x for x, _ in b.test]))


def test_val_split_is_stratified_and_disjoint():
    b = _build(val_fraction=0.2, split_seed=3)
    assert len(np.intersect1d(b.train_indices, b.val_indices)) == 0
    assert len(b.val_indices) == round(0.2 * 1348) and len(b.train_indices) + len(b.val_indices) == 1348
    counts = torch.bincount(b.val.labels, minlength=10).float()
    assert (counts - counts.mean()).abs().max() <= 2
    other = _build(val_fraction=0.2, split_seed=4)
    assert not np.array_equal(other.val_indices, b.val_indices)


def test_kfold_bundles_cover_train():
    vals = [_build(folds=3, fold=k).val_indices for k in range(3)]
    assert np.array_equal(np.sort(np.concatenate(vals)), np.arange(1348))
    with pytest.raises(ConfigError, match="Expected 0 <= data.fold < data.folds"):
        _build(folds=3, fold=3)
    with pytest.raises(ConfigError, match="folds and data.fold set together"):
        _build(folds=3)


def test_limits_are_stratified_subsets():
    b = _build(limit_train=100, limit_test=50)
    assert b.train.num_samples == 100 and b.test.num_samples == 50
    assert torch.bincount(b.train.labels, minlength=10).tolist() == [10] * 10


def test_input_size_channels_and_pad_error():
    b = _build(input_shape=(3, 32, 32), input_size=(16, 16))
    assert b.input_shape == (3, 16, 16) and b.train.images.shape[1:] == (3, 16, 16)
    assert torch.equal(b.train.images[:, 0], b.train.images[:, 2])  # gray repeated
    with pytest.raises(ConfigError, match="data.fit=pad"):
        _build(fit="pad", input_shape=(1, 4, 4))


def test_normalize_off_and_augmented_train():
    b = _build(normalize=False, augment={"crop_padding": 2, "hflip": True, "rotate": 10.0})
    assert b.preprocessing["mean"] == [0.0] and b.preprocessing["std"] == [1.0]
    x, y = next(iter(b.train))
    assert x.min() >= 0 and x.max() <= 1
    assert b.train.augment is not None and b.test.augment is None


def test_mnist_like_idx_padded_to_32(tmp_path):
    from .data_fixtures import write_mnist_dir

    write_mnist_dir(tmp_path / "mnist")
    b = _build(name="mnist", root=str(tmp_path), val_fraction=0.5)
    assert b.preprocessing["fit"] == "pad" and b.train.images.shape[1:] == (1, 32, 32)
    assert b.train.images[:, :, :2].sum() == 0 and b.train.images[:, :, :, -2:].sum() == 0


@pytest.mark.parametrize("name", ["mnist", "image-folder", "npz"])
def test_missing_root_is_an_error_not_a_fallback(isolated_data, name):
    from .data_fixtures import write_mnist_dir

    write_mnist_dir(isolated_data / "cnnkit_data" / "mnist")  # another copy that must not be trained on
    missing = isolated_data / "typo"
    with pytest.raises(DataError, match=f"data.root {missing} does not exist"):
        _build(name=name, root=str(missing))


def test_auto_streams_large_image_folders(tmp_path, monkeypatch):
    from cnnkit.data import build as build_module

    from .data_fixtures import write_image_folder

    root = write_image_folder(tmp_path / "f", per_class=4)
    cfg = DataConfig(name="image-folder", root=str(root))
    assert build_data(cfg, input_shape=(3, 8, 8), device="cpu", seed=0).loader_kind == "memory"
    # 9 training images x 3 x 8 x 8 bytes = 1728 bytes: over a 1000-byte threshold, "auto" streams.
    monkeypatch.setattr(build_module, "STREAM_THRESHOLD_BYTES", 1000)
    b = build_data(cfg, input_shape=(3, 8, 8), device="cpu", seed=0)
    assert b.loader_kind == "stream" and b.train.images is None and len(b.train.labels) == 9
