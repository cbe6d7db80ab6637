"""Loaders: the in-memory fast path and a streaming path for image folders too large for memory.

Both yield ``(x float32 (B, C, H, W), y int64 (B,))`` on the training device and share one contract:
the sample order of an epoch is a pure function of ``(seed, epoch)`` and the augmentation randomness of
batch ``i`` a pure function of ``(seed, epoch, rank, i)``, so a run resumed at ``(epoch, step)`` sees
exactly the batches an uninterrupted run would have seen, with no generator state to checkpoint.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Callable, Iterator

import torch

from .augment import BatchAugment
from .preprocess import normalize, to_unit

__all__ = [
    "InMemoryLoader", "StreamingLoader", "TensorLoader", "BatchTransform", "alternating_flips", "epoch_permutation",
    "batch_generator",
]


def _mix(*values: int) -> int:
    """A stable 63-bit seed from integers (Python's ``hash`` is salted per process for some types)."""
    data = struct.pack(f"<{len(values)}q", *values)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") >> 1


def epoch_permutation(
    n: int, *, seed: int, epoch: int, shuffle: bool, rank: int = 0, world_size: int = 1
) -> torch.Tensor:
    """This rank's sample order for ``epoch``: a seeded permutation (or ``arange`` without shuffling),
    padded by wrapping around to a multiple of ``world_size`` (as ``DistributedSampler`` does, so every
    rank has the same number of batches), then ``perm[rank::world_size]``."""
    if shuffle:
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(_mix(seed, epoch)))
    else:
        perm = torch.arange(n)
    if world_size > 1:
        total = math.ceil(n / world_size) * world_size
        if total > n:
            perm = torch.cat([perm, perm[: total - n]])
        perm = perm[rank::world_size]
    return perm


def alternating_flips(n: int, *, seed: int, epoch: int) -> torch.Tensor:
    """Which of ``n`` images an epoch mirrors under derandomized flipping (Jordan 2024, Sec. 3.6): a
    seeded random half in epoch 0 (fixed for the run), its complement in every odd epoch, so each image is
    seen mirrored in exactly every other epoch. A pure function of ``(seed, epoch)``, as resume needs."""
    base = torch.rand(n, generator=torch.Generator().manual_seed(_mix(seed, 0xF11B))) < 0.5
    return base ^ bool(epoch % 2)


def batch_generator(seed: int, epoch: int, rank: int, step: int) -> torch.Generator:
    """The augmentation generator of one batch."""
    return torch.Generator().manual_seed(_mix(seed, epoch, rank, step, 0x5A))


