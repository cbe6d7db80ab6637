"""Image folders: one sub-folder per class of PNG/JPEG files, any size.

Layouts: ``root/train/<class>/*`` plus ``root/test/<class>/*``, or ``root/<class>/*`` (the test split is
then carved with a fixed seeded stratified split of ``data.test_fraction``). Files are decoded with Pillow,
restricted to PNG and JPEG (the decoders most exposed to hostile files are never reached), with Pillow's
decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) enforced as an error rather than a warning.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ...config.schema import DataConfig
from ...errors import DataError
from .._core import DATASETS, TEST_SPLIT_SEED, ArrayDataset, DatasetSpec
from ..preprocess import prepare_images
from ..splits import split_indices

__all__ = ["read_image", "scan_image_folder", "split_files", "FolderIndex", "ImageFileDataset"]

ALLOWED_FORMATS = ("PNG", "JPEG")
_EXTENSIONS = {".png", ".jpg", ".jpeg"}
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F", "P;gray"}


def _open(path: Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; we refuse both.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path, formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"unreadable image {path}: {e}") from None
    except UnidentifiedImageError:
        raise DataError(f"unreadable image {path}: not a valid PNG or JPEG file") from None
    except OSError as e:
        raise DataError(f"unreadable image {path}: {e}") from None


def image_channels(path: Path) -> int:
    """1 for grayscale files, 3 otherwise, from the header only."""
    with _open(path) as im:
        return 1 if im.mode in _GRAY_MODES else 3


def read_image(path: str | Path, channels: int | None = None) -> torch.Tensor:
    """Decode one PNG/JPEG into a uint8 ``(C, H, W)`` tensor (C = ``channels``, else 1 for gray files, 3
    for colour ones; alpha is dropped).

    Raises:
        DataError: not a PNG/JPEG, truncated or corrupt, or over the decompression-bomb limit.
    """
    path = Path(path)
    with _open(path) as im:
        gray = im.mode in _GRAY_MODES
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                im.load()
                # Decode at the file's own channel count; conversion to the model's channels happens in
                # preprocessing, the same code path predict uses.
                im = im.convert("L" if gray else "RGB")
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as e:
            raise DataError(f"unreadable image {path}: {e}") from None
        arr = np.asarray(im, dtype=np.uint8)
    x = torch.from_numpy(arr.copy())
    x = x.unsqueeze(0) if x.ndim == 2 else x.permute(2, 0, 1).contiguous()
    if channels is not None and channels != x.shape[0]:
        x = prepare_images(x, channels=channels, size=tuple(x.shape[-2:]), fit="resize")[0]  # type: ignore[arg-type]
    return x


@dataclass
class FolderIndex:
    """The files of an image folder: class names and ``(paths, labels)`` per split (test may be None)."""

    root: Path
    class_names: list[str]
    train: tuple[list[Path], np.ndarray]
    test: tuple[list[Path], np.ndarray] | None


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def _files_of(class_dirs: list[Path], names: list[str], where: Path) -> tuple[list[Path], np.ndarray]:
    paths: list[Path] = []
    labels: list[int] = []
    index = {n: i for i, n in enumerate(names)}
    for d in class_dirs:
        if d.name not in index:
            raise DataError(f"class folder {d} is not a training class ({', '.join(names)})")
        files = sorted(
            f for f in d.iterdir() if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in _EXTENSIONS
        )
        paths += files
        labels += [index[d.name]] * len(files)
    if not paths:
        raise DataError(f"no PNG/JPEG images found under {where}")
    return paths, np.asarray(labels, dtype=np.int64)


def scan_image_folder(root: str | Path) -> FolderIndex:
    """List the images of an image folder (no decoding)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a folder")
    train_dir, test_dir = root / "train", root / "test"
    if train_dir.is_dir() and _class_dirs(train_dir):
        classes = _class_dirs(train_dir)
        names = [d.name for d in classes]
        train = _files_of(classes, names, train_dir)
        test = _files_of(_class_dirs(test_dir), names, test_dir) if test_dir.is_dir() else None
        return FolderIndex(root, names, train, test)
    classes = _class_dirs(root)
    if not classes:
        raise DataError(f"image folder {root} has no class sub-folders (expected {root}/<class>/*.png)")
    names = [d.name for d in classes]
    return FolderIndex(root, names, _files_of(classes, names, root), None)


def split_files(index: FolderIndex, split: str, test_fraction: float) -> tuple[list[Path], np.ndarray]:
    """The files of ``split``, carving the test split from train when the folder has none."""
    if index.test is not None:
        return index.train if split == "train" else index.test
    paths, labels = index.train
    keep, held = split_indices(labels, test_fraction, TEST_SPLIT_SEED)
    chosen = keep if split == "train" else held
    return [paths[i] for i in chosen], labels[chosen]


class ImageFileDataset(torch.utils.data.Dataset):
    """Decodes one image per item and brings it to ``(channels, *size)`` uint8 (used by the streaming loader
    and, in a loop, by the in-memory path, so both see identical pixels)."""

    def __init__(self, paths: list[Path], labels: np.ndarray, *, channels: int, size: tuple[int, int], fit: str) -> None:
        self.paths = list(paths)
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.channels = channels
        self.size = tuple(size)
        self.fit = fit

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = read_image(self.paths[i])
        x = prepare_images(x, channels=self.channels, size=self.size, fit=self.fit)[0]  # type: ignore[arg-type]
        return x, self.labels[i]


def folder_channels(paths: list[Path]) -> int:
    """1 when every file is grayscale, else 3."""
    return 1 if all(image_channels(p) == 1 for p in paths) else 3


def _common_size(paths: list[Path]) -> tuple[int, int]:
    sizes = Counter()  # type: ignore[var-annotated]
    for p in paths:
        with _open(p) as im:
            sizes[(im.height, im.width)] += 1
    return sizes.most_common(1)[0][0]


def _load_folder(
    folder: Path, split: str, cfg: DataConfig, *, size: tuple[int, int] | None = None, channels: int | None = None
) -> ArrayDataset:
    index = scan_image_folder(folder)
    paths, labels = split_files(index, split, cfg.test_fraction)
    # Channels and size are decided on the training files, so train and test agree.
    train_paths = split_files(index, "train", cfg.test_fraction)[0]
    channels = channels or folder_channels(train_paths)
    size = tuple(size) if size is not None else (tuple(cfg.input_size) if cfg.input_size else _common_size(train_paths))  # type: ignore[assignment]
    ds = ImageFileDataset(paths, labels, channels=channels, size=size, fit=cfg.fit)  # type: ignore[arg-type]
    images = torch.stack([ds[i][0] for i in range(len(ds))])
    return ArrayDataset(images, torch.as_tensor(labels), list(index.class_names))


DATASETS.add(
    "image-folder",
    DatasetSpec(
        "image-folder",
        "your PNG/JPEG images, one sub-folder per class (data.root: the folder)",
        _load_folder,
        needs_root=True,
        has_test_split=False,
    ),
)
