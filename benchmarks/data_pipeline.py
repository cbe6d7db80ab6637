"""Images per second: cnnkit's in-memory batched loader vs the common per-sample pipeline.

Both apply the same augmentations: random crop after 2-pixel zero padding, horizontal flip (p = 0.5) and
a random rotation in [-10, 10] degrees (bilinear), then scaling to [0, 1] and normalization.

* ``per-sample``: a ``torch.utils.data.Dataset`` returning one image at a time as a PIL image, with the
  transforms written per sample in numpy / PIL (pad + crop and flip in numpy, ``Image.rotate``), collated
  by a ``DataLoader`` (``num_workers`` 0 and 2), the usual torchvision-style pattern.
* ``InMemoryLoader``: the split as one uint8 tensor on the device; per batch one gather, one float
  conversion, batched augmentation (one ``grid_sample`` for the rotation), one normalization.

Fashion-MNIST train (60,000 28x28 images) when present, else scikit-learn's digits. One run on one
machine; mean ± std over repeats after a warm-up; the ratio is to the per-sample loader with 0 workers.

    python benchmarks/data_pipeline.py [--repeats 5] [--device cpu|cuda] [--per-sample-images 10240]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from PIL import Image

from cnnkit.config.schema import AugmentConfig, DataConfig
from cnnkit.data import InMemoryLoader, load_dataset
from cnnkit.data.augment import BatchAugment
from cnnkit.data.preprocess import channel_stats
from cnnkit.errors import DataError

PAD, DEGREES = 2, 10.0


class PerSampleDataset(torch.utils.data.Dataset):
    """The common pattern: one PIL image per item, transforms per sample."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean: float, std: float) -> None:
        self.images, self.labels, self.mean, self.std = images, labels, mean, std
        self.rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = Image.fromarray(self.images[i])  # (H, W) uint8 -> PIL, as torchvision datasets do
        arr = np.asarray(img)
        h, w = arr.shape
        arr = np.pad(arr, PAD)  # random crop with padding
        oy, ox = self.rng.integers(0, 2 * PAD + 1, 2)
        arr = arr[oy : oy + h, ox : ox + w]
        if self.rng.random() < 0.5:  # horizontal flip
            arr = arr[:, ::-1]
        img = Image.fromarray(np.ascontiguousarray(arr)).rotate(
            float(self.rng.uniform(-DEGREES, DEGREES)), resample=Image.BILINEAR
        )
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)[None]
        return (x - self.mean) / self.std, int(self.labels[i])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_in_memory(loader: InMemoryLoader, epoch: int, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    n = 0
    for x, _ in loader.epoch_batches(epoch):
        n += len(x)
    _sync(device)
    return n / (time.perf_counter() - t0)


def time_per_sample(ds: PerSampleDataset, batch_size: int, workers: int, images: int, device: torch.device) -> float:
    dl = torch.utils.data.DataLoader(
        ds, batch_size=batch_size, shuffle=True, num_workers=workers, pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    batches = images // batch_size
    t0 = time.perf_counter()  # includes worker start-up, as a training epoch does
    n = 0
    for step, (x, _) in enumerate(dl):
        x = x.to(device, non_blocking=True)
        n += len(x)
        if step + 1 == batches:
            break
    _sync(device)
    return n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--per-sample-images", type=int, default=10240, help="images timed per repeat (per-sample path)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    # Default 1: per-batch kernels on 128 small images gain little from intra-op threads, and OpenMP threads
    # that spin-wait collapse when the cores are shared (measured: 2 threads on a loaded 2-core box was ~9x
    # slower). Pass --threads 0 for torch's default.
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads; 0 = torch's default")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    try:
        ds = load_dataset("fashion-mnist", split="train", cfg=DataConfig(name="fashion-mnist"))
    except DataError:
        ds = load_dataset("digits", split="train")
    mean, std = channel_stats(ds.images)
    print(f"dataset: {ds.name} train, {len(ds)} images {tuple(ds.shape)}; device: {device}; "
          f"torch threads: {torch.get_num_threads()}; batch size {args.batch_size}; repeats {args.repeats}")

    aug = BatchAugment(AugmentConfig(crop_padding=PAD, hflip=True, rotate=DEGREES), fill=mean)
    fast = InMemoryLoader(ds.images, ds.labels, batch_size=args.batch_size, shuffle=True, augment=aug,
                          mean=mean, std=std, seed=0, device=device)
    plain = InMemoryLoader(ds.images, ds.labels, batch_size=args.batch_size, shuffle=True, augment=None,
                           mean=mean, std=std, seed=0, device=device)
    per_sample = PerSampleDataset(ds.images[:, 0].numpy(), ds.labels.numpy(), mean[0], std[0])

    results: dict[str, list[float]] = {}
    time_in_memory(fast, 0, device)  # warm-up (allocator, kernels)
    results["InMemoryLoader, augmented"] = [time_in_memory(fast, e, device) for e in range(1, args.repeats + 1)]
    results["InMemoryLoader, no augmentation"] = [time_in_memory(plain, e, device) for e in range(1, args.repeats + 1)]
    n_ps = min(args.per_sample_images, len(ds))
    for w in args.workers:
        time_per_sample(per_sample, args.batch_size, w, args.batch_size * 4, device)  # warm-up
        results[f"per-sample Dataset + DataLoader, {w} workers"] = [
            time_per_sample(per_sample, args.batch_size, w, n_ps, device) for _ in range(args.repeats)
        ]

    base = statistics.mean(results[f"per-sample Dataset + DataLoader, {args.workers[0]} workers"])
    print(f"\n| pipeline (crop pad {PAD} + hflip + rotate ±{DEGREES:g}°) | images/s (mean ± std) | ratio |")
    print("|---|---:|---:|")
    for name, v in results.items():
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        print(f"| {name} | {statistics.mean(v):,.0f} ± {sd:,.0f} | {statistics.mean(v) / base:.1f}x |")


if __name__ == "__main__":
    main()
