"""Segmentation datasets: ``segmentation-folder`` (PNG/JPEG images + PNG masks) and ``segmentation-npz``;
and the ``masks`` targets of the generated ``scenes``.

``segmentation-folder`` layouts (``data.root``): ``images/`` and ``masks/`` side by side (the test split is
then carved with the fixed seeded split of ``data.test_fraction``), or ``train/{images,masks}`` plus
``test/{images,masks}``. An image and its mask share a file stem (``images/a.jpg`` <-> ``masks/a.png``);
masks are 8-bit PNGs of class indices (mode ``L``) or palette PNGs as Pascal VOC ships them (mode ``P``:
the pixel values are the class indices, the palette only colours them), with 255 as the ignore index.
The classes are ``data.num_classes`` (or ``data.class_names``) when given, else the largest index seen
in the training masks plus one; an index outside them is an error naming the mask.

``segmentation-npz`` (``data.root`` = the ``.npz`` file): ``x_train, y_train, x_test, y_test`` or ``x, y``
(test carved as above); ``x`` images as for ``npz`` (``(N, H, W)``, NHWC or NCHW, uint8 or floats in
[0, 1]), ``y`` integer masks ``(N, H, W)``.

Every problem (a mask whose size differs from its image, an image without a mask, a class index outside
the declared classes, an unreadable file) is a one-line :class:`~cnnkit.errors.DataError` naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from ...errors import DataError
from .._core import DATASETS, TEST_SPLIT_SEED, DatasetSpec, check_root
from .arrays import _load_arrays, images_to_uint8_nchw
from .folder import _open, read_image
from .scenes import SCENE_FOLDERS, SCENE_TARGETS, Scenes, ScenesOptions

__all__ = ["SegmentationOptions", "read_mask", "scan_segmentation_folder"]

_IMAGE_EXT = {".png", ".jpg", ".jpeg"}
_IGNORE = 255  # = cnnkit.data.segmentation.IGNORE_INDEX (imported lazily there: see _bundle)


class SegmentationOptions(BaseModel):
    """``data.*`` options of the segmentation sources."""

    model_config = ConfigDict(extra="forbid")
    num_classes: int | None = Field(None, ge=1, le=255, description="classes, background included; default: from the masks")
    class_names: list[str] | None = Field(None, description="one name per class (index 0 first)")


def read_mask(path: str | Path) -> np.ndarray:
    """A PNG mask as uint8 class indices ``(H, W)``: mode ``L`` values, or mode ``P`` palette indices.

    Raises:
        DataError: not a PNG, not a single-band 8-bit image (an RGB colour mask must first be mapped to
            indices), or unreadable.
    """
    path = Path(path)
    with _open(path) as im:
        if im.format != "PNG":
            raise DataError(f"mask {path}: expected a PNG (JPEG compression changes class indices); received {im.format}")
        if im.mode not in ("L", "P", "1"):
            raise DataError(
                f"mask {path}: expected an 8-bit PNG of class indices or a palette PNG; received mode {im.mode} "
                "(map colours to class indices first)"
            )
        try:
            im.load()
            arr = np.asarray(im, dtype=np.uint8)
        except (OSError, SyntaxError, ValueError) as e:
            raise DataError(f"unreadable mask {path}: {e}") from None
    return arr.copy()


def _stems(folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file() or p.suffix.lower() not in _IMAGE_EXT:
            continue
        if p.stem in out:
            raise DataError(f"{p}: two files share the stem {p.stem!r} ({out[p.stem].name}); rename one")
        out[p.stem] = p
    return out


def scan_segmentation_folder(root: Path) -> dict[str, list[tuple[Path, Path]]]:
    """``{split: [(image, mask), ...]}`` (``test`` absent when the folder has no test split), sorted by stem.

    Raises:
        DataError: no ``images/`` + ``masks/``, an image without its mask.
    """
    layouts = {"train": root / "train", "test": root / "test"} if (root / "train" / "images").is_dir() else {"train": root}
    out: dict[str, list[tuple[Path, Path]]] = {}
    for split, folder in layouts.items():
        if not (folder / "images").is_dir() or not (folder / "masks").is_dir():
            raise DataError(
                f"{folder}: expected images/ and masks/ folders (or train/ and test/ holding them) for segmentation-folder"
            )
        images, masks = _stems(folder / "images"), _stems(folder / "masks")
        missing = [s for s in images if s not in masks]
        if missing:
            raise DataError(f"{images[missing[0]]}: no mask {folder / 'masks' / missing[0]}.png ({len(missing)} images lack one)")
        if not images:
            raise DataError(f"{folder / 'images'}: no PNG or JPEG images")
        out[split] = [(images[s], masks[s]) for s in sorted(images)]
    return out


def _read_pairs(pairs: list[tuple[Path, Path]], channels: int | None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    for img_path, mask_path in pairs:
        x = read_image(img_path, channels=channels)
        channels = x.shape[0]  # the first image decides; the others are converted to it
        m = read_mask(mask_path)
        if tuple(m.shape) != tuple(x.shape[-2:]):
            raise DataError(
                f"mask {mask_path}: size {m.shape[1]}x{m.shape[0]} differs from its image {img_path} "
                f"({x.shape[-1]}x{x.shape[-2]}); masks must match their images pixel for pixel"
            )
        if xs and tuple(x.shape[-2:]) != tuple(xs[0].shape[-2:]):
            raise DataError(
                f"{img_path}: size {x.shape[-1]}x{x.shape[-2]} differs from {pairs[0][0].name} "
                f"({xs[0].shape[-1]}x{xs[0].shape[-2]}); set data.input_size=[H,W] to resize every pair"
            )
        xs.append(x)
        ys.append(torch.from_numpy(m))
    return torch.stack(xs), torch.stack(ys), [str(m) for _, m in pairs]


def _read_pairs_resized(pairs: list[tuple[Path, Path]], channels: int | None, size: tuple[int, int]):
    from ..segmentation import resize_pairs  # lazy: cnnkit.data.segmentation imports the data package

    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    for pair in pairs:
        x, y, _ = _read_pairs([pair], channels)
        channels = x.shape[1]
        x, y = resize_pairs(x, y, size)
        xs.append(x)
        ys.append(y)
    return torch.cat(xs), torch.cat(ys), [str(m) for _, m in pairs]


def _carve(n: int, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    from ..splits import split_indices

    return split_indices(np.zeros(n), test_fraction, TEST_SPLIT_SEED, stratified=False)


def _classes(options: SegmentationOptions, train_masks: torch.Tensor, source: str) -> list[str]:
    k = options.num_classes
    if options.class_names is not None:
        if k is not None and k != len(options.class_names):
            raise DataError(f"{source}: data.num_classes={k} but data.class_names has {len(options.class_names)} names")
        k = len(options.class_names)
    if k is None:
        seen = train_masks[train_masks != _IGNORE]
        k = int(seen.max()) + 1 if seen.numel() else 1
        k = max(k, 2)  # background and at least one class
    return list(options.class_names) if options.class_names is not None else [str(i) for i in range(k)]


def _bundle(train, test, names_tr, names_te, class_names, cfg, *, dataset: str, **kwargs: Any):
    from ..segmentation import check_masks, segmentation_bundle  # lazy: see _read_pairs_resized

    check_masks(train[1].numpy(), len(class_names), names_tr, source=dataset)
    check_masks(test[1].numpy(), len(class_names), names_te, source=dataset)
    return segmentation_bundle(train, test, class_names, cfg, dataset=dataset, **kwargs)


def _build_folder(cfg, *, spec: DatasetSpec, input_shape: tuple[int, ...], options: SegmentationOptions | None = None, **kwargs: Any):
    root = check_root(cfg.root)
    if root is None:
        raise DataError("segmentation-folder: data.root must point at a folder holding images/ and masks/")
    options = options if options is not None else SegmentationOptions.model_validate(cfg.options())
    splits = scan_segmentation_folder(root)
    channels = None
    if cfg.input_size is not None:
        read = lambda pairs: _read_pairs_resized(pairs, channels, tuple(cfg.input_size))  # noqa: E731
    else:
        read = lambda pairs: _read_pairs(pairs, channels)  # noqa: E731
    if "test" in splits:
        x_tr, y_tr, n_tr = read(splits["train"])
        channels = x_tr.shape[1]
        x_te, y_te, n_te = read(splits["test"])
    else:
        x, y, names = read(splits["train"])
        keep, held = _carve(len(x), cfg.test_fraction)
        x_tr, y_tr, n_tr = x[keep], y[keep], [names[i] for i in keep]
        x_te, y_te, n_te = x[held], y[held], [names[i] for i in held]
    class_names = _classes(options, y_tr, f"segmentation-folder {root}")
    return _bundle((x_tr, y_tr), (x_te, y_te), n_tr, n_te, class_names, cfg, dataset=spec.name, **kwargs)


def _build_npz(cfg, *, spec: DatasetSpec, input_shape: tuple[int, ...], **kwargs: Any):
    path = check_root(cfg.root)
    if path is None or not path.is_file():
        raise DataError(f"segmentation-npz: data.root must name an .npz file holding x_train, y_train, x_test, y_test (or x, y); received {cfg.root}")
    options = SegmentationOptions.model_validate(cfg.options())
    arrays = _load_arrays(path, ".npz")

    def pair(xk: str, yk: str) -> tuple[torch.Tensor, torch.Tensor]:
        x = images_to_uint8_nchw(arrays[xk], f"{path} [{xk}]")
        y = arrays[yk]
        if not np.issubdtype(y.dtype, np.integer) or y.ndim != 3:
            raise DataError(f"{path} [{yk}]: expected integer masks of shape (N, H, W). Received: {y.dtype} {y.shape}")
        if y.shape != (x.shape[0], *x.shape[2:]):
            raise DataError(f"{path} [{yk}]: masks of shape {y.shape} do not match images {x.shape} (N, H, W must agree)")
        if y.size and (y.min() < 0 or y.max() > 255):
            raise DataError(f"{path} [{yk}]: class indices must lie in 0..255 (255 = ignore)")
        return torch.from_numpy(x), torch.from_numpy(y.astype(np.uint8))

    if all(k in arrays for k in ("x_train", "y_train", "x_test", "y_test")):
        train, test = pair("x_train", "y_train"), pair("x_test", "y_test")
    elif "x" in arrays and "y" in arrays:
        x, y = pair("x", "y")
        keep, held = _carve(len(x), cfg.test_fraction)
        train, test = (x[keep], y[keep]), (x[held], y[held])
    else:
        raise DataError(f"{path}: expected arrays x_train, y_train, x_test, y_test (or x, y); found {', '.join(sorted(arrays)) or 'none'}")
    class_names = _classes(options, train[1], f"segmentation-npz {path}")
    names = lambda split, n: [f"{path} [{split} mask {i}]" for i in range(n)]  # noqa: E731
    return _bundle(train, test, names("train", len(train[0])), names("test", len(test[0])), class_names, cfg, dataset=spec.name, **kwargs)


def _scene_masks(train: Scenes, test: Scenes, cfg, options: ScenesOptions, *, spec: DatasetSpec, **kwargs: Any):
    from ..segmentation import segmentation_bundle

    pair = lambda s: (torch.from_numpy(s.images), torch.from_numpy(s.masks))  # noqa: E731
    meta = {"scenes": options.model_dump(mode="json")}
    kwargs.pop("input_shape", None)
    return segmentation_bundle(pair(train), pair(test), train.class_names, cfg, dataset=spec.name, meta=meta, **kwargs)


def _scene_folder(cfg, *, spec: DatasetSpec, **kwargs: Any):
    # The scenes' own options (num_train, canvas, ...) do not apply to the user's folder.
    kwargs.setdefault("input_shape", ())
    return _build_folder(cfg, spec=DATASETS.get("segmentation-folder"), options=SegmentationOptions(), **kwargs)


SCENE_TARGETS["masks"] = _scene_masks
SCENE_FOLDERS["masks"] = _scene_folder

DATASETS.add(
    "segmentation-folder",
    DatasetSpec(
        "segmentation-folder",
        "images/ + masks/ (PNG class indices or VOC palette PNGs, 255 = ignore), matching stems",
        needs_root=True,
        build=_build_folder,
        options=SegmentationOptions,
    ),
)
DATASETS.add(
    "segmentation-npz",
    DatasetSpec(
        "segmentation-npz",
        ".npz with x_train, y_train, x_test, y_test (or x, y): images and integer masks",
        needs_root=True,
        build=_build_npz,
        options=SegmentationOptions,
    ),
)
