"""U-Net (Ronneberger et al. 2015): a contracting path, an expanding path, and skip connections."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from ._common import FeatureHeadModel
from ._registry import register_model

__all__ = ["UNet", "unet"]

_UPSAMPLE = ("transpose", "resize_conv")
_PADDING = ("valid", "same")


def _double_conv(c_in: int, c_out: int, pad: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=pad), nn.ReLU(inplace=True), nn.Conv2d(c_out, c_out, 3, padding=pad), nn.ReLU(inplace=True)
    )


def _up(c_in: int, c_out: int, upsample: str) -> nn.Module:
    if upsample == "transpose":
        return nn.ConvTranspose2d(c_in, c_out, 2, stride=2)  # the paper's "up-conv 2x2"
    # Odena et al. (2016): nearest-neighbour resize, then a convolution, avoids checkerboard artifacts.
    # The 3x3 conv is padded so that the step still doubles the size exactly as the 2x2 up-conv does.
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1))


def _center_crop(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    dh, dw = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    return x[..., dh : dh + h, dw : dw + w]


class UNet(FeatureHeadModel):
    """U-Net, Fig. 1: ``depth`` down steps (two 3x3 convs + 2x2 max-pool, channels doubling) and as many
    up steps (2x up-sampling halving the channels, concatenation with the cropped encoder map, two 3x3
    convs), then a 1x1 convolution to ``num_classes`` maps.

    With ``padding="valid"`` (the paper) every 3x3 conv is unpadded, a 572x572 tile gives a 388x388
    segmentation, and the encoder maps are centre-cropped before concatenation. ``"same"`` pads the convs
    so the output has the input's size (input sides must be multiples of ``2**depth``).

    Args:
        num_classes: Output maps (2 in the paper's Fig. 1).
        in_channels: Input channels (1, grey-scale microscopy).
        base_width: Channels of the first stage (64); stage i has ``base_width * 2**i``.
        depth: Number of pooling steps (4).
        upsample: ``"transpose"`` (2x2 transposed conv, stride 2) or ``"resize_conv"`` (nearest 2x resize,
            then a 3x3 conv; Odena et al. 2016).
        padding: ``"valid"`` (paper) or ``"same"``.

    Shape:
        Input ``(B, in_channels, H, W)``; output ``(B, num_classes, H', W')`` with ``H' = H`` for "same",
        and ``H' = H - 184`` at depth 4 for "valid" (572 -> 388).

    Example:
        >>> unet(base_width=4, padding="same")(torch.randn(2, 1, 32, 32)).shape
        torch.Size([2, 2, 32, 32])

    Reference:
        O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for Biomedical Image
        Segmentation", MICCAI 2015, Sec. 2 and Fig. 1. A. Odena, V. Dumoulin, C. Olah, "Deconvolution and
        Checkerboard Artifacts", Distill 2016.

    Deviations:
        The paper's drop-out at the end of the contracting path (data-augmentation section) is omitted.
        ``upsample="resize_conv"`` and ``padding="same"`` are options beyond the paper.
    """

    def __init__(
        self,
        *,
        num_classes: int = 2,
        in_channels: int = 1,
        base_width: int = 64,
        depth: int = 4,
        upsample: str = "transpose",
        padding: str = "valid",
    ) -> None:
        super().__init__()
        if upsample not in _UPSAMPLE:
            raise ConfigError(f"Expected upsample in {_UPSAMPLE}. Received: upsample={upsample!r}")
        if padding not in _PADDING:
            raise ConfigError(f"Expected padding in {_PADDING}. Received: padding={padding!r}")
        if depth < 1 or base_width < 1:
            raise ConfigError(f"Expected depth >= 1 and base_width >= 1. Received: depth={depth}, base_width={base_width}")
        pad = 1 if padding == "same" else 0
        widths = [base_width * 2**i for i in range(depth + 1)]
        self.encoder = nn.ModuleList()
        c = in_channels
        for w in widths[:-1]:
            self.encoder.append(_double_conv(c, w, pad))
            c = w
        self.pool = nn.MaxPool2d(2, 2)
        self.bottleneck = _double_conv(c, widths[-1], pad)
        self.ups = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for w_in, w_out in zip(widths[:0:-1], widths[-2::-1]):
            self.ups.append(_up(w_in, w_out, upsample))
            self.decoder.append(_double_conv(2 * w_out, w_out, pad))
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        self.depth = depth
        self.padding = padding
        side = _valid_input_size(depth) if padding == "valid" else 16 * 2**depth
        self.input_shape = (in_channels, side, side)  # 572 for the paper's depth 4
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for stage, block in enumerate(self.encoder):
            x = block(x)
            if x.shape[-2] % 2 or x.shape[-1] % 2:
                # Sec. 3 of the paper: every 2x2 max-pool must see an even size, or the decoder's maps no
                # longer line up with the encoder's (torch would floor silently).
                raise ConfigError(self._size_hint(stage, tuple(x.shape[-2:])))
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, block, skip in zip(self.ups, self.decoder, reversed(skips)):
            x = up(x)
            x = torch.cat([_center_crop(skip, x.shape[-2], x.shape[-1]), x], dim=1)  # paper: crop, then concat
            x = block(x)
        return x

    def _size_hint(self, stage: int, size: tuple[int, ...]) -> str:
        if self.padding == "valid":
            n = 2**self.depth
            fit = f"input sides of the form {n} b + {4 * (n - 1)} with b >= 5 (e.g. {_valid_input_size(self.depth)})"
        else:
            fit = f"input sides that are multiples of {2**self.depth}"
        return f"U-Net needs an even map size before every 2x2 max-pool; got {size} before pool {stage + 1}. Use {fit}"


def _valid_input_size(depth: int, bottom: int = 32) -> int:
    """Input side for which every unpadded conv and 2x2 pool fits, given the bottleneck's input side.

    Going up one stage undoes a 2x2 pool (x2) and the two unpadded 3x3 convs before it (+4):
    32 -> 68 -> 140 -> 284 -> 572 for the paper's depth 4.
    """
    size = bottom
    for _ in range(depth):
        size = size * 2 + 4
    return size


@register_model(
    paper="Ronneberger, Fischer & Brox 2015, U-Net, MICCAI, Fig. 1",
    year=2015,
    input_size=(1, 572, 572),
    num_params=31_030_658,
    task="segmentation",
    gradcam_layer="decoder.3",
)
def unet(
    *,
    num_classes: int = 2,
    in_channels: int = 1,
    base_width: int = 64,
    depth: int = 4,
    upsample: str = "transpose",
    padding: str = "valid",
) -> UNet:
    """The paper's U-Net (572x572 -> 388x388, 64 base channels). See :class:`UNet`."""
    return UNet(
        num_classes=num_classes, in_channels=in_channels, base_width=base_width, depth=depth, upsample=upsample, padding=padding
    )
