"""From series in memory to a :class:`~cnnkit.data.DataBundle`: the one path every series source
(``ucr``, ``series-npz``, ``series-csv``, ``mnist1d``) takes, so splits, normalization, padding, augmentation and what
``predict`` replays are the same for all of them."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..config.schema import DataConfig
from ..errors import DataError
from ._core import TEST_SPLIT_SEED
from .build import DataBundle, _limit, _val_split
from .loader import TensorLoader
from .series import SeriesAugment, SeriesAugmentConfig, fill_missing, pad_series, series_transform, znormalize
from .splits import split_indices

__all__ = ["SERIES_PREPROCESSING_KIND", "hold_out_test", "prepare_series", "series_bundle", "series_preprocessing"]

SERIES_PREPROCESSING_KIND = "series"


def series_preprocessing(*, channels: int, length: int, normalize: bool) -> dict[str, Any]:
    """What ``model.json`` records so that ``predict`` converts a raw series exactly as training did."""
    return {
        "kind": SERIES_PREPROCESSING_KIND,
        "input_shape": [int(channels), int(length)],
        "normalize": "series" if normalize else "none",
        "missing": "linear",
        "padding": "nan-end",
    }


def prepare_series(series: list[np.ndarray], preprocessing: dict[str, Any], *, length: int | None = None, source: str = "series") -> torch.Tensor:
    """Raw cases ``(C, L_i)`` -> the model's float32 ``(N, C, L)`` as recorded in ``preprocessing``: missing
    values filled, NaN-padded to ``length`` (default: the longest case), normalized per series.

    Raises:
        DataError: a case of length 0, or with another number of channels than the model reads.
    """
    channels = int(preprocessing.get("input_shape", [0])[0] or 0)
    cases = []
    for i, s in enumerate(series):
        s = np.asarray(s, dtype=np.float64)
        if s.ndim == 1:
            s = s[None, :]
        if s.ndim != 2:
            raise DataError(f"{source}: case {i} has shape {s.shape}; expected (L,) or (C, L)")
        if s.shape[1] == 0:
            raise DataError(f"{source}: case {i} is a series of length 0")
        if channels and s.shape[0] != channels:
            raise DataError(f"{source}: case {i} has {s.shape[0]} channels but the model reads {channels}")
        if not np.isfinite(s[~np.isnan(s)]).all():
            raise DataError(f"{source}: case {i} holds infinite values")
        cases.append(fill_missing(s))
    if not cases:
        raise DataError(f"{source} holds no series")
    x = pad_series(cases, length)
    if preprocessing.get("normalize", "series") == "series":
        x = znormalize(x)
    return x


def hold_out_test(
    xs: list[np.ndarray], y: np.ndarray, fraction: float
) -> tuple[tuple[list[np.ndarray], np.ndarray], tuple[list[np.ndarray], np.ndarray]]:
    """``(train, test)`` cases and labels: the fixed seeded stratified test split of a source that ships
    none (``data.test_fraction``), the same for every such series source."""
    keep, held = split_indices(y, fraction, TEST_SPLIT_SEED)
    return ([xs[i] for i in keep], y[keep]), ([xs[i] for i in held], y[held])


def series_bundle(
    cfg: DataConfig,
    *,
    name: str,
    train: tuple[list[np.ndarray], np.ndarray],
    test: tuple[list[np.ndarray], np.ndarray],
    class_names: list[str],
    device: torch.device,
    seed: int,
    rank: int,
    world_size: int,
    augment: SeriesAugmentConfig | dict[str, Any] | None = None,
    length: int | None = None,
    meta: dict[str, Any] | None = None,
) -> DataBundle:
    """Split, prepare and batch one series classification dataset.

    Args:
        cfg: the ``data`` section (batch sizes, ``val_fraction`` / folds, ``limit_*``, ``normalize``).
        train, test: raw cases ``(C, L_i)`` and int64 class indices.
        class_names: one name per class index.
        augment: the dataset's ``augment`` option (training batches only).
        length: pad or cut every case to this many steps (default: the longest training case; longer test
            cases are kept whole, padded together with the rest).
    """
    (xs_tr, y_tr), (xs_te, y_te) = train, test
    if not xs_tr or not xs_te:
        raise DataError(f"{name}: the {'training' if not xs_tr else 'test'} split holds no series")
    first = np.asarray(xs_tr[0])
    c = 1 if first.ndim == 1 else int(first.shape[0])
    y_tr, y_te = np.asarray(y_tr, dtype=np.int64), np.asarray(y_te, dtype=np.int64)
    keep_tr = _limit(y_tr, cfg.limit_train, cfg.split_seed, cfg.stratified)
    keep_te = _limit(y_te, cfg.limit_test, cfg.split_seed, cfg.stratified)
    xs_tr, y_tr = [xs_tr[i] for i in keep_tr], y_tr[keep_tr]
    xs_te, y_te = [xs_te[i] for i in keep_te], y_te[keep_te]
    train_len = max(np.asarray(s).shape[-1] for s in xs_tr)
    seq_len = int(length or train_len)
    pre = series_preprocessing(channels=c, length=seq_len, normalize=cfg.normalize)
    x_tr = prepare_series(xs_tr, pre, length=seq_len, source=f"{name} (train)")
    te_len = length or max(seq_len, max(np.asarray(s).shape[-1] for s in xs_te))
    x_te = prepare_series(xs_te, pre, length=te_len, source=f"{name} (test)")
    train_idx, val_idx = _val_split(y_tr, cfg)
    yt = torch.from_numpy(y_tr)
    common: dict[str, Any] = dict(seed=seed, device=device, keep_on_device=cfg.device_data)
    aug = SeriesAugment(augment) if augment is not None else None
    tr_idx = torch.as_tensor(train_idx, dtype=torch.long)
    loader = TensorLoader(
        x_tr[tr_idx], yt[tr_idx], batch_size=cfg.batch_size, shuffle=True, transform=series_transform(aug),
        rank=rank, world_size=world_size, **common,
    )
    val = None
    if val_idx is not None:
        vi = torch.as_tensor(val_idx, dtype=torch.long)
        val = TensorLoader(x_tr[vi], yt[vi], batch_size=cfg.eval_batch_size, **common)
    test_loader = TensorLoader(x_te, torch.from_numpy(y_te), batch_size=cfg.eval_batch_size, **common)
    return DataBundle(
        train=loader, val=val, test=test_loader, num_classes=len(class_names), class_names=list(class_names),
        input_shape=(c, seq_len), preprocessing=pre, train_indices=train_idx, val_indices=val_idx, dataset=name,
        kind="series", model_kwargs={"in_channels": c, "num_classes": len(class_names), "seq_len": seq_len},
        meta={"length": seq_len, "channels": c, **(meta or {})},
    )
