"""From image / mask arrays to a segmentation :class:`~cnnkit.data.DataBundle`.

Every segmentation source (``scenes``, ``segmentation-folder``, ``segmentation-npz``) reads its files into
uint8 images ``(N, C, H, W)`` and uint8 class-index masks ``(N, H, W)`` (``IGNORE_INDEX`` = 255 marks
pixels no loss or metric counts) and hands them to :func:`segmentation_bundle`, which subsets, carves the
validation split, computes the normalization on the training split, and wraps each split in a
:class:`~cnnkit.data.TensorLoader` whose per-batch transform scales, jointly augments (train only:
:class:`~cnnkit.data.joint_augment.JointAugment`) and normalizes on the device. ``y`` batches are int64
``(B, H, W)``.

Images keep their own size (fully convolutional models take any size; ``data.input_size`` resizes
images bilinearly and masks by nearest neighbour); the model gets ``in_channels`` and ``num_classes``
from the data (:attr:`DataBundle.model_kwargs`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..config.schema import DataConfig
from ..errors import ConfigError, DataError
from .build import DataBundle
from .joint_augment import JointAugment
from .loader import TensorLoader
from .preprocess import channel_stats, make_preprocessing, normalize, to_unit
from .splits import split_indices, subset_indices

__all__ = ["IGNORE_INDEX", "check_masks", "resize_pairs", "segmentation_bundle"]

IGNORE_INDEX = 255


def check_masks(masks: np.ndarray, num_classes: int, names: list[str] | None = None, *, source: str) -> None:
    """Raise a one-line :class:`DataError` naming the first mask (``names[i]``, else its index) that holds
    a class index outside ``0 .. num_classes - 1`` (the ignore index excepted)."""
    bad = (masks >= num_classes) & (masks != IGNORE_INDEX)
    if bad.any():
        i = int(np.flatnonzero(bad.reshape(len(masks), -1).any(axis=1))[0])
        value = int(masks[i][bad[i]].max())
        where = names[i] if names is not None else f"{source} mask {i}"
        raise DataError(
            f"{where}: class index {value} outside the declared classes 0..{num_classes - 1} "
            f"(ignore index {IGNORE_INDEX}); fix the mask or declare more classes (data.num_classes)"
        )


def resize_pairs(images: torch.Tensor, masks: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images bilinearly (antialiased), masks by nearest neighbour, to ``size`` ``(H, W)``."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images, masks
    x = F.interpolate(images.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    m = F.interpolate(masks[:, None].float(), size=size, mode="nearest")[:, 0]
    return x.round().clamp(0, 255).to(torch.uint8), m.to(torch.uint8)


def _limit(n_items: int, n: int | None, seed: int) -> np.ndarray:
    return np.arange(n_items) if n is None else subset_indices(np.zeros(n_items), n, seed, stratified=False)


def _transform(mean: torch.Tensor, std: torch.Tensor, augment: JointAugment | None):
    def transform(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = to_unit(x)
        y = y.long()
        if augment is not None:
            x, y = augment(x, y, generator)
        return normalize(x, mean.to(x.device), std.to(x.device)), y

    return transform


def segmentation_bundle(
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    class_names: list[str],
    cfg: DataConfig,
    *,
    dataset: str,
    seed: int,
    device: torch.device,
    rank: int = 0,
    world_size: int = 1,
    meta: dict[str, Any] | None = None,
    **_: Any,
) -> DataBundle:
    """The bundle of uint8 ``(images (N, C, H, W), masks (N, H, W))`` pairs for train and test.

    Raises:
        ConfigError: an impossible validation split. DataError: train and test differ in channels.
    """
    (x_tr, y_tr), (x_te, y_te) = train, test
    if x_tr.shape[1] != x_te.shape[1]:
        raise DataError(f"{dataset}: training images have {x_tr.shape[1]} channels, test images {x_te.shape[1]}")
    size = (int(cfg.input_size[0]), int(cfg.input_size[1])) if cfg.input_size is not None else (int(x_tr.shape[-2]), int(x_tr.shape[-1]))
    x_tr, y_tr = resize_pairs(x_tr, y_tr, size)
    x_te, y_te = resize_pairs(x_te, y_te, size)
    keep = _limit(len(x_tr), cfg.limit_train, cfg.split_seed)
    x_tr, y_tr = x_tr[keep], y_tr[keep]
    keep = _limit(len(x_te), cfg.limit_test, cfg.split_seed)
    x_te, y_te = x_te[keep], y_te[keep]
    if cfg.folds is not None or cfg.fold is not None:
        raise ConfigError(f"data.folds: k-fold splits are for classification; {dataset} takes data.val_fraction")
    train_idx, val_idx = np.arange(len(x_tr)), None
    if cfg.val_fraction > 0:
        try:
            train_idx, val_idx = split_indices(np.zeros(len(x_tr)), cfg.val_fraction, cfg.split_seed, stratified=False)
        except ValueError as exc:
            raise ConfigError(f"data.val_fraction={cfg.val_fraction}: {exc}") from None
    c = int(x_tr.shape[1])
    mean, std = channel_stats(x_tr[train_idx]) if cfg.normalize else ([0.0] * c, [1.0] * c)
    mean_t, std_t = torch.tensor(mean), torch.tensor(std)
    augment = JointAugment(cfg.augment, ignore_index=IGNORE_INDEX, fill=mean)
    common: dict[str, Any] = dict(seed=seed, device=device, keep_on_device=cfg.device_data)
    eval_t = _transform(mean_t, std_t, None)
    train_loader = TensorLoader(
        x_tr[train_idx], y_tr[train_idx], batch_size=cfg.batch_size, shuffle=True,
        transform=_transform(mean_t, std_t, augment if augment.enabled else None), rank=rank, world_size=world_size, **common,
    )
    val_loader = None
    if val_idx is not None:
        val_loader = TensorLoader(x_tr[val_idx], y_tr[val_idx], batch_size=cfg.eval_batch_size, transform=eval_t, **common)
    test_loader = TensorLoader(x_te, y_te, batch_size=cfg.eval_batch_size, transform=eval_t, **common)
    input_shape = (c, int(size[0]), int(size[1]))
    # Predict resizes an image of another size to the training size and the predicted mask back.
    preprocessing = make_preprocessing(source_shape=input_shape, input_shape=input_shape, fit="resize", mean=mean, std=std)
    k = len(class_names)
    return DataBundle(
        train=train_loader, val=val_loader, test=test_loader, num_classes=k, class_names=list(class_names),
        input_shape=input_shape, preprocessing=preprocessing, train_indices=train_idx, val_indices=val_idx,
        dataset=dataset, loader_kind="memory", kind="image",
        model_kwargs={"num_classes": k, "in_channels": c},
        meta={"ignore_index": IGNORE_INDEX, "num_classes": k, **(meta or {})},
    )
