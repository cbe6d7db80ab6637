"""The embedded default run: what ``cnnkit train`` does with no config.

LeNet-5 (the ReLU/max-pool "modern" variant) on scikit-learn's 8x8 digits scaled to 32x32. It is kept
identical to ``configs/lenet5-digits.yaml`` (a test checks), which documents the measurements behind each
choice; it lives in code because ``configs/`` is not installed with the package.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_RUN"]

DEFAULT_RUN: dict[str, Any] = {
    "name": "lenet5-digits",
    "seed": 0,
    "model": {"name": "lenet5", "variant": "modern"},
    "data": {"name": "digits", "batch_size": 64, "test_fraction": 0.25, "augment": {"translate": 2}},
    "train": {"epochs": 20, "precision": "fp32", "threads": 1, "checkpoint": {"every_epochs": 5}},
    "optim": {"name": "adam", "lr": 0.002},
    "schedule": {"name": "cosine"},
}
