"""COCO-format detection data (``data.name: coco-folder``), and the ``boxes`` targets of ``scenes``.

A COCO detection file (Lin et al., "Microsoft COCO", ECCV 2014; the format of cocodataset.org's
``instances_*.json``) is one JSON object: ``images`` (``id``, ``file_name``), ``annotations`` (``image_id``,
``category_id``, ``bbox`` = ``[x, y, width, height]`` in pixels, optional ``iscrowd``) and ``categories``
(``id``, ``name``). cnnkit reads it beside an image folder, in either layout::

    root/annotations.json + root/images/       one split; the test split is carved (data.test_fraction)
    root/train/{annotations.json,images/} + root/test/{annotations.json,images/}

(``data.annotations`` and ``data.images`` rename the file and the folder; without ``data.root``,
``data.scenes: {num_train: ..., ...}`` trains on generated scenes instead). Every image is resized to the
model's input and its boxes scaled with it; categories become classes 0..K-1 in order of ``id``. An image
without annotations is background; crowd annotations (``iscrowd: 1``) are skipped, as COCO's evaluation
ignores them. A missing image, a box with non-positive size or outside its image (beyond one pixel of
rounding), an unknown category or a malformed file is a one-line :class:`~cnnkit.errors.DataError`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from ..._text import safe_text
from ...errors import DataError
from .._core import DATASETS, TEST_SPLIT_SEED, DatasetSpec, check_root
from ..detection import detection_bundle, fit_images_and_boxes, pad_targets
from .folder import read_image
from .scenes import SCENE_TARGETS, Scenes, ScenesOptions, generate_scenes

__all__ = ["CocoOptions", "read_coco"]

_TOLERANCE = 1.0  # pixels a box may overshoot its image (rounding in exported annotations); clipped
_MAX_FILE = 512 << 20


class CocoOptions(BaseModel):
    """``data.*`` options of ``coco-folder``: the annotation file's and the image folder's names, and the
    generated scenes to train on while ``data.root`` is unset (so a recipe runs as it is, and on a user's
    folder with one ``--set data.root=DIR``)."""

    model_config = ConfigDict(extra="forbid")
    annotations: str = "annotations.json"
    images: str = "images"
    scenes: ScenesOptions | None = Field(None, description="without data.root: train on these generated scenes")


def _fail(path: Path, what: str) -> DataError:
    return DataError(f"{path}: {what}")


def _load_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"COCO annotations not found: {path}; put annotations.json (COCO format) beside images/")
    if path.stat().st_size > _MAX_FILE:
        raise _fail(path, "larger than 512 MB; not a COCO annotation file this reader loads")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _fail(path, f"not valid JSON ({safe_text(e, 120)}); re-export it as COCO JSON") from None
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "categories")):
        raise _fail(path, "not a COCO detection file: expected lists 'images', 'annotations' and 'categories'")
    return doc


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _categories(path: Path, doc: dict[str, Any]) -> tuple[list[int], list[str]]:
    cats = []
    for c in doc["categories"]:
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or not isinstance(c.get("name", ""), str):
            raise _fail(path, "each category needs an integer 'id' and a string 'name'")
        cats.append((c["id"], safe_text(c.get("name") or str(c["id"]), 100)))
    cats.sort()
    ids = [i for i, _ in cats]
    if not ids or len(set(ids)) != len(ids):
        raise _fail(path, "expected at least one category, with distinct ids")
    return ids, [n for _, n in cats]


def read_coco(
    annotations: str | Path, images_dir: str | Path, *, size: tuple[int, int], channels: int | None = None,
    category_ids: list[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, list[int], list[str]]:
    """Read a COCO file and its images: uint8 images (N, C, *size), padded targets (N, M, 5) rows
    ``(class, x1, y1, x2, y2)`` at ``size``, the category ids (class k = ``ids[k]``) and their names.

    ``channels``: C (1 or 3); None: 3 if any image is in colour, else 1. ``category_ids``: the training
    split's ids, which this file's must equal (a test split).

    Raises:
        DataError: one line naming the file and the problem.
    """
    path, folder = Path(annotations), Path(images_dir)
    doc = _load_json(path)
    ids, names = _categories(path, doc)
    if category_ids is not None and ids != category_ids:
        raise _fail(path, f"its categories (ids {ids[:10]}) differ from the training split's ({category_ids[:10]})")
    index = {cid: k for k, cid in enumerate(ids)}
    per_image: dict[Any, list[tuple[list[float], int, Any]]] = {}
    for a in doc.get("annotations") or []:
        if not isinstance(a, dict):
            raise _fail(path, "each annotation must be an object")
        aid = safe_text(a.get("id"), 40)
        bbox = a.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(_number(v) for v in bbox):
            raise _fail(path, f"annotation {aid}: expected bbox [x, y, width, height] of 4 finite numbers")
        if a.get("category_id") not in index:
            raise _fail(path, f"annotation {aid}: category_id {safe_text(a.get('category_id'), 40)} is not among the categories")
        if a.get("iscrowd", 0):
            continue
        if bbox[2] <= 0 or bbox[3] <= 0:
            raise _fail(path, f"annotation {aid}: box {bbox} has non-positive size; fix or remove it")
        per_image.setdefault(a.get("image_id"), []).append((bbox, index[a["category_id"]], aid))
    images, boxes = [], []
    seen = set()
    for im in doc["images"]:
        if not isinstance(im, dict) or not isinstance(im.get("file_name"), str) or "id" not in im:
            raise _fail(path, "each image needs an 'id' and a 'file_name'")
        name = im["file_name"]
        rel = PurePosixPath(name.replace("\\", "/"))
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise _fail(path, f"image {safe_text(name, 80)}: file_name must be a path inside {folder}")
        file = folder / Path(*rel.parts)
        if not file.is_file():
            raise _fail(path, f"image {safe_text(name, 80)} (id {safe_text(im['id'], 20)}) not found in {folder}")
        seen.add(im["id"])
        x = read_image(file, channels=channels)
        h, w = x.shape[-2:]
        b, c = [], []
        for bbox, k, aid in per_image.get(im["id"], []):
            x0, y0, bw, bh = bbox
            if x0 < -_TOLERANCE or y0 < -_TOLERANCE or x0 + bw > w + _TOLERANCE or y0 + bh > h + _TOLERANCE:
                raise _fail(path, f"annotation {aid}: box {bbox} lies outside its {w}x{h} image {safe_text(name, 80)}")
            b.append([max(x0, 0.0), max(y0, 0.0), min(x0 + bw, w), min(y0 + bh, h)])
            c.append(k)
        t = pad_targets([np.asarray(b, dtype=np.float32).reshape(-1, 4)], [np.asarray(c, dtype=np.int64)])
        x, t = fit_images_and_boxes(x[None], t, size)
        images.append(x[0])
        boxes.append(t[0])
    orphans = set(per_image) - seen
    if orphans:
        raise _fail(path, f"annotations refer to image id {safe_text(sorted(orphans, key=str)[0], 20)}, which is not in 'images'")
    if not images:
        raise _fail(path, "lists no images")
    m = max(len(t) for t in boxes)
    targets = torch.full((len(boxes), m, 5), -1.0)
    targets[..., 1:] = 0.0
    for i, t in enumerate(boxes):
        targets[i, : len(t)] = t
    nc = channels or max(int(x.shape[0]) for x in images)
    images = [
        x if x.shape[0] == nc else (x.expand(nc, -1, -1) if nc == 3 else x.float().mean(0, keepdim=True).round().to(torch.uint8))
        for x in images
    ]
    return torch.stack(images), targets, ids, names


def _pad_to(t: torch.Tensor, m: int) -> torch.Tensor:
    if t.shape[1] >= m:
        return t
    pad = torch.full((t.shape[0], m - t.shape[1], 5), -1.0)
    pad[..., 1:] = 0.0
    return torch.cat([t, pad], dim=1)


def _build_coco(cfg: Any, *, spec: DatasetSpec, input_shape: tuple[int, ...], device: torch.device, seed: int,
                rank: int = 0, world_size: int = 1) -> Any:
    options = CocoOptions.model_validate(cfg.options())
    root = check_root(cfg.root)
    if root is None and options.scenes is not None:
        return _generated(options.scenes, cfg, spec=spec, input_shape=input_shape, device=device, seed=seed, rank=rank, world_size=world_size)
    if root is None:
        raise DataError("coco-folder: data.root must point at the folder holding annotations.json and images/")
    _, h, w = (int(v) for v in input_shape)
    size = tuple(cfg.input_size) if cfg.input_size is not None else (h, w)
    split_layout = (root / "train" / options.annotations).is_file()
    if split_layout:
        x_tr, y_tr, ids, names = read_coco(root / "train" / options.annotations, root / "train" / options.images, size=size)
        x_te, y_te, _, _ = read_coco(
            root / "test" / options.annotations, root / "test" / options.images, size=size,
            channels=int(x_tr.shape[1]), category_ids=ids,
        )
    else:
        x, y, ids, names = read_coco(root / options.annotations, root / options.images, size=size)
        n = len(x)
        n_test = max(1, round(cfg.test_fraction * n)) if n > 1 else 0
        if n_test == 0:
            raise DataError(f"{root / options.annotations}: one image cannot be split into train and test; add images or a test/ folder")
        perm = torch.from_numpy(np.random.default_rng(TEST_SPLIT_SEED).permutation(n))
        x_te, y_te, x_tr, y_tr = x[perm[:n_test]], y[perm[:n_test]], x[perm[n_test:]], y[perm[n_test:]]
    m = max(y_tr.shape[1], y_te.shape[1])
    return detection_bundle(
        x_tr, _pad_to(y_tr, m), x_te, _pad_to(y_te, m), names, cfg, dataset=spec.name, input_shape=(3, *size),
        device=device, seed=seed, rank=rank, world_size=world_size, meta={"category_ids": ids},
    )


def _scene_targets(scenes: Scenes) -> tuple[torch.Tensor, torch.Tensor]:
    """Scenes' images and their boxes as detection targets ``(class, x1, y1, x2, y2)``, class = category - 1."""
    p = torch.from_numpy(scenes.padded_boxes())
    if p.shape[1] == 0:
        p = torch.full((len(scenes), 1, 5), -1.0)
    t = torch.cat([p[..., 4:5], p[..., :4]], dim=-1)
    valid = t[..., 0] >= 0
    t[..., 0] = torch.where(valid, t[..., 0] - 1, t[..., 0])
    t[..., 1:] = torch.where(valid[..., None], t[..., 1:], torch.zeros_like(t[..., 1:]))
    return torch.from_numpy(np.ascontiguousarray(scenes.images)), t


