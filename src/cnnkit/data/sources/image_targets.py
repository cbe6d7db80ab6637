"""Images with targets other than one class folder each: several labels per image (``task: multilabel``)
or real values (``task: regression``).

- ``image-csv``: a folder of PNG/JPEG files and a CSV beside them (``data.root``: the folder; option
  ``labels``: the CSV's name, default ``labels.csv``) with a header row: a ``file`` column (paths relative
  to the folder) and either a ``label`` column (``cat;outdoor`` for several labels, ``0.5 1.2`` for
  values) or one column per value (``file,age,height``). Option ``targets``: ``auto``, ``classes``,
  ``labels`` or ``values`` (see :mod:`cnnkit.data.targets`).
- ``npz`` files whose ``y_train`` has shape ``(N, K)`` (0/1 integers or booleans: multi-hot labels;
  floats: values) or holds real values ``(N,)``: read here, by :func:`build_npz_targets`.

Both reuse the image pipeline (:mod:`.folder`'s decoder, :func:`~cnnkit.data.prepare_images`, the
in-memory loader with its on-device augmentation); the targets are float tensors in the loaders.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from ...config.schema import DataConfig
from ...errors import DataError
from .._core import DATASETS, DatasetSpec, check_root
from ..augment import BatchAugment
from ..loader import InMemoryLoader
from ..preprocess import channel_stats, make_preprocessing, prepare_images
from ..splits import subset_indices
from ..targets import TargetKind, Targets, carve, check_labels_present, parse_targets, validation_split
from .arrays import _load_arrays, _npz_path, images_to_uint8_nchw
from .folder import ImageFileDataset

__all__ = ["ImageCsvOptions", "build_image_targets", "build_npz_targets", "npz_has_targets", "read_label_csv"]

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
_MAX_CSV_BYTES = 256 << 20


class ImageCsvOptions(BaseModel):
    """Options of ``image-csv``: ``labels`` (the CSV file inside ``data.root``) and ``targets``."""

    model_config = ConfigDict(extra="forbid")
    labels: str = "labels.csv"
    targets: TargetKind = "auto"


def read_label_csv(path: Path, *, key: str = "file") -> tuple[list[str], list[str], list[str] | None]:
    """``(keys, cells, value_names)`` of a label CSV: the ``key`` column, one label cell per row (the
    ``label`` column, or the other columns joined by spaces, named by ``value_names``).

    Raises:
        DataError: missing, not UTF-8, no header with ``key``, or a row of another width.
    """
    if not path.is_file():
        raise DataError(f"label file {path} not found; put a CSV with columns {key},label beside the data (or set data.labels)")
    if path.stat().st_size > _MAX_CSV_BYTES:
        raise DataError(f"label file {path} is larger than {_MAX_CSV_BYTES >> 20} MB")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"label file {path} is not UTF-8 text (byte {e.start}); re-save it as UTF-8") from None
    rows = list(csv.reader(text.splitlines()))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"label file {path} is empty; expected a header row ({key},label) and one row per item")
    header = [h.strip() for h in rows[0]]
    if key not in header:
        raise DataError(f"label file {path}: the header has no {key!r} column (found: {', '.join(header)[:80]})")
    ki = header.index(key)
    others = [i for i in range(len(header)) if i != ki]
    if not others:
        raise DataError(f"label file {path}: no label column beside {key!r}")
    use = [header.index("label")] if "label" in header else others
    keys, cells = [], []
    for n, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise DataError(f"label file {path}, line {n}: {len(r)} columns where the header has {len(header)}")
        keys.append(r[ki].strip())
        cells.append(" ".join(r[i].strip() for i in use))
    if not keys:
        raise DataError(f"label file {path} has a header but no rows")
    value_names = None if "label" in header else [header[i] for i in use]
    return keys, cells, value_names


def _csv_items(root: Path, opts: ImageCsvOptions, kind: TargetKind) -> tuple[list[Path], list[str], list[str] | None]:
    csv_path = Path(opts.labels)
    csv_path = csv_path if csv_path.is_absolute() else root / csv_path
    keys, cells, value_names = read_label_csv(csv_path)
    base = root.resolve()
    paths = []
    seen: set[Path] = set()
    for k in keys:
        p = (base / k).resolve()
        if not p.is_relative_to(base):
            raise DataError(f"label file {csv_path}: {k[:80]!r} is outside {root}; list files inside the folder")
        if not p.is_file():
            raise DataError(f"label file {csv_path} names {k[:80]!r}, which is not a file in {root}; the labels do not match the images")
        if p.suffix.lower() not in _IMAGE_SUFFIXES:
            raise DataError(f"label file {csv_path} names {k[:80]!r}: expected a PNG or JPEG file")
        if p in seen:
            raise DataError(f"label file {csv_path} lists {k[:80]!r} twice")
        seen.add(p)
        paths.append(p)
    unlisted = sorted(
        f for f in base.rglob("*") if f.suffix.lower() in _IMAGE_SUFFIXES and f.is_file() and f not in seen
        and not any(part.startswith(".") for part in f.relative_to(base).parts)
    )
    if unlisted:
        raise DataError(
            f"label file {csv_path} does not match the images: {len(unlisted)} image(s) have no row, e.g. "
            f"{unlisted[0].relative_to(base)}; add them to the file or move them out of {root}"
        )
    return paths, cells, value_names


def _limit(n: int, limit: int | None, seed: int) -> np.ndarray:
    return np.arange(n) if limit is None else subset_indices(np.zeros(n, dtype=np.int64), limit, seed, stratified=False)


def build_image_targets(
    cfg: DataConfig,
    *,
    train_x: torch.Tensor,
    train_t: Targets,
    test_x: torch.Tensor,
    test_t: Targets,
    input_shape: tuple[int, int, int],
    source_shape: tuple[int, int, int] | None,
    dataset: str,
    device: torch.device,
    seed: int,
    rank: int,
    world_size: int,
) -> Any:
    """The :class:`~cnnkit.data.DataBundle` of uint8 images at the input size with parsed targets."""
    from ..build import DataBundle

    c, h, w = input_shape
    keep = _limit(len(train_t.y), cfg.limit_train, cfg.split_seed)
    train_x, train_t = train_x[torch.as_tensor(keep)], train_t.subset(keep)
    keep = _limit(len(test_t.y), cfg.limit_test, cfg.split_seed)
    test_x, test_t = test_x[torch.as_tensor(keep)], test_t.subset(keep)
    train_idx, val_idx = validation_split(train_t, cfg)
    check_labels_present(train_t.subset(train_idx), dataset)
    x_train = train_x[torch.as_tensor(train_idx)]
    mean, std = channel_stats(x_train) if cfg.normalize else ([0.0] * c, [1.0] * c)
    preprocessing = make_preprocessing(
        source_shape=source_shape or (c, h, w), input_shape=(c, h, w), fit=cfg.fit, mean=mean, std=std
    )
    if source_shape is None:  # fitted per file at decode time, as image folders are
        preprocessing["source_shape"] = None
        preprocessing["fit"] = cfg.fit
    common = dict(mean=mean, std=std, seed=seed, device=device, keep_on_device=cfg.device_data)
    y = train_t.y
    train = InMemoryLoader(
        x_train, y[torch.as_tensor(train_idx)], batch_size=cfg.batch_size, shuffle=True,
        augment=BatchAugment(cfg.augment, fill=mean), rank=rank, world_size=world_size, **common,  # type: ignore[arg-type]
    )
    val = None
    if val_idx is not None:
        val = InMemoryLoader(train_x[torch.as_tensor(val_idx)], y[torch.as_tensor(val_idx)], batch_size=cfg.eval_batch_size, **common)  # type: ignore[arg-type]
    test = InMemoryLoader(test_x, test_t.y, batch_size=cfg.eval_batch_size, **common)  # type: ignore[arg-type]
    k = len(train_t.names) if train_t.kind != "values" else int(np.prod(train_t.y.shape[1:]))
    return DataBundle(
        train=train, val=val, test=test, num_classes=k, class_names=list(train_t.names), input_shape=(c, h, w),
        preprocessing=preprocessing, train_indices=train_idx, val_indices=val_idx, dataset=dataset,
        loader_kind="memory", kind="image", model_kwargs={"num_classes": k},
        meta={"targets": train_t.kind, "target_names": list(train_t.names)},
    )


def _image_shape(input_shape: tuple[int, ...], cfg: DataConfig) -> tuple[int, int, int]:
    from ...errors import ConfigError

    if len(input_shape) != 3:
        raise ConfigError(f"Expected an image model, input_shape (C, H, W). Received: {input_shape}")
    c, h, w = input_shape
    if cfg.input_size is not None:
        h, w = cfg.input_size
    return int(c), int(h), int(w)


def _build_image_csv(cfg: DataConfig, *, spec: DatasetSpec, input_shape: tuple[int, ...], device: torch.device,
                     seed: int, rank: int = 0, world_size: int = 1) -> Any:
    root = check_root(cfg.root)
    if root is None or not root.is_dir():
        raise DataError(f"image-csv: data.root must be the folder holding the images and {ImageCsvOptions().labels}")
    opts = ImageCsvOptions.model_validate(cfg.options())
    c, h, w = _image_shape(input_shape, cfg)
    paths, cells, value_names = _csv_items(root, opts, opts.targets)
    # Named value columns (file,age,height) are values; a label column is read as targets says.
    kind = "values" if opts.targets == "auto" and value_names else opts.targets
    targets = parse_targets(cells, kind=kind, source=str(root / opts.labels), value_names=value_names)
    ds = ImageFileDataset(paths, np.zeros(len(paths), dtype=np.int64), channels=c, size=(h, w), fit=cfg.fit)
    images = torch.stack([ds[i][0] for i in range(len(ds))])
    tr, te = carve(targets, "train", cfg.test_fraction), carve(targets, "test", cfg.test_fraction)
    return build_image_targets(
        cfg, train_x=images[torch.as_tensor(tr)], train_t=targets.subset(tr), test_x=images[torch.as_tensor(te)],
        test_t=targets.subset(te), input_shape=(c, h, w), source_shape=None, dataset="image-csv",
        device=device, seed=seed, rank=rank, world_size=world_size,
    )


def npz_has_targets(cfg: DataConfig) -> bool:
    """Whether the ``npz`` file of ``cfg`` holds targets other than class indices (``y_train`` 2-D or real)."""
    root = check_root(cfg.root)
    if root is None:
        return False
    arrays = _load_arrays(_npz_path(root), ".npz")
    y = arrays.get("y_train")
    return y is not None and (y.ndim == 2 or np.issubdtype(y.dtype, np.floating))


def _npz_targets(y: np.ndarray, path: Path, key: str, names: list[str] | None) -> Targets:
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise DataError(f"npz file {path}: {key} must have shape (N,) or (N, K). Received: {y.shape}")
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all():
            raise DataError(f"npz file {path}: {key} holds NaN or infinite values")
        return Targets(torch.from_numpy(y.astype(np.float32)), names or [f"y{j}" for j in range(y.shape[1])], "values")
    if not (np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_) or (y.size and (y.min() < 0 or y.max() > 1)):
        raise DataError(f"npz file {path}: {key} of shape {y.shape} must hold 0/1 labels (multi-hot) or floats (values)")
    return Targets(torch.from_numpy(y.astype(np.float32)), names or [str(j) for j in range(y.shape[1])], "labels")


def build_npz_targets(cfg: DataConfig, *, input_shape: tuple[int, ...], device: torch.device, seed: int,
                      rank: int = 0, world_size: int = 1) -> Any:
    """The bundle of an ``npz`` file with multi-hot or real-valued ``y_train`` (see the module docstring)."""
    root = check_root(cfg.root)
    path = _npz_path(root)  # type: ignore[arg-type]
    arrays = _load_arrays(path, ".npz")
    c, h, w = _image_shape(input_shape, cfg)
    names = [str(s) for s in arrays["class_names"].tolist()] if "class_names" in arrays else None
    has_test = "x_test" in arrays and "y_test" in arrays

    def read(xs: str, ys: str) -> tuple[torch.Tensor, Targets, tuple[int, int, int]]:
        if xs not in arrays:
            raise DataError(f"npz file {path} has no array {xs!r} (found: {', '.join(arrays)})")
        x = images_to_uint8_nchw(arrays[xs], f"{path}:{xs}")
        t = _npz_targets(np.asarray(arrays[ys]), path, ys, names)
        if len(x) != len(t.y):
            raise DataError(f"npz file {path}: {xs} has {len(x)} images but {ys} has {len(t.y)} targets")
        src = tuple(x.shape[1:])
        return prepare_images(torch.from_numpy(x), channels=c, size=(h, w), fit=cfg.fit), t, src  # type: ignore[return-value]

    x_tr, t_tr, src = read("x_train", "y_train")
    if has_test:
        x_te, t_te, _ = read("x_test", "y_test")
        if t_te.y.shape[1:] != t_tr.y.shape[1:] or t_te.kind != t_tr.kind:
            raise DataError(f"npz file {path}: y_test {tuple(t_te.y.shape)} does not match y_train {tuple(t_tr.y.shape)}")
    else:
        tr, te = carve(t_tr, "train", cfg.test_fraction), carve(t_tr, "test", cfg.test_fraction)
        x_te, t_te = x_tr[torch.as_tensor(te)], t_tr.subset(te)
        x_tr, t_tr = x_tr[torch.as_tensor(tr)], t_tr.subset(tr)
    return build_image_targets(
        cfg, train_x=x_tr, train_t=t_tr, test_x=x_te, test_t=t_te, input_shape=(c, h, w), source_shape=src,
        dataset="npz", device=device, seed=seed, rank=rank, world_size=world_size,
    )


DATASETS.add(
    "image-csv",
    DatasetSpec(
        "image-csv",
        "your PNG/JPEG images with a labels.csv beside them (file,label: several labels or numbers per file)",
        needs_root=True,
        has_test_split=False,
        build=_build_image_csv,
        options=ImageCsvOptions,
    ),
)
