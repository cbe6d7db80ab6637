import numpy as np
import pytest

from cnnkit.data import kfold_indices, split_indices, subset_indices


def _labels():
    # Imbalanced: 60 / 30 / 10.
    return np.repeat([0, 1, 2], [60, 30, 10])


def test_split_indices_disjoint_covering_stratified_seeded():
    y = _labels()
    keep, held = split_indices(y, 0.2, seed=1)
    assert len(held) == 20 and len(keep) == 80
    assert np.intersect1d(keep, held).size == 0 and np.array_equal(np.union1d(keep, held), np.arange(100))
    assert np.bincount(y[held]).tolist() == [12, 6, 2]
    again = split_indices(y, 0.2, seed=1)
    assert np.array_equal(again[1], held)
    assert not np.array_equal(split_indices(y, 0.2, seed=2)[1], held)


def test_split_falls_back_when_a_class_is_a_singleton():
    y = np.array([0] * 10 + [1])
    keep, held = split_indices(y, 0.3, seed=0)
    assert len(held) == 3 and len(keep) == 8


def test_split_rejects_empty_parts():
    with pytest.raises(ValueError, match="both parts non-empty"):
        split_indices(np.zeros(3), 0.1, seed=0)


def test_kfold_indices():
    y = _labels()
    folds = kfold_indices(y, 5, stratified=True, seed=0)
    allv = np.concatenate(folds)
    assert len(folds) == 5 and np.array_equal(np.sort(allv), np.arange(100))  # disjoint and covering
    for f in folds:
        assert np.bincount(y[f], minlength=3).tolist() == [12, 6, 2]
    plain = kfold_indices(y, 4, stratified=False, seed=0)
    assert np.array_equal(np.sort(np.concatenate(plain)), np.arange(100)) and [len(f) for f in plain] == [25] * 4
    assert all(np.array_equal(a, b) for a, b in zip(folds, kfold_indices(y, 5, True, 0), strict=True))
    with pytest.raises(ValueError, match="at least k=20"):
        kfold_indices(y, 20, stratified=True)


def test_subset_indices_stratified():
    y = _labels()
    sub = subset_indices(y, 50, seed=0)
    assert len(sub) == 50 and np.bincount(y[sub]).tolist() == [30, 15, 5]
    assert np.array_equal(subset_indices(y, 500, seed=0), np.arange(100))
