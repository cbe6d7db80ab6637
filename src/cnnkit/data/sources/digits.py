"""scikit-learn's 8x8 handwritten digits (the embedded default dataset): bundled, nothing to download."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...config.schema import DataConfig
from .._core import DATASETS, ArrayDataset, DatasetSpec, carve_test_split

__all__: list[str] = []


def _load_digits(folder: Path | None, split: str, cfg: DataConfig, **_: object) -> ArrayDataset:
    # Imported here: scikit-learn takes seconds to import, and only this dataset needs its loader.
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # The 8x8 images hold counts 0..16 (pixels of a 32x32 bitmap per 4x4 block); rescale to 0..255.
    x = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    ds = ArrayDataset(torch.from_numpy(x), torch.from_numpy(bunch.target.astype(np.int64)), [str(i) for i in range(10)])
    return carve_test_split(ds, split, cfg.test_fraction)


DATASETS.add(
    "digits",
    DatasetSpec(
        "digits",
        "scikit-learn's 1,797 8x8 handwritten digits (embedded default; fixed 75/25 train/test split)",
        _load_digits,
        bundled="scikit-learn",
        num_classes=10,
        source_shape=(1, 8, 8),
        has_test_split=False,
    ),
)
