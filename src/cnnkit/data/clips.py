"""Video clips ``(C, T, H, W)``: fitting to the model's input, the preprocessing record, clip augmentation
consistent across a clip's frames, and the :class:`~cnnkit.data.DataBundle` every clip source returns.

Clips live on the training device as uint8 ``(N, C, T, H, W)``; each batch is turned into float, augmented
and normalized there by :class:`ClipTransform` (the per-batch transform of a
:class:`~cnnkit.data.TensorLoader`), in the spirit of airbench's on-device image pipeline.

The augmentation draws **one** crop offset, flip and cutout square per clip and applies it to every frame:
a crop that moved from frame to frame would add motion that is not in the video (and on motion labels,
such as Moving-MNIST's direction, it would change the answer). A flip reverses horizontal (or vertical)
motion, so a source whose labels are directions passes the permutation a flip applies to them
(``flip_labels``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..config.schema import AugmentConfig, DataConfig
from ..errors import ConfigError, DataError
from .loader import TensorLoader
from .splits import split_indices, subset_indices

__all__ = [
    "CLIP_KIND", "ClipAugment", "ClipTransform", "apply_clip_preprocessing", "clip_bundle", "clip_stats",
    "fit_clips", "frame_indices",
]

CLIP_KIND = "clip"
# AugmentConfig keys a clip pipeline applies; the others (rotation, elastic, erasing) are refused by name.
_CLIP_AUGMENTS = ("crop_padding", "translate", "hflip", "vflip", "cutout")
_CHUNK = 256


def frame_indices(available: int, wanted: int, where: str = "clip") -> np.ndarray:
    """``wanted`` frame indices spread evenly over ``available`` frames (all of them when equal).

    Raises:
        DataError: fewer frames than wanted.
    """
    if available < wanted:
        raise DataError(f"{where} has {available} frames but the model takes {wanted}; use clips of >= {wanted} frames")
    if available == wanted:
        return np.arange(wanted)
    return np.floor(np.arange(wanted) * (available / wanted) + (available / wanted - 1) / 2).astype(np.int64)


def fit_clips(clips: torch.Tensor, shape: tuple[int, int, int, int], *, where: str = "clips") -> torch.Tensor:
    """Bring raw clips (uint8 0..255 or float 0..1, ``(N, C, T, H, W)``) to uint8 at ``shape`` = (C, T, H, W).

    Frames are subsampled evenly in time (:func:`frame_indices`), resized bilinearly (with antialiasing),
    and channels converted (gray <-> RGB, by the ITU-R 601 luma weights, as the image pipeline does).
    Returns the input unchanged when it already is uint8 at ``shape``.
    """
    c, t, h, w = (int(v) for v in shape)
    x = torch.as_tensor(clips)
    if x.ndim != 5:
        raise DataError(f"{where}: expected clips of shape (N, C, T, H, W). Received: shape {tuple(x.shape)}")
    if x.dtype == torch.uint8 and tuple(x.shape[1:]) == (c, t, h, w):
        return x
    x = x[:, :, torch.as_tensor(frame_indices(x.shape[2], t, where))]
    out = []
    for start in range(0, len(x), _CHUNK):
        chunk = x[start : start + _CHUNK]
        chunk = chunk.float() if chunk.dtype == torch.uint8 else chunk.float() * 255.0
        n, cin = chunk.shape[:2]
        if cin != c:
            if cin == 3 and c == 1:
                weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1, 1)
                chunk = (chunk * weights).sum(1, keepdim=True)
            elif cin == 1:
                chunk = chunk.expand(-1, c, -1, -1, -1)
            else:
                raise DataError(f"{where}: cannot convert {cin} channels to {c}")
        if tuple(chunk.shape[-2:]) != (h, w):
            frames = chunk.transpose(1, 2).reshape(n * t, c, *chunk.shape[-2:])
            frames = F.interpolate(frames, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
            chunk = frames.view(n, t, c, h, w).transpose(1, 2)
        out.append(chunk.round().clamp_(0, 255).to(torch.uint8))
    if not out:
        return torch.empty((0, c, t, h, w), dtype=torch.uint8)
    return torch.cat(out).contiguous()


def clip_stats(clips_u8: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of ``clips / 255`` over clips, frames and pixels (float64 sums)."""
    c = clips_u8.shape[1]
    s = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    n = 0
    for start in range(0, len(clips_u8), _CHUNK):
        chunk = clips_u8[start : start + _CHUNK].to("cpu", torch.float64).div_(255.0)
        s += chunk.sum(dim=(0, 2, 3, 4))
        s2 += chunk.square().sum(dim=(0, 2, 3, 4))
        n += chunk.numel() // c
    if n == 0:
        return [0.0] * c, [1.0] * c
    mean = s / n
    std = (s2 / n - mean.square()).clamp_min(0).sqrt()
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    return mean.tolist(), std.tolist()


