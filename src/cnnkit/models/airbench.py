"""airbench-style fast-training networks (Jordan 2024), adapted to 28x28 grayscale images.

airbench trains CIFAR-10 to 94% in a few seconds of GPU time with a small VGG-like net and a handful of
tricks; the architectural ones live here (patch-whitening init, partial identity init, BatchNorm with a
frozen scale, logit temperature), the training ones (Nesterov SGD with lr and weight decay set independently,
64x lr on BatchNorm biases, label smoothing, flip/translate augmentation, weight averaging, flip TTA) are
config keys of the training engine (see ``configs/fashion-mnist-fast.yaml`` and ``-best.yaml``).

Architecture (airbench94: Jordan 2024, arXiv:2404.00498, Sec. 3, and its released ``airbench94.py``)::

    x -> whiten (frozen k x k conv, 2*C*k*k channels, PCA of the data's patches) -> GELU
      -> ConvGroup(w0) -> ConvGroup(w1) -> ConvGroup(w2) -> global max-pool -> Linear (no bias) -> * scale

    ConvGroup(w): conv3x3(w) -> maxpool2 -> BN -> GELU -> conv3x3(w) -> BN -> GELU

On 1x28x28 inputs with k=2 the feature maps are 27 -> 13 -> 6 -> 3 pixels wide. With a 4x4, stride-2,
padding-1 whitening conv (the fast recipe) they are 14 -> 7 -> 3 -> 1: every trained conv runs on 4x fewer
pixels, ~8x less compute in all, and the 4x4 patches overlap so no pixel is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .._checks import check_int
from ..errors import ConfigError
from ._common import FeatureHeadModel, set_input_shape
from ._registry import register_model

__all__ = ["AirbenchNet", "ConvGroup", "FrozenScaleBatchNorm2d", "airbench_fmnist"]


class FrozenScaleBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose scale ``gamma`` is fixed at 1 (not trained); only the shift ``beta`` learns.

    With the scale frozen, the following GELU sees unit-variance inputs and the net is invariant to the
    scale of the preceding conv weights, which is what lets airbench use very large learning rates with
    weight decay (Jordan 2024, Sec. 3, network architecture: BatchNorm weights frozen at 1, biases trained).

    Args:
        num_features: Channels C.
        momentum: PyTorch-convention running-stat momentum (airbench's 0.6 is PyTorch's 0.4).
        eps: Added to the variance; airbench uses 1e-12.

    Shape:
        Input and output (N, C, H, W).

    Example:
        >>> bn = FrozenScaleBatchNorm2d(16)
        >>> bn.weight.requires_grad, bn.bias.requires_grad
        (False, True)

    Reference:
        Jordan, K. (2024). 94% on CIFAR-10 in 3.29 Seconds on a Single GPU. arXiv:2404.00498.

    Deviations:
        None from airbench; versus ``nn.BatchNorm2d``: eps 1e-12 and momentum 0.4 by default.
    """

    def __init__(self, num_features: int, *, momentum: float = 0.4, eps: float = 1e-12) -> None:
        if not 0.0 < momentum <= 1.0:
            raise ConfigError(f"Expected 0 < momentum <= 1. Received: momentum={momentum!r}")
        super().__init__(num_features, eps=eps, momentum=momentum, affine=True)
        self.weight.requires_grad_(False)


# oneDNN (torch 2.x, AVX-512 BF16 CPUs) computes the bf16 weight gradient of a channels-last conv with fewer
# than ~24 input channels on a slow path when it runs on more than one thread: ~20x the CPU time of the same
# conv in NCHW (measured: 8 -> 64 channels at 27x27, batch 256: 1.08 s vs 0.05 s of CPU per step on 2 threads).
_CPU_CHANNELS_LAST_MIN_IN = 24