def _build_scene_boxes(train: Scenes, test: Scenes, cfg: Any, options: Any, *, spec: DatasetSpec, seed: int,
                       input_shape: tuple[int, ...], device: torch.device, rank: int = 0, world_size: int = 1) -> Any:
    x_tr, y_tr = _scene_targets(train)
    x_te, y_te = _scene_targets(test)
    m = max(y_tr.shape[1], y_te.shape[1])
    names = list(train.class_names[1:])  # index 0 of the scenes' classes is the background
    return detection_bundle(
        x_tr, _pad_to(y_tr, m), x_te, _pad_to(y_te, m), names, cfg, dataset=spec.name, input_shape=input_shape,
        device=device, seed=seed, rank=rank, world_size=world_size, meta={"category_ids": list(range(1, len(names) + 1))},
    )


def _generated(options: ScenesOptions, cfg: Any, **build_kwargs: Any) -> Any:
    """The scenes ``data: {name: scenes, targets: boxes}`` would give (the same seeds, the same bundle)."""
    kwargs = options.generator_kwargs()
    scene_root = cfg.root if options.source == "fashion-mnist" else None
    train = generate_scenes(options.num_train, seed=cfg.split_seed, split="train", root=scene_root, **kwargs)
    test = generate_scenes(options.num_test, seed=cfg.split_seed, split="test", root=scene_root, **kwargs)
    return _build_scene_boxes(train, test, cfg, options, **build_kwargs)


SCENE_TARGETS["boxes"] = _build_scene_boxes

DATASETS.add(
    "coco-folder",
    DatasetSpec(
        "coco-folder",
        "COCO-format detection annotations (annotations.json) beside an image folder",
        needs_root=True,
        kind="image",
        build=_build_coco,
        options=CocoOptions,
    ),
)
