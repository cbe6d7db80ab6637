"""The model registry: builders registered with their paper metadata.

Every builder is keyword-only and typed; its metadata records the paper, year, input size (C, H, W or the
1-D/3-D equivalent), task, the published (or hand-computed) parameter count at default arguments, and the
default layer for Grad-CAM.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from ..registry import Registry

__all__ = ["MODELS", "register_model", "create_model", "list_models", "model_info"]

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")

F = TypeVar("F", bound=Callable[..., nn.Module])


def register_model(
    *,
    paper: str,
    year: int,
    input_size: tuple[int, ...],
    num_params: int | None,
    task: str = "classification",
    gradcam_layer: str | None = None,
    name: str | None = None,
    **extra: Any,
) -> Callable[[F], F]:
    """Register a model builder under its function name (or ``name``).

    ``num_params`` is the parameter count at the builder's default arguments, as published or as computed
    by hand from the paper's table; the registry-wide test checks the built model against it.
    """

    def deco(fn: F) -> F:
        MODELS.add(
            name or fn.__name__,
            fn,
            paper=paper,
            year=year,
            input_size=tuple(input_size),
            num_params=num_params,
            task=task,
            gradcam_layer=gradcam_layer,
            **extra,
        )
        return fn

    return deco


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model by name; unknown names raise with close-match suggestions."""
    return MODELS.get(name)(**kwargs)


def list_models(pattern: str = "*") -> list[str]:
    return [n for n in MODELS.names() if fnmatch.fnmatch(n, pattern)]


def model_info(name: str) -> dict[str, Any]:
    return MODELS.info(name)