class _Base:
    def __init__(
        self,
        num_items: int,
        *,
        batch_size: int,
        shuffle: bool,
        augment: BatchAugment | None,
        mean: list[float] | torch.Tensor,
        std: list[float] | torch.Tensor,
        seed: int,
        device: torch.device | str,
        rank: int,
        world_size: int,
        drop_last: bool,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"Expected batch_size >= 1. Received: batch_size={batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"Expected 0 <= rank < world_size. Received: rank={rank}, world_size={world_size}")
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment if augment is not None and augment.enabled else None
        self.mean = torch.as_tensor(mean, dtype=torch.float32).to(self.device)
        self.std = torch.as_tensor(std, dtype=torch.float32).to(self.device)
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.epoch = 0
        self._n = num_items
        self._flips: tuple[int, torch.Tensor] | None = None
        self.num_samples = math.ceil(num_items / world_size) if world_size > 1 else num_items

    def __len__(self) -> int:
        """Batches per epoch for this rank."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.epoch_batches(self.epoch)

    def _permutation(self, epoch: int) -> torch.Tensor:
        return epoch_permutation(
            self._n, seed=self.seed, epoch=epoch, shuffle=self.shuffle, rank=self.rank, world_size=self.world_size
        )

    def _finish(self, x_u8: torch.Tensor, epoch: int, step: int, idx: torch.Tensor) -> torch.Tensor:
        # uint8 -> [0, 1] -> augment -> normalize: augmenting before normalization makes zero fill black.
        x = to_unit(x_u8)
        if self.augment is not None:
            flip = None
            if self.augment.cfg.hflip_alternate:
                if self._flips is None or self._flips[0] != epoch:
                    self._flips = (epoch, alternating_flips(self._n, seed=self.seed, epoch=epoch))
                flip = self._flips[1][idx]  # idx: this batch's sample indices, on the CPU
            x = self.augment(x, batch_generator(self.seed, epoch, self.rank, step), flip=flip)
        return normalize(x, self.mean, self.std)

    def epoch_batches(self, epoch: int, start_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError


class InMemoryLoader(_Base):
    """The whole split as uint8 on the device; per batch: gather, to float, augment, normalize.

    Args:
        images: uint8 ``(N, C, H, W)``, already at the model's input size (see :func:`prepare_images`).
        labels: int64 ``(N,)``.
        batch_size: samples per batch.
        shuffle: reshuffle every epoch (train) or keep the stored order (eval).
        augment: batched augmentations (train only), or None.
        mean, std: per-channel normalization, ``(C,)``.
        seed: the run seed; order and augmentation derive from it.
        device: where images live and batches are made; with ``keep_on_device=False`` images stay on the
            CPU and each batch is copied over.
        rank, world_size: this process's shard for distributed training.
        drop_last: drop a final partial batch.

    Example:
        >>> import torch
        >>> images = torch.zeros(300, 1, 8, 8, dtype=torch.uint8)
        >>> labels = torch.zeros(300, dtype=torch.long)
        >>> loader = InMemoryLoader(images, labels, batch_size=128, shuffle=True, augment=None,
        ...                         mean=[0.5], std=[0.25], seed=0)
        >>> len(loader)
        3
        >>> [tuple(x.shape) for x, y in loader.epoch_batches(epoch=3, start_step=1)]
        [(128, 1, 8, 8), (44, 1, 8, 8)]
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        shuffle: bool = False,
        augment: BatchAugment | None = None,
        mean: list[float] | torch.Tensor,
        std: list[float] | torch.Tensor,
        seed: int = 0,
        device: torch.device | str = "cpu",
        keep_on_device: bool = True,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"Expected uint8 images (N, C, H, W). Received: {images.dtype} {tuple(images.shape)}")
        if len(labels) != len(images):
            raise ValueError(f"Expected one label per image. Received: {len(images)} images, {len(labels)} labels")
        super().__init__(
            len(images), batch_size=batch_size, shuffle=shuffle, augment=augment, mean=mean, std=std, seed=seed,
            device=device, rank=rank, world_size=world_size, drop_last=drop_last,
        )
        store = self.device if keep_on_device else torch.device("cpu")
        self.images = images.to(store)
        # Class indices as int64; float targets (multi-hot labels, regression values) stay as they are.
        self.labels = (labels if labels.is_floating_point() else labels.long()).to(store)

    def epoch_batches(self, epoch: int, start_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches ``start_step ..`` of ``epoch`` (the same batches every time for the same arguments)."""
        order = self._permutation(epoch)  # on the CPU: the alternating flips are looked up without a device sync
        perm = order.to(self.images.device)
        bs = self.batch_size
        for step in range(start_step, len(self)):
            idx = perm[step * bs : (step + 1) * bs]
            x = self.images.index_select(0, idx).to(self.device, non_blocking=True)
            y = self.labels.index_select(0, idx).to(self.device, non_blocking=True)
            yield self._finish(x, epoch, step, order[step * bs : (step + 1) * bs]), y


class _OrderSampler(torch.utils.data.Sampler[int]):
    def __init__(self, order: torch.Tensor) -> None:
        self.order = order

    def __iter__(self) -> Iterator[int]:
        return iter(self.order.tolist())

    def __len__(self) -> int:
        return len(self.order)


class StreamingLoader(_Base):
    """Decodes images with a torch ``DataLoader`` (``num_workers`` processes), then augments and normalizes
    each batch on the device exactly as :class:`InMemoryLoader` does; for image folders too large for memory.

    ``dataset[i]`` must return ``(uint8 (C, H, W) at the input size, label)``
    (:class:`~cnnkit.data.sources.folder.ImageFileDataset`). ``images`` is None (nothing is held in memory);
    ``labels`` holds all labels.
    """

    def __init__(
        self,
        dataset: torch.utils.data.Dataset,
        labels: torch.Tensor,
        *,
        batch_size: int,
        shuffle: bool = False,
        augment: BatchAugment | None = None,
        mean: list[float] | torch.Tensor,
        std: list[float] | torch.Tensor,
        seed: int = 0,
        device: torch.device | str = "cpu",
        num_workers: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        super().__init__(
            len(dataset), batch_size=batch_size, shuffle=shuffle, augment=augment, mean=mean, std=std, seed=seed,  # type: ignore[arg-type]
            device=device, rank=rank, world_size=world_size, drop_last=drop_last,
        )
        self.dataset = dataset
        self.images = None
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.num_workers = num_workers

    def epoch_batches(self, epoch: int, start_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self._permutation(epoch)[start_step * self.batch_size : len(self) * self.batch_size]
        dl = torch.utils.data.DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=_OrderSampler(order),
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )
        for step, (x, y) in enumerate(dl, start=start_step):
            x = x.to(self.device, non_blocking=True)
            idx = order[(step - start_step) * self.batch_size : (step - start_step + 1) * self.batch_size]
            yield self._finish(x, epoch, step, idx), y.to(self.device, non_blocking=True)


BatchTransform = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]
"""``transform(x, y, generator) -> (x, y)``: what a :class:`TensorLoader` applies to each batch on the
device (normalization, augmentation that must move ``x`` and ``y`` together, padding masks)."""


class TensorLoader(_Base):
    """Any in-memory ``(x, y)`` pair of tensors, batched with the loaders' exact-resume contract.

    The loader of every non-image kind (series ``(N, C, L)``, token ids ``(N, L)``, masks ``(N, H, W)``,
    padded boxes ``(N, M, 5)``, clips ``(N, C, T, H, W)``): the same seeded order and per-batch generators
    as :class:`InMemoryLoader`, so a resumed run sees the same batches, with a per-batch ``transform`` in
    place of the image pipeline.

    Args:
        x, y: ``N`` items each (any dtype and trailing shape).
        batch_size, shuffle, seed, device, keep_on_device, rank, world_size, drop_last: as for
            :class:`InMemoryLoader`.
        transform: applied to each batch on the device, with that batch's generator (train-time
            augmentation is seeded by ``(seed, epoch, rank, step)``); None leaves batches as stored.

    Example:
        >>> import torch
        >>> loader = TensorLoader(torch.arange(10.0).view(10, 1), torch.arange(10), batch_size=4)
        >>> [y.tolist() for _, y in loader.epoch_batches(0)]
        [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        batch_size: int,
        shuffle: bool = False,
        transform: BatchTransform | None = None,
        seed: int = 0,
        device: torch.device | str = "cpu",
        keep_on_device: bool = True,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        if len(x) != len(y):
            raise ValueError(f"Expected one target per item. Received: {len(x)} items, {len(y)} targets")
        super().__init__(
            len(x), batch_size=batch_size, shuffle=shuffle, augment=None, mean=[0.0], std=[1.0], seed=seed,
            device=device, rank=rank, world_size=world_size, drop_last=drop_last,
        )
        store = self.device if keep_on_device else torch.device("cpu")
        self.x = x.to(store)
        self.labels = y.to(store)  # `labels`, as the image loaders call their targets
        self.transform = transform

    def epoch_batches(self, epoch: int, start_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        perm = self._permutation(epoch).to(self.x.device)
        bs = self.batch_size
        for step in range(start_step, len(self)):
            idx = perm[step * bs : (step + 1) * bs]
            x = self.x.index_select(0, idx).to(self.device, non_blocking=True)
            y = self.labels.index_select(0, idx).to(self.device, non_blocking=True)
            if self.transform is not None:
                x, y = self.transform(x, y, batch_generator(self.seed, epoch, self.rank, step))
            yield x, y
