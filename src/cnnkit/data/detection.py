"""Detection data in memory: images with padded box targets, batched by :class:`~cnnkit.data.TensorLoader`.

Targets are float32 ``(N, M, 5)`` rows ``(class, x1, y1, x2, y2)`` (class in 0..K-1, corners in input
pixels, continuous coordinates), rows past an image's boxes filled with class -1: a plain tensor, so the
exact-resume batching, sharding and DDP of the tensor loaders apply unchanged. Each batch is normalized on
the device and, in training with ``data.augment.hflip``, each image is mirrored with probability 1/2 and
its boxes with it (seeded per batch).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..config.schema import DataConfig
from ..errors import ConfigError, DataError
from .loader import TensorLoader
from .preprocess import channel_stats, make_preprocessing
from .splits import split_indices

__all__ = ["BoxBatchTransform", "detection_bundle", "fit_images_and_boxes", "pad_targets"]

MAX_OBJECTS = 1000
"""Boxes per image beyond this are refused (the padded target tensor is N x M x 5)."""


def pad_targets(boxes: list[np.ndarray], labels: list[np.ndarray]) -> torch.Tensor:
    """Per-image ``xyxy`` boxes (M_i, 4) and classes (M_i,) -> float32 (N, max M_i, 5), class -1 padding."""
    m = max((len(b) for b in boxes), default=0)
    if m > MAX_OBJECTS:
        raise DataError(f"an image has {m} boxes; at most {MAX_OBJECTS} per image are supported")
    out = torch.full((len(boxes), max(m, 1), 5), -1.0)
    out[:, :, 1:] = 0.0
    for i, (b, c) in enumerate(zip(boxes, labels)):
        k = len(b)
        if k:
            out[i, :k, 0] = torch.as_tensor(c, dtype=torch.float32)
            out[i, :k, 1:] = torch.as_tensor(b, dtype=torch.float32)
    return out


def fit_images_and_boxes(images: torch.Tensor, targets: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize uint8 images (N, C, h, w) to ``size`` (bilinear, antialiased) and scale the boxes with them."""
    h, w = images.shape[-2:]
    if (h, w) == tuple(size):
        return images, targets
    x = F.interpolate(images.float(), size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    out = targets.clone()
    valid = out[..., 0] >= 0
    scale = torch.tensor([size[1] / w, size[0] / h, size[1] / w, size[0] / h])
    out[..., 1:] = torch.where(valid[..., None], out[..., 1:] * scale, out[..., 1:])
    return x.round().clamp(0, 255).to(torch.uint8), out


class BoxBatchTransform:
    """Per-batch, on-device: uint8 -> normalized float, and (training) a seeded horizontal flip that moves
    boxes with the pixels (``x1' = W - x2``, ``x2' = W - x1``)."""

    def __init__(self, mean: list[float], std: list[float], *, hflip: bool = False) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.hflip = hflip

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = (x.float() / 255.0 - self.mean.to(x.device)) / self.std.to(x.device)
        if self.hflip:
            flip = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device)
            w = x.shape[-1]
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            y = y.clone()
            valid = (y[..., 0] >= 0) & flip[:, None]
            x1, x2 = y[..., 1].clone(), y[..., 3].clone()
            y[..., 1] = torch.where(valid, w - x2, x1)
            y[..., 3] = torch.where(valid, w - x1, x2)
        return x, y


def detection_bundle(
    train_images: torch.Tensor,
    train_targets: torch.Tensor,
    test_images: torch.Tensor,
    test_targets: torch.Tensor,
    class_names: list[str],
    cfg: DataConfig,
    *,
    dataset: str,
    input_shape: tuple[int, ...],
    device: torch.device,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    meta: dict[str, Any] | None = None,
) -> Any:
    """A :class:`~cnnkit.data.DataBundle` of detection data: images brought to the model's input size
    (boxes scaled with them; the channels stay the training images' own), a seeded validation split of ``data.val_fraction``, normalization
    from the training split, and tensor loaders."""
    from .build import DataBundle  # build imports the sources, which import this module

    if len(input_shape) != 3:
        raise ConfigError(f"Expected an image model (input_shape (C, H, W)). Received: {input_shape}")
    # The data keeps its own channels (gray scenes stay gray); the model is built for them (in_channels).
    c = int(train_images.shape[1])
    h, w = cfg.input_size if cfg.input_size is not None else input_shape[1:]
    size = (int(h), int(w))
    source_shape = (int(train_images.shape[1]), int(train_images.shape[2]), int(train_images.shape[3]))

    def prep(x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[1] != c:  # a gray test split beside colour training images
            x = x.float().mean(1, keepdim=True).round().to(torch.uint8) if c == 1 else x.expand(-1, c, -1, -1).contiguous()
        return fit_images_and_boxes(x, t, size)

    train_images, train_targets = prep(train_images, train_targets)
    test_images, test_targets = prep(test_images, test_targets)
    if cfg.limit_train is not None:
        train_images, train_targets = train_images[: cfg.limit_train], train_targets[: cfg.limit_train]
    if cfg.limit_test is not None:
        test_images, test_targets = test_images[: cfg.limit_test], test_targets[: cfg.limit_test]
    n = len(train_images)
    idx = np.arange(n)
    val_idx = None
    if cfg.val_fraction > 0:
        try:
            idx, val_idx = split_indices(np.zeros(n, dtype=np.int64), cfg.val_fraction, cfg.split_seed, stratified=False)
        except ValueError as e:
            raise ConfigError(f"data.val_fraction={cfg.val_fraction}: {e}") from None
    ti = torch.as_tensor(idx, dtype=torch.long)
    x_train = train_images[ti]
    mean, std = channel_stats(x_train) if cfg.normalize else ([0.0] * c, [1.0] * c)
    common: dict[str, Any] = dict(seed=seed, device=device, keep_on_device=cfg.device_data)
    train = TensorLoader(
        x_train, train_targets[ti], batch_size=cfg.batch_size, shuffle=True,
        transform=BoxBatchTransform(mean, std, hflip=cfg.augment.hflip), rank=rank, world_size=world_size, **common,
    )
    plain = BoxBatchTransform(mean, std)
    val = None
    if val_idx is not None:
        vi = torch.as_tensor(val_idx, dtype=torch.long)
        val = TensorLoader(train_images[vi], train_targets[vi], batch_size=cfg.eval_batch_size, transform=plain, **common)
    test = TensorLoader(test_images, test_targets, batch_size=cfg.eval_batch_size, transform=plain, **common)
    preprocessing = make_preprocessing(source_shape=source_shape, input_shape=(c, *size), fit="resize", mean=mean, std=std)
    preprocessing["source_shape"] = None  # each file is resized at predict time
    return DataBundle(
        train=train, val=val, test=test, num_classes=len(class_names), class_names=list(class_names),
        input_shape=(c, *size), preprocessing=preprocessing, train_indices=idx, val_indices=val_idx,
        dataset=dataset, loader_kind="memory", kind="image",
        meta={"targets": "boxes", "box_format": "class,x1,y1,x2,y2", **(meta or {})},
    )
