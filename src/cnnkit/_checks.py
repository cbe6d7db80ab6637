"""The one home of argument checks (layers, models, tasks): every message reads "Expected ... Received: ...".

Errors are :class:`~cnnkit.errors.ConfigError` (a ``ValueError``), so a bad argument in a config prints as
one line in the CLI. Builders validate before building anything, so a bad config fails at once instead of
with a shape error deep inside the first forward pass. Argument order everywhere: ``(value, name, ...)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .errors import ConfigError

__all__ = ["check_choice", "check_int", "check_prob", "check_real", "to_pair"]


def check_int(value: object, name: str, minimum: int = 1) -> int:
    """An integer >= ``minimum``; ``bool`` is refused (``num_classes=True`` is always a mistake)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"Expected {name} to be an integer >= {minimum}. Received: {name}={value!r}")
    return value


def to_pair(value: int | Sequence[int], name: str, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints -> a validated pair (torch's ``_pair`` plus the checks)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 2:
            raise ConfigError(f"Expected {name} to be an integer or a pair of integers. Received: {name}={value!r}")
        return check_int(value[0], name, minimum), check_int(value[1], name, minimum)
    v = check_int(value, name, minimum)
    return v, v


def check_real(value: object, name: str, *, low: float = -math.inf, high: float = math.inf,
               low_open: bool = False, high_open: bool = False, allow_inf: bool = False) -> float:
    """A real number within [low, high] (ends open as asked); NaN is always refused."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = (allow_inf or math.isfinite(v)) and (v > low if low_open else v >= low) and (
            v < high if high_open else v <= high)
    if not ok:
        lo = f"{low} {'<' if low_open else '<='} " if low > -math.inf else ""
        hi = f" {'<' if high_open else '<='} {high}" if high < math.inf else ""
        kind = "" if allow_inf else "a finite number "
        raise ConfigError(f"Expected {kind}{lo}{name}{hi}. Received: {name}={value!r}")
    return float(value)  # type: ignore[arg-type]


def check_prob(value: object, name: str = "p") -> float:
    """A drop probability: 0 <= p < 1 (p = 1 would drop everything and divide by zero)."""
    # NaN fails both comparisons, so it is refused too.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"Expected 0 <= {name} < 1. Received: {name}={value!r}")
    return float(value)


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """One of ``choices``; the error lists them."""
    if value not in choices:
        raise ConfigError(f"Expected {name} to be one of {', '.join(map(repr, choices))}. Received: {name}={value!r}")
    return value  # type: ignore[return-value]
