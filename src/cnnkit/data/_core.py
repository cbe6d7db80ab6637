"""The dataset type every source returns, the dataset registry, where files are looked for, and the test
split carved from datasets that ship without one.

Each dataset is registered by its source module (:mod:`cnnkit.data.sources`), which holds its reader, its
:class:`DatasetSpec` and its download resources.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from pydantic import BaseModel

from ..config.schema import DataConfig
from ..errors import DataError
from ..registry import Registry
from .splits import split_indices

if TYPE_CHECKING:  # annotations only: download.py builds on this module
    from .download import Resources

__all__ = [
    "ArrayDataset", "DatasetSpec", "DATASETS", "TEST_SPLIT_SEED", "carve_test_split", "dataset_status",
    "load_dataset", "search_dirs",
]

# The seed of the test split carved from datasets that ship without one: fixed (not data.split_seed) so
# test accuracies stay comparable across runs and configs.
TEST_SPLIT_SEED = 0


@dataclass
class ArrayDataset:
    """One split of a dataset, in memory.

    Attributes:
        images: uint8 tensor ``(N, C, H, W)``, values 0..255.
        labels: int64 tensor ``(N,)``, values in ``0 .. len(class_names) - 1``.
        class_names: one name per class.
        name: the dataset's registry name.
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    name: str = ""

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"Expected uint8 images of shape (N, C, H, W). Received: {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels.ndim != 1 or len(self.labels) != len(self.images):
            raise ValueError(
                f"Expected one label per image. Received: {len(self.images)} images, labels {tuple(self.labels.shape)}"
            )
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, indices: np.ndarray | torch.Tensor) -> ArrayDataset:
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        return ArrayDataset(self.images[idx], self.labels[idx], list(self.class_names), self.name)


@dataclass(frozen=True)
class DatasetSpec:
    """A registry entry: how to find, read and download one dataset.

    ``load(root, split, cfg, size, channels)`` returns an :class:`ArrayDataset`; ``root`` is the folder that
    :meth:`locate` found (or the user's path for ``image-folder`` / ``npz``). Datasets of other kinds
    (series, text, masks, boxes, clips) set ``build`` instead: ``build(cfg, spec=..., input_shape=...,
    device=..., seed=..., rank=..., world_size=...)`` returns the whole :class:`~cnnkit.data.DataBundle`
    (their own readers, splits and loaders; see :class:`~cnnkit.data.TensorLoader`), and ``load`` may be
    None. ``options`` is a pydantic model of the dataset's own config keys (``data.dataset: GunPoint``),
    validated with the config; ``kind`` says what ``x`` holds (``image``, ``series``, ``text``, ...). ``files`` are the names that
    must all be present in a folder for it to count as found. ``resources`` say where ``cnnkit datasets
    download`` fetches the files from (None: nothing to download); ``bundled`` names the package that ships
    the data (``digits``: scikit-learn), which is then always present.
    """

    name: str
    description: str
    load: Callable[..., ArrayDataset] | None = None
    files: tuple[tuple[str, ...], ...] = ()  # alternatives: each inner tuple is one complete layout
    needs_root: bool = False
    resources: Resources | None = None
    bundled: str | None = None
    apt_package: str | None = None
    num_classes: int | None = None
    source_shape: tuple[int, int, int] | None = None
    has_test_split: bool = True
    extra: dict[str, object] = field(default_factory=dict)
    kind: str = "image"
    build: Callable[..., Any] | None = None
    options: type[BaseModel] | None = None

    @property
    def downloadable(self) -> bool:
        return self.resources is not None

    def locate(self, root: str | os.PathLike[str] | None = None) -> Path | None:
        """The first searched folder holding a complete set of this dataset's files, or None.

        Raises:
            DataError: ``root`` is given but does not exist (never fall back to files somewhere else).
        """
        if self.bundled is not None:
            return Path(f"<{self.bundled}>")  # ships with a package: always present
        folder = check_root(root)
        if self.needs_root:
            return folder
        for d in search_dirs(self.name, root):
            if any(all(_exists_any(d, f) for f in layout) for layout in self.files):
                return d
        return None


def check_root(root: str | os.PathLike[str] | None) -> Path | None:
    """``root`` as a path, or None when not set.

    Raises:
        DataError: ``root`` is set but does not exist.
    """
    if root is None:
        return None
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(f"data.root {path} does not exist; fix the path, or unset data.root to search the default folders")
    return path


def _exists_any(folder: Path, name: str) -> bool:
    # A name is a '|'-separated list of accepted spellings (gzipped or not, MNIST's '.idx' variant).
    return any((folder / alt).is_file() for alt in name.split("|"))


