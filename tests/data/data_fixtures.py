"""Writers for the tiny dataset fixtures the data tests create themselves (IDX, CIFAR binary, PNG, npz)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def write_idx(path: Path, arr: np.ndarray, *, gz: bool | None = None, magic: int | None = None) -> Path:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    magic = magic if magic is not None else (0x08 << 8) | arr.ndim
    data = struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    gz = path.suffix == ".gz" if gz is None else gz
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_mnist_dir(folder: Path, *, n_train: int = 60, n_test: int = 30, gz: bool = True, seed: int = 0):
    """Four IDX files with random 28x28 images and balanced labels; returns the arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ext = ".gz" if gz else ""
    out = {}
    for split, n, prefix in (("train", n_train, "train"), ("test", n_test, "t10k")):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(y)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", x)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", y)
        out[split] = (x, y)
    return out


def cifar_bytes(images: np.ndarray, labels: np.ndarray, coarse: np.ndarray | None = None) -> bytes:
    rows = []
    for i in range(len(images)):
        head = bytes([int(coarse[i]), int(labels[i])]) if coarse is not None else bytes([int(labels[i])])
        rows.append(head + images[i].astype(np.uint8).tobytes())
    return b"".join(rows)


def write_png(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr, dtype=np.uint8)).save(path, format="PNG")
    return path


def write_image_folder(root: Path, *, classes=("cat", "dog", "eel"), per_class: int = 8, size=(12, 10), rgb=True, seed=0):
    rng = np.random.default_rng(seed)
    for c in classes:
        for i in range(per_class):
            shape = (*size, 3) if rgb else size
            write_png(root / c / f"{i:03d}.png", rng.integers(0, 256, shape, dtype=np.uint8))
    return root


