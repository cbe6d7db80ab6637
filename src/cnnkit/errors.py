"""User-facing errors.

Every error a user can cause (bad config, bad file, bad shape, unknown name) is a :class:`CnnkitError`.
The CLI prints such errors as one line and exits with status 2, without a traceback; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["CnnkitError", "ConfigError", "DataError", "UnknownNameError", "close_matches"]


class CnnkitError(Exception):
    """Base class for errors caused by user input (configs, files, arguments)."""

    exit_code: int = 2


class ConfigError(CnnkitError, ValueError):
    """A configuration value is missing, unknown or of the wrong type."""


class DataError(CnnkitError, ValueError):
    """A data file is missing, truncated, corrupt, or does not match what was expected."""


class UnknownNameError(CnnkitError, KeyError):
    """A registry lookup failed; the message carries close-match suggestions."""

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return str(self.args[0]) if self.args else ""


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Close matches of ``name`` among ``candidates`` (``-`` and ``_`` compared alike)."""
    candidates = list(candidates)
    norm = {c.replace("-", "_").lower(): c for c in candidates}
    hits = difflib.get_close_matches(name.replace("-", "_").lower(), list(norm), n=n, cutoff=0.6)
    return [norm[h] for h in hits]


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A '; did you mean ...?' suffix, or '' when nothing is close."""
    hits = close_matches(name, candidates)
    if not hits:
        return ""
    return "; did you mean " + " or ".join(repr(h) for h in hits) + "?"
