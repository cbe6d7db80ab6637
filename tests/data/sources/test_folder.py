import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.config import DataConfig
from cnnkit.data import apply_preprocessing, build_data, load_dataset, read_image
from cnnkit.data.sources.folder import scan_image_folder
from cnnkit.errors import DataError

from ..data_fixtures import write_image_folder, write_png


def test_flat_layout_carves_fixed_stratified_test_split(tmp_path):
    root = write_image_folder(tmp_path / "imgs", per_class=8)
    cfg = DataConfig(name="image-folder", root=str(root), test_fraction=0.25)
    train = load_dataset("image-folder", split="train", cfg=cfg)
    test = load_dataset("image-folder", split="test", cfg=cfg)
    assert train.class_names == ["cat", "dog", "eel"]
    assert len(train) == 18 and len(test) == 6
    assert torch.bincount(test.labels).tolist() == [2, 2, 2]
    assert train.images.shape[1:] == (3, 12, 10)
    again = load_dataset("image-folder", split="test", cfg=cfg)
    assert torch.equal(again.images, test.images)


def test_pixels_match_the_files(tmp_path):
    arr = np.random.default_rng(3).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    write_png(tmp_path / "f" / "train" / "a" / "x.png", arr)
    write_png(tmp_path / "f" / "test" / "a" / "y.png", arr[..., 0])  # gray file in the test split
    ds = load_dataset("image-folder", tmp_path / "f")
    assert torch.equal(ds.images[0], torch.from_numpy(arr).permute(2, 0, 1))
    assert read_image(tmp_path / "f" / "test" / "a" / "y.png").shape == (1, 6, 7)


def test_train_test_layout_and_unknown_test_class(tmp_path):
    write_image_folder(tmp_path / "f" / "train", classes=("a", "b"), per_class=3)
    write_image_folder(tmp_path / "f" / "test", classes=("a",), per_class=2)
    idx = scan_image_folder(tmp_path / "f")
    assert idx.class_names == ["a", "b"] and len(idx.train[0]) == 6 and len(idx.test[0]) == 2
    write_image_folder(tmp_path / "f" / "test", classes=("zebra",), per_class=1)
    with pytest.raises(DataError, match="zebra"):
        scan_image_folder(tmp_path / "f")


def test_mixed_sizes_are_fitted(tmp_path):
    rng = np.random.default_rng(0)
    write_png(tmp_path / "f" / "a" / "1.png", rng.integers(0, 256, (20, 30), dtype=np.uint8))
    write_png(tmp_path / "f" / "a" / "2.png", rng.integers(0, 256, (8, 8), dtype=np.uint8))
    write_png(tmp_path / "f" / "b" / "1.png", rng.integers(0, 256, (64, 48, 3), dtype=np.uint8))
    write_png(tmp_path / "f" / "b" / "2.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    cfg = DataConfig(name="image-folder", root=str(tmp_path / "f"), test_fraction=0.5, fit="resize")
    ds = load_dataset("image-folder", split="train", cfg=cfg, size=(16, 16))
    assert ds.images.shape == (2, 3, 16, 16)


def _load_both(root):
    for split in ("train", "test"):
        load_dataset("image-folder", root, split=split)


def test_unreadable_and_disallowed_files(tmp_path):
    root = write_image_folder(tmp_path / "f", per_class=2)
    bad = root / "cat" / "broken.png"
    bad.write_bytes(b"this is not an image")
    with pytest.raises(DataError, match="unreadable image .*broken.png: not a valid PNG or JPEG"):
        _load_both(root)
    bad.unlink()
    # A GIF named .png: the format allow-list refuses it.
    Image.new("L", (4, 4)).save(root / "dog" / "sneaky.png", format="GIF")
    with pytest.raises(DataError, match="sneaky.png"):
        _load_both(root)
    (root / "dog" / "sneaky.png").unlink()
    # A truncated PNG.
    good = root / "eel" / "000.png"
    good.write_bytes(good.read_bytes()[:60])
    with pytest.raises(DataError, match="000.png"):
        _load_both(root)


def test_decompression_bomb_limit(tmp_path, monkeypatch):
    root = write_image_folder(tmp_path / "f", per_class=2, size=(40, 40))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1600 pixels > limit (a warning in Pillow)
    with pytest.raises(DataError, match="unreadable image .*decompression bomb"):
        _load_both(root)


def test_non_image_files_ignored_and_empty_folder_error(tmp_path):
    root = write_image_folder(tmp_path / "f", per_class=2)
    (root / "cat" / "notes.txt").write_text("hello")
    (root / "cat" / ".DS_Store").write_bytes(b"\x00")
    assert len(scan_image_folder(root).train[0]) == 6
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="no PNG/JPEG images"):
        scan_image_folder(tmp_path / "empty")
    with pytest.raises(DataError, match="data.root"):
        load_dataset("image-folder", None)


def test_predict_on_files_reproduces_training_input(tmp_path):
    # Files of various sizes, model input 1x16x16: loader batches == read_image + apply_preprocessing.
    rng = np.random.default_rng(5)
    for c in ("a", "b"):
        for i, shape in enumerate([(20, 24, 3), (14, 14, 3), (40, 16, 3), (16, 16, 3)]):
            write_png(tmp_path / "f" / "train" / c / f"{i}.png", rng.integers(0, 256, shape, dtype=np.uint8))
            write_png(tmp_path / "f" / "test" / c / f"{i}.png", rng.integers(0, 256, shape, dtype=np.uint8))
    cfg = DataConfig(name="image-folder", root=str(tmp_path / "f"), eval_batch_size=3)
    bundle = build_data(cfg, input_shape=(1, 16, 16), device="cpu", seed=0)
    xs = torch.cat([x for x, _ in bundle.test])
    files = scan_image_folder(tmp_path / "f").test[0]
    ref = torch.cat([apply_preprocessing(read_image(p), bundle.preprocessing) for p in files])
    assert torch.equal(xs, ref)


def test_stream_loader_matches_memory_loader(tmp_path):
    root = write_image_folder(tmp_path / "f", per_class=6, size=(10, 12))
    base = dict(name="image-folder", root=str(root), batch_size=4, val_fraction=0.2)
    aug = {"crop_padding": 2, "hflip": True, "rotate": 10.0}
    mem = build_data(DataConfig(**base, augment=aug, loader="memory"), input_shape=(3, 12, 12), device="cpu", seed=3)
    stream = build_data(DataConfig(**base, augment=aug, loader="stream"), input_shape=(3, 12, 12), device="cpu", seed=3)
    assert stream.loader_kind == "stream" and mem.loader_kind == "memory"
    # Statistics: the stream path samples up to 4096 images, i.e. all of these.
    assert np.allclose(mem.preprocessing["mean"], stream.preprocessing["mean"])
    for a, b in zip(mem.train.epoch_batches(1), stream.train.epoch_batches(1), strict=True):
        assert torch.allclose(a[0], b[0], atol=1e-6) and torch.equal(a[1], b[1])
    for a, b in zip(mem.train.epoch_batches(2, start_step=2), stream.train.epoch_batches(2, start_step=2), strict=True):
        assert torch.allclose(a[0], b[0], atol=1e-6) and torch.equal(a[1], b[1])
    assert torch.equal(torch.cat([y for _, y in mem.val]), torch.cat([y for _, y in stream.val]))
    assert torch.allclose(torch.cat([x for x, _ in mem.test]), torch.cat([x for x, _ in stream.test]), atol=1e-6)
