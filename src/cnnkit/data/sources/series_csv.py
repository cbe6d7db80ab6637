"""``series-csv``: series classification from delimited text, one series per row: ``label, v1, v2, ...``.

This is the UCR archive's own plain-text layout (the 2015 archive's comma-separated ``NAME_TRAIN`` /
``NAME_TEST`` files, the 2018 archive's tab-separated ``NAME_TRAIN.tsv`` / ``NAME_TEST.tsv``) and what a
spreadsheet export of series gives. ``data.root`` is one such file (a seeded stratified test split is held
out, as for ``series-npz``), or a folder with ``train.csv`` + ``test.csv`` or one ``*_TRAIN*`` + ``*_TEST*`` pair.

- The delimiter is a tab when the first line holds one, else a comma (``delimiter`` sets it).
- A first row whose value cells are not numbers is a header and is skipped.
- Empty cells, ``NaN`` and ``?`` inside a row are missing values (filled by linear interpolation, as in
  ``.ts`` files); empty cells at its end make a shorter series (unequal lengths are padded and masked).
- ``channels: C`` reads multivariate rows: the values are channel-major, ``C`` blocks of equal length.
- Labels are any strings; classes are the training labels, sorted (numerically when all are numbers).

Written here rather than with pandas or numpy.loadtxt: neither reports the file and line of a bad cell or
keeps rows of unequal length, and both are needed for the one-line errors the other readers give.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from ...config.schema import DataConfig
from ...errors import DataError
from .._core import DATASETS, DatasetSpec, check_root
from ..series import SeriesAugmentConfig
from ..series_build import hold_out_test, series_bundle

__all__ = ["SeriesCsvOptions", "read_series_rows"]

_MISSING = {"", "nan", "NaN", "NAN", "?"}


class SeriesCsvOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channels: int = Field(1, ge=1, le=4096, description="channels per row (values channel-major: C blocks of equal length)")
    delimiter: Literal["auto", ",", "\t", ";"] = Field("auto", description="auto: a tab when the first line holds one, else a comma")
    series_augment: SeriesAugmentConfig = Field(default_factory=SeriesAugmentConfig, description="batched series augmentation (training only)")


def _number(cell: str) -> float | None:
    """The cell's value (NaN for a missing one; infinities kept, to be refused), None when it is not a number."""
    c = cell.strip()
    if c in _MISSING:
        return math.nan
    try:
        return float(c)
    except ValueError:
        return None


def read_series_rows(path: Path, *, channels: int = 1, delimiter: str = "auto") -> tuple[list[np.ndarray], list[str]]:
    """``(cases, labels)``: one float64 ``(channels, L_i)`` case and its label string per data row of ``path``.

    Raises:
        DataError: naming the file and line: not UTF-8, a non-numeric or infinite value, a row without
            values, a length that ``channels`` does not divide, or no rows at all.

    Example:
        >>> import tempfile, os
        >>> p = Path(tempfile.mkdtemp()) / "s.csv"
        >>> _ = p.write_text("label,t0,t1,t2\\na,1,2,3\\nb,4,,6\\n")
        >>> cases, labels = read_series_rows(p)
        >>> labels, cases[1].tolist()
        (['a', 'b'], [[4.0, nan, 6.0]])
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror})") from None
    lines = text.splitlines()
    if delimiter == "auto":
        delimiter = "\t" if lines and "\t" in lines[0] else ","
    cases: list[np.ndarray] = []
    labels: list[str] = []
    for lineno, row in enumerate(csv.reader(lines, delimiter=delimiter), start=1):
        if not row or all(not c.strip() for c in row):
            continue
        label, cells = row[0].strip(), row[1:]
        while cells and not cells[-1].strip():  # trailing empty cells: a shorter series
            cells.pop()
        values = [_number(c) for c in cells]
        if lineno == 1 and any(v is None for v in values):
            continue  # a header row: names, not numbers
        if not label:
            raise DataError(f"{path}:{lineno}: the first cell (the label) is empty")
        if not values:
            raise DataError(f"{path}:{lineno}: a series of length 0 (a label and no values)")
        bad = next((i for i, v in enumerate(values) if v is None or math.isinf(v)), None)
        if bad is not None:
            raise DataError(f"{path}:{lineno}: value {bad + 1} ({cells[bad].strip()[:40]!r}) is not a finite number")
        if len(values) % channels:
            raise DataError(f"{path}:{lineno}: {len(values)} values do not split into data.channels={channels} equal blocks")
        cases.append(np.asarray(values, dtype=np.float64).reshape(channels, -1))
        labels.append(label)
    if not cases:
        raise DataError(f"{path}: no series rows (expected label, v1, v2, ... per line)")
    return cases, labels


def _class_names(labels: list[str]) -> list[str]:
    names = sorted(set(labels))
    try:
        return sorted(names, key=float)
    except ValueError:
        return names


def _files(root: Path) -> tuple[Path, Path | None]:
    """The training file and the test file (None: hold one out) under ``data.root``."""
    if root.is_file():
        return root, None
    if (root / "train.csv").is_file():
        return root / "train.csv", (root / "test.csv") if (root / "test.csv").is_file() else None
    train = sorted(p for p in root.iterdir() if p.is_file() and "_TRAIN" in p.name)
    test = sorted(p for p in root.iterdir() if p.is_file() and "_TEST" in p.name)
    if len(train) == 1 and len(test) <= 1:
        return train[0], test[0] if test else None
    raise DataError(f"series-csv: {root} holds neither train.csv nor one *_TRAIN / *_TEST file pair; point data.root at a file")


def _build(cfg: DataConfig, *, spec: DatasetSpec, input_shape: tuple[int, ...], device: torch.device, seed: int,
           rank: int = 0, world_size: int = 1) -> Any:
    opts = SeriesCsvOptions(**cfg.options())
    root = check_root(cfg.root)
    if root is None:
        raise DataError("series-csv: data.root must point at a CSV file (label, v1, v2, ... per row) or a folder of them")
    train_path, test_path = _files(root)
    xs, labels = read_series_rows(train_path, channels=opts.channels, delimiter=opts.delimiter)
    names = _class_names(labels)
    index = {n: i for i, n in enumerate(names)}
    y = np.asarray([index[label] for label in labels], dtype=np.int64)
    if test_path is not None:
        xt, test_labels = read_series_rows(test_path, channels=opts.channels, delimiter=opts.delimiter)
        unknown = sorted(set(test_labels) - set(index))
        if unknown:
            raise DataError(f"{test_path}: label {unknown[0][:40]!r} has no training series in {train_path}")
        yt = np.asarray([index[label] for label in test_labels], dtype=np.int64)
    else:  # one file: a fixed seeded stratified test split, as for series-npz
        (xs, y), (xt, yt) = hold_out_test(xs, y, cfg.test_fraction)
    return series_bundle(cfg, name="series-csv", train=(xs, y), test=(xt, yt), class_names=names, device=device,
                         seed=seed, rank=rank, world_size=world_size, augment=opts.series_augment)


DATASETS.add("series-csv", DatasetSpec(
    "series-csv", "series in delimited text, label then values per row (the UCR 2015/2018 text layout; data.root: a file or folder)",
    kind="series", build=_build, options=SeriesCsvOptions, needs_root=True, has_test_split=False,
))
