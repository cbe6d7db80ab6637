"""ConvNeXt V2 (Woo et al. 2023): ConvNeXt blocks with Global Response Normalization, no layer scale.

The encoder takes an optional patch mask so the same weights run dense (classification) or "sparse"
(FCMAE pre-training, :mod:`cnnkit.models.fcmae`): the paper's Sec. 3 says sparse convolution "can be
replaced by a binary masking operation before and after the dense convolution", which is what
:class:`ConvNeXtV2Encoder` does. The classifier and FCMAE name their encoders ``features``, so
``--init-from`` an FCMAE run loads every encoder tensor of a classifier with the same configuration.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_int
from ..errors import ConfigError
from ..layers import GlobalResponseNorm
from ._common import FeatureHeadModel
from ._registry import register_model

__all__ = ["CONVNEXTV2_CONFIGS", "ConvNeXtV2", "ConvNeXtV2Block", "ConvNeXtV2Encoder", "convnextv2_atto", "convnextv2_fmnist"]

# Table 1 of Woo et al. (2023) (the Atto..Huge family): depths and widths per stage; ``stem_stride`` is
# the stem's patchify kernel = stride (4 in the paper). The total stride stem_stride * 2**(stages - 1)
# is FCMAE's patch size (32 for the paper's four stages). ``fmnist`` is cnnkit's own small configuration
# for 28x28 inputs: a 2x2 stem and two stages make a total stride of 4, so a 28x28 image is a 7x7 patch
# grid, the same grid the paper masks on 224x224 images.
CONVNEXTV2_CONFIGS: dict[str, dict[str, tuple[int, ...] | int]] = {
    "atto": {"depths": (2, 2, 6, 2), "dims": (40, 80, 160, 320), "stem_stride": 4},
    "femto": {"depths": (2, 2, 6, 2), "dims": (48, 96, 192, 384), "stem_stride": 4},
    "pico": {"depths": (2, 2, 6, 2), "dims": (64, 128, 256, 512), "stem_stride": 4},
    "nano": {"depths": (2, 2, 8, 2), "dims": (80, 160, 320, 640), "stem_stride": 4},
    "tiny": {"depths": (3, 3, 9, 3), "dims": (96, 192, 384, 768), "stem_stride": 4},
    "fmnist": {"depths": (2, 2), "dims": (32, 64), "stem_stride": 2},
}

_EPS = 1e-6  # ConvNeXt's LayerNorm epsilon


class _ChannelNorm(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map (ConvNeXt's ``channels_first`` LayerNorm)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


def _keep_at(keep: Tensor | None, x: Tensor) -> Tensor | None:
    """The visibility mask (B, 1, h, w) at ``x``'s resolution (nearest upsampling: one patch, one value)."""
    if keep is None:
        return None
    if keep.shape[-2:] != x.shape[-2:]:
        keep = F.interpolate(keep, size=x.shape[-2:], mode="nearest")
    return keep.to(x.dtype)


def _masked(x: Tensor, keep: Tensor | None) -> Tensor:
    return x if keep is None else x * keep


