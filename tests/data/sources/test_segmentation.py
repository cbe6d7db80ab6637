"""Segmentation sources: the folder layout (written by the scenes generator), palette masks, .npz, and the
one-line errors naming the file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.config import load_config
from cnnkit.data import build_data
from cnnkit.data.sources.scenes import generate_scenes, write_scene_dataset
from cnnkit.data.sources.segmentation import read_mask
from cnnkit.errors import DataError


def _data(name: str, root, *extra: str):
    cfg = load_config(None, [f"data.name={name}", f"data.root={root}", *extra])
    return build_data(cfg.data, input_shape=(1, 572, 572), device="cpu", seed=0)


def _all(loader):
    xs, ys = zip(*loader.epoch_batches(0))
    return torch.cat(xs), torch.cat(ys)


@pytest.mark.parametrize("palette", [False, True])
def test_folder_with_splits_reads_the_scenes(tmp_path, palette):
    write_scene_dataset(tmp_path, num_train=12, num_test=5, seed=2, palette=palette)
    b = _data("segmentation-folder", tmp_path, "data.normalize=false")
    train = generate_scenes(12, seed=2, split="train")
    assert b.num_classes == int(train.masks.max()) + 1 and b.input_shape == (1, 64, 64)
    # The stored training masks, in stem order; the batches are shuffled (and augmented by the config).
    np.testing.assert_array_equal(b.train.labels.numpy(), train.masks)
    np.testing.assert_array_equal(b.train.x.numpy(), train.images)
    xt, yt = _all(b.test)
    test = generate_scenes(5, seed=2, split="test")
    np.testing.assert_array_equal(yt.numpy(), test.masks)
    torch.testing.assert_close(xt, torch.from_numpy(test.images).float() / 255)
    assert b.model_kwargs == {"num_classes": b.num_classes, "in_channels": 1}


def test_folder_without_splits_carves_test_and_declares_classes(tmp_path):
    generate_scenes(20, seed=0).write(tmp_path, coco=False)
    b = _data("segmentation-folder", tmp_path, "data.num_classes=11", "data.val_fraction=0.2")
    assert len(b.test.x) == 5 and len(b.train.x) == 12 and len(b.val.x) == 3
    assert b.class_names == [str(i) for i in range(11)]


def test_input_size_resizes_images_and_masks_by_nearest(tmp_path):
    generate_scenes(8, seed=0).write(tmp_path, coco=False)
    b = _data("segmentation-folder", tmp_path, "data.input_size=[32,48]")
    x, y = _all(b.test)
    assert x.shape[-2:] == (32, 48) and y.shape[-2:] == (32, 48)
    assert set(y.unique().tolist()) <= set(range(11))


def test_npz_source(tmp_path):
    s = generate_scenes(10, seed=1, channels=3)
    path = tmp_path / "seg.npz"
    np.savez(path, x=s.images.transpose(0, 2, 3, 1), y=s.masks.astype(np.int64))
    b = _data("segmentation-npz", path, "data.normalize=false")
    assert b.input_shape == (3, 64, 64) and len(b.train.x) + len(b.test.x) == 10
    x, y = _all(b.test)
    assert x.max() <= 1 and y.dtype == torch.int64


def test_palette_mask_reads_indices(tmp_path):
    m = np.array([[0, 1], [2, 255]], dtype=np.uint8)
    im = Image.fromarray(m, mode="L").convert("P")
    im.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (252 * 3) + [224, 224, 192])
    im.save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), m)


def _folder(tmp_path, n=4):
    generate_scenes(n, seed=0, classes=[0, 1]).write(tmp_path, coco=False)
    return tmp_path


def test_mask_size_differs_names_the_file(tmp_path):
    root = _folder(tmp_path)
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(root / "masks" / "scene-00002.png")
    with pytest.raises(DataError, match=r"scene-00002.png: size 12x10 differs from its image"):
        _data("segmentation-folder", root)


def test_class_outside_declared_names_the_file(tmp_path):
    root = _folder(tmp_path)
    m = np.zeros((64, 64), np.uint8)
    m[3, 3] = 7
    Image.fromarray(m).save(root / "masks" / "scene-00001.png")
    with pytest.raises(DataError, match=r"scene-00001.png: class index 7 outside the declared classes 0..2"):
        _data("segmentation-folder", root, "data.num_classes=3")


def test_image_without_mask_and_rgb_mask(tmp_path):
    root = _folder(tmp_path)
    (root / "masks" / "scene-00003.png").unlink()
    with pytest.raises(DataError, match=r"scene-00003.png: no mask"):
        _data("segmentation-folder", root)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(root / "masks" / "scene-00003.png")
    with pytest.raises(DataError, match=r"scene-00003.png: expected an 8-bit PNG of class indices"):
        _data("segmentation-folder", root)


def test_missing_layout_and_bad_npz(tmp_path):
    with pytest.raises(DataError, match="expected images/ and masks/"):
        _data("segmentation-folder", tmp_path)
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.zeros((3, 8, 8), np.uint8), y=np.zeros((3, 8, 9), np.int64))
    with pytest.raises(DataError, match=r"bad.npz \[y\]: masks of shape"):
        _data("segmentation-npz", path)
