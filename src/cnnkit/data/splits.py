"""Seeded, stratified splits: validation from train, k folds, subsets for quick runs, and a test split
for datasets that ship without one."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["split_indices", "kfold_indices", "subset_indices"]


def _as_numpy(labels: np.ndarray | torch.Tensor) -> np.ndarray:
    return labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)


def _can_stratify(y: np.ndarray, n_held: int, n_keep: int) -> bool:
    # sklearn needs >= 2 members per class and both sides at least as large as the number of classes.
    _, counts = np.unique(y, return_counts=True)
    return counts.min() >= 2 and n_held >= len(counts) and n_keep >= len(counts)


def split_indices(
    labels: np.ndarray | torch.Tensor, fraction: float, seed: int, *, stratified: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(len(labels))`` into ``(keep, held_out)`` with ``round(fraction * N)`` held out.

    Seeded; stratified (class ratios preserved in both parts) when ``stratified`` and every class has at
    least two members, else a plain seeded random split. Both index arrays are sorted.

    Example:
        >>> keep, val = split_indices(np.repeat([0, 1], 50), 0.2, seed=0)
        >>> len(keep), len(val)
        (80, 20)
    """
    if not 0 < fraction < 1:
        raise ValueError(f"Expected 0 < fraction < 1. Received: fraction={fraction}")
    y = _as_numpy(labels)
    n = len(y)
    n_held = int(round(fraction * n))
    if n_held < 1 or n_held >= n:
        raise ValueError(f"Expected a split leaving both parts non-empty. Received: fraction={fraction} of {n} samples")
    from sklearn.model_selection import train_test_split  # lazy: scikit-learn takes seconds to import

    idx = np.arange(n)
    strat = y if stratified and _can_stratify(y, n_held, n - n_held) else None
    keep, held = train_test_split(idx, test_size=n_held, random_state=seed, shuffle=True, stratify=strat)
    return np.sort(keep), np.sort(held)


def subset_indices(labels: np.ndarray | torch.Tensor, n: int, seed: int, *, stratified: bool = True) -> np.ndarray:
    """``n`` seeded indices (stratified when possible; all of them when ``n >= len(labels)``), sorted."""
    y = _as_numpy(labels)
    if n >= len(y):
        return np.arange(len(y))
    _, held = split_indices(y, n / len(y), seed, stratified=stratified)
    return held


def kfold_indices(labels: np.ndarray | torch.Tensor, k: int, stratified: bool = True, seed: int = 0) -> list[np.ndarray]:
    """The validation indices of each of ``k`` folds: disjoint, together covering ``range(N)``, each sorted.

    Stratified (scikit-learn ``StratifiedKFold``, shuffled with ``seed``) so each fold keeps the class
    ratios; plain shuffled ``KFold`` when ``stratified`` is False.
    """
    from sklearn.model_selection import KFold, StratifiedKFold  # lazy: scikit-learn takes seconds to import

    y = _as_numpy(labels)
    if not 2 <= k <= len(y):
        raise ValueError(f"Expected 2 <= k <= number of samples ({len(y)}). Received: k={k}")
    if stratified:
        _, counts = np.unique(y, return_counts=True)
        if counts.min() < k:
            raise ValueError(
                f"Expected every class to have at least k={k} samples for stratified folds. "
                f"Received: smallest class has {counts.min()}"
            )
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
    return [np.sort(val) for _, val in splitter.split(np.zeros(len(y)), y)]
