"""Pretrained word vectors from a text file (GloVe, or word2vec's text format), never from pickle.

GloVe files hold one ``word v1 ... vd`` line per word; word2vec's text format adds a first line ``N d``.
Only the words of the given vocabulary are kept, so a 5 GB file costs the vocabulary's rows of memory.
A word missing from the file is looked up lowercased as well (word2vec's vectors are cased).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ..errors import ConfigError

__all__ = ["read_word_vectors"]


def read_word_vectors(path: str | Path, vocab: Sequence[str], *, dim: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Vectors for ``vocab`` from a GloVe / word2vec text file.

    Args:
        path: the vectors file (UTF-8 text).
        vocab: the tokens by id.
        dim: the expected vector size (the model's ``embed_dim``); None: the file's.

    Returns:
        ``(vectors (V, d) float32, found (V,) bool)``: rows of words not in the file are zero.

    Raises:
        ConfigError: missing file, not UTF-8 text (word2vec's binary format), a malformed line (its
            number is named), or vectors of another size than ``dim``.
    """
    # On the CPU even inside a ``torch.device("meta")`` block (the model builder's size probe): the lookups
    # below read tensor values.
    with torch.device("cpu"):
        return _read(Path(path).expanduser(), vocab, dim)


def _read(path: Path, vocab: Sequence[str], dim: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    if not path.is_file():
        raise ConfigError(f"model.embeddings: {path} is not a file; give a GloVe or word2vec text file")
    index: dict[str, int] = {w: i for i, w in enumerate(vocab)}
    lower: dict[str, int] = {}
    for w, i in index.items():
        lower.setdefault(w.lower(), i)
    vectors: torch.Tensor | None = None
    found = torch.zeros(len(vocab), dtype=torch.bool)
    exact = torch.zeros(len(vocab), dtype=torch.bool)
    d: int | None = None
    try:
        with open(path, encoding="utf-8", errors="strict") as f:
            for n, line in enumerate(f, start=1):
                parts = line.rstrip().split(" ")
                if n == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    d = int(parts[1])  # word2vec's header: count and size
                    _check_dim(path, d, dim)
                    continue
                if len(parts) < 2:
                    continue
                if d is None:
                    d = len(parts) - 1
                    _check_dim(path, d, dim)
                if len(parts) - 1 < d:
                    raise ConfigError(f"model.embeddings: {path}, line {n}: {len(parts) - 1} numbers where vectors have {d}")
                word = " ".join(parts[: len(parts) - d])  # GloVe 840B has a few tokens with spaces
                i = index.get(word)  # type: ignore[assignment]
                is_exact = i is not None
                if i is None:
                    i = lower.get(word.lower())
                if i is None or exact[i] or (found[i] and not is_exact):
                    continue
                try:
                    v = torch.tensor([float(x) for x in parts[len(parts) - d :]], dtype=torch.float32)
                except ValueError:
                    raise ConfigError(f"model.embeddings: {path}, line {n}: not a word followed by {d} numbers") from None
                if vectors is None:
                    vectors = torch.zeros(len(vocab), d)
                vectors[i] = v
                found[i] = True
                exact[i] |= is_exact
    except UnicodeDecodeError:
        raise ConfigError(f"model.embeddings: {path} is not UTF-8 text; convert binary word2vec files to the text format") from None
    except OSError as e:
        raise ConfigError(f"model.embeddings: cannot read {path}: {e.strerror or e}") from None
    if d is None:
        raise ConfigError(f"model.embeddings: {path} holds no vectors")
    return (vectors if vectors is not None else torch.zeros(len(vocab), d)), found


def _check_dim(path: Path, d: int, dim: int | None) -> None:
    if dim is not None and d != dim:
        raise ConfigError(f"model.embeddings: {path} holds {d}-d vectors but the model's embed_dim is {dim}; set model.embed_dim={d}")
