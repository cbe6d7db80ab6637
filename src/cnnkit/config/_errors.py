"""One-line messages for pydantic validation errors, naming the config key.

``config key train.epoch: unknown key; did you mean 'epochs'?``,
``config key train.epochs: expected an integer, received 'ten' (str)``,
``config key optim.name: Unknown optimizer 'sgdd'; did you mean 'sgd'?``.
Shared by the loader (whole configs) and the schema (assignments to a section's field).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import did_you_mean

__all__ = ["format_validation_error"]

_TYPE_WORDS = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "finite_number": "a finite number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "tuple_type": "a list",
    "list_type": "a list",
}

# Errors raised by the schema's own validators (registry names, model name-or-spec): their message is
# already the whole sentence.
_OWN_KINDS = ("unknown_name", "model_name_or_spec")


def _fields_at(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the schema section at ``loc`` below ``root`` (for suggestions)."""
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return []
        ann = model.model_fields[part].annotation
        model = None
        for cand in getattr(ann, "__args__", ()) or (ann,):
            if isinstance(cand, type) and issubclass(cand, BaseModel):
                model = cand
    return list(model.model_fields) if model is not None else []


def _non_finite(text: str) -> bool:
    try:
        return not math.isfinite(float(text))
    except ValueError:
        return False


def _format_one(err: dict[str, Any], root: type[BaseModel], prefix: str) -> str:
    loc = tuple(err["loc"])
    path = ".".join(str(p) for p in ((prefix,) if prefix else ()) + loc) or "(top level)"
    kind = err["type"]
    value = err.get("input")
    if kind in _OWN_KINDS:
        return f"config key {path}: {err['msg']}"
    if kind == "whole_line":  # a nested check already named the key (a dataset's own options)
        return str(err["msg"])
    if kind == "extra_forbidden":
        parent, key = loc[:-1], str(loc[-1])
        return f"config key {path}: unknown key{did_you_mean(key, _fields_at(root, parent)) or ''}"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"config key {path}: expected one of {expected}, received {value!r}"
    if kind == "float_type" and isinstance(value, str) and _non_finite(value):
        kind = "finite_number"  # `--set optim.lr=inf` arrives as the string 'inf'
    if kind in _TYPE_WORDS:
        return f"config key {path}: expected {_TYPE_WORDS[kind]}, received {value!r} ({type(value).__name__})"
    return f"config key {path}: {err['msg'].lower()}, received {value!r}"


def format_validation_error(exc: ValidationError, root: type[BaseModel], prefix: str = "") -> str:
    """The first error of ``exc`` as one line (``(and N more)`` when there are others).

    Args:
        exc: the error pydantic raised validating ``root``.
        root: the schema class validated (for unknown-key suggestions).
        prefix: the key path of ``root`` in a whole config (``"data.augment"``), empty for the whole config.
    """
    errors = exc.errors()
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return _format_one(errors[0], root, prefix) + more  # type: ignore[arg-type]
