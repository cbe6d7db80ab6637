"""Tokenizers and vocabularies for text: word level (Kim 2014) and character level (Zhang, Zhao & LeCun
2015), saved as JSON and replayed by ``predict`` on raw strings.

A :class:`Vocab` is built from the training split only: tokens seen at least ``min_count`` times, the
``max_size`` most frequent (ties broken alphabetically, so the result does not depend on file order),
after the padding token ``<pad>`` (id 0) and the unknown token ``<unk>`` (id 1). The character vocabulary
is the paper's fixed alphabet instead (its 69 distinct characters, in the paper's order).

:func:`encode` turns strings into a fixed-length ``(N, L)`` int64 tensor: truncated, or padded with id 0 at
the end. Character sequences are reversed first, as in Zhang et al. (Sec. 2.2: "the character
quantization order is backward so that the latest reading on characters is always placed near the
begin of the output").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import DataError

__all__ = ["PAD", "UNK", "ZHANG2015_ALPHABET", "Vocab", "build_vocab", "encode", "tokenize"]

PAD, UNK = "<pad>", "<unk>"
# Zhang, Zhao & LeCun (2015), Sec. 2.2, in the paper's order. The paper says 70 characters; its list holds
# 69 distinct ones (the hyphen appears twice), the last being the new line.
ZHANG2015_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-,;.!?:'\"/\\|_@#$%^&*~`+=<>()[]{}\n"
_WORD = re.compile(r"[\w]+(?:'[\w]+)?|[^\w\s]", re.UNICODE)
_LEVELS = ("word", "char")
_MAX_VOCAB_JSON = 5_000_000  # tokens a saved vocabulary may list (bounds what a received run can ask for)


def tokenize(text: str, *, level: str = "word", lowercase: bool = True) -> list[str]:
    """Split ``text`` into tokens.

    ``word``: runs of letters/digits (with one inner apostrophe: ``don't``) and single punctuation marks,
    like Kim's ``clean_str``; ``char``: the characters themselves.

    Example:
        >>> tokenize("Don't panic, it's FINE!")
        ["don't", 'panic', ',', "it's", 'fine', '!']
    """
    if level not in _LEVELS:
        raise ValueError(f"Expected level 'word' or 'char'. Received: level={level!r}")
    if lowercase:
        text = text.lower()
    return list(text) if level == "char" else _WORD.findall(text)


@dataclass
class Vocab:
    """Token <-> id map with ``<pad>`` = 0 and ``<unk>`` = 1; plus how text was tokenized.

    Attributes:
        itos: the tokens by id.
        level: ``word`` or ``char``.
        lowercase: whether text is lowercased first.
        max_length: the sequence length L every input is brought to.
        reverse: characters in backward order (the character-level default).
    """

    itos: list[str]
    level: str = "word"
    lowercase: bool = True
    max_length: int = 56
    reverse: bool = False

    def __post_init__(self) -> None:
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def ids(self, text: str) -> list[int]:
        toks = tokenize(text, level=self.level, lowercase=self.lowercase)
        if self.reverse:
            toks = toks[::-1]
        unk = self.stoi[UNK]
        return [self.stoi.get(t, unk) for t in toks]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "cnnkit-vocab/1", "level": self.level, "lowercase": self.lowercase,
            "max_length": self.max_length, "reverse": self.reverse, "itos": list(self.itos),
        }

    @classmethod
    def from_json(cls, d: Any, *, source: str = "vocabulary") -> Vocab:
        """Rebuild a saved vocabulary; a malformed one is a one-line :class:`DataError`."""
        if not isinstance(d, dict) or d.get("format") != "cnnkit-vocab/1":
            raise DataError(f"{source} is not a cnnkit vocabulary (format 'cnnkit-vocab/1')")
        itos = d.get("itos")
        if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos) or len(itos) > _MAX_VOCAB_JSON:
            raise DataError(f"{source}: expected itos to be a list of at most {_MAX_VOCAB_JSON} strings")
        if itos[:2] != [PAD, UNK] or len(set(itos)) != len(itos):
            raise DataError(f"{source}: expected unique tokens starting with {PAD!r}, {UNK!r}")
        level, length = d.get("level"), d.get("max_length")
        if level not in _LEVELS or not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= 1 << 20:
            raise DataError(f"{source}: expected level 'word'/'char' and 1 <= max_length <= 2^20")
        return cls(list(itos), level=level, lowercase=bool(d.get("lowercase", True)), max_length=length,
                   reverse=bool(d.get("reverse", False)))


def build_vocab(
    texts: Iterable[str],
    *,
    level: str = "word",
    min_count: int = 1,
    max_size: int | None = None,
    lowercase: bool = True,
    max_length: int = 56,
    alphabet: str | None = None,
) -> Vocab:
    """The vocabulary of ``texts`` (the training split): see the module docstring.

    Args:
        level: ``word`` or ``char``.
        min_count: drop tokens seen fewer times (word level).
        max_size: keep at most this many tokens besides ``<pad>`` and ``<unk>``; None: all.
        max_length: the sequence length inputs are brought to.
        alphabet: character level: the fixed alphabet (default the paper's); None with ``level="word"``.

    Example:
        >>> v = build_vocab(["a b b", "b c"], min_count=2)
        >>> v.itos
        ['<pad>', '<unk>', 'b']
    """
    if min_count < 1:
        raise ValueError(f"Expected min_count >= 1. Received: min_count={min_count}")
    if max_size is not None and max_size < 1:
        raise ValueError(f"Expected max_size >= 1. Received: max_size={max_size}")
    if level == "char":
        chars = list(dict.fromkeys(alphabet if alphabet is not None else ZHANG2015_ALPHABET))
        return Vocab([PAD, UNK, *chars], level="char", lowercase=lowercase, max_length=max_length, reverse=True)
    counts: Counter[str] = Counter()
    for t in texts:
        counts.update(tokenize(t, level=level, lowercase=lowercase))
    kept = sorted((tok for tok, c in counts.items() if c >= min_count and tok not in (PAD, UNK)), key=lambda t: (-counts[t], t))
    if max_size is not None:
        kept = kept[:max_size]
    return Vocab([PAD, UNK, *kept], level=level, lowercase=lowercase, max_length=max_length)


def encode(texts: Sequence[str], vocab: Vocab) -> torch.Tensor:
    """``(N, L)`` int64 ids, truncated or padded with ``<pad>`` (0) at the end to ``vocab.max_length``.

    Example:
        >>> v = build_vocab(["a b"], max_length=4)
        >>> encode(["b a z"], v).tolist()  # z is unknown
        [[3, 2, 1, 0]]
    """
    length = vocab.max_length
    out = torch.zeros(len(texts), length, dtype=torch.long)
    for i, t in enumerate(texts):
        ids = vocab.ids(t)[:length]
        if ids:
            out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out
