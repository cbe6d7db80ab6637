"""Rebuilding a run's data splits and feeding them to its model with the model's own preprocessing.

Shared by ``evaluate_run``, ``audit`` and ``predict``. The splits come from the run's resolved
``config.yaml`` through :func:`cnnkit.data.build_data` (same seeds, so the same validation split the
trainer held out); the pixels are converted with the preprocessing recorded in ``model.json``, not with
statistics recomputed on the data, so evaluating on another data set (``data=``) feeds the model exactly
what it was trained to expect.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import load_config
from ..data import apply_preprocessing, build_data
from ..errors import CnnkitError

__all__ = ["RunData", "load_run_data", "split_batches"]

SPLITS = ("train", "val", "test")


@dataclass
class RunData:
    bundle: Any
    cfg: Any
    class_names: list[str]


def load_run_data(run_dir: str | Path, loaded: Any, *, data: str | None = None, overrides: list[str] | None = None) -> RunData:
    """The data splits of a run (``config.yaml``), optionally with another data set (``data=NAME``)."""

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise CnnkitError(
            f"{cfg_path} not found: the run folder does not say which data it was trained on; "
            "use cnnkit.evaluate.evaluate_model from Python with your own loader"
        )
    cfg = load_config(cfg_path, overrides or [])
    if data is not None:
        cfg.data.name = data
        cfg.data.root = None  # the old root points at the old data set
    input_shape = tuple(loaded.info.get("input_shape") or loaded.preprocessing.get("input_shape") or ())
    if not input_shape:
        input_shape = tuple(getattr(loaded.model, "input_shape", ()))
    # The loaders stay on the CPU; batches are moved to the model's device one at a time.
    cfg.data.device_data = False
    bundle = build_data(cfg.data, input_shape=input_shape, device=torch.device("cpu"), seed=cfg.seed)
    names = list(loaded.class_names or bundle.class_names or [])
    num_model_classes = len(loaded.class_names) if loaded.class_names else None
    if num_model_classes is not None and bundle.num_classes != num_model_classes:
        raise CnnkitError(
            f"data set {cfg.data.name!r} has {bundle.num_classes} classes but the model was trained on "
            f"{num_model_classes}; evaluate on data with the same classes"
        )
    return RunData(bundle=bundle, cfg=cfg, class_names=names)


def split_loader(run: RunData, split: str) -> Any:
    if split not in SPLITS:
        raise CnnkitError(f"Unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    loader = getattr(run.bundle, split, None)
    if loader is None:
        if split == "val":
            raise CnnkitError(
                "this run has no validation split (it was trained with data.val_fraction=0); "
                "retrain with --set data.val_fraction=0.1"
            )
        raise CnnkitError(f"the data has no {split!r} split")
    return loader


def split_batches(
    loader: Any, preprocessing: dict[str, Any], *, batch_size: int = 512, limit: int | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(x, y)`` batches of a split: the loader's raw uint8 images converted with ``preprocessing``.

    Loaders without raw arrays (streaming image folders) are iterated as they are.
    """

    images = getattr(loader, "images", None)
    labels = getattr(loader, "labels", None)
    if images is None or labels is None or not preprocessing:
        seen = 0
        for x, y in loader:
            if limit is not None:
                if seen >= limit:
                    return
                x, y = x[: limit - seen], y[: limit - seen]
            seen += len(y)
            yield x, y
        return
    n = len(labels) if limit is None else min(limit, len(labels))
    for i in range(0, n, batch_size):
        j = min(i + batch_size, n)
        yield apply_preprocessing(images[i:j], preprocessing), torch.as_tensor(labels[i:j]).long().cpu()
