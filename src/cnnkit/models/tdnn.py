"""Time-delay neural network (Waibel et al. 1989): 1-D convolution over time on spectral frames."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from ..layers.masked_pool import nan_padding, padding_mask, zero_padding
from ._common import FeatureHeadModel
from ._registry import register_model

__all__ = ["TDNN", "tdnn"]


class TDNN(FeatureHeadModel):
    """The phoneme TDNN of Waibel et al. (1989), Fig. 2: two time-delay layers, then a sum over time.

    Each hidden unit sees a window of consecutive frames (the "delays"), with the same weights at every
    time step, which is a 1-D convolution along time: 16 mel coefficients x 15 frames -> 8 units with a
    3-frame window (13 frames) -> ``num_classes`` units with a 5-frame window (9 frames). Each output
    integrates (sums) its row of hidden layer 2 over the 9 frames, which makes the decision invariant to
    where in the window the phoneme occurs.

    Args:
        num_classes: Output units (3 in the paper: /b/, /d/, /g/).
        in_channels: Spectral coefficients per frame (16 mel-scale coefficients in the paper).
        hidden_channels: Units of hidden layer 1 (8 in the paper).
        kernel_sizes: The two time windows (3 and 5 frames in the paper).
        num_frames: Input frames recorded in ``input_shape`` (15 in the paper, 150 ms).

    Shape:
        Input ``(B, in_channels, T)`` with ``T >= sum(kernel_sizes) - 1`` (15 frames in the paper);
        output ``(B, num_classes)``.

    Example:
        >>> tdnn()(torch.randn(2, 16, 15)).shape
        torch.Size([2, 3])

    Reference:
        A. Waibel, T. Hanazawa, G. Hinton, K. Shikano, K. Lang, "Phoneme recognition using time-delay
        neural networks", IEEE Trans. ASSP 37(3), 1989, Fig. 2.

    Deviations:
        The paper passes each summed row through an output sigmoid and trains with squared error; here the
        sums are returned as logits for cross-entropy. Hidden units use the logistic sigmoid as in the
        paper.
    """

    def __init__(
        self,
        *,
        num_classes: int = 3,
        in_channels: int = 16,
        hidden_channels: int = 8,
        kernel_sizes: tuple[int, int] = (3, 5),
        num_frames: int = 15,
    ) -> None:
        super().__init__()
        for name, value in (("num_classes", num_classes), ("in_channels", in_channels), ("hidden_channels", hidden_channels)):
            if value < 1:
                raise ConfigError(f"Expected {name} >= 1. Received: {name}={value}")
        if len(kernel_sizes) != 2 or min(kernel_sizes) < 1:
            raise ConfigError(f"Expected two kernel sizes >= 1. Received: kernel_sizes={kernel_sizes}")
        k1, k2 = kernel_sizes
        if num_frames < k1 + k2 - 1:
            raise ConfigError(f"Expected num_frames >= {k1 + k2 - 1} for kernel_sizes={kernel_sizes}. Received: num_frames={num_frames}")
        self.features = nn.Sequential(
            nn.Conv1d(in_channels, hidden_channels, k1),  # (B, 8, 13): 3-frame delays
            nn.Sigmoid(),
            nn.Conv1d(hidden_channels, num_classes, k2),  # (B, 3, 9): 5-frame delays
            nn.Sigmoid(),
        )
        self.input_shape = (in_channels, num_frames)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        # NaN steps at the end are padding (cnnkit.data.series): an output frame is real when its whole
        # window (sum(kernel_sizes) - 1 frames) lies on real input frames.
        x, mask = zero_padding(x)
        out = self.features(x)
        return nan_padding(out, mask[:, :, x.shape[-1] - out.shape[-1]:])

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        real = padding_mask(x)[:, None, :]
        return torch.where(real, x, 0.0).sum(dim=-1)  # integrate each row over its real frames


@register_model(
    paper="Waibel et al. 1989, Phoneme recognition using time-delay neural networks, Fig. 2",
    year=1989,
    input_size=(16, 15),
    num_params=515,
    task="sequence",
    gradcam_layer="features.2",
)
def tdnn(*, num_classes: int = 3, in_channels: int = 16, hidden_channels: int = 8, seq_len: int = 15) -> TDNN:
    """The /b/-/d/-/g/ TDNN (16 coefficients x 15 frames -> 8 -> 3, summed over time). See :class:`TDNN`.

    ``seq_len`` (frames, recorded as ``num_frames``) lets the data set it; any length >= 7 works."""
    return TDNN(num_classes=num_classes, in_channels=in_channels, hidden_channels=hidden_channels, num_frames=seq_len)
