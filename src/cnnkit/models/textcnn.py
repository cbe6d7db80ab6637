"""Convolutional sentence classifier (Kim 2014): several filter widths, max-over-time pooling; random,
static, non-static and multichannel embeddings."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ._common import FeatureHeadModel
from ._registry import register_model
from .word_vectors import read_word_vectors

__all__ = ["EMBEDDING_MODES", "TextCNN", "textcnn"]

# Kim (2014), Sec. 3.2: CNN-rand, CNN-static, CNN-non-static, CNN-multichannel.
EMBEDDING_MODES = ("rand", "static", "non-static", "multichannel")
# Kim's released code initialises words without a pretrained vector from U[-0.25, 0.25] ("a" chosen so the
# random vectors have about the variance of the pretrained ones).
UNKNOWN_WORD_RANGE = 0.25


class TextCNN(FeatureHeadModel):
    """Kim (2014), Sec. 2 and 3.1: embedding, 1-D convolutions of several widths, max over time, dropout.

    Each filter of width h slides over windows of h consecutive word vectors (a 1-D convolution whose
    input channels are the embedding dimensions); max-over-time pooling keeps one feature per filter, so
    sentences of any length give a fixed-size vector.

    Args:
        vocab_size: Number of word ids (row count of the embedding table).
        num_classes: Output classes (2 for MR / SST-2).
        embed_dim: Word-vector size k (300, as for word2vec).
        kernel_sizes: Filter window widths h (3, 4, 5).
        num_filters: Feature maps per width (100).
        p: Dropout probability on the penultimate layer (0.5).
        freeze_embedding: Keep the embedding fixed (the paper's CNN-static) instead of fine-tuning it.
        seq_len: Sentence length recorded in ``input_shape`` (56, the longest MR sentence).
        mode: ``rand`` (learned from scratch), ``static`` (pretrained, kept fixed), ``non-static``
            (pretrained, fine-tuned) or ``multichannel`` (two copies, one fixed and one fine-tuned; each filter
            is applied to both channels and the results added, Sec. 2.1). ``freeze_embedding`` turns
            ``rand`` / ``non-static`` into fixed embeddings.
        vectors: ``(vocab_size, embed_dim)`` pretrained rows to start from (rows of words without a
            vector keep their random U[-0.25, 0.25] start); required for ``static`` / ``multichannel``
            only when training begins (a saved run reloads its weights instead).

    Shape:
        Input ``(B, T)`` integer word ids with ``T >= max(kernel_sizes)``; output ``(B, num_classes)``.

    Example:
        >>> model = textcnn(vocab_size=50)
        >>> model(torch.randint(0, 50, (2, 20))).shape
        torch.Size([2, 2])

    Reference:
        Y. Kim, "Convolutional Neural Networks for Sentence Classification", EMNLP 2014, Sec. 2 and 3.1.

    Deviations:
        The l2 max-norm constraint (s = 3) on the penultimate weights is a training-time rule and is not
        part of the module (``train.max_norm: 3`` applies it to every weight matrix). Padding id 0 starts
        as a zero vector. Without ``vectors`` the ``static`` / ``non-static`` / ``multichannel`` modes start
        from random vectors (only meaningful when weights are loaded afterwards).
    """

    input_dtype = torch.long  # token ids, not floats: tools that make dummy inputs read this

    def __init__(
        self,
        *,
        vocab_size: int = 20_000,
        num_classes: int = 2,
        embed_dim: int = 300,
        kernel_sizes: tuple[int, ...] = (3, 4, 5),
        num_filters: int = 100,
        p: float = 0.5,
        freeze_embedding: bool = False,
        seq_len: int = 56,
        mode: str = "rand",
        vectors: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if vocab_size < 1:
            raise ConfigError(f"Expected vocab_size >= 1. Received: vocab_size={vocab_size}")
        if not 0 <= p < 1:
            raise ConfigError(f"Expected 0 <= p < 1. Received: p={p}")
        if not kernel_sizes or min(kernel_sizes) < 1:
            raise ConfigError(f"Expected non-empty kernel_sizes >= 1. Received: kernel_sizes={kernel_sizes}")
        if seq_len < max(kernel_sizes):
            raise ConfigError(f"Expected seq_len >= max(kernel_sizes)={max(kernel_sizes)}. Received: seq_len={seq_len}")
        if mode not in EMBEDDING_MODES:
            raise ConfigError(f"Expected mode to be one of {', '.join(EMBEDDING_MODES)}. Received: mode={mode!r}")
        if vectors is not None and tuple(vectors.shape) != (vocab_size, embed_dim):
            raise ConfigError(f"Expected vectors of shape ({vocab_size}, {embed_dim}). Received: {tuple(vectors.shape)}")
        self.vocab_size = vocab_size
        self.mode = mode
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        if vectors is not None:
            with torch.no_grad():
                self.embedding.weight.uniform_(-UNKNOWN_WORD_RANGE, UNKNOWN_WORD_RANGE)
                v = vectors.to(self.embedding.weight)
                known = (v.abs().sum(1) > 0)[:, None]  # torch.where, not a mask: works on the meta device
                self.embedding.weight.copy_(torch.where(known, v, self.embedding.weight))
                self.embedding.weight[0] = 0.0  # <pad>
        self.embedding.weight.requires_grad_(not (freeze_embedding or mode == "static"))
        # CNN-multichannel: a second, fixed copy of the same start (Sec. 2.1); the first one is fine-tuned.
        self.static_embedding: nn.Embedding | None = None
        if mode == "multichannel":
            self.static_embedding = nn.Embedding(vocab_size, embed_dim)
            with torch.no_grad():
                self.static_embedding.weight.copy_(self.embedding.weight)
            self.static_embedding.weight.requires_grad_(False)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, num_filters, h) for h in kernel_sizes)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(p)
        self.fc = nn.Linear(num_filters * len(kernel_sizes), num_classes)
        self.input_shape = (seq_len,)
        self.num_classes = num_classes

    def embed(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Word vectors ``(B, k, T)`` (embedding dims as channels); a pair of them for multichannel."""
        e = self.embedding(x).transpose(1, 2)
        if self.static_embedding is None:
            return e
        return e, self.static_embedding(x).transpose(1, 2)

    def features_from_embedding(self, e: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Max-over-time features from :meth:`embed`'s output (what token attributions differentiate)."""
        out = []
        for conv in self.convs:
            if isinstance(e, tuple):  # one filter over both channels: the two responses are added
                c = conv(e[0]) + F.conv1d(e[1], conv.weight)  # type: ignore[arg-type]
            else:
                c = conv(e)
            out.append(self.relu(c).amax(dim=-1))  # max over time
        return torch.cat(out, dim=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_from_embedding(self.embed(x))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(x))


@register_model(
    paper="Kim 2014, Convolutional Neural Networks for Sentence Classification, Sec. 3.1",
    year=2014,
    input_size=(56,),
    num_params=6_360_902,
    task="classification",
    gradcam_layer="convs.2",
    input_dtype="int64",
    train_only=("embeddings", "vocab"),
)
def textcnn(
    *,
    vocab_size: int = 20_000,
    num_classes: int = 2,
    embed_dim: int = 300,
    p: float = 0.5,
    freeze_embedding: bool = False,
    mode: str = "rand",
    kernel_sizes: Sequence[int] = (3, 4, 5),
    num_filters: int = 100,
    seq_len: int = 56,
    embeddings: str | None = None,
    vocab: Sequence[str] | None = None,
) -> TextCNN:
    """Kim's CNN: widths 3, 4, 5 x 100 maps, max over time, dropout 0.5. See :class:`TextCNN`.

    Args:
        embeddings: a GloVe / word2vec text file (``model.embeddings: path``): the rows of ``vocab``'s words
            start from its vectors (:func:`~cnnkit.models.word_vectors.read_word_vectors`). Read only when
            training starts; the run folder keeps the weights, never the path.
        vocab: the tokens by id (a text dataset passes its vocabulary).
    """
    vectors = None
    # Without a vocabulary (the input-shape probe before the data is read, or a saved run being rebuilt)
    # there is nothing to look up: the vectors are read once the data's vocabulary is known, and not for
    # the size probe on the meta device (it needs shapes only; a GloVe file is read once).
    on_meta = torch.empty(0).device.type == "meta"
    if embeddings is not None and vocab is not None and not on_meta:
        if len(vocab) != vocab_size:
            raise ConfigError(f"model.embeddings: the vocabulary has {len(vocab)} tokens but vocab_size={vocab_size}")
        vectors, _ = read_word_vectors(embeddings, list(vocab), dim=embed_dim)
    elif mode in ("static", "multichannel") and vocab is not None and embeddings is None:
        raise ConfigError(f"model.mode={mode!r} keeps pretrained vectors fixed; give model.embeddings: a GloVe/word2vec text file")
    return TextCNN(
        vocab_size=vocab_size, num_classes=num_classes, embed_dim=embed_dim, p=p, freeze_embedding=freeze_embedding,
        mode=mode, kernel_sizes=tuple(kernel_sizes), num_filters=num_filters, seq_len=seq_len, vectors=vectors,
    )
