"""Character-level ConvNet for text classification (Zhang, Zhao & LeCun 2015)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ._common import FeatureHeadModel
from ._registry import register_model

__all__ = ["CharCNN", "charcnn"]

# Table 1: (features, kernel, pool) of the six convolutional layers; Table 2: the two hidden FC layers.
_CONV = ((7, 3), (7, 3), (3, None), (3, None), (3, None), (3, 3))
_WIDTH = {"small": (256, 1024, 0.05), "large": (1024, 2048, 0.02)}  # conv features, FC units, init std
_SPECIAL = 2  # ids 0 (<pad>) and 1 (<unk>): the all-zero vector, as characters outside the alphabet are


def _frames(length: int) -> int:
    for k, pool in _CONV:
        length = length - k + 1
        if pool:
            length //= pool
    return length


class CharCNN(FeatureHeadModel):
    """Zhang, Zhao & LeCun (2015), Sec. 2: characters one-hot encoded ("quantized") over the alphabet,
    six temporal convolutions (kernels 7, 7, 3, 3, 3, 3; non-overlapping max-pooling of 3 after layers 1, 2
    and 6), ReLU, then three fully connected layers with dropout 0.5 between them.

    Args:
        vocab_size: ids of the character vocabulary: ``<pad>``, ``<unk>`` and the alphabet (69 characters
            by default, :data:`cnnkit.data.tokenize.ZHANG2015_ALPHABET`), so 71.
        num_classes: outputs (4 for AG's News).
        seq_len: characters per input, l0 = 1014 in the paper (at least 123 here).
        variant: ``small`` (256 features, 1024 units; the default) or ``large`` (1024, 2048).
        p: dropout probability between the fully connected layers.

    Shape:
        Input ``(B, seq_len)`` int64 character ids; output ``(B, num_classes)``. The last convolution gives
        ``(l0 - 96) / 27 = 34`` frames of 256 features for l0 = 1014 (Sec. 2.3).

    Example:
        >>> model = charcnn(num_classes=3, seq_len=150)
        >>> model(torch.randint(0, 71, (2, 150))).shape
        torch.Size([2, 3])

    Reference:
        X. Zhang, J. Zhao, Y. LeCun, "Character-level Convolutional Networks for Text Classification",
        NeurIPS 2015, Sec. 2.2-2.3, Tables 1 and 2.

    Deviations:
        The paper counts 70 characters; its list holds 69 distinct ones (the hyphen is listed twice), so
        the input has 69 channels by default. Characters outside the alphabet and padding are all-zero
        vectors, as in the paper. Weights start from N(0, 0.05^2) (small) or N(0, 0.02^2) (large), Sec.
        2.3; biases from zero (the paper does not say). The paper's thesaurus augmentation is not included.
    """

    input_dtype = torch.long

    def __init__(self, *, vocab_size: int = 71, num_classes: int = 4, seq_len: int = 1014, variant: str = "small", p: float = 0.5) -> None:
        super().__init__()
        if variant not in _WIDTH:
            raise ConfigError(f"Expected variant 'small' or 'large'. Received: variant={variant!r}")
        if vocab_size <= _SPECIAL:
            raise ConfigError(f"Expected vocab_size > {_SPECIAL} (<pad>, <unk> and the alphabet). Received: vocab_size={vocab_size}")
        if not 0 <= p < 1:
            raise ConfigError(f"Expected 0 <= p < 1. Received: p={p}")
        frames = _frames(seq_len)
        if frames < 1:
            raise ConfigError(f"Expected seq_len >= 123 (six convolutions and three poolings). Received: seq_len={seq_len}")
        features, units, std = _WIDTH[variant]
        self.alphabet_size = vocab_size - _SPECIAL
        self.vocab_size = vocab_size
        layers: list[nn.Module] = []
        c = self.alphabet_size
        for k, pool in _CONV:
            layers += [nn.Conv1d(c, features, k), nn.ReLU()]
            if pool:
                layers.append(nn.MaxPool1d(pool))
            c = features
        self.features = nn.Sequential(*layers)  # (B, 256, 34) for l0 = 1014
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(features * frames, units), nn.ReLU(), nn.Dropout(p),
            nn.Linear(units, units), nn.ReLU(), nn.Dropout(p),
            nn.Linear(units, num_classes),
        )
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, std)
                nn.init.zeros_(m.bias)  # type: ignore[arg-type]
        self.input_shape = (seq_len,)
        self.num_classes = num_classes
        self.variant = variant

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """One-hot characters ``(B, alphabet, L)``; ``<pad>`` and ``<unk>`` give zero vectors."""
        onehot = F.one_hot(x.long(), self.alphabet_size + _SPECIAL)[..., _SPECIAL:]
        return onehot.to(self.head[1].weight.dtype).transpose(1, 2)  # type: ignore[index]

    def features_from_embedding(self, e: torch.Tensor) -> torch.Tensor:
        return self.features(e)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.embed(x))


@register_model(
    paper="Zhang, Zhao & LeCun 2015, Character-level Convolutional Networks for Text Classification, Tables 1-2",
    year=2015,
    input_size=(1014,),
    # Hand count from Tables 1 and 2 (small model, 69 characters, 4 classes as for AG's News):
    # conv 69*256*7+256, 256*256*7+256, 4 x (256*256*3+256); fc 8704*1024+1024, 1024*1024+1024, 1024*4+4.
    num_params=11_337_988,
    task="classification",
    gradcam_layer="features.12",
    input_dtype="int64",
)
def charcnn(*, num_classes: int = 4, vocab_size: int = 71, seq_len: int = 1014, variant: str = "small", p: float = 0.5) -> CharCNN:
    """The small character-level ConvNet of Zhang et al. (2015). See :class:`CharCNN`."""
    return CharCNN(vocab_size=vocab_size, num_classes=num_classes, seq_len=seq_len, variant=variant, p=p)
