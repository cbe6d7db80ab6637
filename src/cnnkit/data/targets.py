"""Targets other than one class per item, shared by the image and text sources: several labels per item
(multi-hot, for ``task: multilabel``) or real values (``task: regression``), and the split and loader
helpers for them.

A label cell holds one or more label names separated by ``;``, ``|`` or spaces (``cat;outdoor``); a value
cell one or more numbers separated likewise (``0.5 1.25``). ``targets: auto`` reads numbers as values
when some cell holds several numbers or a non-integer one, cells with several names as labels, and
anything else as one class per item; ``classes`` / ``labels`` / ``values`` force one reading (a
regression on integers needs ``values``, a multi-label set whose items all have one label ``labels``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from ..errors import DataError
from .splits import split_indices

__all__ = ["TargetKind", "Targets", "carve", "check_labels_present", "parse_targets", "random_split", "validation_split"]

TargetKind = Literal["auto", "classes", "labels", "values"]
_SEP = re.compile(r"[;|\s]+")


@dataclass
class Targets:
    """Parsed targets of N items.

    Attributes:
        y: ``(N,)`` int64 class indices (``classes``), ``(N, K)`` float32 multi-hot (``labels``) or
            ``(N, K)`` float32 values (``values``).
        names: the class / label names, or the value names (``y0``, ``y1``... unless given).
        kind: ``classes``, ``labels`` or ``values``.
    """

    y: torch.Tensor
    names: list[str]
    kind: str

    def subset(self, idx: np.ndarray) -> Targets:
        return Targets(self.y[torch.as_tensor(np.asarray(idx), dtype=torch.long)], list(self.names), self.kind)


def _split_cell(cell: str) -> list[str]:
    return [p for p in _SEP.split(cell.strip()) if p]


def _is_number(s: str) -> bool:
    try:
        return math.isfinite(float(s))
    except ValueError:
        return False


def parse_targets(
    cells: Sequence[str], *, kind: TargetKind, source: str, names: list[str] | None = None, value_names: list[str] | None = None
) -> Targets:
    """Targets from one text cell per item.

    Args:
        cells: the label column, one string per item.
        kind: see the module docstring.
        source: the file the cells came from (named in errors).
        names: the label / class names to use (the training split's, for a test file); None: sorted
            names found in ``cells``.
        value_names: names of the values (``values`` only).

    Raises:
        DataError: an empty cell, a non-number where values are read, a label not among ``names``, or
            items with differing numbers of values.
    """
    parts = [_split_cell(str(c)) for c in cells]
    for i, p in enumerate(parts):
        if not p:
            raise DataError(f"{source}: item {i + 1} has an empty label; give every item at least one label or value")
    if kind == "auto":
        numbers = all(_is_number(s) for p in parts for s in p)
        several = any(len(p) > 1 for p in parts)
        if numbers and (several or any(not float(s).is_integer() for p in parts for s in p)):
            kind = "values"
        else:
            kind = "labels" if several else "classes"
    if kind == "values":
        width = len(parts[0])
        for i, p in enumerate(parts):
            bad = next((s for s in p if not _is_number(s)), None)
            if bad is not None:
                raise DataError(f"{source}: item {i + 1}: {bad[:40]!r} is not a finite number (regression targets are numbers)")
            if len(p) != width:
                raise DataError(f"{source}: item {i + 1} has {len(p)} values but item 1 has {width}; every item needs the same number")
        y = torch.tensor([[float(s) for s in p] for p in parts], dtype=torch.float32)
        vn = value_names if value_names and len(value_names) == width else [f"y{j}" for j in range(width)]
        return Targets(y, list(vn), "values")
    if kind == "classes":
        many = next((i for i, p in enumerate(parts) if len(p) > 1), None)
        if many is not None:
            raise DataError(f"{source}: item {many + 1} has {len(parts[many])} labels; use task: multilabel for several labels per item")
    found = sorted({s for p in parts for s in p})
    vocab = list(names) if names is not None else found
    index = {n: j for j, n in enumerate(vocab)}
    unknown = next((s for s in found if s not in index), None)
    if unknown is not None:
        raise DataError(f"{source}: label {unknown[:40]!r} is not a label of the training split ({', '.join(vocab[:10])})")
    if kind == "classes":
        return Targets(torch.tensor([index[p[0]] for p in parts], dtype=torch.long), vocab, "classes")
    y = torch.zeros(len(parts), len(vocab), dtype=torch.float32)
    for i, p in enumerate(parts):
        for s in p:
            y[i, index[s]] = 1.0
    return Targets(y, vocab, "labels")


def _strata(t: Targets) -> np.ndarray:
    # Stratify on the class for one-label targets; multi-hot and value targets are split at random.
    return t.y.numpy() if t.kind == "classes" else np.zeros(len(t.y), dtype=np.int64)


def random_split(t: Targets, fraction: float, seed: int, *, stratified: bool = True, what: str = "data.val_fraction") -> tuple[np.ndarray, np.ndarray]:
    """``(keep, held)`` indices: :func:`cnnkit.data.split_indices` on these targets (one-label targets
    stratified when asked)."""
    from ..errors import ConfigError

    try:
        return split_indices(_strata(t), fraction, seed, stratified=stratified and t.kind == "classes")
    except ValueError as e:
        raise ConfigError(f"{what}={fraction}: {e}") from None


def validation_split(t: Targets, cfg: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """``(train, val)`` indices for a data config: fold ``cfg.fold`` of ``cfg.folds`` (``cnnkit cv``), else
    ``cfg.val_fraction`` held out, else no validation split (as :func:`cnnkit.data.build_data` splits images)."""
    from ..errors import ConfigError
    from .splits import kfold_indices

    n = len(t.y)
    if cfg.folds is not None or cfg.fold is not None:
        if cfg.folds is None or cfg.fold is None or not 0 <= cfg.fold < cfg.folds:
            raise ConfigError(f"Expected data.folds and 0 <= data.fold < data.folds. Received: folds={cfg.folds}, fold={cfg.fold}")
        try:
            val = kfold_indices(_strata(t), cfg.folds, cfg.stratified and t.kind == "classes", cfg.split_seed)[cfg.fold]
        except ValueError as e:
            raise ConfigError(f"data.folds={cfg.folds}: {e}") from None
        return np.setdiff1d(np.arange(n), val), val
    if cfg.val_fraction > 0:
        return random_split(t, cfg.val_fraction, cfg.split_seed, stratified=cfg.stratified)
    return np.arange(n), None


def carve(t: Targets, split: str, fraction: float) -> np.ndarray:
    """The indices of ``split`` (``train``/``test``) for data that ships without a test split: the fixed
    seeded split every source uses (:data:`cnnkit.data._core.TEST_SPLIT_SEED`)."""
    from ._core import TEST_SPLIT_SEED

    keep, held = random_split(t, fraction, TEST_SPLIT_SEED, what="data.test_fraction")
    return keep if split == "train" else held


def check_labels_present(t: Targets, source: str) -> None:
    """Every label of multi-hot targets has a positive item in the training split (an empty class is an
    error, as an empty class folder is)."""
    if t.kind != "labels":
        return
    counts = t.y.sum(0)
    empty = [t.names[j] for j in range(len(t.names)) if counts[j] == 0]
    if empty:
        raise DataError(f"{source}: label {empty[0][:40]!r} has no item in the training split; remove it or add items")
