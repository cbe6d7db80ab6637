"""U-Net (Ronneberger et al. 2015): a contracting path, an expanding path, and skip connections."""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ._common import FeatureHeadModel
from ._registry import register_model

__all__ = ["UNet", "unet"]

_UPSAMPLE = ("transpose", "resize_conv")
_PADDING = ("valid", "same")


def _double_conv(c_in: int, c_out: int, pad: int, batch_norm: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for c in (c_in, c_out):
        layers.append(nn.Conv2d(c, c_out, 3, padding=pad))
        if batch_norm:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


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
        batch_norm: a ``BatchNorm2d`` after every 3x3 convolution (not in the paper; trains faster from
            scratch on small data).
        overlap_tile: with ``padding="valid"``, the paper's overlap-tile strategy (Sec. 2, Fig. 2) for any
            input size: the input is extended by mirroring to the smallest size that fits every pool and
            whose output covers the input, and the output is cropped back to the input's size, so each
            output pixel is predicted from real context plus mirrored borders.

    Training memory is checked before the first forward pass of each input shape: when the activations
    autograd keeps (estimated from the layer sizes, :meth:`UNet.activation_bytes`) exceed the memory free
    on the device, the model refuses with a one-line :class:`~cnnkit.errors.ConfigError` naming what to
    lower (at 572x572 one image needs about 1 GB; ``$CNNKIT_MAX_ACTIVATION_BYTES`` overrides the limit).

    Shape:
        Input ``(B, in_channels, H, W)``; output ``(B, num_classes, H', W')`` with ``H' = H`` for "same"
        (and for "valid" with ``overlap_tile``), and ``H' = H - 184`` at depth 4 for "valid" (572 -> 388).

    Example:
        >>> unet(base_width=4, padding="same")(torch.randn(2, 1, 32, 32)).shape
        torch.Size([2, 2, 32, 32])

    Reference:
        O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for Biomedical Image
        Segmentation", MICCAI 2015, Sec. 2 and Fig. 1. A. Odena, V. Dumoulin, C. Olah, "Deconvolution and
        Checkerboard Artifacts", Distill 2016.

    Deviations:
        The paper's drop-out at the end of the contracting path (data-augmentation section) is omitted.
        ``upsample="resize_conv"``, ``padding="same"`` and ``batch_norm`` are options beyond the paper.
        The paper's weighted loss that separates touching cells (Eq. 2) belongs to the data, not the
        network: the segmentation task takes per-class weights only.
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
        batch_norm: bool = False,
        overlap_tile: bool = False,
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
            self.encoder.append(_double_conv(c, w, pad, batch_norm))
            c = w
        self.pool = nn.MaxPool2d(2, 2)
        self.bottleneck = _double_conv(c, widths[-1], pad, batch_norm)
        self.ups = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for w_in, w_out in zip(widths[:0:-1], widths[-2::-1]):
            self.ups.append(_up(w_in, w_out, upsample))
            self.decoder.append(_double_conv(2 * w_out, w_out, pad, batch_norm))
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        if overlap_tile and padding != "valid":
            raise ConfigError("Expected overlap_tile only with padding='valid' (a same-padded U-Net keeps the size)")
        self.depth = depth
        self.padding = padding
        self.overlap_tile = overlap_tile
        self.widths = widths
        self._checked: set[tuple] = set()
        side = _valid_input_size(depth) if padding == "valid" else 16 * 2**depth
        self.input_shape = (in_channels, side, side)  # 572 for the paper's depth 4
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last decoder map (``base_width`` channels); with ``overlap_tile`` computed on the mirrored
        tile and cropped to the input's size (the 1x1 head commutes with the crop)."""
        if torch.is_grad_enabled() and self.training and x.device.type != "meta":
            self._check_memory(x)
        if not self.overlap_tile:
            return self._features(x)
        h, w = x.shape[-2:]
        (ph, th, oh), (pw, tw, ow) = self.tile_padding(h), self.tile_padding(w)
        out = self._features(_mirror_pad(x, pw, tw - w - pw, ph, th - h - ph))
        return out[..., oh : oh + h, ow : ow + w]

    def shrink(self) -> int:
        """Pixels a valid-padded U-Net loses per side pair (input side - output side): 184 at depth 4."""
        s = _valid_input_size(self.depth)
        return s - _valid_output_size(s, self.depth)

    def tile_padding(self, side: int) -> tuple[int, int, int]:
        """Overlap-tile for one side: ``(pad_before, padded_side, output_offset)``; the output of the
        padded input, cropped at ``output_offset``, covers the original ``side`` pixels."""
        n = 2**self.depth
        shrink = self.shrink()
        b = max(5, -(-(side + shrink - 4 * (n - 1)) // n))  # smallest b with n b + 4 (n - 1) - shrink >= side
        padded = n * b + 4 * (n - 1)
        before = shrink // 2 + (padded - shrink - side) // 2
        return before, padded, before - shrink // 2

    def activation_bytes(self, batch: int, h: int, w: int) -> int:
        """An estimate of what autograd keeps for one training step at input ``(batch, C, h, w)``: every
        conv, BN, pool, up-sampling and concatenation output in float32, plus the max-pools' int64 indices
        (``benchmarks/dense.py`` compares it with measured peak memory)."""
        if self.overlap_tile:
            h, w = self.tile_padding(h)[1], self.tile_padding(w)[1]
        per_conv = 2 if any(isinstance(m, nn.BatchNorm2d) for m in self.modules()) else 1
        k = 0 if self.padding == "same" else 2
        total = 0
        sizes = []
        for wd in self.widths[:-1]:
            h1, w1 = h - k, w - k
            h, w = h1 - k, w1 - k
            total += per_conv * wd * (h1 * w1 + h * w)
            sizes.append((wd, h, w))
            h, w = h // 2, w // 2
            total += wd * h * w * 3  # pooled output (4 bytes) + int64 indices (8 bytes)
        wd = self.widths[-1]
        total += per_conv * wd * ((h - k) * (w - k) + (h - 2 * k) * (w - 2 * k))
        h, w = h - 2 * k, w - 2 * k
        for wd, _, _ in reversed(sizes):
            h, w = 2 * h, 2 * w
            total += wd * h * w * 3  # up-sampled map and the concatenation (2 wd channels)
            total += per_conv * wd * ((h - k) * (w - k) + (h - 2 * k) * (w - 2 * k))
            h, w = h - 2 * k, w - 2 * k
        return 4 * batch * total

    def _check_memory(self, x: torch.Tensor) -> None:
        key = (tuple(x.shape), str(x.device))
        if key in self._checked:
            return
        # The estimate was 83% of the measured peak of a 572x572 step (766 vs 925 MiB, benchmarks/dense.py):
        # 1.25x covers the workspace it leaves out; weights, gradients and Adam's two moments come on top.
        weights = 4 * sum(p.numel() for p in self.parameters())
        need = int(1.25 * self.activation_bytes(x.shape[0], x.shape[-2], x.shape[-1])) + 4 * weights
        free = _free_bytes(x.device)
        if free is not None and need > free:
            raise ConfigError(
                f"U-Net (depth {self.depth}, base_width {self.widths[0]}, {self.padding}) at {x.shape[-2]}x{x.shape[-1]} "
                f"with batch {x.shape[0]} needs about {need / 2**30:.1f} GiB to train, more than the "
                f"{free / 2**30:.1f} GiB free on {x.device.type}; lower data.batch_size (the paper trains on one "
                "572x572 tile per batch), model.base_width or model.depth, or data.input_size"
            )
        self._checked.add(key)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
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


def _mirror_pad(x: torch.Tensor, left: int, right: int, top: int, bottom: int) -> torch.Tensor:
    """Reflect-pad by any amount: torch's reflect needs each pad smaller than the side, so large pads
    (a 64x64 image in a 572x572 tile) mirror the already-mirrored image again, as Fig. 2 extrapolates."""
    while left or right or top or bottom:
        h, w = x.shape[-2:]
        step = [min(left, w - 1), min(right, w - 1), min(top, h - 1), min(bottom, h - 1)]
        x = F.pad(x, step, mode="reflect")
        left, right, top, bottom = left - step[0], right - step[1], top - step[2], bottom - step[3]
    return x


def _free_bytes(device: torch.device) -> int | None:
    """Memory a training step may use on ``device``: ``$CNNKIT_MAX_ACTIVATION_BYTES``, else the free CUDA
    memory, else the CPU's MemAvailable (Linux); None when unknown."""
    raw = os.environ.get("CNNKIT_MAX_ACTIVATION_BYTES")
    if raw:
        try:
            return int(float(raw))
        except ValueError:
            raise ConfigError(f"Expected CNNKIT_MAX_ACTIVATION_BYTES to be a number. Received: {raw!r}") from None
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _valid_output_size(size: int, depth: int) -> int:
    """Output side of the valid-padded U-Net for an input side that fits every pool."""
    for _ in range(depth):
        size = (size - 4) // 2
    size -= 4
    for _ in range(depth):
        size = size * 2 - 4
    return size


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
    batch_norm: bool = False,
    overlap_tile: bool = False,
) -> UNet:
    """The paper's U-Net (572x572 -> 388x388, 64 base channels). See :class:`UNet`."""
    return UNet(
        num_classes=num_classes, in_channels=in_channels, base_width=base_width, depth=depth, upsample=upsample,
        padding=padding, batch_norm=batch_norm, overlap_tile=overlap_tile,
    )
