"""Generated scenes: determinism, masks / instances / boxes agreeing, occlusion bound, COCO (checked with
pycocotools), the written folder read back, Pascal VOC's palette."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cnnkit.data.sources.scenes import (
    FOREGROUND_THRESHOLD,
    IGNORE_INDEX,
    generate_scenes,
    voc_palette,
    write_scene_dataset,
)
from cnnkit.errors import ConfigError


@pytest.fixture(scope="module")
def scenes():
    return generate_scenes(60, seed=3, objects=(0, 5))


def test_deterministic_and_seed_dependent(scenes):
    again = generate_scenes(60, seed=3, objects=(0, 5))
    np.testing.assert_array_equal(again.images, scenes.images)
    np.testing.assert_array_equal(again.masks, scenes.masks)
    other = generate_scenes(60, seed=4, objects=(0, 5))
    assert not np.array_equal(other.masks, scenes.masks)
    test_split = generate_scenes(60, seed=3, split="test", objects=(0, 5))
    assert not np.array_equal(test_split.masks, scenes.masks)


def test_shapes_and_classes(scenes):
    assert scenes.images.shape == (60, 1, 64, 64) and scenes.images.dtype == np.uint8
    assert scenes.masks.shape == (60, 64, 64)
    assert scenes.class_names == ["background"] + [str(d) for d in range(10)]
    assert scenes.masks.max() <= 10
    counts = [len(b) for b in scenes.boxes]
    assert min(counts) == 0 and max(counts) >= 4  # empty scenes occur (background only), crowded ones too


def test_masks_instances_boxes_agree(scenes):
    for i in range(len(scenes)):
        inst, mask = scenes.instances[i], scenes.masks[i]
        assert inst.max() == len(scenes.boxes[i])
        np.testing.assert_array_equal(mask == 0, inst == 0)
        for j, (box, cat) in enumerate(zip(scenes.boxes[i], scenes.labels[i])):
            ys, xs = np.nonzero(inst == j + 1)
            assert (mask[inst == j + 1] == cat).all()
            # COCO boxes: [x, y, w, h], the pixel extent of the visible pixels, inside the image.
            assert box.tolist() == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            assert box[0] + box[2] <= 64 and box[1] + box[3] <= 64 and (box[2:] > 0).all()


def test_objects_are_bright_and_background_dark(scenes):
    fg = scenes.masks > 0
    assert (scenes.images[:, 0][fg] > FOREGROUND_THRESHOLD).all()
    assert scenes.images[:, 0][~fg].mean() < 40


def test_occlusion_leaves_min_visible():
    s = generate_scenes(80, seed=1, objects=(3, 6), min_visible=0.6)
    fractions = []
    for i in range(len(s)):
        for j, full in enumerate(s.full_areas[i]):
            fractions.append((s.instances[i] == j + 1).sum() / full)
    fractions = np.array(fractions)
    assert fractions.min() >= 0.6
    assert (fractions < 1).mean() > 0.1  # objects do overlap
    strict = generate_scenes(30, seed=1, objects=(3, 6), min_visible=1.0)
    for i in range(len(strict)):
        assert [(strict.instances[i] == j + 1).sum() for j in range(len(strict.boxes[i]))] == strict.full_areas[i].tolist()


def test_class_subset_and_colour():
    s = generate_scenes(20, seed=0, classes=[3, 7], channels=3)
    assert s.class_names == ["background", "3", "7"]
    assert set(np.unique(s.masks)) <= {0, 1, 2}
    assert s.images.shape[1] == 3


def test_ignore_border_against_naive_loop():
    s = generate_scenes(3, seed=2, objects=(2, 3))
    b = generate_scenes(3, seed=2, objects=(2, 3), ignore_border=1)
    for plain, bordered in zip(s.masks, b.masks):
        expected = plain.copy()
        for y in range(64):
            for x in range(64):
                win = plain[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
                if win.min() != win.max():
                    expected[y, x] = IGNORE_INDEX
        np.testing.assert_array_equal(bordered, expected)


def test_coco_dict_loads_in_pycocotools(scenes):
    COCO = pytest.importorskip("pycocotools.coco").COCO  # the `dense` extra

    coco = COCO()
    coco.dataset = scenes.coco()
    coco.createIndex()
    assert len(coco.getImgIds()) == 60
    assert sorted(coco.getCatIds()) == list(range(1, 11))
    for i in range(len(scenes)):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[i + 1]))
        assert [a["bbox"] for a in anns] == scenes.boxes[i].tolist()
        assert [a["area"] for a in anns] == [int((scenes.instances[i] == j + 1).sum()) for j in range(len(anns))]


def test_padded_boxes(scenes):
    p = scenes.padded_boxes()
    assert p.shape == (60, max(len(b) for b in scenes.boxes), 5)
    i = next(k for k, b in enumerate(scenes.boxes) if len(b))
    x, y, w, h = scenes.boxes[i][0]
    assert p[i, 0].tolist() == [x, y, x + w, y + h, scenes.labels[i][0]]
    assert (p[i, len(scenes.boxes[i]) :] == -1).all()


@pytest.mark.parametrize("palette", [False, True])
def test_written_folder_reads_back(tmp_path, palette):
    root = write_scene_dataset(tmp_path, num_train=4, num_test=2, seed=5, palette=palette, ignore_border=1)
    s = generate_scenes(4, seed=5, ignore_border=1)
    for i, stem in enumerate(s.stems()):
        img = np.asarray(Image.open(root / "train" / "images" / f"{stem}.png"))
        with Image.open(root / "train" / "masks" / f"{stem}.png") as m:
            assert m.mode == ("P" if palette else "L")
            mask = np.asarray(m)  # a palette PNG's pixels are the indices themselves
        np.testing.assert_array_equal(img, s.images[i, 0])
        np.testing.assert_array_equal(mask, s.masks[i])
    ann = json.loads((root / "test" / "annotations.json").read_text())
    assert [im["file_name"] for im in ann["images"]] == ["scene-00000.png", "scene-00001.png"]
    assert all((root / "test" / "images" / im["file_name"]).is_file() for im in ann["images"])


def test_voc_palette_known_colours():
    pal = voc_palette()
    colour = lambda i: tuple(pal[3 * i : 3 * i + 3])  # noqa: E731
    # The VOC devkit's colormap: background black, aeroplane (128,0,0), bicycle (0,128,0), bird
    # (128,128,0), boat (0,0,128), person (15) (192,128,128); the void label 255 is (224,224,192).
    assert [colour(i) for i in (0, 1, 2, 3, 4, 15, 255)] == [
        (0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (192, 128, 128), (224, 224, 192)
    ]


@pytest.mark.parametrize(
    "kwargs",
    [dict(object_size=(10, 70)), dict(object_size=(5, 4)), dict(objects=(3, 2)), dict(classes=[10]),
     dict(classes=[1, 1]), dict(channels=2), dict(min_visible=1.5), dict(split="val")],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ConfigError, match="Expected"):
        generate_scenes(2, **kwargs)