def search_dirs(name: str, root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Folders searched for dataset ``name``: ``root`` and ``root/<name>`` when ``root`` (``data.root``) is
    given, and only those; else ``$CNNKIT_DATA/<name>``, ``~/.cache/cnnkit/<name>``,
    ``/usr/share/datasets/<name>`` (where Debian's dataset packages put files), in that order."""
    if root is not None:
        # An explicit data.root means these files: falling back to another copy would train on other data.
        r = Path(root).expanduser()
        return [r, r / name]
    dirs: list[Path] = []
    env = os.environ.get("CNNKIT_DATA")
    if env:
        dirs.append(Path(env).expanduser() / name)
    dirs.append(Path.home() / ".cache" / "cnnkit" / name)
    dirs.append(Path("/usr/share/datasets") / name)
    return dirs


def default_download_dir(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Where ``cnnkit datasets download`` puts files: ``root/<name>``, else ``$CNNKIT_DATA/<name>``, else
    ``~/.cache/cnnkit/<name>``."""
    if root is not None:
        return Path(root).expanduser() / name
    env = os.environ.get("CNNKIT_DATA")
    if env:
        return Path(env).expanduser() / name
    return Path.home() / ".cache" / "cnnkit" / name


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def missing_message(spec: DatasetSpec, root: str | os.PathLike[str] | None) -> str:
    if spec.needs_root:
        where = f"{root}" if root is not None else "nowhere (data.root is not set)"
        return f"{spec.name}: data.root must point at the data; looked at {where}"
    looked = ", ".join(str(d) for d in search_dirs(spec.name, root))
    names = ", ".join(f.split("|")[0] for f in spec.files[0])
    msg = f"{spec.name} not found: need {names}; looked in {looked}."
    hints = []
    if spec.apt_package:
        hints.append(f"`apt-get install {spec.apt_package}`")
    if spec.downloadable:
        where = f" --root {Path(root).expanduser()}" if root is not None else ""
        hints.append(f"`cnnkit datasets download {spec.name}{where}`")
    if hints:
        msg += " Get it with " + " or ".join(hints) + "."
    return msg


def load_dataset(
    name: str,
    root: str | os.PathLike[str] | None = None,
    *,
    split: str = "train",
    cfg: DataConfig | None = None,
    size: tuple[int, int] | None = None,
    channels: int | None = None,
) -> ArrayDataset:
    """Read one split (``"train"`` or ``"test"``) of a registered dataset into memory.

    Datasets without a test split (``digits``; ``image-folder`` / ``npz`` without one) are split with a fixed
    seeded stratified split of ``cfg.test_fraction``, so results are comparable across runs.

    Args:
        name: registry name (``digits``, ``mnist``, ``fashion-mnist``, ``kmnist``, ``cifar10``, ``cifar100``,
            ``image-folder``, ``npz``).
        root: ``data.root``; defaults to ``cfg.root``.
        split: ``"train"`` or ``"test"``.
        cfg: the data config (for ``test_fraction``, ``fit``).
        size: ``(H, W)`` to bring images of mixed sizes to (``image-folder`` only; others ignore it).
        channels: 1 or 3 to convert images to (``image-folder`` only).

    Raises:
        DataError: ``root`` does not exist; files missing, truncated, corrupt, or inconsistent (one line
            naming the file).
    """
    if split not in ("train", "test"):
        raise ValueError(f"Expected split 'train' or 'test'. Received: split={split!r}")
    cfg = cfg or DataConfig(name=name)
    spec = DATASETS.get(name)
    root = root if root is not None else cfg.root
    folder = spec.locate(root)
    if folder is None:
        raise DataError(missing_message(spec, root))
    if spec.load is None:
        raise DataError(f"{spec.name} holds {spec.kind} data, not images: it is read by cnnkit.data.build_data")
    ds = spec.load(folder, split, cfg, size=size, channels=channels)
    ds.name = spec.name
    return ds


def carve_test_split(ds: ArrayDataset, split: str, test_fraction: float) -> ArrayDataset:
    """``split`` (``"train"`` or ``"test"``) of a dataset that ships without a test split: a seeded,
    stratified split of ``test_fraction``, with the fixed :data:`TEST_SPLIT_SEED`."""
    keep, held = split_indices(ds.labels, test_fraction, TEST_SPLIT_SEED)
    return ds.subset(keep if split == "train" else held)


def dataset_status(root: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """One entry per registered dataset: ``{name, present, path, description, downloadable, searched}``
    (for ``cnnkit datasets``)."""
    out = []
    for name in DATASETS.names():
        spec = DATASETS.get(name)
        where = spec.locate(root)
        if spec.bundled is not None:
            path: str | None = f"bundled with {spec.bundled}"
        else:
            path = str(where) if where is not None else None
        out.append(
            {
                "name": name,
                "present": where is not None,
                "path": path,
                "description": spec.description,
                "downloadable": spec.downloadable,
                "searched": [] if spec.needs_root or spec.bundled else [str(d) for d in search_dirs(name, root)],
            }
        )
    return out
