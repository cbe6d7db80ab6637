"""Generated scenes (``data.name: scenes``): small items placed, scaled and overlapping on a larger canvas,
with a per-pixel class mask and a COCO box per object, all from one seed.

The generator is a plain function, importable without any config::

    from cnnkit.data.sources.scenes import generate_scenes

    scenes = generate_scenes(
        n,                       # number of scenes
        seed=0,                  # everything below is a pure function of (seed, split, arguments)
        split="train",           # "train" or "test": items come from that split of the source, so
                                 # test scenes never reuse a training item
        canvas=(64, 64),         # (H, W) of each scene
        source="digits",         # "digits" (scikit-learn's 8x8, bundled) or "fashion-mnist" (28x28 IDX,
                                 # when present: `apt-get install dataset-fashion-mnist`)
        root=None,               # data.root for fashion-mnist
        classes=None,            # a subset of the source's class indices (default: all)
        objects=(1, 4),          # objects per scene, inclusive range
        object_size=(14, 30),    # side of the square each item is scaled to, inclusive range (pixels)
        min_visible=0.5,         # every object keeps at least this fraction of its pixels visible
        channels=1,              # 1 (gray) or 3 (each object gets a random colour)
        noise=8.0,               # std of the background's Gaussian noise (0..255 scale)
        ignore_border=0,         # pixels within this distance of a class boundary get IGNORE_INDEX
    )  # -> Scenes

:class:`Scenes` holds ``images`` uint8 ``(N, C, H, W)``, ``masks`` uint8 ``(N, H, W)`` (0 = background,
``k`` = category ``k`` = source class ``classes[k - 1]``, :data:`IGNORE_INDEX` on ignored borders),
``instances`` uint8 ``(N, H, W)`` (0 = none, ``j`` = the image's ``j``-th object), and per image ``boxes``
float32 ``(M, 4)`` in COCO's ``[x, y, w, h]`` (pixel extent of the object's *visible* pixels, as COCO
boxes are) with ``labels`` int64 ``(M,)`` (category ids, 1-based; 0 is background). ``Scenes.coco()``
is one COCO dict (``images``, ``annotations`` with ``bbox``, ``area``, ``iscrowd``, ``categories``);
``Scenes.write(folder)`` writes ``folder/images/*.png``, ``folder/masks/*.png`` (same stems; class
indices, or a Pascal VOC style palette PNG with ``palette=True``) and ``folder/annotations.json`` (COCO,
``file_name`` relative to ``folder/images``), so the ``segmentation-folder`` and COCO readers are exercised
by the same data; :func:`write_scene_dataset` writes ``root/train`` and ``root/test`` that way.

Placement: each object picks a source item, a size and a position that keeps it inside the canvas; it is
painted over what is there (later objects occlude earlier ones) unless that would leave an earlier
object, or itself, with less than ``min_visible`` of its pixels, in which case another position is drawn
(up to :data:`_TRIES` times, then the object is skipped). An item's pixels are its upscaled (bilinear)
intensity above :data:`FOREGROUND_THRESHOLD`; the mask and the image agree pixel for pixel.

As a dataset (``data: {name: scenes, num_train: 1000, canvas: [64, 64], ...}``) its targets are chosen by
``data.targets`` from :data:`SCENE_TARGETS`: ``masks`` (segmentation, registered by
:mod:`cnnkit.data.sources.segmentation`); other modules add their own (``boxes`` for detection) with
``SCENE_TARGETS[name] = build``, where ``build(scenes_train, scenes_test, cfg, options, **build_kwargs)``
returns the :class:`~cnnkit.data.DataBundle`. With ``data.root`` set (and ``source: digits``) the scenes are
replaced by the user's folder, read by :data:`SCENE_FOLDERS` for those targets (``masks``: a
``segmentation-folder``), so ``--set data.root=DIR`` is all a scenes recipe needs to train on your data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from ...errors import ConfigError, DataError
from .._core import DATASETS, DatasetSpec, load_dataset

__all__ = [
    "FOREGROUND_THRESHOLD", "IGNORE_INDEX", "SCENE_FOLDERS", "SCENE_TARGETS", "Scenes", "ScenesOptions", "generate_scenes",
    "voc_palette", "write_scene_dataset",
]

IGNORE_INDEX = 255
"""Mask value of pixels no loss or metric counts (Pascal VOC's object borders)."""
FOREGROUND_THRESHOLD = 80
"""An upscaled item's pixel belongs to the object when its intensity (0..255) exceeds this."""
_TRIES = 20
_SPLIT_CODE = {"train": 0, "test": 1}


def voc_palette() -> list[int]:
    """Pascal VOC's 256-colour palette (flat RGB list): class ``i``'s colour from the bits of ``i``, as in
    the VOC development kit's ``labelcolormap``; 255 (ignore) is (224, 224, 192)."""
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


@dataclass
class Scenes:
    """Generated scenes (see the module docstring for every field)."""

    images: np.ndarray
    masks: np.ndarray
    instances: np.ndarray
    boxes: list[np.ndarray]
    labels: list[np.ndarray]
    class_names: list[str]
    full_areas: list[np.ndarray] | None = None
    """Per image int64 ``(M,)``: each object's pixel count before later objects covered part of it."""

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        """Mask classes, background included."""
        return len(self.class_names)

    def stems(self) -> list[str]:
        return [f"scene-{i:05d}" for i in range(len(self))]

    def coco(self) -> dict[str, Any]:
        """One COCO detection dict: ``images`` (ids from 1), ``annotations`` (``bbox`` ``[x, y, w, h]``,
        ``area`` = visible pixels, ``iscrowd`` 0), ``categories`` (ids 1..K)."""
        h, w = self.images.shape[-2:]
        images: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        for i, stem in enumerate(self.stems()):
            images.append({"id": i + 1, "file_name": f"{stem}.png", "width": int(w), "height": int(h)})
            for j, (box, label) in enumerate(zip(self.boxes[i], self.labels[i])):
                area = int((self.instances[i] == j + 1).sum())
                annotations.append({
                    "id": len(annotations) + 1, "image_id": i + 1, "category_id": int(label),
                    "bbox": [float(v) for v in box], "area": area, "iscrowd": 0,
                })
        categories = [{"id": k, "name": name} for k, name in enumerate(self.class_names) if k > 0]
        return {"images": images, "annotations": annotations, "categories": categories}

    def padded_boxes(self, max_objects: int | None = None) -> np.ndarray:
        """float32 ``(N, M, 5)``: ``[x1, y1, x2, y2, category]`` per object (corners, exclusive max), rows
        past an image's objects filled with -1; ``M`` = the most objects in any image, or ``max_objects``."""
        m = max_objects if max_objects is not None else max((len(b) for b in self.boxes), default=0)
        out = np.full((len(self), m, 5), -1.0, dtype=np.float32)
        for i, (b, lab) in enumerate(zip(self.boxes, self.labels)):
            k = min(len(b), m)
            out[i, :k, :2] = b[:k, :2]
            out[i, :k, 2:4] = b[:k, :2] + b[:k, 2:]
            out[i, :k, 4] = lab[:k]
        return out

    def write(self, folder: str | os.PathLike[str], *, masks: bool = True, coco: bool = True, palette: bool = False) -> Path:
        """Write ``folder/images/<stem>.png`` (and ``folder/masks/<stem>.png``, ``folder/annotations.json``).

        Masks are 8-bit PNGs of class indices (mode ``L``) or, with ``palette``, palette PNGs (mode ``P``,
        :func:`voc_palette`) as Pascal VOC ships them; both decode to the same indices.
        """
        folder = Path(folder)
        (folder / "images").mkdir(parents=True, exist_ok=True)
        if masks:
            (folder / "masks").mkdir(parents=True, exist_ok=True)
        pal = voc_palette() if palette else None
        for stem, img, mask in zip(self.stems(), self.images, self.masks):
            arr = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
            Image.fromarray(np.ascontiguousarray(arr)).save(folder / "images" / f"{stem}.png")
            if masks:
                m = Image.fromarray(np.ascontiguousarray(mask), mode="L")
                if pal is not None:
                    m = m.convert("P")
                    m.putpalette(pal)
                m.save(folder / "masks" / f"{stem}.png")
        if coco:
            (folder / "annotations.json").write_text(json.dumps(self.coco()))
        return folder


def _source_items(source: str, split: str, root: str | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """uint8 ``(N, h, w)`` items, their labels and the source's class names."""
    if source not in ("digits", "fashion-mnist"):
        raise ConfigError(f"Expected scenes source 'digits' or 'fashion-mnist'. Received: source={source!r}")
    ds = load_dataset(source, root, split=split)
    return ds.images[:, 0].numpy(), ds.labels.numpy(), list(ds.class_names)


def _scaled(item: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(item).resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def _ignore_borders(mask: np.ndarray, width: int) -> np.ndarray:
    """``mask`` with every pixel whose ``(2 width + 1)``-square window holds two classes set to IGNORE."""
    from numpy.lib.stride_tricks import sliding_window_view

    k = 2 * width + 1
    padded = np.pad(mask, width, mode="edge")
    win = sliding_window_view(padded, (k, k))
    border = win.max(axis=(-1, -2)) != win.min(axis=(-1, -2))
    out = mask.copy()
    out[border] = IGNORE_INDEX
    return out


def generate_scenes(
    n: int,
    *,
    seed: int = 0,
    split: str = "train",
    canvas: tuple[int, int] = (64, 64),
    source: str = "digits",
    root: str | None = None,
    classes: list[int] | None = None,
    objects: tuple[int, int] = (1, 4),
    object_size: tuple[int, int] = (14, 30),
    min_visible: float = 0.5,
    channels: int = 1,
    noise: float = 8.0,
    ignore_border: int = 0,
) -> Scenes:
    """``n`` scenes, a pure function of the arguments (see the module docstring).

    Raises:
        ConfigError: impossible arguments (objects larger than the canvas, empty ranges, bad classes).
        DataError: ``fashion-mnist`` is not present.
    """
    h, w = int(canvas[0]), int(canvas[1])
    lo_n, hi_n = int(objects[0]), int(objects[1])
    lo_s, hi_s = int(object_size[0]), int(object_size[1])
    if split not in _SPLIT_CODE:
        raise ConfigError(f"Expected split 'train' or 'test'. Received: split={split!r}")
    if n < 0 or not 0 <= lo_n <= hi_n:
        raise ConfigError(f"Expected n >= 0 and 0 <= objects[0] <= objects[1]. Received: n={n}, objects={objects}")
    if not 2 <= lo_s <= hi_s <= min(h, w):
        raise ConfigError(
            f"Expected 2 <= object_size[0] <= object_size[1] <= the canvas side. Received: object_size={object_size}, canvas={canvas}"
        )
    if not 0 <= min_visible <= 1 or channels not in (1, 3) or noise < 0 or ignore_border < 0:
        raise ConfigError(
            "Expected 0 <= min_visible <= 1, channels 1 or 3, noise >= 0, ignore_border >= 0. "
            f"Received: min_visible={min_visible}, channels={channels}, noise={noise}, ignore_border={ignore_border}"
        )
    items, item_labels, source_names = _source_items(source, split, root)
    chosen = list(range(len(source_names))) if classes is None else [int(c) for c in classes]
    if not chosen or len(set(chosen)) != len(chosen) or not all(0 <= c < len(source_names) for c in chosen):
        raise ConfigError(f"Expected distinct scenes classes in 0..{len(source_names) - 1}. Received: classes={classes}")
    if len(chosen) >= IGNORE_INDEX:
        raise ConfigError(f"Expected fewer than {IGNORE_INDEX} scene classes. Received: {len(chosen)}")
    category = {c: k + 1 for k, c in enumerate(chosen)}
    pool = np.flatnonzero(np.isin(item_labels, chosen))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _SPLIT_CODE[split], 0x5CE7E5]))

    images = np.zeros((n, channels, h, w), dtype=np.uint8)
    masks = np.zeros((n, h, w), dtype=np.uint8)
    instances = np.zeros((n, h, w), dtype=np.uint8)
    boxes: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    full_areas: list[np.ndarray] = []
    for i in range(n):
        canvas_img = np.clip(rng.normal(rng.uniform(0, 40), noise, size=(channels, h, w)), 0, 255)
        inst = np.zeros((h, w), dtype=np.uint8)
        areas: list[int] = []  # each placed object's full pixel count
        cats: list[int] = []
        for _ in range(int(rng.integers(lo_n, hi_n + 1))):
            idx = int(pool[rng.integers(len(pool))])
            size = int(rng.integers(lo_s, hi_s + 1))
            obj = _scaled(items[idx], size)
            fg = obj > FOREGROUND_THRESHOLD
            if not fg.any():
                continue
            colour = rng.uniform(0.5, 1.0, size=channels) if channels == 3 else np.ones(1)
            for _try in range(_TRIES):
                y0, x0 = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
                under = inst[y0 : y0 + size, x0 : x0 + size][fg]
                covered = np.bincount(under, minlength=len(areas) + 1)[1:]
                visible = np.array([(inst == j + 1).sum() for j in range(len(areas))]) - covered
                if all(v >= min_visible * a for v, a in zip(visible, areas)):
                    break
            else:
                continue  # no position keeps every earlier object visible enough: skip this object
            region = inst[y0 : y0 + size, x0 : x0 + size]
            region[fg] = len(areas) + 1
            for c in range(channels):
                canvas_img[c, y0 : y0 + size, x0 : x0 + size][fg] = obj[fg] * colour[c]
            areas.append(int(fg.sum()))
            cats.append(category[int(item_labels[idx])])
        mask = np.zeros((h, w), dtype=np.uint8)
        bxs, labs = [], []
        for j, cat in enumerate(cats):
            ys, xs = np.nonzero(inst == j + 1)
            mask[inst == j + 1] = cat
            bxs.append([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1])
            labs.append(cat)
        if ignore_border:
            mask = _ignore_borders(mask, ignore_border)
        images[i] = np.rint(canvas_img).astype(np.uint8)
        masks[i] = mask
        instances[i] = inst
        boxes.append(np.asarray(bxs, dtype=np.float32).reshape(-1, 4))
        labels.append(np.asarray(labs, dtype=np.int64))
        full_areas.append(np.asarray(areas, dtype=np.int64))
    names = ["background"] + [source_names[c] for c in chosen]
    return Scenes(images, masks, instances, boxes, labels, names, full_areas)


