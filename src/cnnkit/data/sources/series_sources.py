"""Series classification data from arrays: ``series-npz`` (an ``.npz`` file of ``(N, C, L)`` arrays) and
``mnist1d`` (Greydanus 2020, generated from a seed by the ``mnist1d`` package)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from ...config.schema import DataConfig
from ...errors import DataError
from .._core import DATASETS, DatasetSpec, check_root
from ..series import SeriesAugmentConfig
from ..series_build import hold_out_test, series_bundle
from .arrays import _load_arrays, _npz_path

__all__ = ["Mnist1dOptions", "SeriesNpzOptions", "make_mnist1d", "series_cases"]


class SeriesNpzOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    series_augment: SeriesAugmentConfig = Field(default_factory=SeriesAugmentConfig, description="batched series augmentation (training only)")


class Mnist1dOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    num_samples: int = Field(5000, ge=20, le=1_000_000, description="series generated (the paper's 5000: 4000 train, 1000 test)")
    seed: int = Field(42, description="the generator's seed (42: the paper's data set)")
    series_augment: SeriesAugmentConfig = Field(default_factory=SeriesAugmentConfig, description="batched series augmentation (training only)")


def series_cases(x: np.ndarray, source: str) -> list[np.ndarray]:
    """``(N, L)`` or ``(N, C, L)`` numbers -> one float64 ``(C, L)`` case each (NaN: missing)."""
    if x.ndim == 2:
        x = x[:, None, :]
    if x.ndim != 3:
        raise DataError(f"{source}: expected series of shape (N, L) or (N, C, L). Received: {x.shape}")
    if x.dtype.kind not in "uif":
        raise DataError(f"{source}: expected numbers, not {x.dtype}")
    if x.shape[2] == 0:
        raise DataError(f"{source}: series of length 0")
    return [np.asarray(s, dtype=np.float64) for s in x]


def _labels(y: np.ndarray, n: int, source: str) -> np.ndarray:
    y = np.asarray(y).reshape(-1)
    if len(y) != n:
        raise DataError(f"{source}: {n} series but {len(y)} labels")
    if not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise DataError(f"{source}: labels must be non-negative integers")
    return y.astype(np.int64)


def _build_npz(cfg: DataConfig, *, spec: DatasetSpec, input_shape: tuple[int, ...], device: torch.device, seed: int,
               rank: int = 0, world_size: int = 1) -> Any:
    opts = SeriesNpzOptions(**cfg.options())
    root = check_root(cfg.root)
    if root is None:
        raise DataError("series-npz: data.root must point at the .npz file (arrays x_train, y_train[, x_test, y_test])")
    path = _npz_path(root)
    arrays = _load_arrays(path, ".npz")
    for key in ("x_train", "y_train"):
        if key not in arrays:
            raise DataError(f"npz file {path} has no array {key!r} (found: {', '.join(arrays) or 'none'})")
    xs = series_cases(arrays["x_train"], f"{path}:x_train")
    y = _labels(arrays["y_train"], len(xs), f"{path}:y_train")
    if "x_test" in arrays and "y_test" in arrays:
        xt = series_cases(arrays["x_test"], f"{path}:x_test")
        yt = _labels(arrays["y_test"], len(xt), f"{path}:y_test")
        if xt[0].shape[0] != xs[0].shape[0]:
            raise DataError(f"npz file {path}: x_test has {xt[0].shape[0]} channels, x_train {xs[0].shape[0]}")
    else:  # no test split shipped: a fixed seeded stratified one, as for the image npz
        (xs, y), (xt, yt) = hold_out_test(xs, y, cfg.test_fraction)
    top = int(max(y.max(initial=0), yt.max(initial=0)))
    names = [str(s) for s in arrays["class_names"].tolist()] if "class_names" in arrays else [str(i) for i in range(top + 1)]
    if top >= len(names):
        raise DataError(f"npz file {path}: label {top} but only {len(names)} class_names")
    return series_bundle(cfg, name="series-npz", train=(xs, y), test=(xt, yt), class_names=names, device=device,
                         seed=seed, rank=rank, world_size=world_size, augment=opts.series_augment)


def make_mnist1d(num_samples: int = 5000, seed: int = 42) -> dict[str, np.ndarray]:
    """The MNIST-1D data set (Greydanus 2020) from the ``mnist1d`` package's generator: ``x`` (N, 40),
    ``y``, ``x_test``, ``y_test`` (80/20 split). numpy's global random state is restored afterwards (the
    generator seeds it)."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset  # optional dependency (extra `timeseries`)
    except ImportError:
        raise DataError("mnist1d needs the mnist1d package: pip install mnist1d (or cnnkit[timeseries])") from None
    args = get_dataset_args()
    args.num_samples, args.seed = int(num_samples), int(seed)
    state = np.random.get_state()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(state)
    return {k: np.asarray(data[k]) for k in ("x", "y", "x_test", "y_test")}


def _build_mnist1d(cfg: DataConfig, *, spec: DatasetSpec, input_shape: tuple[int, ...], device: torch.device, seed: int,
                   rank: int = 0, world_size: int = 1) -> Any:
    opts = Mnist1dOptions(**cfg.options())
    d = make_mnist1d(opts.num_samples, opts.seed)
    train = (series_cases(d["x"], "mnist1d"), d["y"].astype(np.int64))
    test = (series_cases(d["x_test"], "mnist1d"), d["y_test"].astype(np.int64))
    return series_bundle(cfg, name="mnist1d", train=train, test=test, class_names=[str(i) for i in range(10)],
                         device=device, seed=seed, rank=rank, world_size=world_size, augment=opts.series_augment)


DATASETS.add("series-npz", DatasetSpec(
    "series-npz", "series x_train (N, C, L), y_train[, x_test, y_test, class_names] in an .npz file (data.root: the file)",
    kind="series", build=_build_npz, options=SeriesNpzOptions, needs_root=True, has_test_split=False,
))
DATASETS.add("mnist1d", DatasetSpec(
    "mnist1d", "MNIST-1D (Greydanus 2020): 10 classes of 40-step series, generated by the mnist1d package",
    kind="series", build=_build_mnist1d, options=Mnist1dOptions, bundled="mnist1d",
))
