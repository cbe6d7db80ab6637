"""SegNet (Badrinarayanan, Kendall & Cipolla 2017): an encoder-decoder that upsamples with the encoder's
max-pooling indices.

Reference: V. Badrinarayanan, A. Kendall, R. Cipolla, "SegNet: A Deep Convolutional Encoder-Decoder
Architecture for Image Segmentation", IEEE TPAMI 39(12), 2017, Sec. 3 and Fig. 2-3.
"""

from __future__ import annotations

from torch import Tensor, nn

from .._checks import check_int
from ..errors import ConfigError
from ..layers import LAYERS
from ._common import set_input_shape
from ._registry import register_model

__all__ = ["SegNet", "segnet"]

# The encoder is VGG-16's 13 convolutions (Table 1 configuration D, Simonyan & Zisserman 2015), in five
# stages, each followed by a 2x2 max-pool that remembers its argmax; the decoder mirrors it (Fig. 2).
_STAGES = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
_UNPOOL = ("indices", "copy")


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class SegNet(nn.Module):
    """SegNet: ``depth`` encoder stages of 3x3 conv + BN + ReLU blocks (VGG-16's, Sec. 3), each ending in
    a 2x2 max-pool whose indices are stored; ``depth`` decoder stages that first *max-unpool* with those
    indices (the catalog's ``max_unpool2d``: each value returns to the position of its maximum, zeros
    elsewhere; Fig. 3) and then convolve the sparse map densely; a 3x3 convolution gives the class scores
    (the softmax is in the loss).

    Args:
        num_classes: score maps (11 road-scene classes on CamVid in the paper, 12 with void).
        in_channels: input channels.
        depth: encoder stages used, 1..5 (5 in the paper).
        width_divisor: divides every width (1 in the paper) for networks that fit a CPU.
        unpool: ``"indices"`` (the paper) or ``"copy"``, the article's copy unpooling (``Unpool2d``:
            every value copied into its 2x2 block), to compare what the indices buy.

    Shape:
        ``(B, C, H, W) -> (B, num_classes, H, W)``, H and W multiples of ``2**depth``.

    Deviations:
        The last decoder stage's final convolution outputs ``num_classes`` maps directly, as in the authors'
        Caffe model, instead of a 64-channel map followed by a separate classifier. Median-frequency
        class balancing (Sec. 4.1) is a loss setting here (``task.class_weights``).

    Example:
        >>> import torch
        >>> segnet(num_classes=3, depth=2, width_divisor=16)(torch.zeros(1, 3, 16, 16)).shape
        torch.Size([1, 3, 16, 16])
    """

    def __init__(self, *, num_classes: int = 12, in_channels: int = 3, depth: int = 5, width_divisor: int = 1, unpool: str = "indices") -> None:
        super().__init__()
        check_int(num_classes, "num_classes")
        check_int(width_divisor, "width_divisor")
        if not 1 <= depth <= len(_STAGES):
            raise ConfigError(f"Expected 1 <= depth <= {len(_STAGES)}. Received: depth={depth}")
        if unpool not in _UNPOOL:
            raise ConfigError(f"Expected unpool in {_UNPOOL}. Received: unpool={unpool!r}")
        stages = [(max(1, w // width_divisor), n) for w, n in _STAGES[:depth]]
        self.encoder = nn.ModuleList()
        c = in_channels
        for w, n in stages:
            layers: list[nn.Module] = []
            for _ in range(n):
                layers += _conv_bn_relu(c, w)
                c = w
            self.encoder.append(nn.Sequential(*layers))
        self.pool = nn.MaxPool2d(2, 2, return_indices=True)
        self.unpool = LAYERS.get("max_unpool2d")(2, 2) if unpool == "indices" else LAYERS.get("unpool2d")(2)
        self.decoder = nn.ModuleList()
        outs = [w for w, _ in stages]
        for i in reversed(range(depth)):
            w, n = stages[i]
            nxt = outs[i - 1] if i > 0 else None
            layers = []
            for j in range(n):
                last = j == n - 1
                if not last:
                    layers += _conv_bn_relu(w, w)
                elif nxt is not None:
                    layers += _conv_bn_relu(w, nxt)
            self.decoder.append(nn.Sequential(*layers))
        self.head = nn.Conv2d(outs[0], num_classes, 3, padding=1)  # the class scores
        self.depth = depth
        self.num_classes = num_classes
        self.unpool_mode = unpool

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x))

    def forward_head(self, x: Tensor) -> Tensor:
        return self.head(x)

    def forward_features(self, x: Tensor) -> Tensor:
        """Encoder and decoder up to the class scores: ``(B, width, H, W)``."""
        if x.shape[-2] % 2**self.depth or x.shape[-1] % 2**self.depth:
            raise ConfigError(
                f"SegNet with depth {self.depth} needs input sides that are multiples of {2**self.depth}; "
                f"received {tuple(x.shape[-2:])} (set data.input_size)"
            )
        indices, sizes = [], []
        for block in self.encoder:
            x = block(x)
            sizes.append(x.shape)
            x, idx = self.pool(x)
            indices.append(idx)
        for block, idx, size in zip(self.decoder, reversed(indices), reversed(sizes)):
            x = self.unpool(x, idx, output_size=size) if self.unpool_mode == "indices" else self.unpool(x)
            x = block(x)
        return x

    def extra_repr(self) -> str:
        return f"depth={self.depth}, unpool={self.unpool_mode!r}"


# Hand count at the defaults (12 classes, RGB), from the layer table above: the encoder is VGG-16's 13
# convolutions (14,714,688) plus their BatchNorm (2 x 4,224); the decoder mirrors it with 12 conv+BN blocks
# and a final 3x3 conv to the classes. The paper quotes 29.5M parameters (Table 6) for its 11-class model.
def _count() -> int:
    total, c = 0, 3
    for w, n in _STAGES:
        for _ in range(n):
            total += 9 * c * w + w + 2 * w
            c = w
    outs = [w for w, _ in _STAGES]
    for i in reversed(range(len(_STAGES))):
        w, n = _STAGES[i]
        for j in range(n):
            if j == n - 1 and i == 0:
                total += 9 * w * 12 + 12
            else:
                o = outs[i - 1] if j == n - 1 else w
                total += 9 * w * o + o + 2 * o
    return total


@register_model(
    paper="Badrinarayanan, Kendall & Cipolla 2017, SegNet, IEEE TPAMI, Fig. 2",
    year=2017,
    input_size=(3, 352, 480),
    num_params=_count(),
    task="segmentation",
    gradcam_layer="decoder.3",
)
def segnet(*, num_classes: int = 12, in_channels: int = 3, depth: int = 5, width_divisor: int = 1, unpool: str = "indices") -> SegNet:
    """SegNet on VGG-16's encoder (CamVid's 360x480 cropped to 352x480 here, a multiple of 32). See :class:`SegNet`."""
    model = SegNet(num_classes=num_classes, in_channels=in_channels, depth=depth, width_divisor=width_divisor, unpool=unpool)
    return set_input_shape(model, (in_channels, 352, 480))
