"""CNN + LSTM (Donahue et al. 2015, LRCN): a 2-D CNN on every frame, an LSTM over the frame features."""

from __future__ import annotations

from torch import Tensor, nn

from ..errors import ConfigError
from ._common import clip_size, frame_cnn
from ._registry import register_model

__all__ = ["CNNLSTM", "cnn_lstm"]

_READOUTS = ("mean", "last")


class CNNLSTM(nn.Module):
    """Long-term recurrent convolutional network for activity recognition (LRCN, Sec. 4, Fig. 1 left).

    Every frame goes through the same 2-D CNN (``frame_cnn``: 3x3 convolution, batch norm, ReLU and 2x2
    max-pooling per width, then global average pooling, so frames of any size give one vector); an LSTM
    (Hochreiter & Schmidhuber 1997; ``torch.nn.LSTM``) reads the T frame vectors in order; a linear layer
    (``head``) maps its states to class scores.

    Args:
        num_classes: Outputs (101 for UCF-101).
        in_channels: Channels per frame.
        widths: Convolution widths of the frame CNN, one stage each.
        hidden_size: LSTM units (256 in the paper's activity-recognition LRCN).
        num_layers: Stacked LSTM layers.
        readout: ``"mean"``: classify every step's hidden state and average the scores over time, as the
            paper averages its per-frame predictions; ``"last"``: classify the last hidden state.
        input_size: Clip size (T, H, W) (recorded as ``input_shape``; the network takes any T and size).
        p: Dropout on the frame features before the LSTM (0.5 in the paper's LRCN).

    Shape:
        Input ``(B, in_channels, T, H, W)``; output ``(B, num_classes)``.

    Example:
        >>> import torch
        >>> cnn_lstm(num_classes=4, in_channels=1).eval()(torch.randn(2, 1, 8, 32, 32)).shape
        torch.Size([2, 4])

    Reference:
        J. Donahue, L. A. Hendricks, S. Guadarrama, M. Rohrbach, S. Venugopalan, K. Saenko, T. Darrell,
        "Long-term Recurrent Convolutional Networks for Visual Recognition and Description", CVPR 2015.

    Deviations:
        The frame CNN is a small batch-normalized net trained from scratch, not the paper's ImageNet
        CaffeNet (whose fc6 feeds its LSTM); the paper also runs RGB and flow LRCNs and averages them.
    """

    def __init__(
        self,
        *,
        num_classes: int = 101,
        in_channels: int = 3,
        widths: tuple[int, ...] = (16, 32, 64),
        hidden_size: int = 64,
        num_layers: int = 1,
        readout: str = "mean",
        input_size: tuple[int, int, int] | None = None,
        p: float = 0.5,
    ) -> None:
        super().__init__()
        if readout not in _READOUTS:
            raise ConfigError(f"Expected readout in {_READOUTS}. Received: readout={readout!r}")
        if hidden_size < 1 or num_layers < 1:
            raise ConfigError(f"Expected hidden_size >= 1 and num_layers >= 1. Received: {hidden_size}, {num_layers}")
        if not 0 <= p < 1:
            raise ConfigError(f"Expected 0 <= p < 1. Received: p={p}")
        size = clip_size(input_size, (8, 32, 32))
        self.frame_cnn, c = frame_cnn(in_channels, widths, p=p)
        self.lstm = nn.LSTM(c, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)
        self.readout = readout
        self.input_shape = (in_channels, *size)
        self.num_classes = num_classes

    def frame_features(self, x: Tensor) -> Tensor:
        """``(B, C, T, H, W)`` -> ``(B, T, F)``: the frame CNN on every frame (folded into the batch)."""
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        return self.frame_cnn(frames).view(b, t, -1)

    def forward_features(self, x: Tensor) -> Tensor:
        """The LSTM's hidden states ``(B, T, hidden)`` (``"mean"``) or the last one ``(B, hidden)``."""
        out, _ = self.lstm(self.frame_features(x))
        return out if self.readout == "mean" else out[:, -1]

    def forward_head(self, x: Tensor) -> Tensor:
        scores = self.head(x)
        return scores.mean(1) if scores.ndim == 3 else scores

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def extra_repr(self) -> str:
        return f"input_shape={self.input_shape}, readout={self.readout!r}"


@register_model(
    paper="Donahue et al. 2015, Long-term Recurrent Convolutional Networks for Visual Recognition and Description",
    year=2015,
    input_size=(3, 8, 32, 32),
    num_params=63_541,
    task="video",
    gradcam_layer="frame_cnn.8",
)
def cnn_lstm(
    *,
    num_classes: int = 101,
    in_channels: int = 3,
    widths: tuple[int, ...] = (16, 32, 64),
    hidden_size: int = 64,
    num_layers: int = 1,
    readout: str = "mean",
    input_size: tuple[int, int, int] | None = None,
    p: float = 0.5,
) -> CNNLSTM:
    """A per-frame CNN and an LSTM over time (LRCN). See :class:`CNNLSTM`."""
    return CNNLSTM(num_classes=num_classes, in_channels=in_channels, widths=widths, hidden_size=hidden_size,
                   num_layers=num_layers, readout=readout, input_size=input_size, p=p)