class ConvNeXtV2Block(nn.Module):
    """One ConvNeXt V2 block (Fig. 5 of the paper): 7x7 depthwise conv, LayerNorm, 1x1 conv to 4x width,
    GELU, GRN, 1x1 conv back, residual.

    With ``keep`` (1 = visible site), masked sites are zeroed before every operation that mixes sites
    (the depthwise conv and GRN's spatial norm) and at the output: visible sites then compute exactly what
    a sparse convolution over the visible sites alone computes (per-site operations never mix sites).

    Args:
        dim: channels.

    Shape:
        ``(B, dim, H, W) -> (B, dim, H, W)``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = check_int(dim, "dim")
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = _ChannelNorm(dim, eps=_EPS)
        self.pwconv1 = nn.Conv2d(dim, 4 * dim, 1)
        self.act = nn.GELU()
        self.grn = GlobalResponseNorm(4 * dim)
        self.pwconv2 = nn.Conv2d(4 * dim, dim, 1)

    def forward(self, x: Tensor, keep: Tensor | None = None) -> Tensor:
        y = _masked(self.dwconv(_masked(x, keep)), keep)
        y = self.act(self.pwconv1(self.norm(y)))
        y = self.pwconv2(self.grn(_masked(y, keep)))
        return _masked(x + y, keep)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class _Stage(nn.Module):
    def __init__(self, c_in: int, dim: int, depth: int, *, stem_stride: int | None) -> None:
        super().__init__()
        if stem_stride is not None:  # the stem: patchify conv, then LayerNorm
            self.downsample = nn.Sequential(nn.Conv2d(c_in, dim, stem_stride, stride=stem_stride), _ChannelNorm(dim, eps=_EPS))
        else:  # between stages: LayerNorm, then a 2x2 stride-2 conv
            self.downsample = nn.Sequential(_ChannelNorm(c_in, eps=_EPS), nn.Conv2d(c_in, dim, 2, stride=2))
        self.blocks = nn.ModuleList(ConvNeXtV2Block(dim) for _ in range(depth))

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        first, second = self.downsample[0], self.downsample[1]
        if isinstance(first, nn.Conv2d):  # stem: the patchify conv sees only its own patch
            x = second(first(_masked(x, _keep_at(keep, x))))
        else:  # LayerNorm of a masked site is its bias: zero it before the conv mixes 2x2 sites
            x = second(_masked(first(x), _keep_at(keep, x)))
        k = _keep_at(keep, x)
        x = _masked(x, k)
        for block in self.blocks:
            x = block(x, k)
        return x


class ConvNeXtV2Encoder(nn.Module):
    """The stem and the stages of ConvNeXt V2: ``(B, C, H, W) -> (B, dims[-1], H / stride, W / stride)``.

    Args:
        in_channels: input channels.
        depths: blocks per stage.
        dims: channels per stage.
        stem_stride: the stem's kernel size and stride.

    ``forward(x, keep=None)``: ``keep`` is an optional (B, 1, h, w) map at the patch grid
    ``(H / stride, W / stride)``, 1 where a patch is visible; masked patches then never reach a visible one.
    """

    def __init__(self, *, in_channels: int, depths: Sequence[int], dims: Sequence[int], stem_stride: int) -> None:
        super().__init__()
        if len(depths) != len(dims) or not depths:
            raise ConfigError(f"Expected as many depths as dims (>= 1). Received: depths={tuple(depths)}, dims={tuple(dims)}")
        for d in (*depths, *dims):
            check_int(d, "depths/dims")
        self.in_channels = check_int(in_channels, "in_channels")
        self.depths, self.dims = tuple(depths), tuple(dims)
        self.stem_stride = check_int(stem_stride, "stem_stride")
        self.stride = self.stem_stride * 2 ** (len(dims) - 1)
        ins = (in_channels, *dims[:-1])
        self.stages = nn.ModuleList(
            _Stage(c, d, n, stem_stride=self.stem_stride if i == 0 else None) for i, (c, d, n) in enumerate(zip(ins, dims, depths))
        )

    def check_size(self, h: int, w: int) -> None:
        if h % self.stride or w % self.stride:
            raise ConfigError(
                f"Expected input height and width divisible by the encoder's total stride {self.stride}. Received: {h}x{w}"
            )

    def forward(self, x: Tensor, keep: Tensor | None = None) -> Tensor:
        self.check_size(x.shape[-2], x.shape[-1])
        for stage in self.stages:
            x = stage(x, keep)
        return x

    def extra_repr(self) -> str:
        return f"depths={self.depths}, dims={self.dims}, stem_stride={self.stem_stride}"


def init_convnextv2_(module: nn.Module) -> None:
    """The reference initialization: truncated normal (std 0.02) conv weights, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ConvNeXtV2(FeatureHeadModel):
    """ConvNeXt V2 classifier (Woo et al. 2023): encoder, global average pool, LayerNorm, linear head.

    Args:
        num_classes: outputs of the head.
        in_channels: input channels.
        depths, dims, stem_stride: the encoder (see :data:`CONVNEXTV2_CONFIGS`).
        input_size: (H, W) the model is built for (data are brought to it); any multiple of the total
            stride works at run time.

    Shape:
        ``(B, in_channels, H, W) -> (B, num_classes)``.

    Example:
        >>> import torch
        >>> convnextv2_fmnist()(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 10])

    Reference:
        S. Woo, S. Debnath, R. Hu, X. Chen, Z. Liu, I. S. Kweon, S. Xie, "ConvNeXt V2: Co-designing and
        Scaling ConvNets with Masked Autoencoders", CVPR 2023, Sec. 3-4, Fig. 5, Table 1 (model sizes) and
        Algorithm 1 (GRN); block design from Liu et al., "A ConvNet for the 2020s", CVPR 2022.

    Deviations:
        NCHW throughout: the reference's channels-last ``Linear`` layers are 1x1 convolutions (the same
        weights, reshaped). No stochastic depth (drop path) and no head-init scaling: cnnkit's runs on
        Fashion-MNIST-sized data are short. ``fmnist`` is a cnnkit configuration (2x2 stem, two stages),
        not one of the paper's.
    """

    def __init__(
        self, *, num_classes: int = 1000, in_channels: int = 3, depths: Sequence[int], dims: Sequence[int],
        stem_stride: int = 4, input_size: tuple[int, int] = (224, 224),
    ) -> None:
        super().__init__()
        self.features = ConvNeXtV2Encoder(in_channels=in_channels, depths=depths, dims=dims, stem_stride=stem_stride)
        self.features.check_size(*input_size)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.LayerNorm(dims[-1], eps=_EPS), nn.Linear(dims[-1], check_int(num_classes, "num_classes"))
        )
        init_convnextv2_(self)
        self.input_shape = (in_channels, *input_size)


@register_model(
    paper="Woo et al. 2023, ConvNeXt V2, CVPR, Table 1 (Atto: 3.7M)", year=2023, input_size=(3, 224, 224),
    num_params=3_708_400, gradcam_layer="features",
)
def convnextv2_atto(*, num_classes: int = 1000, in_channels: int = 3) -> ConvNeXtV2:
    """ConvNeXt V2-Atto: depths (2, 2, 6, 2), widths (40, 80, 160, 320), 224x224 input."""
    return ConvNeXtV2(num_classes=num_classes, in_channels=in_channels, **CONVNEXTV2_CONFIGS["atto"])  # type: ignore[arg-type]


@register_model(
    paper="Woo et al. 2023, ConvNeXt V2, CVPR (cnnkit's 28x28 configuration)", year=2023, input_size=(1, 28, 28),
    num_params=103_722, gradcam_layer="features",
)
def convnextv2_fmnist(*, num_classes: int = 10, in_channels: int = 1) -> ConvNeXtV2:
    """ConvNeXt V2 for 28x28 images: 2x2 stem, depths (2, 2), widths (32, 64); total stride 4 (a 7x7 grid)."""
    return ConvNeXtV2(
        num_classes=num_classes, in_channels=in_channels, input_size=(28, 28), **CONVNEXTV2_CONFIGS["fmnist"]  # type: ignore[arg-type]
    )