class ScenesOptions(BaseModel):
    """``data.*`` options of ``scenes`` (the arguments of :func:`generate_scenes`, plus sizes)."""

    model_config = ConfigDict(extra="forbid")
    num_train: int = Field(1000, ge=1, description="training scenes (validation is carved from these)")
    num_test: int = Field(250, ge=1)
    canvas: tuple[int, int] = (64, 64)
    source: Literal["digits", "fashion-mnist"] = "digits"
    classes: list[int] | None = None
    objects: tuple[int, int] = (1, 4)
    object_size: tuple[int, int] = (14, 30)
    min_visible: float = Field(0.5, ge=0, le=1)
    channels: Literal[1, 3] = 1
    noise: float = Field(8.0, ge=0)
    ignore_border: int = Field(0, ge=0)
    targets: str = Field("masks", description="what y holds: a name in SCENE_TARGETS (masks, boxes)")

    def generator_kwargs(self) -> dict[str, Any]:
        return self.model_dump(exclude={"num_train", "num_test", "targets"})


SCENE_TARGETS: dict[str, Callable[..., Any]] = {}
"""``data.targets`` of ``scenes`` -> ``build(train, test, cfg, options, **build_kwargs)`` (see the module
docstring). ``masks`` is registered by :mod:`cnnkit.data.sources.segmentation`."""


