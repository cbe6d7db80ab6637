"""Name -> object registries for models, layers, datasets, optimizers and schedules.

Configs choose components by registry name, never by import path, so a config cannot run arbitrary
code. Unknown names raise :class:`~cnnkit.errors.UnknownNameError` with close-match suggestions;
registering a name twice raises (timm only warns, which hides bugs).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from .errors import UnknownNameError, did_you_mean

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """A registry of named objects with per-entry metadata.

    Example:
        >>> MODELS = Registry("model")
        >>> @MODELS.register(paper="LeCun et al. 1998")
        ... def lenet5(*, num_classes: int = 10): ...
        >>> MODELS.get("lenet5") is lenet5
        True
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def add(self, name: str, obj: T, **metadata: Any) -> T:
        if not isinstance(name, str) or not name:
            raise ValueError(f"Expected a non-empty {self.kind} name. Received: {name!r}")
        if name in self._entries:
            raise ValueError(f"Duplicate {self.kind} name {name!r}: already registered to {self._entries[name]!r}")
        self._entries[name] = obj
        self._meta[name] = dict(metadata)
        return obj

    def register(self, name: str | None = None, **metadata: Any) -> Callable[[T], T]:
        """Decorator; the name defaults to the object's ``__name__``."""

        def deco(obj: T) -> T:
            return self.add(name or obj.__name__, obj, **metadata)  # type: ignore[attr-defined]

        return deco

    def canonical(self, name: str) -> str:
        """The registered spelling of ``name`` (``-`` and ``_`` are interchangeable: ``fashion_mnist`` ->
        ``fashion-mnist``).

        Raises:
            UnknownNameError: no such entry; the message suggests close matches or lists the entries.
        """
        if isinstance(name, str):
            alt = name.replace("-", "_")
            for cand in (name, alt, alt.replace("_", "-")):
                if cand in self._entries:
                    return cand
        hint = did_you_mean(str(name), self._entries)
        if not hint:
            hint = f"; registered {self.kind}s: {', '.join(sorted(self._entries))}"
        raise UnknownNameError(f"Unknown {self.kind} {name!r}{hint}")

    def get(self, name: str) -> T:
        return self._entries[self.canonical(name)]

    def info(self, name: str) -> dict[str, Any]:
        key = self.canonical(name)
        return dict(self._meta[key], name=key)

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"
