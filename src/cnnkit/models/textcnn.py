"""Convolutional sentence classifier (Kim 2014): several filter widths, max-over-time pooling."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from ._common import FeatureHeadModel
from ._registry import register_model

__all__ = ["TextCNN", "textcnn"]


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
        part of the module. The multichannel variant (two embedding copies) is not built. The embedding is
        randomly initialised (CNN-rand) unless the caller loads pre-trained vectors.
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
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.embedding.weight.requires_grad_(not freeze_embedding)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, num_filters, h) for h in kernel_sizes)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(p)
        self.fc = nn.Linear(num_filters * len(kernel_sizes), num_classes)
        self.input_shape = (seq_len,)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        e = self.embedding(x).transpose(1, 2)  # (B, k, T): embedding dims act as channels
        return torch.cat([self.relu(conv(e)).amax(dim=-1) for conv in self.convs], dim=1)  # max over time

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
)
def textcnn(
    *,
    vocab_size: int = 20_000,
    num_classes: int = 2,
    embed_dim: int = 300,
    p: float = 0.5,
    freeze_embedding: bool = False,
) -> TextCNN:
    """Kim's CNN: widths 3, 4, 5 x 100 maps, max over time, dropout 0.5. See :class:`TextCNN`."""
    return TextCNN(
        vocab_size=vocab_size, num_classes=num_classes, embed_dim=embed_dim, p=p, freeze_embedding=freeze_embedding
    )
