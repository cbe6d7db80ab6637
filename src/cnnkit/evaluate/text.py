"""Text inputs for ``predict`` and ``explain``: raw strings (``--text``) and text files holding one input
per line, encoded with the vocabulary the run saved (``model.json``: ``data_meta.vocab``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..data.sources.text import read_text_file, vocab_of
from ..data.tokenize import Vocab, encode
from ..errors import CnnkitError, DataError

__all__ = ["read_text_inputs", "run_vocab", "encode_texts"]

_MAX_LINES = 1_000_000


def run_vocab(loaded: Any) -> Vocab:
    """The vocabulary of a text run."""
    return vocab_of(loaded.info.get("data_meta") or {}, str(Path(loaded.path) / "model.json"))


def read_text_inputs(
    inputs: list[str | Path], texts: list[str] | None = None
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(items, problems)``: ``(name, text)`` for each ``--text`` string (named ``text[i]``) and each
    non-empty line of each file (``file:line``); ``(input, error)`` for a file that cannot be read."""
    items: list[tuple[str, str]] = [(f"text[{i}]", t) for i, t in enumerate(texts or [])]
    problems: list[tuple[str, str]] = []
    for p in map(Path, inputs):
        if not p.is_file():
            problems.append((str(p), f"input not found: {p}" if not p.exists() else f"{p} is not a text file"))
            continue
        try:
            content = read_text_file(p)
        except DataError as exc:
            problems.append((str(p), str(exc)))
            continue
        lines = content.splitlines()
        if len(lines) > _MAX_LINES:
            problems.append((str(p), f"{p} has more than {_MAX_LINES} lines; split it"))
            continue
        found = [(f"{p}:{n}", line) for n, line in enumerate(lines, start=1) if line.strip()]
        if not found:
            problems.append((str(p), f"{p} holds no text (one input per line)"))
        items += found
    return items, problems


def encode_texts(items: list[tuple[str, str]], vocab: Vocab) -> torch.Tensor:
    """Token ids ``(N, L)`` of the items' texts."""
    if not items:
        raise CnnkitError("no text inputs: pass --text \"...\" or text files with one input per line")
    return encode([t for _, t in items], vocab)
