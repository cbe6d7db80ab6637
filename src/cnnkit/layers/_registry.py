"""The layer registry: every layer usable by name in configs and model specs.

Names are the snake_case of the class name (``Conv2d`` -> ``conv2d``, ``MixedPool2d`` -> ``mixed_pool2d``,
``BatchNorm2d`` -> ``batch_norm2d``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from ..registry import Registry

__all__ = ["LAYERS", "register_layer", "snake_case"]

LAYERS: Registry[type[nn.Module]] = Registry("layer")

M = TypeVar("M", bound=type)


_ACRONYMS = {"PReLU": "Prelu", "ReLU": "Relu", "GELU": "Gelu", "SiLU": "Silu", "SELU": "Selu", "ELU": "Elu", "RoI": "Roi", "LP": "Lp"}


def snake_case(name: str) -> str:
    """``MixedPool2d`` -> ``mixed_pool2d``; ``ReLU`` -> ``relu``; ``RoIPool`` -> ``roi_pool``."""
    for acronym, word in _ACRONYMS.items():  # keep "ReLU" one word, not "re_lu"
        name = name.replace(acronym, word)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    name = re.sub(r"([a-z])([A-Z])", r"\1_\2", name)
    name = re.sub(r"(?<=[a-z])_(?=\d)", "", name)
    return name.lower()


def register_layer(cls: M | None = None, *, name: str | None = None, **metadata: Any) -> M | Callable[[M], M]:
    """Class decorator registering a layer under ``name`` (default: snake_case of the class name)."""

    def deco(c: M) -> M:
        LAYERS.add(name or snake_case(c.__name__), c, **metadata)
        return c

    return deco(cls) if cls is not None else deco
