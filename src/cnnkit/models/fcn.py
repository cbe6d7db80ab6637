"""Fully convolutional networks (Long, Shelhamer & Darrell 2015): a classifier made convolutional, plus
learned upsampling and skips (FCN-32s, FCN-16s, FCN-8s).

Reference: J. Long, E. Shelhamer, T. Darrell, "Fully Convolutional Networks for Semantic Segmentation",
CVPR 2015, Sec. 3.1 (fully connected layers as convolutions, Fig. 2), 3.3 (upsampling is backwards
strided convolution, initialised to bilinear interpolation), 4.2 and Fig. 3 (the skip architecture).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_int
from ..errors import ConfigError
from ._common import set_input_shape
from ._registry import register_model
from .vgg import VGG, VGG_CONFIGS

__all__ = ["FCN", "bilinear_kernel", "convolutionize", "fcn"]

_VARIANTS = {"32s": 32, "16s": 16, "8s": 8}


def bilinear_kernel(factor: int) -> Tensor:
    """The ``2 f x 2 f`` bilinear interpolation kernel for upsampling by ``f`` with a transposed
    convolution of stride ``f`` (the FCN code's ``upsample_filt``): ``(1 - |x - c| / f)(1 - |y - c| / f)``
    with centre ``c = f - 0.5`` for even kernels."""
    size = 2 * factor
    center = factor - 0.5
    t = torch.arange(size, dtype=torch.float32)
    f = 1 - (t - center).abs() / factor
    return f[:, None] * f[None, :]


def _bilinear_up(channels: int, factor: int, *, learned: bool) -> nn.Module:
    """A ``channels -> channels`` upsampling by ``factor`` (kernel ``2 f``, stride ``f``, padding ``f / 2``:
    the output is exactly ``f`` times the input) initialised to bilinear interpolation, channel by channel
    (the FCN code's ``interp`` surgery: the diagonal filters are bilinear, the others zero)."""
    up = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, padding=factor // 2, bias=False)
    with torch.no_grad():
        up.weight.zero_()
        k = bilinear_kernel(factor)
        for c in range(channels):
            up.weight[c, c] = k
    up.weight.requires_grad_(learned)
    return up


def convolutionize(classifier: VGG) -> tuple[nn.Sequential, nn.Sequential]:
    """A VGG classifier's features and its fully connected layers as convolutions (Sec. 3.1, Fig. 2):
    fc6 becomes a 7x7 convolution over the last 512-channel map, fc7 and fc8 1x1 convolutions, with the
    same weights, so on a 224x224 input the result is a 1x1 map of the classifier's logits (and on larger
    inputs a coarse map of them).

    Returns:
        ``(features, head)``: the classifier's own ``features`` and ``conv6, ReLU, Dropout, conv7, ReLU,
        Dropout, conv8`` (padded so that every input size gives a map; see :class:`FCN`'s deviations).
    """
    fc6, fc7, fc8 = (m for m in classifier.classifier if isinstance(m, nn.Linear))
    c_last = fc6.in_features // 49
    convs = []
    for fc, k, c_in in ((fc6, 7, c_last), (fc7, 1, fc7.in_features), (fc8, 1, fc8.in_features)):
        conv = nn.Conv2d(c_in, fc.out_features, k, padding=k // 2)
        with torch.no_grad():
            conv.weight.copy_(fc.weight.view(fc.out_features, c_in, k, k))
            assert conv.bias is not None and fc.bias is not None
            conv.bias.copy_(fc.bias)
        convs.append(conv)
    drop = [m.p for m in classifier.classifier if isinstance(m, nn.Dropout)] or [0.5, 0.5]
    head = nn.Sequential(convs[0], nn.ReLU(), nn.Dropout2d(drop[0]), convs[1], nn.ReLU(), nn.Dropout2d(drop[1]), convs[2])
    features = classifier.features
    assert isinstance(features, nn.Sequential)
    return features, head


class FCN(nn.Module):
    """FCN-32s / 16s / 8s on a convolutionized VGG classifier.

    The classifier's last layer is replaced by a 1x1 convolution to ``num_classes`` scores (``score_fr``,
    zero-initialised as in the paper's code); FCN-16s adds 1x1 scores of pool4 (``score_pool4``) to the
    2x-upsampled pool5 scores, FCN-8s also those of pool3; the sum is upsampled to the input by the final
    bilinear interpolation, which stays fixed (Sec. 4.2: "the final layer deconvolutional filters are fixed
    to bilinear interpolation, while intermediate upsampling layers are initialized to bilinear
    upsampling and then learned"). The skip scores are zero-initialised, so a 16s/8s net starts out as
    its coarser parent, as the paper's staged training does.

    Args:
        classifier: a :class:`~cnnkit.models.vgg.VGG` (its weights are kept: transfer from a trained run).
        num_classes: score maps.
        variant: ``"32s"``, ``"16s"`` or ``"8s"`` (the stride of the coarsest prediction path).

    Shape:
        ``(B, C, H, W) -> (B, num_classes, H, W)``; inputs are zero-padded on the bottom and right to a
        multiple of 32 and the output cropped back.

    Deviations:
        The paper pads the first convolution by 100 pixels and aligns maps with crop layers (Caffe); here
        fc6 is padded (3) and the input padded to a multiple of 32, which gives aligned maps of exactly
        1/32, 1/16, 1/8 of the (padded) input without crops. Dropout is 2-D (whole maps). The paper's
        staged training (32s, then 16s initialised from it, then 8s) is left to the user (``--init-from``).

    Example:
        >>> from cnnkit.models.vgg import VGG
        >>> net = FCN(VGG([8, "M", 8, "M", 8, "M", 8, "M", 8, "M"], num_classes=3, hidden_features=16), num_classes=4)
        >>> net(torch.zeros(1, 3, 40, 50)).shape
        torch.Size([1, 4, 40, 50])
    """

    def __init__(self, classifier: VGG, *, num_classes: int = 21, variant: str = "8s") -> None:
        super().__init__()
        if variant not in _VARIANTS:
            raise ConfigError(f"Expected variant in {tuple(_VARIANTS)}. Received: variant={variant!r}")
        check_int(num_classes, "num_classes")
        features, head = convolutionize(classifier)
        pools = [i for i, m in enumerate(features) if isinstance(m, nn.MaxPool2d)]
        if len(pools) != 5:
            raise ConfigError(f"Expected a VGG with 5 max-pools (strides 2 to 32). Received: {len(pools)}")
        self.to_pool3 = features[: pools[2] + 1]
        self.to_pool4 = features[pools[2] + 1 : pools[3] + 1]
        self.to_pool5 = features[pools[3] + 1 :]
        self.fc = head[:-1]  # conv6 .. dropout after conv7
        last = head[-1]
        assert isinstance(last, nn.Conv2d)
        self.score_fr = nn.Conv2d(last.in_channels, num_classes, 1)
        nn.init.zeros_(self.score_fr.weight)
        nn.init.zeros_(self.score_fr.bias)  # type: ignore[arg-type]  # Conv2d(bias=True) has one

        def conv_before(p: int) -> int:
            return [m for m in list(features)[:p] if isinstance(m, nn.Conv2d)][-1].out_channels

        self.variant = variant
        self.num_classes = num_classes
        stride = _VARIANTS[variant]
        if stride <= 16:
            self.score_pool4 = nn.Conv2d(conv_before(pools[3]), num_classes, 1)
            self.upscore2 = _bilinear_up(num_classes, 2, learned=True)
        if stride == 8:
            self.score_pool3 = nn.Conv2d(conv_before(pools[2]), num_classes, 1)
            self.upscore_pool4 = _bilinear_up(num_classes, 2, learned=True)
        for m in (getattr(self, "score_pool4", None), getattr(self, "score_pool3", None)):
            if isinstance(m, nn.Conv2d):
                nn.init.zeros_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.register_buffer("final_kernel", bilinear_kernel(stride)[None, None].repeat(num_classes, 1, 1, 1), persistent=False)
        self.stride = stride
        self.final_kernel: Tensor

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        return self.forward_head(self.forward_features(x))[..., :h, :w]

    def forward_features(self, x: Tensor) -> Tensor:
        """The fused class scores at stride 32 / 16 / 8 of the input zero-padded to a multiple of 32."""
        h, w = x.shape[-2:]
        x = F.pad(x, (0, -w % 32, 0, -h % 32))
        p3 = self.to_pool3(x)  # (B, 256, H/8, W/8) for VGG-16
        p4 = self.to_pool4(p3)  # (B, 512, H/16, W/16)
        score = self.score_fr(self.fc(self.to_pool5(p4)))  # (B, K, H/32, W/32)
        if self.stride <= 16:
            score = self.upscore2(score) + self.score_pool4(p4)  # (B, K, H/16, W/16)
        if self.stride == 8:
            score = self.upscore_pool4(score) + self.score_pool3(p3)  # (B, K, H/8, W/8)
        return score

    def forward_head(self, score: Tensor) -> Tensor:
        """The fixed bilinear upsampling to the (padded) input size; :meth:`forward` crops the padding."""
        f = self.stride
        return F.conv_transpose2d(score, self.final_kernel.to(score.dtype), stride=f, padding=f // 2, groups=self.num_classes)

    def extra_repr(self) -> str:
        return f"variant={self.variant!r}, num_classes={self.num_classes}"


def _scaled_cfg(name: str, width_divisor: int) -> list[int | str]:
    return [v if v == "M" else max(1, int(v) // width_divisor) for v in VGG_CONFIGS[name]]


# Hand count of FCN-8s on VGG-16 with 21 classes (Pascal VOC), from the layer shapes of Sec. 3.1 / Fig. 3:
# VGG-16 convolutions 14,714,688; fc6 as 7x7 conv 512 -> 4096: 102,764,544; fc7 4096 -> 4096: 16,781,312;
# score_fr 86,037; score_pool4 10,773; score_pool3 5,397; two learned 2x upsamplings 21 x 21 x 4 x 4 each
# (no bias): 14,112. The final 8x bilinear upsampling is fixed (a buffer, not a parameter).
_FCN8S_VGG16_PARAMS = 14_714_688 + 102_764_544 + 16_781_312 + 86_037 + 10_773 + 5_397 + 2 * 7_056


@register_model(
    paper="Long, Shelhamer & Darrell 2015, Fully Convolutional Networks for Semantic Segmentation, CVPR, Fig. 3",
    year=2015,
    input_size=(3, 224, 224),
    num_params=_FCN8S_VGG16_PARAMS,
    task="segmentation",
    gradcam_layer="to_pool5",
)
def fcn(
    *,
    num_classes: int = 21,
    in_channels: int = 3,
    backbone: str = "vgg16",
    variant: str = "8s",
    width_divisor: int = 1,
    hidden_features: int = 4096,
    batch_norm: bool = False,
    dropout: float = 0.5,
) -> FCN:
    """FCN-8s (or ``variant="32s"`` / ``"16s"``) on a VGG zoo classifier (``backbone``: ``vgg16`` as in the
    paper, or ``vgg11``), converted as in Sec. 3.1. ``width_divisor`` divides every convolution's width
    and ``hidden_features`` sets fc6/fc7's (4096) for networks that fit a CPU; see :class:`FCN`."""
    if backbone not in VGG_CONFIGS:
        raise ConfigError(f"Expected backbone in {tuple(VGG_CONFIGS)}. Received: backbone={backbone!r}")
    check_int(width_divisor, "width_divisor")
    classifier = VGG(
        _scaled_cfg(backbone, width_divisor), num_classes=1, in_channels=in_channels, batch_norm=batch_norm,
        dropout=dropout, hidden_features=hidden_features,
    )
    return set_input_shape(FCN(classifier, num_classes=num_classes, variant=variant), (in_channels, 224, 224))