def _normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    return (x - mean.view(1, c, 1, 1, 1)) / std.view(1, c, 1, 1, 1)


def apply_clip_preprocessing(clips: torch.Tensor | np.ndarray, preprocessing: dict[str, Any]) -> torch.Tensor:
    """Replay a clip run's recorded preprocessing: raw clips ``(C, T, H, W)`` or ``(N, C, T, H, W)``
    (uint8 0..255 or float 0..1) -> float32 ``(N, *input_shape)``, what the evaluation loaders yield."""
    x = torch.as_tensor(clips)
    if x.ndim == 4:
        x = x.unsqueeze(0)
    u8 = fit_clips(x.cpu(), tuple(preprocessing["input_shape"]))
    mean = torch.tensor(preprocessing["mean"], dtype=torch.float32)
    std = torch.tensor(preprocessing["std"], dtype=torch.float32)
    return _normalize(u8.float().div_(255.0), mean, std)


class ClipAugment:
    """Random crop (after zero padding), horizontal / vertical flips and cutout, drawn once per clip and
    applied to all its frames; batched on the device.

    Args:
        crop_padding: pad each frame by this many pixels and crop back at a random offset (the same for
            every frame of a clip): a random translation of the whole clip.
        hflip, vflip: flip the clip left-right / upside-down with probability 1/2.
        cutout: side of a square zeroed at one random place in every frame of the clip (DeVries & Taylor
            2017, applied to a clip); 0 = off.
        hflip_labels, vflip_labels: the label each label becomes when the clip is flipped (a permutation of
            the classes), for labels that a flip changes (a motion direction); None keeps labels.

    Example:
        >>> aug = ClipAugment(hflip=True, hflip_labels=[1, 0])
        >>> x = torch.arange(4.0).view(1, 1, 1, 1, 4).repeat(8, 1, 3, 2, 1)
        >>> y = torch.zeros(8, dtype=torch.long)
        >>> xa, ya = aug(x, y, torch.Generator().manual_seed(0))
        >>> bool(((xa[:, :, :, :, 0] == 3) == (ya[:, None, None, None] == 1)).all())
        True
    """

    def __init__(
        self,
        *,
        crop_padding: int = 0,
        hflip: bool = False,
        vflip: bool = False,
        cutout: int = 0,
        hflip_labels: list[int] | None = None,
        vflip_labels: list[int] | None = None,
    ) -> None:
        if crop_padding < 0 or cutout < 0:
            raise ValueError(f"Expected crop_padding >= 0 and cutout >= 0. Received: crop_padding={crop_padding}, cutout={cutout}")
        self.crop_padding = int(crop_padding)
        self.hflip = bool(hflip)
        self.vflip = bool(vflip)
        self.cutout = int(cutout)
        self.hflip_labels = None if hflip_labels is None else torch.as_tensor(hflip_labels, dtype=torch.long)
        self.vflip_labels = None if vflip_labels is None else torch.as_tensor(vflip_labels, dtype=torch.long)

    @classmethod
    def from_config(cls, cfg: AugmentConfig, **labels: Any) -> ClipAugment:
        """From ``data.augment``: ``crop_padding`` (or ``translate``), ``hflip``, ``vflip``, ``cutout``.

        Raises:
            ConfigError: an image-only augmentation (rotation, scale, elastic, erasing) is set.
        """
        defaults = AugmentConfig()
        for key in AugmentConfig.model_fields:
            if key not in _CLIP_AUGMENTS and getattr(cfg, key) != getattr(defaults, key):
                raise ConfigError(
                    f"data.augment.{key} is not available for clips; clips take {', '.join(_CLIP_AUGMENTS)}"
                )
        return cls(crop_padding=max(cfg.crop_padding, cfg.translate), hflip=cfg.hflip, vflip=cfg.vflip,
                   cutout=cfg.cutout, **labels)

    @property
    def enabled(self) -> bool:
        return bool(self.crop_padding or self.hflip or self.vflip or self.cutout)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment float clips ``x`` ``(B, C, T, H, W)`` and their labels ``y``; randomness from ``g`` (CPU)."""
        b, _, _, h, w = x.shape
        dev = x.device
        if self.crop_padding:
            p = self.crop_padding
            padded = F.pad(x, (p, p, p, p))
            oy = torch.randint(0, 2 * p + 1, (b,), generator=g).to(dev)
            ox = torch.randint(0, 2 * p + 1, (b,), generator=g).to(dev)
            rows = (oy[:, None] + torch.arange(h, device=dev))[:, :, None]  # (B, H, 1)
            cols = (ox[:, None] + torch.arange(w, device=dev))[:, None, :]  # (B, 1, W)
            # Advanced indices split by slices go first: (B, H, W, C, T), hence the permute.
            x = padded[torch.arange(b, device=dev)[:, None, None], :, :, rows, cols].permute(0, 3, 4, 1, 2)
        for on, dim, labels in ((self.hflip, -1, self.hflip_labels), (self.vflip, -2, self.vflip_labels)):
            if not on:
                continue
            flip = (torch.rand(b, generator=g) < 0.5).to(dev)
            x = torch.where(flip.view(b, 1, 1, 1, 1), x.flip(dim), x)
            if labels is not None:
                y = torch.where(flip, labels.to(dev)[y], y)
        if self.cutout:
            s = min(self.cutout, h, w)
            cy = torch.randint(0, h - s + 1, (b,), generator=g).to(dev)
            cx = torch.randint(0, w - s + 1, (b,), generator=g).to(dev)
            r = torch.arange(h, device=dev)[None, :]
            c = torch.arange(w, device=dev)[None, :]
            inside = ((r >= cy[:, None]) & (r < cy[:, None] + s))[:, :, None] & ((c >= cx[:, None]) & (c < cx[:, None] + s))[:, None, :]
            x = x.masked_fill(inside[:, None, None], 0.0)
        return x.contiguous(), y

    def __repr__(self) -> str:
        return (f"ClipAugment(crop_padding={self.crop_padding}, hflip={self.hflip}, vflip={self.vflip}, "
                f"cutout={self.cutout})")


@dataclass
class ClipTransform:
    """A :class:`~cnnkit.data.TensorLoader` transform: uint8 clips -> [0, 1] -> augment -> normalize.

    Augmenting before normalizing makes padding and cutout black, as in the image pipeline."""

    mean: torch.Tensor
    std: torch.Tensor
    augment: ClipAugment | None = None

    def __call__(self, x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.float().div_(255.0)
        if self.augment is not None and self.augment.enabled:
            x, y = self.augment(x, y, g)
        return _normalize(x, self.mean.to(x.device), self.std.to(x.device)), y


def _val_split(labels: np.ndarray, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray | None]:
    if cfg.folds is not None or cfg.fold is not None:
        raise ConfigError("data.folds is not available for clips; use data.val_fraction")
    if cfg.val_fraction > 0:
        try:
            return split_indices(labels, cfg.val_fraction, cfg.split_seed, stratified=cfg.stratified)
        except ValueError as e:
            raise ConfigError(f"data.val_fraction={cfg.val_fraction}: {e}") from None
    return np.arange(len(labels)), None


def clip_bundle(
    cfg: DataConfig,
    *,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    class_names: list[str],
    dataset: str,
    device: torch.device,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    flip_labels: dict[str, list[int]] | None = None,
    meta: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
) -> Any:
    """The :class:`~cnnkit.data.DataBundle` (``kind="clip"``) of uint8 clips already at the model's shape.

    ``limit_train`` / ``limit_test`` subset, ``val_fraction`` carves a validation split, normalization
    statistics come from the training clips; ``flip_labels`` (``{"hflip_labels": [...], ...}``) say how a
    flip changes the labels.
    """
    # Imported here: build.py imports the sources (folder.py), whose package imports this module's users.
    from .build import DataBundle

    (x_tr, y_tr), (x_te, y_te) = train, test
    if len(x_tr) == 0 or len(x_te) == 0:
        raise DataError(f"{dataset}: no clips in the {'training' if len(x_tr) == 0 else 'test'} split")
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise DataError(f"{dataset}: training clips are {tuple(x_tr.shape[1:])} but test clips {tuple(x_te.shape[1:])}")
    if cfg.limit_train is not None:
        keep = subset_indices(y_tr.numpy(), cfg.limit_train, cfg.split_seed, stratified=cfg.stratified)
        x_tr, y_tr = x_tr[torch.as_tensor(keep)], y_tr[torch.as_tensor(keep)]
    if cfg.limit_test is not None:
        keep = subset_indices(y_te.numpy(), cfg.limit_test, cfg.split_seed, stratified=cfg.stratified)
        x_te, y_te = x_te[torch.as_tensor(keep)], y_te[torch.as_tensor(keep)]
    train_idx, val_idx = _val_split(y_tr.numpy(), cfg)
    ti = torch.as_tensor(train_idx)
    mean, std = clip_stats(x_tr[ti]) if cfg.normalize else ([0.0] * x_tr.shape[1], [1.0] * x_tr.shape[1])
    mean_t, std_t = torch.tensor(mean), torch.tensor(std)
    augment = ClipAugment.from_config(cfg.augment, **(flip_labels or {}))
    plain = ClipTransform(mean_t, std_t)
    on_device = cfg.device_data
    train_loader = TensorLoader(x_tr[ti], y_tr[ti], batch_size=cfg.batch_size, shuffle=True,
                                transform=ClipTransform(mean_t, std_t, augment), rank=rank, world_size=world_size,
                                seed=seed, device=device, keep_on_device=on_device)
    val_loader = None
    if val_idx is not None:
        vi = torch.as_tensor(val_idx)
        val_loader = TensorLoader(x_tr[vi], y_tr[vi], batch_size=cfg.eval_batch_size, transform=plain, seed=seed,
                                  device=device, keep_on_device=on_device)
    test_loader = TensorLoader(x_te, y_te, batch_size=cfg.eval_batch_size, transform=plain, seed=seed, device=device,
                               keep_on_device=on_device)
    shape = tuple(int(v) for v in x_tr.shape[1:])
    preprocessing = {"kind": CLIP_KIND, "input_shape": list(shape), "scale": 255.0, "mean": mean, "std": std,
                     "frames": "evenly spaced", "resize": "bilinear"}
    if source:
        preprocessing["source"] = source
    return DataBundle(
        train=train_loader, val=val_loader, test=test_loader, num_classes=len(class_names),
        class_names=list(class_names), input_shape=shape, preprocessing=preprocessing, train_indices=train_idx,
        val_indices=val_idx, dataset=dataset, loader_kind="memory", kind=CLIP_KIND,
        model_kwargs={"input_size": shape[1:]}, meta=dict(meta or {}),
    )
