"""From a :class:`~cnnkit.config.DataConfig` to ready loaders: read, subset, split, fit to the model's
input, compute normalization on the training split, and wrap in the in-memory or streaming loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..config.schema import DataConfig
from ..errors import ConfigError, DataError
from ._core import DATASETS, ArrayDataset, load_dataset, missing_message
from .augment import BatchAugment
from .loader import InMemoryLoader, StreamingLoader, TensorLoader
from .preprocess import channel_stats, make_preprocessing, prepare_images
from .sources.folder import ImageFileDataset, scan_image_folder, split_files
from .splits import kfold_indices, split_indices, subset_indices

__all__ = ["DataBundle", "build_data", "STREAM_THRESHOLD_BYTES"]

# "auto" streams an image folder whose uint8 images at the input size would exceed this.
STREAM_THRESHOLD_BYTES = 2 * 1024**3
_STATS_SAMPLE = 4096  # images used to estimate mean/std when streaming (in memory: all of them)

Loader = InMemoryLoader | StreamingLoader | TensorLoader


@dataclass
class DataBundle:
    """Everything a training run needs from the data.

    Attributes:
        train, val, test: loaders (``val`` is None without ``data.val_fraction`` or ``data.folds``).
        num_classes, class_names: the label set.
        input_shape: the shape of one input the model sees: ``(C, H, W)`` for images, ``(C, L)`` for series,
            ``(L,)`` for token ids, ``(C, T, H, W)`` for clips.
        preprocessing: JSON-able record for ``model.json``; :func:`apply_preprocessing` replays it for images,
            and each other kind's reader replays its own (``kind`` says which).
        train_indices, val_indices: positions in the (``limit_train``-subsetted) training split.
        dataset: the dataset's registry name.
        loader_kind: ``"memory"`` or ``"stream"``.
        kind: what ``x`` holds: ``image``, ``series``, ``text``, ``clip``, ...
        model_kwargs: what the model builder takes from the data, when more than ``num_classes`` and a
            changed ``in_channels`` (``vocab_size``, ``num_outputs``, ...); None: those two.
        meta: JSON-able facts the run's ``model.json`` keeps for ``predict`` and ``serve`` (a vocabulary,
            a horizon, target names).
    """

    train: Loader
    val: Loader | None
    test: Loader
    num_classes: int
    class_names: list[str]
    input_shape: tuple[int, ...]
    preprocessing: dict[str, Any]
    train_indices: np.ndarray
    val_indices: np.ndarray | None
    dataset: str
    loader_kind: str = "memory"
    kind: str = "image"
    model_kwargs: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def train_targets(self) -> torch.Tensor:
        return self.train.labels


def _val_split(labels: np.ndarray, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray | None]:
    n = len(labels)
    if cfg.folds is not None or cfg.fold is not None:
        if cfg.folds is None or cfg.fold is None:
            raise ConfigError(
                f"Expected data.folds and data.fold set together. Received: folds={cfg.folds}, fold={cfg.fold}"
            )
        if not 0 <= cfg.fold < cfg.folds:
            raise ConfigError(f"Expected 0 <= data.fold < data.folds. Received: fold={cfg.fold}, folds={cfg.folds}")
        try:
            val = kfold_indices(labels, cfg.folds, cfg.stratified, cfg.split_seed)[cfg.fold]
        except ValueError as e:
            raise ConfigError(f"data.folds={cfg.folds}: {e}") from None
        return np.setdiff1d(np.arange(n), val), val
    if cfg.val_fraction > 0:
        try:
            return split_indices(labels, cfg.val_fraction, cfg.split_seed, stratified=cfg.stratified)
        except ValueError as e:
            raise ConfigError(f"data.val_fraction={cfg.val_fraction}: {e}") from None
    return np.arange(n), None


def _limit(labels: np.ndarray, n: int | None, seed: int, stratified: bool) -> np.ndarray:
    return np.arange(len(labels)) if n is None else subset_indices(labels, n, seed, stratified=stratified)


def _target_shape(cfg: DataConfig, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise ConfigError(f"Expected input_shape (C, H, W). Received: {input_shape}")
    c, h, w = input_shape
    if cfg.input_size is not None:
        h, w = cfg.input_size
    return int(c), int(h), int(w)


def build_data(
    cfg: DataConfig,
    *,
    input_shape: tuple[int, ...],
    device: torch.device | str,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
) -> DataBundle:
    """Load ``cfg.name`` and build train / val / test loaders for a model with ``input_shape``.

    Args:
        cfg: the ``data`` section of the run config.
        input_shape: the model's declared input shape (``(C, H, W)`` for images; ``cfg.input_size``
            overrides ``(H, W)``); sources of other kinds read what they need from it.
        device: the training device (images live there as uint8 when ``cfg.device_data``).
        seed: the run seed (sample order and augmentation); splits use ``cfg.split_seed``.
        rank, world_size: distributed shard of the training loader (val/test are not sharded: every rank
            evaluates the whole split).

    Raises:
        DataError: missing or bad files. ConfigError: impossible splits, ``fit=pad`` with larger images.
    """
    spec = DATASETS.get(cfg.name)
    device = torch.device(device)
    if spec.build is not None:  # a source with its own readers and loaders (series, text, masks, ...)
        return spec.build(cfg, spec=spec, input_shape=tuple(input_shape), device=device, seed=seed, rank=rank, world_size=world_size)
    c, h, w = _target_shape(cfg, tuple(input_shape))
    if spec.name == "image-folder":
        folder = spec.locate(cfg.root)
        if folder is None:
            raise DataError(missing_message(spec, cfg.root))
        index = scan_image_folder(folder)
        n_train = len(split_files(index, "train", cfg.test_fraction)[0])
        stream = cfg.loader == "stream" or (cfg.loader == "auto" and n_train * c * h * w > STREAM_THRESHOLD_BYTES)
        if stream:
            return _build_stream(cfg, index, (c, h, w), device, seed, rank, world_size)
    # Image folders are fitted file by file at decode time (their sizes vary), channels first then size,
    # exactly as apply_preprocessing does on one file at predict time.
    folder_ch = c if spec.name == "image-folder" else None
    train_ds = load_dataset(cfg.name, cfg.root, split="train", cfg=cfg, size=(h, w), channels=folder_ch)
    test_ds = load_dataset(cfg.name, cfg.root, split="test", cfg=cfg, size=(h, w), channels=folder_ch)
    if train_ds.shape[0] != test_ds.shape[0] or train_ds.shape[1:] != test_ds.shape[1:]:
        # e.g. an image folder whose test images are colour and training images gray: unify on train.
        test_ds = ArrayDataset(
            prepare_images(test_ds.images, channels=train_ds.shape[0], size=train_ds.shape[1:], fit=cfg.fit),
            test_ds.labels, test_ds.class_names, test_ds.name,
        )
    source_shape = train_ds.shape
    train_ds = train_ds.subset(_limit(train_ds.labels.numpy(), cfg.limit_train, cfg.split_seed, cfg.stratified))
    test_ds = test_ds.subset(_limit(test_ds.labels.numpy(), cfg.limit_test, cfg.split_seed, cfg.stratified))
    train_idx, val_idx = _val_split(train_ds.labels.numpy(), cfg)

    def prep(ds: ArrayDataset) -> torch.Tensor:
        return prepare_images(ds.images, channels=c, size=(h, w), fit=cfg.fit)

    all_train = prep(train_ds)
    x_train, y_train = all_train[train_idx], train_ds.labels[train_idx]
    mean, std = channel_stats(x_train) if cfg.normalize else ([0.0] * c, [1.0] * c)
    preprocessing = make_preprocessing(source_shape=source_shape, input_shape=(c, h, w), fit=cfg.fit, mean=mean, std=std)
    if spec.name == "image-folder":
        # Folder images were fitted per file at decode time; record the file-level operation.
        preprocessing["source_shape"] = None
        preprocessing["fit"] = cfg.fit
    common: dict[str, Any] = dict(mean=mean, std=std, seed=seed, device=device, keep_on_device=cfg.device_data)
    train = InMemoryLoader(
        x_train, y_train, batch_size=cfg.batch_size, shuffle=True,
        augment=BatchAugment(cfg.augment, fill=mean), rank=rank, world_size=world_size, **common,
    )
    val = None
    if val_idx is not None:
        val = InMemoryLoader(all_train[val_idx], train_ds.labels[val_idx], batch_size=cfg.eval_batch_size, **common)
    test = InMemoryLoader(prep(test_ds), test_ds.labels, batch_size=cfg.eval_batch_size, **common)
    return DataBundle(
        train=train, val=val, test=test, num_classes=train_ds.num_classes, class_names=list(train_ds.class_names),
        input_shape=(c, h, w), preprocessing=preprocessing, train_indices=train_idx, val_indices=val_idx,
        dataset=spec.name, loader_kind="memory",
    )


def _build_stream(
    cfg: DataConfig, index, shape: tuple[int, int, int], device: torch.device, seed: int, rank: int, world_size: int
) -> DataBundle:
    c, h, w = shape
    train_paths, train_labels = split_files(index, "train", cfg.test_fraction)
    test_paths, test_labels = split_files(index, "test", cfg.test_fraction)
    keep = _limit(train_labels, cfg.limit_train, cfg.split_seed, cfg.stratified)
    train_paths, train_labels = [train_paths[i] for i in keep], train_labels[keep]
    keep = _limit(test_labels, cfg.limit_test, cfg.split_seed, cfg.stratified)
    test_paths, test_labels = [test_paths[i] for i in keep], test_labels[keep]
    train_idx, val_idx = _val_split(train_labels, cfg)

    def dataset(paths: list, labels: np.ndarray) -> ImageFileDataset:
        return ImageFileDataset(paths, labels, channels=c, size=(h, w), fit=cfg.fit)

    tr = dataset([train_paths[i] for i in train_idx], train_labels[train_idx])
    if cfg.normalize:
        # Deviation from the in-memory path: statistics from a seeded sample, not a full pass over the files.
        sample = subset_indices(tr.labels.numpy(), _STATS_SAMPLE, cfg.split_seed, stratified=False)
        mean, std = channel_stats(torch.stack([tr[int(i)][0] for i in sample]))
    else:
        mean, std = [0.0] * c, [1.0] * c
    preprocessing = make_preprocessing(source_shape=(c, h, w), input_shape=(c, h, w), fit=cfg.fit, mean=mean, std=std)
    preprocessing["source_shape"] = None
    preprocessing["fit"] = cfg.fit
    common: dict[str, Any] = dict(mean=mean, std=std, seed=seed, device=device, num_workers=cfg.num_workers)
    train = StreamingLoader(
        tr, tr.labels, batch_size=cfg.batch_size, shuffle=True, augment=BatchAugment(cfg.augment, fill=mean),
        rank=rank, world_size=world_size, **common,
    )
    val = None
    if val_idx is not None:
        va = dataset([train_paths[i] for i in val_idx], train_labels[val_idx])
        val = StreamingLoader(va, va.labels, batch_size=cfg.eval_batch_size, **common)
    te = dataset(test_paths, test_labels)
    test = StreamingLoader(te, te.labels, batch_size=cfg.eval_batch_size, **common)
    return DataBundle(
        train=train, val=val, test=test, num_classes=len(index.class_names), class_names=list(index.class_names),
        input_shape=(c, h, w), preprocessing=preprocessing, train_indices=train_idx, val_indices=val_idx,
        dataset="image-folder", loader_kind="stream",
    )