def write_scene_dataset(
    root: str | os.PathLike[str], *, num_train: int = 1000, num_test: int = 250, seed: int = 0,
    palette: bool = False, **kwargs: Any,
) -> Path:
    """Write ``root/train`` and ``root/test`` with :meth:`Scenes.write` (images, masks, COCO JSON), the
    scenes :func:`generate_scenes` makes with ``kwargs``; a ``segmentation-folder`` and a COCO dataset."""
    root = Path(root)
    for split, n in (("train", num_train), ("test", num_test)):
        generate_scenes(n, seed=seed, split=split, **kwargs).write(root / split, palette=palette)
    return root


SCENE_FOLDERS: dict[str, Callable[..., Any]] = {}
"""``data.targets`` -> ``build(cfg, spec=..., seed=..., **build_kwargs)`` reading a user's folder in place of
the generated scenes, when ``data.root`` is set (with the default ``source: digits``): so a recipe that
trains on the scenes trains on your data with one ``--set data.root=DIR`` (``masks``: a
``segmentation-folder``)."""


def _build(cfg, *, spec: DatasetSpec, seed: int, **build_kwargs: Any):
    options = ScenesOptions.model_validate(cfg.options())
    if cfg.root is not None and options.source == "digits":
        folder = SCENE_FOLDERS.get(options.targets)
        if folder is None:
            raise ConfigError(f"data.root is set, but scenes with targets {options.targets!r} cannot read a folder; unset data.root")
        return folder(cfg, spec=spec, seed=seed, **build_kwargs)
    build = SCENE_TARGETS.get(options.targets)
    if build is None:
        raise ConfigError(
            f"config key data.targets: scenes has no targets {options.targets!r}; available: {', '.join(sorted(SCENE_TARGETS)) or '(none)'}"
        )
    kwargs = options.generator_kwargs()
    root = cfg.root if options.source == "fashion-mnist" else None
    try:
        # The scenes are the data, not the run: data.split_seed fixes them (like a dataset on disk), so
        # runs with different seeds train on the same scenes.
        train = generate_scenes(options.num_train, seed=cfg.split_seed, split="train", root=root, **kwargs)
        test = generate_scenes(options.num_test, seed=cfg.split_seed, split="test", root=root, **kwargs)
    except DataError as exc:
        raise DataError(f"scenes (source {options.source}): {exc}") from None
    return build(train, test, cfg, options, spec=spec, seed=seed, **build_kwargs)


DATASETS.add(
    "scenes",
    DatasetSpec(
        "scenes",
        "generated scenes: digits (or Fashion-MNIST items) placed on a canvas, with class masks and COCO boxes",
        bundled="scikit-learn",
        kind="image",
        build=_build,
        options=ScenesOptions,
        has_test_split=True,
    ),
)
