"""DCGAN (Radford, Metz & Chintala 2016): the generator, the discriminator, and the GAN module holding both.

Sizes: the generator projects z to a ``b x b`` map and doubles it ``k`` times, so it makes square images of
side ``b * 2**k`` with ``b`` in 4..7 (64 = 4 * 2**4 as in the paper, 28 = 7 * 2**2 for Fashion-MNIST, 32);
the discriminator mirrors it. Any other size is a one-line error naming the sizes it can make.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_int
from ..errors import ConfigError
from ..layers import UpsampleConv2d
from ._common import FeatureHeadModel
from ._registry import register_model

__all__ = [
    "DCGAN", "DCGANDiscriminator", "DCGANGenerator", "FIDNet", "dcgan", "dcgan_discriminator", "dcgan_generator",
    "dcgan_init_", "generator_plan",
]

# "resize_conv" is the earlier spelling of "upsample_conv" (cnnkit.layers.UpsampleConv2d); both are accepted.
_UPSAMPLE = ("transpose", "upsample_conv", "resize_conv")
_BASES = (4, 5, 6, 7)


def generator_plan(image_size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``(b, k)`` with ``image_size = b * 2**k``, ``b`` in 4..7, ``k >= 1``; a one-line error otherwise.

    Example:
        >>> generator_plan(64), generator_plan(28), generator_plan(32)
        ((4, 4), (7, 2), (4, 3))
    """
    if isinstance(image_size, (tuple, list)):
        if len(image_size) != 2 or image_size[0] != image_size[1]:
            raise ConfigError(f"the DCGAN generator makes square images; received image size {tuple(image_size)}")
        image_size = image_size[0]
    side = check_int(image_size, "image_size")
    b, k = side, 0
    while b > 7 and b % 2 == 0:
        b, k = b // 2, k + 1
    if b not in _BASES or k < 1:
        makes = sorted({base * 2**j for base in _BASES for j in range(1, 5)})
        raise ConfigError(
            f"the DCGAN generator cannot make {side}x{side} images: it doubles a 4..7-pixel projection of z, "
            f"so its sides are {', '.join(map(str, makes[:12]))}, ...; choose one of them (model.image_size) and bring the data to it (data.input_size)"
        )
    return b, k