class ConvGroup(nn.Module):
    """conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU (airbench94's ``ConvGroup``).

    Pooling right after the first conv (not at the end) runs the second conv at a quarter of the pixels;
    convs have no bias since a BN follows each. On the CPU, a channels-last input with fewer than 24 channels
    goes through the first conv in NCHW (and comes back channels-last) to dodge a slow oneDNN kernel; the
    result is the same.

    Args:
        in_channels: Input channels.
        out_channels: Output channels of both convs.
        bn_momentum: PyTorch-convention BN running-stat momentum.

    Shape:
        (N, in_channels, H, W) -> (N, out_channels, H // 2, W // 2)

    Example:
        >>> ConvGroup(8, 64)(torch.randn(2, 8, 27, 27)).shape
        torch.Size([2, 64, 13, 13])

    Reference:
        Jordan (2024), arXiv:2404.00498, Sec. 3 (architecture; identity initialization of the convs).
    """

    def __init__(self, in_channels: int, out_channels: int, *, bn_momentum: float = 0.4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = FrozenScaleBatchNorm2d(out_channels, momentum=bn_momentum)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = FrozenScaleBatchNorm2d(out_channels, momentum=bn_momentum)
        self.act = nn.GELU()
        # airbench: identity (Dirac) init of the first in_channels filters, so each group starts close to
        # passing its input through; measurably faster early training than plain Kaiming init.
        for conv in (self.conv1, self.conv2):
            w = conv.weight.data
            nn.init.dirac_(w[: min(w.size(0), w.size(1))])

    def forward(self, x: Tensor) -> Tensor:
        if (
            x.device.type == "cpu"
            and x.shape[1] < _CPU_CHANNELS_LAST_MIN_IN
            and not x.is_contiguous()
            and x.is_contiguous(memory_format=torch.channels_last)
        ):
            x = self.conv1(x.contiguous()).contiguous(memory_format=torch.channels_last)
        else:
            x = self.conv1(x)
        x = self.act(self.norm1(self.pool(x)))
        return self.act(self.norm2(self.conv2(x)))


class AirbenchNet(FeatureHeadModel):
    """The airbench94 network (Jordan 2024), for any channel count and a square input.

    Args:
        num_classes: Output classes.
        in_channels: Input channels C.
        widths: Channels of the three conv groups (airbench94: 64, 256, 256).
        whiten_kernel_size: k of the frozen patch-whitening conv (airbench: 2).
        whiten_stride: Its stride (airbench: 1; 2 halves the resolution before any trained conv).
        whiten_padding: Its zero padding (airbench: 0).
        scaling_factor: Multiplies the logits (airbench: 1/9), a fixed temperature that keeps the large
            learning rate from blowing up the logits early on.
        bn_momentum: PyTorch-convention BN running-stat momentum.
        image_size: Input height = width (for ``input_shape``; the net itself is size-agnostic).

    Shape:
        (N, C, H, W) -> (N, num_classes); ``forward_features`` gives (N, widths[-1], h, w).

    The whitening conv's weights are frozen (``requires_grad=False``); call :meth:`init_from_data` with a
    batch of normalized training images before training, as the training engine does, to set them to the
    patch-PCA whitening transform. Its bias trains.

    Example:
        >>> net = AirbenchNet(widths=(32, 64, 128), whiten_kernel_size=4, whiten_stride=2, whiten_padding=1)
        >>> net.init_from_data(torch.randn(64, 1, 28, 28))
        >>> net(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 10])

    Reference:
        Jordan, K. (2024). 94% on CIFAR-10 in 3.29 Seconds on a Single GPU. arXiv:2404.00498. Code:
        github.com/KellerJordan/cifar10-airbench (``airbench94.py``).

    Deviations:
        Global max-pool instead of ``MaxPool2d(3)`` (identical on airbench's 3x3 final maps, size-agnostic
        here). The whitening bias trains for the whole run (airbench freezes it after 3 epochs; the engine
        has no per-parameter freeze schedule). ``whiten_stride``/``whiten_padding`` are additions (airbench:
        1 and 0). On the CPU, a first conv with < 24 input channels runs in NCHW (same result, see
        :class:`ConvGroup`).
    """

    def __init__(
        self,
        *,
        num_classes: int = 10,
        in_channels: int = 1,
        widths: Sequence[int] = (64, 128, 128),
        whiten_kernel_size: int = 2,
        whiten_stride: int = 1,
        whiten_padding: int = 0,
        scaling_factor: float = 1 / 9,
        bn_momentum: float = 0.4,
        image_size: int = 28,
    ) -> None:
        super().__init__()
        check_int(num_classes, "num_classes")
        check_int(in_channels, "in_channels")
        check_int(whiten_kernel_size, "whiten_kernel_size")
        check_int(whiten_stride, "whiten_stride")
        check_int(whiten_padding, "whiten_padding", 0)
        check_int(image_size, "image_size")
        widths = tuple(widths)
        if len(widths) != 3 or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise ConfigError(f"Expected widths to be three positive integers. Received: widths={widths!r}")
        if not scaling_factor > 0:
            raise ConfigError(f"Expected scaling_factor > 0. Received: scaling_factor={scaling_factor!r}")
        # Three 2x poolings after the whitening conv need at least 8 pixels left.
        stem_size = (image_size + 2 * whiten_padding - whiten_kernel_size) // whiten_stride + 1
        if stem_size < 8:
            raise ConfigError(
                f"Expected the whitening conv to leave >= 8 pixels, (image_size + 2 * whiten_padding - "
                f"whiten_kernel_size) // whiten_stride + 1 >= 8. Received: image_size={image_size}, "
                f"whiten_kernel_size={whiten_kernel_size}, whiten_stride={whiten_stride}, "
                f"whiten_padding={whiten_padding}"
            )
        self.widths = widths
        self.scaling_factor = float(scaling_factor)
        k = whiten_kernel_size
        # 2*C*k*k channels: each PCA direction and its negation, so the GELU after it loses no sign
        # information (airbench's "whitening" layer).
        whiten_width = 2 * in_channels * k * k
        self.whiten = nn.Conv2d(in_channels, whiten_width, k, stride=whiten_stride, padding=whiten_padding, bias=True)
        self.whiten.weight.requires_grad_(False)
        self.act = nn.GELU()
        self.layers = nn.Sequential(
            ConvGroup(whiten_width, widths[0], bn_momentum=bn_momentum),
            ConvGroup(widths[0], widths[1], bn_momentum=bn_momentum),
            ConvGroup(widths[1], widths[2], bn_momentum=bn_momentum),
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(widths[2], num_classes, bias=False)
        set_input_shape(self, (in_channels, image_size, image_size))

    @torch.no_grad()
    def init_from_data(self, images: Tensor, *, eps: float = 5e-4) -> None:
        """Set the whitening conv to the patch-PCA whitening of ``images`` (airbench ``init_whitening_conv``).

        With Sigma = E[p p^T] the (uncentred, as in airbench) second-moment matrix of the k x k patches p and
        Sigma = V diag(lambda) V^T, the filters are the rows of diag(lambda + eps)^(-1/2) V^T and their
        negations, so the first half of the output channels has second moments ~ I on these images.

        Args:
            images: (N, C, H, W) normalized training images (a few thousand is plenty).
            eps: Added to the eigenvalues before the inverse square root (airbench: 5e-4).
        """
        w = self.whiten.weight
        c, k = w.shape[1], w.shape[2]
        if images.dim() != 4 or images.shape[1] != c:
            raise ConfigError(f"Expected images of shape (N, {c}, H, W). Received: {tuple(images.shape)}")
        x = images.detach().to(device=w.device, dtype=torch.float64)
        # (N, C, H', W', k, k) -> (N*H'*W', C*k*k), patch elements in the conv weight's (C, k, k) order.
        patches = x.unfold(2, k, 1).unfold(3, k, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)
        sigma = patches.T @ patches / patches.shape[0]
        eigenvalues, eigenvectors = torch.linalg.eigh(sigma)
        filters = (eigenvectors / torch.sqrt(eigenvalues + eps)).T.reshape(c * k * k, c, k, k)
        w.copy_(torch.cat((filters, -filters)).to(w.dtype))

    def extra_repr(self) -> str:
        return f"widths={self.widths}, scaling_factor={self.scaling_factor:.4g}"

    def forward_features(self, x: Tensor) -> Tensor:
        return self.layers(self.act(self.whiten(x)))

    def forward_head(self, x: Tensor) -> Tensor:
        return self.head(self.pool(x).flatten(1)) * self.scaling_factor


_PAPER = "Jordan 2024, arXiv:2404.00498 (airbench)"


@register_model(paper=_PAPER, year=2024, input_size=(1, 28, 28), num_params=560_168, gradcam_layer="layers.2")
def airbench_fmnist(
    *,
    num_classes: int = 10,
    in_channels: int = 1,
    widths: Sequence[int] = (64, 128, 128),
    whiten_kernel_size: int = 2,
    whiten_stride: int = 1,
    whiten_padding: int = 0,
    scaling_factor: float = 1 / 9,
    image_size: int = 28,
) -> AirbenchNet:
    """airbench94 for 28x28 grayscale images (Fashion-MNIST), widths 64/128/128.

    Args: as :class:`AirbenchNet`. ``configs/fashion-mnist-fast.yaml`` uses widths 32/64/128 with a 4x4,
    stride-2, padding-1 whitening conv; ``configs/fashion-mnist-best.yaml`` the defaults.

    Shape:
        (N, in_channels, 28, 28) -> (N, num_classes).

    Example:
        >>> airbench_fmnist()(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 10])

    Reference:
        Jordan (2024), arXiv:2404.00498.

    Deviations:
        airbench94 uses widths 64/256/256 on 3x32x32 CIFAR-10; here 64/128/128 for 1x28x28, since the
        input has a third of the channels and the CPU is the bottleneck. The whitening bias trains for the
        whole run (airbench freezes it after 3 epochs). Global max-pool instead of ``MaxPool2d(3)`` (the
        same on airbench's 3x3 final maps; size-agnostic here). See :class:`AirbenchNet`.
    """
    return AirbenchNet(
        num_classes=num_classes,
        in_channels=in_channels,
        widths=widths,
        whiten_kernel_size=whiten_kernel_size,
        whiten_stride=whiten_stride,
        whiten_padding=whiten_padding,
        scaling_factor=scaling_factor,
        image_size=image_size,
    )
