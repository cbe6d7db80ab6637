"""C3D (Tran et al. 2015): 3x3x3 convolutions over space-time for video clips."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from ._common import FeatureHeadModel, clip_size
from ._registry import register_model

__all__ = ["C3D", "c3d"]

# Fig. 3 of Tran et al. (2015): conv widths per stage (stages 3-5 have two convs), fc widths.
_VARIANTS: dict[str, tuple[tuple[int, ...], int, tuple[int, int, int]]] = {
    "tran2015": ((64, 128, 256, 512, 512), 4096, (16, 112, 112)),
    # The same 8-conv/5-pool table at a quarter of the width and a 32x32 crop, for small clips and tests.
    "small": ((16, 32, 64, 128, 128), 512, (16, 32, 32)),
}


class C3D(FeatureHeadModel):
    """C3D, Fig. 3: 8 convolutions (3x3x3, stride 1, padding 1), 5 max-pools, 2 fc layers, softmax.

    pool1 is 1x2x2 so that temporal information is not merged too early; pool2-5 are 2x2x2, stride 2.
    On a 3x16x112x112 clip the features after pool5 are 512x1x4x4 = 8192 (fc6 input).

    Args:
        num_classes: Outputs (487 for Sports-1M).
        in_channels: Input channels (3, RGB).
        variant: ``"tran2015"`` (64-128-256-512-512, fc 4096) or ``"small"`` (16-32-64-128-128, fc 512,
            default clip 16x32x32).
        input_size: Clip size (T, H, W); defaults to the variant's. fc6 is sized for it. Five pools need
            T >= 8 and H, W >= 16.
        p: Dropout probability after fc6 and fc7 (0.5).
        batch_norm: a BatchNorm3d after every convolution (not in the paper; lets the small variant train
            from scratch on a few thousand clips in a few epochs, see ``configs/video-c3d.yaml``).

    Shape:
        Input ``(B, in_channels, T, H, W)``; output ``(B, num_classes)``.

    Example:
        >>> c3d(variant="small", num_classes=5)(torch.randn(2, 3, 16, 32, 32)).shape
        torch.Size([2, 5])

    Reference:
        D. Tran, L. Bourdev, R. Fergus, L. Torresani, M. Paluri, "Learning Spatiotemporal Features with 3D
        Convolutional Networks", ICCV 2015, Sec. 3.3 and Fig. 3.

    Deviations:
        pool5 uses ``ceil_mode=True`` to reproduce the Caffe model's rounding (7x7 -> 4x4), which is how
        the released network reaches its 8192-d fc6 input; the paper's figure does not state it.
        ``batch_norm=True`` (off by default) adds batch normalization, which postdates the paper.
    """

    def __init__(
        self,
        *,
        num_classes: int = 487,
        in_channels: int = 3,
        variant: str = "tran2015",
        input_size: tuple[int, int, int] | None = None,
        p: float = 0.5,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if variant not in _VARIANTS:
            raise ConfigError(f"Expected variant in {tuple(_VARIANTS)}. Received: variant={variant!r}")
        if not 0 <= p < 1:
            raise ConfigError(f"Expected 0 <= p < 1. Received: p={p}")
        widths, fc, default_size = _VARIANTS[variant]
        size = clip_size(input_size, default_size)
        layers: list[nn.Module] = []
        c = in_channels
        for stage, w in enumerate(widths):
            for _ in range(1 if stage < 2 else 2):  # conv1a, conv2a, conv3a/b, conv4a/b, conv5a/b
                layers += [nn.Conv3d(c, w, 3, padding=1)]
                layers += [nn.BatchNorm3d(w)] if batch_norm else []
                layers += [nn.ReLU(inplace=True)]
                c = w
            if stage == 0:
                layers.append(nn.MaxPool3d((1, 2, 2), (1, 2, 2)))
            else:
                layers.append(nn.MaxPool3d(2, 2, ceil_mode=stage == 4))
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        try:
            with torch.no_grad():  # fc6's input size for this clip size, without hand arithmetic
                # Batch norm keeps the shape and has no meta kernel for 5-D input in torch 2.13: left out.
                shape_only = nn.Sequential(*(m for m in self.features if not isinstance(m, nn.BatchNorm3d)))
                flat = shape_only(torch.zeros(1, in_channels, *size, device="meta")).shape[1]
        except RuntimeError:
            raise ConfigError(
                f"Expected a clip of at least 8 frames of 16x16 (C3D pools five times). Received: input_size={tuple(size)}"
            ) from None
        self.head = nn.Sequential(
            nn.Linear(flat, fc),
            nn.ReLU(inplace=True),
            nn.Dropout(p),
            nn.Linear(fc, fc),
            nn.ReLU(inplace=True),
            nn.Dropout(p),
            nn.Linear(fc, num_classes),
        )
        self.input_shape = (in_channels, *size)
        self.num_classes = num_classes


@register_model(
    paper="Tran et al. 2015, Learning Spatiotemporal Features with 3D Convolutional Networks, Fig. 3",
    year=2015,
    input_size=(3, 16, 112, 112),
    num_params=79_991_015,
    task="video",
    gradcam_layer="features.18",
)
def c3d(
    *,
    num_classes: int = 487,
    in_channels: int = 3,
    variant: str = "tran2015",
    input_size: tuple[int, int, int] | None = None,
    p: float = 0.5,
    batch_norm: bool = False,
) -> C3D:
    """C3D for Sports-1M (487 classes) or its ``variant="small"`` form. See :class:`C3D`."""
    return C3D(num_classes=num_classes, in_channels=in_channels, variant=variant, input_size=input_size, p=p,
               batch_norm=batch_norm)