def dcgan_init_(module: nn.Module) -> None:
    """Sec. 4 of the paper: "All weights were initialized from a zero-centered Normal distribution with
    standard deviation 0.02"; batch-norm scales from N(1, 0.02) and shifts 0, as in the authors' code."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def _up(c_in: int, c_out: int, upsample: str, bias: bool) -> nn.Module:
    if upsample == "transpose":
        return nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=bias)  # exactly doubles H, W
    # Odena et al. (2016): resize first, then convolve, so every output pixel gets the same number of
    # kernel taps; a transposed conv with kernel 4 / stride 2 overlaps unevenly -> checkerboards.
    return UpsampleConv2d(c_in, c_out, 3, scale_factor=2, mode="nearest", bias=bias)


class DCGANGenerator(FeatureHeadModel):
    """The DCGAN generator of Fig. 1: project z to ``b x b x (2**(k-1) ngf)``, then ``k`` 2x up-sampling steps.

    Guidelines from Sec. 3 of the paper: no pooling or fully connected hidden layers, batch norm after
    every layer but the output, ReLU inside, tanh at the output.

    Args:
        latent_dim: Size of the code z (100).
        out_channels: Image channels (3).
        base_width: ngf; the stages have ``2**(k-1), ..., 2, 1`` x ngf channels (at 64x64, k = 4 and
            128 gives the paper's 1024-512-256-128).
        upsample: ``"transpose"`` (the paper's fractionally-strided conv, 4x4 stride 2) or
            ``"upsample_conv"`` (nearest 2x resize then a 3x3 conv, :class:`~cnnkit.layers.UpsampleConv2d`;
            Odena et al. 2016); ``"resize_conv"`` is the same as ``"upsample_conv"``.
        image_size: side of the square output, ``b * 2**k`` with ``b`` in 4..7 (64).

    Shape:
        Input ``(B, latent_dim, 1, 1)`` (z as a 1x1 map); output ``(B, out_channels, S, S)`` in [-1, 1].

    Example:
        >>> import torch
        >>> dcgan_generator(base_width=8)(torch.randn(2, 100, 1, 1)).shape
        torch.Size([2, 3, 64, 64])

    Reference:
        A. Radford, L. Metz, S. Chintala, "Unsupervised Representation Learning with Deep Convolutional
        Generative Adversarial Networks", ICLR 2016, Sec. 3-4 and Fig. 1. A. Odena, V. Dumoulin, C. Olah,
        "Deconvolution and Checkerboard Artifacts", Distill 2016.

    Deviations:
        The "project and reshape" of z is a ``b x b`` transposed convolution on the 1x1 map (the same linear
        map as a bias-free fully connected layer to ``b x b x`` channels). Convolutions followed by batch
        norm have no bias (the batch norm's shift replaces it); the output convolution has none either, as
        in the authors' reference code. Sizes other than 64x64 (fewer or more doublings) are cnnkit's.
    """

    def __init__(
        self, *, latent_dim: int = 100, out_channels: int = 3, base_width: int = 128, upsample: str = "transpose",
        image_size: int = 64,
    ) -> None:
        super().__init__()
        if upsample not in _UPSAMPLE:
            raise ConfigError(f"Expected upsample in {_UPSAMPLE[:2]}. Received: upsample={upsample!r}")
        if latent_dim < 1 or base_width < 1:
            raise ConfigError(f"Expected latent_dim >= 1 and base_width >= 1. Received: latent_dim={latent_dim}, base_width={base_width}")
        base, k = generator_plan(image_size)
        self.upsample = "upsample_conv" if upsample == "resize_conv" else upsample
        self.latent_dim, self.image_size, self.stride = latent_dim, base * 2**k, 2
        widths = [base_width * 2**i for i in reversed(range(k))]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, widths[0], base, bias=False),  # (B, 2**(k-1) ngf, b, b): project and reshape
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        ]
        for c_in, c_out in zip(widths, widths[1:]):  # b -> 2b -> ... -> S / 2
            layers += [_up(c_in, c_out, self.upsample, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(_up(widths[-1], out_channels, self.upsample, bias=False), nn.Tanh())  # S / 2 -> S
        dcgan_init_(self)
        self.input_shape = (latent_dim, 1, 1)


class DCGANDiscriminator(FeatureHeadModel):
    """The DCGAN discriminator (Sec. 3): ``k`` strided 4x4 convolutions halving the image down to ``b x b``
    (ndf, 2 ndf, ..., 2**(k-1) ndf channels), batch norm on all but the first, LeakyReLU(0.2), then a
    ``b x b`` convolution to one logit (the paper's "flattened and fed into a single sigmoid output").

    Args:
        in_channels: image channels; base_width: ndf; image_size: as the generator's.

    Shape:
        ``(B, in_channels, S, S) -> (B,)`` logits (real > 0).

    Example:
        >>> dcgan_discriminator(in_channels=1, image_size=28, base_width=8)(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2])

    Deviations:
        The sigmoid is left to the loss (``binary_cross_entropy_with_logits``, numerically safer).
    """

    def __init__(self, *, in_channels: int = 3, base_width: int = 128, image_size: int = 64) -> None:
        super().__init__()
        base, k = generator_plan(image_size)
        widths = [check_int(base_width, "base_width") * 2**i for i in range(k)]
        layers: list[nn.Module] = []
        c_in = check_int(in_channels, "in_channels")
        for i, c_out in enumerate(widths):  # S -> S / 2 -> ... -> b
            layers.append(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=i == 0))
            if i:  # "not applying batchnorm to ... the discriminator input layer"
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Conv2d(c_in, 1, base, bias=False), nn.Flatten(0))
        dcgan_init_(self)
        self.input_shape = (in_channels, base * 2**k, base * 2**k)


class FIDNet(nn.Module):
    """The feature network of cnnkit's FID: a small classifier (three 3x3 conv / batch norm / ReLU stages,
    max-pooling between them, global average pooling to ``width * 4`` features, a linear head).

    Inception-v3's ImageNet weights (Heusel et al. 2017's feature network) cannot be downloaded here, so
    the ``dcgan`` module trains this net on the labelled real training images alongside the GAN
    (``task: gan``), and FID is computed on its pooled features.
    """

    def __init__(self, *, in_channels: int, num_classes: int, width: int = 32) -> None:
        super().__init__()
        w = check_int(width, "fid_width")

        def stage(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *stage(in_channels, w), nn.MaxPool2d(2), *stage(w, 2 * w), nn.MaxPool2d(2), *stage(2 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(4 * w, check_int(num_classes, "num_classes"))
        self.num_features = 4 * w

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class DCGAN(nn.Module):
    """A GAN: ``generator`` (z -> image in [-1, 1]), ``discriminator`` (image -> logit) and, for FID,
    ``fid_net`` (a classifier of real images; see :class:`FIDNet`). ``task: gan`` trains them.

    ``forward(x)`` is the discriminator (the module's input is an image, as the data pipeline needs);
    :meth:`generate` draws images.

    Example:
        >>> gan = dcgan(image_size=28, in_channels=1, base_width=8)
        >>> gan.generate(3, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([3, 1, 28, 28])
    """

    def __init__(
        self, *, latent_dim: int = 100, in_channels: int = 3, image_size: int = 64, base_width: int = 64,
        discriminator_width: int | None = None, upsample: str = "transpose", num_classes: int = 10,
        fid_width: int = 32,
    ) -> None:
        super().__init__()
        self.generator = DCGANGenerator(
            latent_dim=latent_dim, out_channels=in_channels, base_width=base_width, upsample=upsample, image_size=image_size
        )
        self.discriminator = DCGANDiscriminator(
            in_channels=in_channels, base_width=discriminator_width or base_width, image_size=image_size
        )
        self.fid_net = FIDNet(in_channels=in_channels, num_classes=num_classes, width=fid_width)
        self.latent_dim = latent_dim
        self.upsample = self.generator.upsample
        s = self.generator.image_size
        self.input_shape = (in_channels, s, s)

    def sample_z(self, n: int, *, generator: torch.Generator | None = None, device: torch.device | None = None) -> Tensor:
        """``n`` codes z ~ N(0, I) as ``(n, latent_dim, 1, 1)``. (The paper drew z uniformly; see the task.)"""
        device = device if device is not None else next(self.parameters()).device
        if generator is None:
            return torch.randn(n, self.latent_dim, 1, 1, device=device)
        # Drawn where the generator lives, so a CPU generator gives the same codes whatever the device.
        return torch.randn(n, self.latent_dim, 1, 1, generator=generator, device=generator.device).to(device)

    def generate(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """``n`` images in [-1, 1] from fresh codes (in the generator's current mode)."""
        return self.generator(self.sample_z(n, generator=generator))

    def forward_features(self, x: Tensor) -> Tensor:
        return self.discriminator.forward_features(x)

    def forward_head(self, x: Tensor) -> Tensor:
        return self.discriminator.forward_head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.discriminator(x)


@register_model(
    paper="Radford, Metz & Chintala 2016, DCGAN, ICLR, Fig. 1",
    year=2016,
    input_size=(100, 1, 1),
    num_params=12_658_432,
    task="generation",
    gradcam_layer=None,
)
def dcgan_generator(
    *, latent_dim: int = 100, out_channels: int = 3, base_width: int = 128, upsample: str = "transpose", image_size: int = 64
) -> DCGANGenerator:
    """The LSUN generator of Fig. 1 (z: 100 -> 1024x4x4 -> ... -> 3x64x64). See :class:`DCGANGenerator`."""
    return DCGANGenerator(latent_dim=latent_dim, out_channels=out_channels, base_width=base_width, upsample=upsample, image_size=image_size)


@register_model(
    paper="Radford, Metz & Chintala 2016, DCGAN, ICLR, Sec. 3", year=2016, input_size=(3, 64, 64),
    num_params=11_036_288, task="generation", gradcam_layer=None,
)
def dcgan_discriminator(*, in_channels: int = 3, base_width: int = 128, image_size: int = 64) -> DCGANDiscriminator:
    """The discriminator mirroring :func:`dcgan_generator` (3x64x64 -> 128-256-512-1024 -> 1 logit)."""
    return DCGANDiscriminator(in_channels=in_channels, base_width=base_width, image_size=image_size)


@register_model(
    paper="Radford, Metz & Chintala 2016, DCGAN, ICLR (generator + discriminator; FID feature net)", year=2016,
    input_size=(1, 28, 28), num_params=992_554, task="gan", gradcam_layer=None,
    forward_params="discriminator.",  # forward(x) is the discriminator; the generator is reached by generate()
)
def dcgan(
    *, latent_dim: int = 100, in_channels: int = 1, image_size: int | list[int] | tuple[int, int] = 28, base_width: int = 64,
    discriminator_width: int | None = None, upsample: str = "transpose", num_classes: int = 10, fid_width: int = 32,
) -> DCGAN:
    """The GAN module for ``task: gan`` (default: 28x28 grey images, ngf = ndf = 64). See :class:`DCGAN`."""
    base, k = generator_plan(image_size)
    side = base * 2**k
    return DCGAN(
        latent_dim=latent_dim, in_channels=in_channels, image_size=side, base_width=base_width,
        discriminator_width=discriminator_width, upsample=upsample, num_classes=num_classes, fid_width=fid_width,
    )
