"""The embedded default dataset: scikit-learn's 8x8 digits, bundled, with a fixed test split."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from cnnkit.data import DATASETS, dataset_status, download_dataset, load_dataset
from cnnkit.errors import DataError


def test_digits_fixed_stratified_split():
    train, test = load_dataset("digits"), load_dataset("digits", split="test")
    assert len(train) + len(test) == 1797 and len(test) == round(0.25 * 1797)
    assert train.images.shape[1:] == (1, 8, 8) and train.images.dtype == torch.uint8
    # 0..16 rescaled to 0..255 exactly: the value 16 becomes 255, 8 becomes round(127.5) = 128.
    ref = load_digits()
    all_images = torch.cat([train.images, test.images]).flatten(1).sort(dim=1).values
    expected = torch.from_numpy(np.rint(ref.images.reshape(1797, -1) * 255 / 16).astype(np.uint8)).sort(dim=1).values
    assert torch.equal(all_images.sort(dim=0).values, expected.sort(dim=0).values)
    counts = torch.bincount(test.labels, minlength=10).float()
    assert (counts - counts.mean()).abs().max() <= 2  # stratified: about 45 per class
    assert torch.equal(load_dataset("digits", split="test").images, test.images)  # fixed


def test_digits_is_bundled_whatever_the_root(tmp_path):
    spec = DATASETS.get("digits")
    assert spec.bundled == "scikit-learn" and not spec.downloadable
    assert spec.locate(tmp_path / "nowhere") is not None
    row = {r["name"]: r for r in dataset_status()}["digits"]
    assert row["present"] and row["path"] == "bundled with scikit-learn" and row["searched"] == []
    with pytest.raises(DataError, match="digits ships with scikit-learn: there is nothing to download"):
        download_dataset("digits")
