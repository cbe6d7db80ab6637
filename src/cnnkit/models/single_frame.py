"""Single-frame baseline (Karpathy et al. 2014): a 2-D CNN that sees one frame of the clip."""

from __future__ import annotations

from torch import Tensor, nn

from ._common import clip_size, frame_cnn
from ._registry import register_model

__all__ = ["SingleFrame", "single_frame"]


class SingleFrame(nn.Module):
    """The "Single-frame" model of Karpathy et al. (2014), Sec. 3.1: a 2-D CNN on one frame of the clip,
    here the middle one; the baseline that shows whether a video model uses time at all.

    The CNN is the frame CNN of :class:`~cnnkit.models.cnn_lstm.CNNLSTM` (3x3 convolution, batch norm,
    ReLU, 2x2 max-pooling per width, global average pooling) with a linear ``head``, so the two differ
    only in what they see over time.

    Args:
        num_classes: Outputs.
        in_channels: Channels per frame.
        widths: Convolution widths, one stage each.
        input_size: Clip size (T, H, W) (recorded as ``input_shape``; the network takes any size).

    Shape:
        Input ``(B, in_channels, T, H, W)``; output ``(B, num_classes)``.

    Example:
        >>> import torch
        >>> single_frame(num_classes=4, in_channels=1)(torch.randn(2, 1, 8, 32, 32)).shape
        torch.Size([2, 4])

    Reference:
        A. Karpathy, G. Toderici, S. Shetty, T. Leung, R. Sukthankar, L. Fei-Fei, "Large-scale Video
        Classification with Convolutional Neural Networks", CVPR 2014, Sec. 3.1 and Fig. 1.

    Deviations:
        A small batch-normalized CNN instead of the paper's AlexNet-like net; the middle frame only (the
        paper averages the predictions of frames sampled over the clip at test time).
    """

    def __init__(
        self,
        *,
        num_classes: int = 101,
        in_channels: int = 3,
        widths: tuple[int, ...] = (16, 32, 64),
        input_size: tuple[int, int, int] | None = None,
    ) -> None:
        super().__init__()
        size = clip_size(input_size, (8, 32, 32))
        self.features, c = frame_cnn(in_channels, widths)
        self.head = nn.Linear(c, num_classes)
        self.input_shape = (in_channels, *size)
        self.num_classes = num_classes

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x[:, :, x.shape[2] // 2])

    def forward_head(self, x: Tensor) -> Tensor:
        return self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


@register_model(
    paper="Karpathy et al. 2014, Large-scale Video Classification with Convolutional Neural Networks, Sec. 3.1",
    year=2014,
    input_size=(3, 8, 32, 32),
    num_params=30_261,
    task="video",
    gradcam_layer="features.8",
)
def single_frame(
    *,
    num_classes: int = 101,
    in_channels: int = 3,
    widths: tuple[int, ...] = (16, 32, 64),
    input_size: tuple[int, int, int] | None = None,
) -> SingleFrame:
    """A 2-D CNN on the middle frame of a clip. See :class:`SingleFrame`."""
    return SingleFrame(num_classes=num_classes, in_channels=in_channels, widths=widths, input_size=input_size)
