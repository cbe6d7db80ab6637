"""``ucr``: the UCR/UEA time-series classification archives, one problem at a time
(``data: {name: ucr, dataset: GunPoint}``).

A problem is the pair ``NAME_TRAIN.ts`` / ``NAME_TEST.ts`` (read by :func:`.ts_format.read_ts`), looked for
in ``data.root`` (the folder itself or ``data.root/NAME``) when set, and only there; else in
``$CNNKIT_DATA/ucr[/NAME]``, ``~/.cache/cnnkit/ucr[/NAME]``, ``/usr/share/datasets/ucr[/NAME]``, then among
the problems the ``aeon`` package ships in its wheel (GunPoint, ItalyPowerDemand, ArrowHead, OSULeaf,
ACSF1, PickupGestureWiimoteZ, BasicMotions, JapaneseVowels, ...). aeon is used only as a place where files
lie; cnnkit reads them itself. ``cnnkit datasets download ucr --problem NAME`` fetches any other problem
into ``~/.cache/cnnkit/ucr/NAME`` (:mod:`.ucr_download`).

Class indices follow the order of the labels in the training file's ``@classLabel`` line.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from ..._text import safe_text
from ...config.schema import DataConfig
from ...errors import DataError
from .._core import DATASETS, DatasetSpec, check_root, search_dirs
from ..series import SeriesAugmentConfig
from ..series_build import series_bundle
from .ts_format import TsFile, read_ts
from .ucr_download import download_problems

__all__ = ["UcrOptions", "aeon_data_dir", "bundled_problems", "find_problem", "load_problem"]


class UcrOptions(BaseModel):
    """Options of the ``ucr`` dataset."""

    model_config = ConfigDict(extra="forbid")
    dataset: str = Field("GunPoint", min_length=1, description="the problem's name: NAME_TRAIN.ts / NAME_TEST.ts")
    length: int | None = Field(None, ge=1, description="pad or cut every series to this many steps")
    series_augment: SeriesAugmentConfig = Field(default_factory=SeriesAugmentConfig, description="batched series augmentation (training only)")


def aeon_data_dir() -> Path | None:
    """The folder of datasets inside the installed ``aeon`` package, or None without aeon.

    Found without importing aeon (which imports numba and takes seconds).
    """
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    return folder if folder.is_dir() else None


def bundled_problems() -> list[str]:
    """Names of the classification problems aeon ships (``NAME_TRAIN.ts`` with a class label line)."""
    folder = aeon_data_dir()
    if folder is None:
        return []
    names = []
    for f in sorted(folder.glob("*/*_TRAIN.ts")):
        head = f.read_text(encoding="utf-8", errors="replace")[:20000].lower()
        if "@classlabel true" in head:
            names.append(f.name[: -len("_TRAIN.ts")])
    return names


def _candidates(name: str, root: str | None) -> list[Path]:
    if root is not None:
        r = check_root(root)
        assert r is not None
        return [r, r / name]
    dirs = []
    for d in search_dirs("ucr"):
        dirs += [d / name, d]
    aeon = aeon_data_dir()
    if aeon is not None:
        dirs.append(aeon / name)
        dirs += sorted(p.parent for p in aeon.glob(f"*/{name}_TRAIN.ts"))  # JapaneseVowels_eq lies in JapaneseVowels/
    return dirs


def find_problem(name: str, root: str | None = None) -> tuple[Path, Path]:
    """``(train file, test file)`` of problem ``name``.

    Raises:
        DataError: not found (naming where it looked), or ``name`` is not a plain file name.
    """
    if "/" in name or "\\" in name or name.startswith("."):
        raise DataError(f"ucr: data.dataset must be a problem name such as GunPoint. Received: {safe_text(name, 80)!r}")
    looked = _candidates(name, root)
    for d in looked:
        tr, te = d / f"{name}_TRAIN.ts", d / f"{name}_TEST.ts"
        if tr.is_file() and te.is_file():
            return tr, te
    where = ", ".join(str(d) for d in looked[:6]) or "nowhere"
    hint = "" if aeon_data_dir() is not None else "; `pip install aeon` ships GunPoint and a few others"
    bundled = bundled_problems()
    extra = f"; bundled problems: {', '.join(bundled)}" if bundled and root is None else ""
    raise DataError(f"ucr problem {safe_text(name, 80)!r} not found: need {name}_TRAIN.ts and {name}_TEST.ts; looked in {where}{hint}{extra}")


def _labels(ts: TsFile, class_names: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(class_names)}
    out = np.empty(len(ts.series), dtype=np.int64)
    for i, lab in enumerate(ts.labels or []):
        if lab not in index:
            raise DataError(f"{ts.path}: case {i + 1} has label {safe_text(lab, 40)!r}, not among the training labels")
        out[i] = index[lab]
    return out


def load_problem(name: str, root: str | None = None) -> tuple[TsFile, TsFile, list[str]]:
    """Read both files of a problem; returns ``(train, test, class_names)``.

    Raises:
        DataError: missing files, a header that lies, files without class labels, or a test label the
            training file does not declare.
    """
    tr_path, te_path = find_problem(name, root)
    train, test = read_ts(tr_path), read_ts(te_path)
    for ts in (train, test):
        if ts.labels is None or ts.header.get("targetlabel"):
            raise DataError(f"{ts.path} has no class labels (@classLabel true); ucr reads classification problems")
    if train.num_channels != test.num_channels:
        raise DataError(f"{te_path}: {test.num_channels} dimensions, but {tr_path} has {train.num_channels}")
    class_names = train.class_labels or sorted(set(train.labels or []))
    return train, test, list(class_names)


def _build(cfg: DataConfig, *, spec: DatasetSpec, input_shape: tuple[int, ...], device: torch.device, seed: int,
           rank: int = 0, world_size: int = 1) -> Any:
    opts = UcrOptions(**cfg.options())
    train, test, class_names = load_problem(opts.dataset, cfg.root)
    return series_bundle(
        cfg, name="ucr", train=(train.series, _labels(train, class_names)), test=(test.series, _labels(test, class_names)),
        class_names=class_names, device=device, seed=seed, rank=rank, world_size=world_size, augment=opts.series_augment,
        length=opts.length, meta={"dataset": opts.dataset},
    )


DATASETS.add(
    "ucr",
    DatasetSpec(
        "ucr",
        "a UCR/UEA time-series classification problem in .ts files (data.dataset: NAME; aeon's bundled ones too)",
        kind="series",
        build=_build,
        options=UcrOptions,
        has_test_split=True,
        # `cnnkit datasets` lists it as present when aeon is installed (its wheel ships a few problems).
        bundled="aeon" if aeon_data_dir() is not None else None,
        # `cnnkit datasets download ucr --problem NAME`: one problem at a time from the archive's mirror.
        extra={"download_problems": download_problems},
    ),
)
