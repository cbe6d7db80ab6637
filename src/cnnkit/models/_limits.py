"""Bounds on what a model description may ask for, checked before anything is allocated.

A ``model.json`` received with a run folder is data: ``{"num_classes": 6000000}`` must be refused in
microseconds, not after a 2 GB weight matrix was filled. :func:`~cnnkit.models.build_model` checks the
obvious sizes (``num_classes``, ``in_channels``, the input size) against fixed bounds, then builds the
model on the ``meta`` device (shapes only, no storage) and refuses one whose weights exceed
:func:`max_params`; a spec additionally has each layer's output size bounded during shape propagation.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ConfigError

__all__ = [
    "DEFAULT_MAX_PARAMS",
    "MAX_ACTIVATION_ELEMENTS",
    "MAX_INPUT_ELEMENTS",
    "MAX_IN_CHANNELS",
    "MAX_NUM_CLASSES",
    "MAX_PARAMS_ENV",
    "check_activation",
    "check_input_shape",
    "check_size",
    "check_weights",
    "count_weights",
    "max_params",
]

MAX_PARAMS_ENV = "CNNKIT_MAX_PARAMS"
# 2 GB of float32 weights; the largest registered model (VGG-16) holds 138 million.
DEFAULT_MAX_PARAMS = 500_000_000
MAX_NUM_CLASSES = 1_000_000
MAX_IN_CHANNELS = 4_096
# Per sample: 3 x 3,000 x 3,000 images fit; the spec's 2-sample dummy batch stays under 256 MB.
MAX_INPUT_ELEMENTS = 2**25
# Per sample, for each layer output during a spec's shape propagation (a 64 x 1,024 x 1,024 map is 2**26).
MAX_ACTIVATION_ELEMENTS = 2**27


def max_params() -> int:
    """The largest number of weights (parameters plus buffers) a model may hold: ``$CNNKIT_MAX_PARAMS``,
    default 500,000,000."""
    raw = os.environ.get(MAX_PARAMS_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_MAX_PARAMS
    try:
        value = int(raw.replace("_", "").replace(",", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"Expected {MAX_PARAMS_ENV} to be a positive integer. Received: {MAX_PARAMS_ENV}={raw!r}")
    return value


def check_size(name: str, value: object, limit: int) -> None:
    """Raise unless ``value`` is an int in ``1..limit`` (bools and other types are left to the builder)."""
    if not isinstance(value, int) or isinstance(value, bool):
        return
    if not 1 <= value <= limit:
        raise ConfigError(f"Expected 1 <= {name} <= {limit:,}. Received: {name}={value}")


def check_input_shape(shape: Sequence[int], where: str = "input") -> None:
    """Raise when one sample of ``shape`` is larger than :data:`MAX_INPUT_ELEMENTS` or has too many channels."""
    if shape and len(shape) >= 2:
        check_size(f"{where} channels", shape[0], MAX_IN_CHANNELS)
    n = math.prod(int(v) for v in shape)
    if n > MAX_INPUT_ELEMENTS:
        raise ConfigError(
            f"Expected {where} of at most {MAX_INPUT_ELEMENTS:,} values per sample. "
            f"Received: {list(shape)} ({n:,} values)"
        )


def count_weights(module: nn.Module) -> int:
    """Elements in ``module``'s parameters and buffers, shared tensors counted once (works on ``meta``)."""
    seen: dict[int, int] = {}
    for t in (*module.parameters(), *module.buffers()):
        seen[id(t)] = t.numel()
    return sum(seen.values())


def check_weights(n: int, what: str) -> None:
    limit = max_params()
    if n > limit:
        raise ConfigError(
            f"{what} would hold {n:,} weights, more than the limit of {limit:,}; "
            f"set {MAX_PARAMS_ENV} to allow larger models"
        )


def check_activation(y: torch.Tensor, what: str) -> None:
    n = math.prod(int(v) for v in y.shape[1:])
    if n > MAX_ACTIVATION_ELEMENTS:
        raise ConfigError(
            f"{what}: its output ({', '.join(['B', *map(str, y.shape[1:])])}) has {n:,} values per sample, "
            f"more than the limit of {MAX_ACTIVATION_ELEMENTS:,}"
        )
