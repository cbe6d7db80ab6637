"""coco-folder: the COCO reader against the scenes it was written from, both layouts, boxes scaled with
resized images, every bad input as a one-line DataError; the scenes' boxes targets; the joint flip."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.config import load_config
from cnnkit.data import build_data
from cnnkit.data.detection import BoxBatchTransform
from cnnkit.data.sources.coco import read_coco
from cnnkit.data.sources.scenes import generate_scenes
from cnnkit.errors import DataError


@pytest.fixture(scope="module")
def scenes():
    return generate_scenes(12, seed=2, objects=(0, 3))


@pytest.fixture()
def folder(tmp_path: Path, scenes) -> Path:
    return scenes.write(tmp_path / "coco", masks=False)


def _expected(scenes, scale: float = 1.0) -> list[list[list[float]]]:
    out = []
    for b, lab in zip(scenes.boxes, scenes.labels):
        out.append([[float(c - 1), x * scale, y * scale, (x + w) * scale, (y + h) * scale] for (x, y, w, h), c in zip(b.tolist(), lab.tolist())])
    return out


def _rows(t: torch.Tensor) -> list[list[float]]:
    return t[t[:, 0] >= 0].tolist()


def _same(got: list[list[float]], ref: list[list[float]]) -> None:
    assert len(got) == len(ref)
    if ref:
        np.testing.assert_allclose(np.array(got), np.array(ref), rtol=1e-5, atol=1e-4)


def test_reads_back_the_written_scenes(folder: Path, scenes) -> None:
    x, y, ids, names = read_coco(folder / "annotations.json", folder / "images", size=(64, 64), channels=1)
    np.testing.assert_array_equal(x.numpy(), scenes.images)
    assert ids == list(range(1, 11)) and names == [str(d) for d in range(10)]
    for t, ref in zip(y, _expected(scenes)):
        _same(_rows(t), ref)
    assert any(len(r) == 0 for r in _expected(scenes))  # an image without objects is read as background


def test_boxes_scale_with_the_image(folder: Path, scenes) -> None:
    x, y, _, _ = read_coco(folder / "annotations.json", folder / "images", size=(32, 32), channels=3)
    assert x.shape == (12, 3, 32, 32)
    for t, ref in zip(y, _expected(scenes, 0.5)):
        _same(_rows(t), ref)


def _cfg(root: Path, *extra: str):
    return load_config(None, ["task=detection", "model.name=faster_rcnn", "data.name=coco-folder", f"data.root={root}", *extra])


def test_build_both_layouts(tmp_path: Path, scenes) -> None:
    single = scenes.write(tmp_path / "one", masks=False)
    b = build_data(_cfg(single).data, input_shape=(1, 64, 64), device="cpu", seed=0)
    assert len(b.train.labels) + len(b.test.labels) == 12 and len(b.test.labels) == 3  # test_fraction 0.25
    assert b.class_names == [str(d) for d in range(10)] and b.meta["category_ids"] == list(range(1, 11))
    generate_scenes(6, seed=5, split="test").write(tmp_path / "two" / "test", masks=False)
    scenes.write(tmp_path / "two" / "train", masks=False)
    b = build_data(_cfg(tmp_path / "two", "data.val_fraction=0.25").data, input_shape=(1, 64, 64), device="cpu", seed=0)
    assert (len(b.train.labels), len(b.val.labels), len(b.test.labels)) == (9, 3, 6)
    x, y = next(iter(b.train.epoch_batches(0)))
    assert x.dtype == torch.float32 and y.shape[-1] == 5


def _broken(folder: Path, edit) -> Path:
    path = folder / "annotations.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(("edit", "match"), [
    (lambda d: d["images"][0].update(file_name="nope.png"), r"image nope.png \(id 1\) not found"),
    (lambda d: d["images"][0].update(file_name="../x.png"), "file_name must be a path inside"),
    (lambda d: d["annotations"][0].update(bbox=[50.0, 50.0, 30.0, 5.0]), "lies outside its 64x64 image"),
    (lambda d: d["annotations"][0].update(bbox=[5.0, 5.0, 0.0, 5.0]), "non-positive size"),
    (lambda d: d["annotations"][0].update(bbox=[5.0, 5.0, "a", 5.0]), "4 finite numbers"),
    (lambda d: d["annotations"][0].update(category_id=99), "category_id 99 is not among the categories"),
    (lambda d: d["annotations"][0].update(image_id=999), "image id 999, which is not in 'images'"),
    (lambda d: d.pop("images"), "not a COCO detection file"),
])
def test_bad_input_is_one_line(folder: Path, edit, match: str) -> None:
    path = _broken(folder, edit)
    with pytest.raises(DataError, match=match) as info:
        read_coco(path, folder / "images", size=(64, 64), channels=1)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_bad_json_and_missing_file(folder: Path) -> None:
    (folder / "annotations.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        read_coco(folder / "annotations.json", folder / "images", size=(64, 64), channels=1)
    with pytest.raises(DataError, match="COCO annotations not found"):
        read_coco(folder / "missing.json", folder / "images", size=(64, 64), channels=1)


def test_crowd_skipped_and_rounding_tolerated(folder: Path) -> None:
    def edit(d):
        d["annotations"][0]["iscrowd"] = 1
        d["annotations"][1]["bbox"] = [-0.4, 1.0, 10.0, 63.4]  # within a pixel of the border: clipped
    path = _broken(folder, edit)
    doc = json.loads(path.read_text())
    _, y, _, _ = read_coco(path, folder / "images", size=(64, 64), channels=1)
    assert sum(len(_rows(t)) for t in y) == len(doc["annotations"]) - 1
    img = doc["annotations"][1]["image_id"] - 1
    assert any(np.allclose(r[1:], [0.0, 1.0, 9.6, 64.0], atol=1e-4) for r in _rows(y[img]))


def test_scenes_boxes_targets() -> None:
    cfg = load_config(None, ["task=detection", "model.name=faster_rcnn", "data.name=scenes", "data.targets=boxes",
                             "data.num_train=8", "data.num_test=4"])
    b = build_data(cfg.data, input_shape=(1, 64, 64), device="cpu", seed=0)
    ref = generate_scenes(8, seed=0, split="train")
    for t, exp in zip(b.train.labels, _expected(ref)):
        _same(_rows(t), exp)
    assert b.num_classes == 10 and b.kind == "image"


def test_flip_moves_boxes_with_pixels() -> None:
    x = torch.zeros(64, 1, 8, 16, dtype=torch.uint8)
    x[:, :, 2:6, 1:5] = 255  # a bright box [1, 2, 5, 6] (x1, y1, x2, y2)
    y = torch.tensor([[[0.0, 1, 2, 5, 6], [-1, 0, 0, 0, 0]]]).repeat(64, 1, 1)
    t = BoxBatchTransform([0.0], [1.0], hflip=True)
    xa, ya = t(x, y, torch.Generator().manual_seed(0))
    flipped = ya[:, 0, 1] != 1
    # Seeded: about half flipped (binomial(64, 1/2): within 4 sd), the same again with the same seed.
    assert abs(int(flipped.sum()) - 32) < 4 * math.sqrt(16)
    assert torch.equal(t(x, y, torch.Generator().manual_seed(0))[1], ya)
    for img, box in zip(xa, ya[:, 0]):
        _, x1, y1, x2, y2 = (int(v) for v in box.tolist())
        assert img[0, y1:y2, x1:x2].min() == 1.0 and img.sum() == 16  # the box still covers the bright pixels
    assert (ya[flipped, 0, 1:] == torch.tensor([11.0, 2, 15, 6])).all() and (ya[:, 1, 0] == -1).all()


def test_image_file_read_as_its_own_channels(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    Image.fromarray(np.full((10, 20, 3), 200, dtype=np.uint8)).save(tmp_path / "images" / "a.png")
    (tmp_path / "annotations.json").write_text(json.dumps({
        "images": [{"id": 7, "file_name": "a.png"}], "annotations": [],
        "categories": [{"id": 3, "name": "cat"}],
    }))
    x, y, ids, names = read_coco(tmp_path / "annotations.json", tmp_path / "images", size=(20, 40), channels=1)
    assert x.shape == (1, 1, 20, 40) and _rows(y[0]) == [] and ids == [3] and names == ["cat"]
