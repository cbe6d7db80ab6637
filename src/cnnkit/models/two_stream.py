"""Two-stream ConvNet (Simonyan & Zisserman 2014): a spatial stream on one frame, a temporal stream on
stacked motion, late fusion of their class scores."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ._registry import register_model

__all__ = ["TwoStream", "two_stream", "frame_differences"]

# Fig. 1 of Simonyan & Zisserman (2014) (CNN-M-2048 of Chatfield et al. 2014): conv1-5 widths, full6/full7.
_VARIANTS: dict[str, tuple[tuple[int, ...], tuple[int, int], tuple[int, int, int, int]]] = {
    "simonyan2014": ((96, 256, 512, 512, 512), (4096, 2048), (3, 11, 224, 224)),
    # The same table at 1/6 to 1/8 of the width, for small clips (Moving MNIST) and tests.
    "small": ((16, 32, 64, 64, 64), (128, 64), (3, 8, 32, 32)),
}
_FUSIONS = ("average", "sum")


def frame_differences(x: Tensor) -> Tensor:
    """``(B, C, T, H, W)`` clips -> ``(B, C * (T - 1), H, W)``: the T-1 differences of consecutive frames,
    stacked along channels (frame-major: ``[d_1 c_1, ..., d_1 c_C, d_2 c_1, ...]``), as Sec. 3.1 stacks
    the flow fields of L consecutive frame pairs into 2L input channels."""
    d = x[:, :, 1:] - x[:, :, :-1]  # (B, C, T-1, H, W)
    return d.transpose(1, 2).flatten(1, 2)


def _stream_features(in_channels: int, widths: tuple[int, ...], *, second_norm: bool) -> nn.Sequential:
    """The convolutional part of one stream of Fig. 1: conv1 7x7/2 + norm + pool, conv2 5x5/2 (+ norm) +
    pool, conv3-5 3x3, pool (all pools 2x2; ReLU after every convolution)."""
    c1, c2, c3, c4, c5 = widths

    def lrn() -> nn.Module:  # Krizhevsky et al.'s normalization, as in CNN-M
        return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)

    layers: list[nn.Module] = [nn.Conv2d(in_channels, c1, 7, stride=2, padding=3), nn.ReLU(inplace=True), lrn(),
                               nn.MaxPool2d(2)]
    layers += [nn.Conv2d(c1, c2, 5, stride=2, padding=2), nn.ReLU(inplace=True)]
    layers += [lrn()] if second_norm else []
    layers += [nn.MaxPool2d(2)]
    for a, b in ((c2, c3), (c3, c4), (c4, c5)):
        layers += [nn.Conv2d(a, b, 3, padding=1), nn.ReLU(inplace=True)]
    layers += [nn.MaxPool2d(2), nn.Flatten()]
    return nn.Sequential(*layers)


class _Stream(nn.Module):
    def __init__(self, in_channels: int, widths: tuple[int, ...], fc: tuple[int, int], frame_hw: tuple[int, int],
                 num_classes: int, *, second_norm: bool, p: float) -> None:
        super().__init__()
        self.features = _stream_features(in_channels, widths, second_norm=second_norm)
        try:
            with torch.no_grad():
                flat = self.features(torch.zeros(1, in_channels, *frame_hw, device="meta")).shape[1]
        except RuntimeError:
            raise ConfigError(f"Expected frames of at least 32x32 (a stream pools to 1/32). Received: {frame_hw}") from None
        self.fc = nn.Sequential(nn.Linear(flat, fc[0]), nn.ReLU(inplace=True), nn.Dropout(p),
                                nn.Linear(fc[0], fc[1]), nn.ReLU(inplace=True), nn.Dropout(p))
        self.head = nn.Linear(fc[1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.fc(self.features(x)))


class TwoStream(nn.Module):
    """Two-stream ConvNet (Fig. 1): class scores of a spatial stream on the middle frame and of a temporal
    stream on the stacked differences of consecutive frames, fused late.

    Args:
        num_classes: Outputs (101 for UCF-101).
        in_channels: Channels per frame.
        variant: ``"simonyan2014"`` (CNN-M-2048 widths 96-256-512-512-512, full6 4096, full7 2048; an
            11-frame 224x224 clip, so 10 frame pairs as the paper's L = 10) or ``"small"`` (16-32-64-64-64,
            128, 64; 8 frames of 32x32).
        input_size: Clip size (T, H, W); defaults to the variant's. T >= 2; H, W >= 32.
        fusion: ``"average"``: the mean of the two streams' softmax scores (Sec. 6, "fusion by averaging");
            the model outputs its log (log-probabilities, which cross-entropy takes as logits).
            ``"sum"``: the sum of the two streams' logits.
        stream_losses: In training mode, also return each stream's logits, so each stream is trained on
            its own loss as in the paper, which trains the streams separately (the classification task
            adds them with ``task.aux_weight``).
        p: Dropout after full6 and full7 (0.5 in the spatial net, 0.9 in the temporal net of the paper).

    Shape:
        Input ``(B, in_channels, T, H, W)``; output ``(B, num_classes)`` (in training mode with
        ``stream_losses``: a tuple ``(fused, spatial, temporal)``).

    Example:
        >>> model = two_stream(variant="small", num_classes=4, in_channels=1).eval()
        >>> model(torch.randn(2, 1, 8, 32, 32)).shape
        torch.Size([2, 4])

    Reference:
        K. Simonyan, A. Zisserman, "Two-Stream Convolutional Networks for Action Recognition in Videos",
        NeurIPS 2014, Sec. 2-3 and Fig. 1.

    Deviations:
        The temporal stream reads stacked frame differences, not optical flow (no flow solver here); the
        spatial stream sees the middle frame (the paper samples one frame in training and averages 25 at
        test time). Convolutions are padded "same" (3, 2, 1) so frames as small as 32x32 fit; the paper's
        conv1 is unpadded. One dropout rate for both streams. The score fusion is trained end to end with
        the stream losses, where the paper fuses two separately trained nets (or an SVM on their scores).
    """

    def __init__(
        self,
        *,
        num_classes: int = 101,
        in_channels: int = 3,
        variant: str = "simonyan2014",
        input_size: tuple[int, int, int] | None = None,
        fusion: str = "average",
        stream_losses: bool = True,
        p: float = 0.5,
    ) -> None:
        super().__init__()
        if variant not in _VARIANTS:
            raise ConfigError(f"Expected variant in {tuple(_VARIANTS)}. Received: variant={variant!r}")
        if fusion not in _FUSIONS:
            raise ConfigError(f"Expected fusion in {_FUSIONS}. Received: fusion={fusion!r}")
        if not 0 <= p < 1:
            raise ConfigError(f"Expected 0 <= p < 1. Received: p={p}")
        widths, fc, default = _VARIANTS[variant]
        size = tuple(int(v) for v in input_size) if input_size is not None else default[1:]
        if len(size) != 3 or size[0] < 2:
            raise ConfigError(f"Expected input_size (T, H, W) with T >= 2. Received: input_size={input_size}")
        t, h, w = size
        self.spatial = _Stream(in_channels, widths, fc, (h, w), num_classes, second_norm=True, p=p)
        # Sec. 4: "the temporal ConvNet ... without the second normalisation layer".
        self.temporal = _Stream(in_channels * (t - 1), widths, fc, (h, w), num_classes, second_norm=False, p=p)
        self.fusion = fusion
        self.stream_losses = stream_losses
        self.input_shape = (in_channels, t, h, w)
        self.num_classes = num_classes

    def _fuse(self, s: Tensor, m: Tensor) -> Tensor:
        if self.fusion == "sum":
            return s + m
        # log((softmax(s) + softmax(m)) / 2), computed stably from log-softmaxes.
        both = torch.stack([torch.log_softmax(s.float(), 1), torch.log_softmax(m.float(), 1)])
        return torch.logsumexp(both, 0) - torch.log(torch.tensor(2.0, device=s.device))

    def stream_scores(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(spatial logits, temporal logits)`` of clips ``x``."""
        middle = x[:, :, x.shape[2] // 2]
        return self.spatial(middle), self.temporal(frame_differences(x))

    def forward_features(self, x: Tensor) -> Tensor:
        """Both streams' full7 features, concatenated: ``(B, 2 * full7)``."""
        middle = x[:, :, x.shape[2] // 2]
        s = self.spatial.fc(self.spatial.features(middle))
        m = self.temporal.fc(self.temporal.features(frame_differences(x)))
        return torch.cat([s, m], dim=1)

    def forward_head(self, x: Tensor) -> Tensor:
        s, m = x.split(x.shape[1] // 2, dim=1)
        return self._fuse(self.spatial.head(s), self.temporal.head(m))

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor, Tensor]:
        feats = self.forward_features(x)
        s, m = feats.split(feats.shape[1] // 2, dim=1)
        s, m = self.spatial.head(s), self.temporal.head(m)
        fused = self._fuse(s, m)
        if self.training and self.stream_losses:
            return fused, s, m
        return fused

    def extra_repr(self) -> str:
        return f"input_shape={self.input_shape}, fusion={self.fusion!r}, stream_losses={self.stream_losses}"


@register_model(
    paper="Simonyan & Zisserman 2014, Two-Stream Convolutional Networks for Action Recognition in Videos, Fig. 1",
    year=2014,
    input_size=(3, 11, 224, 224),
    num_params=235_908_586,
    task="video",
    gradcam_layer="temporal.features.11",
)
def two_stream(
    *,
    num_classes: int = 101,
    in_channels: int = 3,
    variant: str = "simonyan2014",
    input_size: tuple[int, int, int] | None = None,
    fusion: str = "average",
    stream_losses: bool = True,
    p: float = 0.5,
) -> TwoStream:
    """Two-stream ConvNet for UCF-101 (101 classes) or its ``variant="small"`` form. See :class:`TwoStream`."""
    return TwoStream(num_classes=num_classes, in_channels=in_channels, variant=variant, input_size=input_size,
                     fusion=fusion, stream_losses=stream_losses, p=p)
